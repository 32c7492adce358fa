"""Convert the JCDL 2023 study's own files into the toolkit's data layout.

Inputs (detected from their columns):
  * the study's file (ReScience_JCDL-23.csv): reports and the study's labels as class NUMBERS in
    reason_for_easiness / reason_for_difficulty, numbered by a named scheme (`study` unless told);
  * per-LLM label files (*_effortly_labels_*.csv): label vectors in the lecture order, with the
    model's free-text answers.
Output: mlrc_reports.csv (+ mlrc_metadata.csv from the study's file), labels/reference.csv (the
study's labels, with label names), labels/annotator_<model>.jsonl per LLM file, import_report.json.
Everything is read and checked first (the data layer's loaders, all problems gathered); nothing is
written when there is an error.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.data.codebook import Codebook, load_codebook
from llmscisci.data.ingest.build import META_COLUMNS, META_FILE, REPORT_COLUMNS, REPORTS_FILE
from llmscisci.data.ingest.metadata import review_id
from llmscisci.data.labelfiles import LabelSet, load_labels
from llmscisci.data.problems import Collector, Problem
from llmscisci.data.reports import is_study_format, load_reports, read_csv
from llmscisci.errors import DataError, UserError
from llmscisci.runs import atomic_folder

SCHEMES = ("study", "lecture")
NOT_CONVERTED = {
    "limitations_results": "class numbers (1 algorithm/experimental difficulty, 2 computational resources, "
    "3 missing hyperparameters, 4 no mention) with no codebook in the toolkit",
    "scope_of_reproducibility": "a class number (1 original work, 2 + extension, 3 several works) "
    "with no codebook",
}


@dataclass
class Source:
    path: Path
    kind: str  # "study" | "llm"
    model: str = ""
    labels: LabelSet | None = None


@dataclass
class ImportPlan:
    scheme: str
    sources: list[Source]
    reports: list[dict]
    meta_rows: list[dict]
    reference: LabelSet | None
    annotators: dict[str, LabelSet]
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]


def _books() -> dict[str, Codebook]:
    return {t: load_codebook(t) for t in ("easy", "difficult")}


def numbering_text(books: dict[str, Codebook], scheme: str) -> str:
    return "; ".join(
        f"{t}: " + ", ".join(f"{i} {s}" for i, s in enumerate(b.numbering[scheme], start=1))
        for t, b in books.items()
    )


def model_name(path: Path) -> str:
    stem = path.name.split(".")[0]
    m = re.match(r"(.+?)_effortly_labels", stem)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", m.group(1) if m else stem)


def _authors(raw: str) -> str:
    raw = (raw or "").strip()
    if raw.startswith("["):
        try:
            val = ast.literal_eval(raw)  # the study writes Python list reprs: "['A B', 'C D']"
            if isinstance(val, (list, tuple)):
                return "; ".join(str(x).strip() for x in val)
        except (ValueError, SyntaxError):
            pass
    return raw


def plan_import(files: list[str | Path], scheme: str = "study") -> ImportPlan:
    """Read and check every input; gather all problems. Nothing is written."""
    if scheme not in SCHEMES:
        raise UserError(f"unknown numbering scheme {scheme!r} (use one of: {', '.join(SCHEMES)})")
    if not files:
        raise UserError("no input files given")
    books = _books()
    col = Collector(strict=False)
    sources: list[Source] = []
    for f in files:
        p = Path(f)
        try:
            df = read_csv(p)
        except DataError as exc:
            col.problems.append(Problem(str(p), exc.reason))
            continue
        if is_study_format(df):
            sources.append(Source(p, "study"))
        elif any(re.fullmatch(r"y_(easy|diff)_\w+|(easy|diff)_\w+_label", c) for c in df.columns):
            sources.append(Source(p, "llm", model_name(p)))
        else:
            col.problems.append(
                Problem(
                    str(p),
                    "not the study's file (reason_for_easiness ...) nor a per-LLM label "
                    "file (y_easy_* / easy_*_label columns)",
                )
            )
    studies = [s for s in sources if s.kind == "study"]
    if len(studies) > 1:
        col.problems.append(
            Problem(str(studies[1].path), f"a second study file (first: {studies[0].path}); give one")
        )
    notes: list[str] = []
    reports: list[dict] = []
    meta_rows: list[dict] = []
    known: list[str] | None = None
    if studies:
        study = studies[0]
        df = load_reports(study.path, col)
        raw = read_csv(study.path)
        for r, rr in zip(df.to_dict("records"), raw.to_dict("records"), strict=True):
            reports.append(
                {
                    "doi": r["doi"],
                    "mlrc_year": "",
                    "title": r["title"],
                    "volume": r["volume"],
                    "issue": r["issue"],
                    "review_id": review_id(rr.get("review_url", "")),
                    "easy": r["easy"],
                    "difficult": r["difficult"],
                    "easy_long": r["easy_long"],
                    "difficult_long": r["difficult_long"],
                    "scope": "",
                }
            )
            meta_rows.append(
                {
                    "doi": r["doi"],
                    "mlrc_year": "",
                    "folder": "",
                    "authors": _authors(rr.get("author", "")),
                    "review_url": rr.get("review_url", "").strip(),
                    "code_url": rr.get("code_url", "").strip(),
                    "article_type": rr.get("article_type", "").strip(),
                }
            )
        known = [r["doi"] for r in reports if r["doi"]]
        notes.append(
            "mlrc_year left empty: the study's file gives the publication year ('year'), not the challenge "
            "edition; scope left empty: the study's scope_of_reproducibility is a class number"
        )
        present = [c for c in NOT_CONVERTED if c in raw.columns]
        for c in present:
            notes.append(f"column {c} not converted: {NOT_CONVERTED[c]}")
        try:
            study.labels = load_labels(
                study.path, books, scheme=scheme, known_dois=known, name="reference", collector=col
            )
        except DataError as exc:
            col.problems.append(Problem(str(study.path), exc.reason))
    annotators: dict[str, LabelSet] = {}
    llm_texts: dict[str, dict] = {}
    for s in (x for x in sources if x.kind == "llm"):
        name = s.model
        if name in annotators:
            name = re.sub(r"[^A-Za-z0-9_-]+", "_", s.path.name.split(".")[0])
        s.model = name
        try:
            s.labels = load_labels(s.path, books, known_dois=known, name=name, collector=col)
        except DataError as exc:
            col.problems.append(Problem(str(s.path), exc.reason))
            continue
        annotators[name] = s.labels
        df = read_csv(s.path)
        for i, r in enumerate(df.to_dict("records"), start=1):
            doi = str(r.get("doi", "")).strip()
            texts = {c: str(r.get(c, "")).strip() for c in ("easy", "difficult") if c in df.columns}
            if doi in llm_texts:
                for c, t in texts.items():
                    if llm_texts[doi].get(c) not in (None, t):
                        col.warning(
                            s.path, f"{c} text differs from the one in another label file", row=i, column=c
                        )
            else:
                llm_texts[doi] = texts
    if studies:
        by_doi = {r["doi"]: r for r in reports}
        for doi, texts in llm_texts.items():
            for c, t in texts.items():
                if doi in by_doi and t and t != by_doi[doi][c]:
                    col.warning(
                        "<per-LLM files>",
                        f"{doi}: {c} text differs from the study's file (the study's text is kept)",
                        column=c,
                    )
    elif llm_texts:
        notes.append(
            "no study file: reports (doi, easy, difficult) taken from the per-LLM label files; title, "
            "volume, issue left empty"
        )
        for doi, texts in llm_texts.items():
            if doi:
                reports.append({c: "" for c in REPORT_COLUMNS} | {"doi": doi, **texts})
    reference = studies[0].labels if studies else None
    return ImportPlan(scheme, sources, reports, meta_rows, reference, annotators, col.problems, notes)


def _write_csv(path: Path, columns, rows) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def check_inputs_outside(files: list[str | Path], out: str | Path) -> None:
    """Refuse an input file inside the output folder: replacing the folder would delete it."""
    dest = Path(out).resolve()
    for f in files:
        src = Path(f).resolve()
        if src == dest or dest in src.parents:
            raise UserError(f"input {f} is inside the output folder {out}: write the import to another folder")


def write_import(plan: ImportPlan, out: str | Path, overwrite: bool = False) -> dict:
    """Write the converted data directory (atomically); returns the import report."""
    if plan.errors:
        raise UserError(f"{len(plan.errors)} problem(s) in the inputs; nothing written")
    check_inputs_outside([s.path for s in plan.sources], out)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"output folder {out} exists and is not empty (pass --overwrite to replace it)")
    books = _books()
    report = {
        "scheme": plan.scheme,
        "numbering": {
            t: {str(i): s for i, s in enumerate(b.numbering[plan.scheme], start=1)} for t, b in books.items()
        },
        "label_order": {t: b.shorts for t, b in books.items()},
        "inputs": [],
        "outputs": {},
        "notes": plan.notes,
        "warnings": [str(p) for p in plan.problems if p.level == "warning"],
    }
    with atomic_folder(out) as tmp:
        (tmp / "labels").mkdir()
        _write_csv(tmp / REPORTS_FILE, REPORT_COLUMNS, plan.reports)
        report["outputs"][REPORTS_FILE] = len(plan.reports)
        if plan.meta_rows:
            _write_csv(tmp / META_FILE, META_COLUMNS, plan.meta_rows)
            report["outputs"][META_FILE] = len(plan.meta_rows)
        for s in plan.sources:
            entry = {"file": str(s.path), "kind": s.kind}
            if s.kind == "study" and s.labels is not None:
                rows = [
                    {
                        "doi": r.doi,
                        "task": r.task,
                        "labels": json.dumps(list(r.labels)),
                        "label_names": ";".join(books[r.task].names_of(r.labels)),
                    }
                    for r in s.labels.records.values()
                    if r.labels is not None
                ]
                _write_csv(tmp / "labels" / "reference.csv", ("doi", "task", "labels", "label_names"), rows)
                report["outputs"]["labels/reference.csv"] = len(rows)
                entry |= {
                    "reports": len(plan.reports),
                    "items": len(rows),
                    "numbered_by": f"scheme {plan.scheme!r} (reason_for_easiness, reason_for_difficulty)",
                }
            elif s.kind == "llm" and s.labels is not None:
                name = f"labels/annotator_{s.model}.jsonl"
                with (tmp / name).open("w", encoding="utf-8") as fh:
                    for r in s.labels.records.values():
                        fh.write(
                            json.dumps(
                                {
                                    "doi": r.doi,
                                    "task": r.task,
                                    "labels": list(r.labels) if r.labels is not None else None,
                                    "response": r.response,
                                },
                                ensure_ascii=False,
                            )
                            + "\n"
                        )
                report["outputs"][name] = len(s.labels)
                entry |= {
                    "model": s.model,
                    "items": len(s.labels),
                    "numbered_by": "vectors in the lecture order",
                }
            report["inputs"].append(entry)
        (tmp / "import_report.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8"
        )
    return report


def report_lines(plan: ImportPlan, report: dict | None = None) -> list[str]:
    """A readable account of what was (or would be) converted."""
    books = _books()
    lines = []
    for s in plan.sources:
        if s.kind == "study":
            n = len(s.labels) if s.labels is not None else 0
            lines.append(
                f"{s.path.name}: the study's file -> {len(plan.reports)} reports ({REPORTS_FILE}), {n} "
                f"labelled items (labels/reference.csv), class numbers read by scheme {plan.scheme!r}"
            )
        else:
            n = len(s.labels) if s.labels is not None else 0
            lines.append(
                f"{s.path.name}: per-LLM labels of {s.model!r} (vectors in the lecture order) -> {n} items "
                f"(labels/annotator_{s.model}.jsonl)"
            )
    lines.append(f"numbering {plan.scheme!r}: {numbering_text(books, plan.scheme)}")
    lines.append(
        "label order in the output: " + "; ".join(f"{t}: [{', '.join(b.shorts)}]" for t, b in books.items())
    )
    lines += [f"note: {n}" for n in plan.notes]
    return lines
