#!/usr/bin/env python
"""Compare an ingestion's reports CSV with an existing reports CSV and list the differences.

    python scripts/compare_ingestion.py BUILT REFERENCE [--fields easy,difficult] [--limit 50] [--json OUT]

BUILT and REFERENCE are mlrc_reports.csv files or data folders holding one (e.g. the output of
`llmscisci data build --mlrc CHECKOUT --out DIR` and the bundled src/llmscisci/data/bundled). Reports are joined on DOI.
Texts are compared after normalisation (LaTeX left in a text converted like the ingestion does,
whitespace collapsed, blanks before closing punctuation and a final full stop ignored); exact
equality is counted as well. When BUILT's folder has an ingestion log, each difference is shown
with what the log says about that report and field (merged parts, missing headings, ...).
Exit status: 0 when every compared field is equal after normalisation, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from llmscisci.data.ingest.compare import FIELDS, compare
from llmscisci.data.reports import load_reports
from llmscisci.errors import UserError


def _log(built: Path) -> dict[str, list[dict]]:
    folder = built if built.is_dir() else built.parent
    path = folder / "ingestion_log.jsonl"
    out: dict[str, list[dict]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec.get("doi"):
                out.setdefault(rec["doi"], []).extend(rec.get("issues", []))
    return out


def _relevant(issue: dict, field: str) -> bool:
    """A log entry that explains a difference in `field`."""
    f = issue.get("field")
    if f == field:
        return True
    if f is None:
        return issue.get("kind") in ("no_easy_difficult", "missing_part", "no_source")
    same_form = f.endswith("_long") == field.endswith("_long")
    return (
        same_form
        and issue.get("kind") in ("merged", "merged_split")
        and field.startswith(("easy", "difficult"))
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("built", type=Path, help="the ingestion's mlrc_reports.csv (or its folder)")
    ap.add_argument("reference", type=Path, help="an existing mlrc_reports.csv (or its folder)")
    ap.add_argument("--fields", default=",".join(FIELDS), help="comma-separated fields to compare")
    ap.add_argument("--limit", type=int, default=50, help="differences to print (0: all)")
    ap.add_argument("--json", type=Path, default=None, help="also write the comparison as JSON here")
    args = ap.parse_args(argv)
    logging.getLogger("llmscisci.data").setLevel(logging.ERROR)  # empty-text warnings: not the point here
    try:
        built, ref = load_reports(args.built), load_reports(args.reference)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fields = tuple(f.strip() for f in args.fields.split(",") if f.strip())
    cmp = compare(built, ref, fields)
    log = _log(args.built)
    print(cmp.summary())
    if cmp.only_built:
        print(
            f"\nonly in the ingestion ({len(cmp.only_built)}): {', '.join(cmp.only_built[:20])}"
            + (" ..." if len(cmp.only_built) > 20 else "")
        )
    if cmp.only_reference:
        print(
            f"only in the reference ({len(cmp.only_reference)}): {', '.join(cmp.only_reference[:20])}"
            + (" ..." if len(cmp.only_reference) > 20 else "")
        )
    shown = cmp.differences if args.limit == 0 else cmp.differences[: args.limit]
    if shown:
        print(f"\ndifferences ({len(cmp.differences)}):")
    for d in shown:
        print(str(d))
        notes = [i for i in log.get(d.doi, []) if _relevant(i, d.field)]
        for i in notes:
            print(f"  log: [{i['kind']}] {i['message']}")
    if len(shown) < len(cmp.differences):
        print(f"... {len(cmp.differences) - len(shown)} more (--limit 0 shows all)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "common": len(cmp.common),
                    "only_built": cmp.only_built,
                    "only_reference": cmp.only_reference,
                    "exact": cmp.exact,
                    "normalised": cmp.normalised,
                    "differences": [d.__dict__ for d in cmp.differences],
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0 if not cmp.differences else 1


if __name__ == "__main__":
    sys.exit(main())
