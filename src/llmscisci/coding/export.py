"""Export a drawn sample for coders: a CSV sheet (+ a sheet explaining every column) and Label Studio
tasks (+ a labelling config made from the codebook). The coder sheet never shows the model's labels or
the stratum; its rows are shuffled."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from llmscisci.coding.design import Sample, SampleRow
from llmscisci.data.codebook import Codebook
from llmscisci.errors import UserError
from llmscisci.runs import atomic_write, write_json

EXTRA_COLUMNS = ("coder", "notes", "sampling_prob")
LS_FROM_NAME = "labels"


def _meta_columns(rows: Sequence[SampleRow]) -> list[str]:
    cols = []
    for key in ("mlrc_year",):
        if any(str(r.meta.get(key, "")).strip() for r in rows):
            cols.append(key)
    return cols


def sheet_csv(sample: Sample) -> str:
    """The coder sheet: doi, task, (edition), text, one empty 0/1 column per category, coder, notes,
    sampling_prob."""
    cb = sample.codebook
    meta = _meta_columns(sample.rows)
    header = ["doi", "task", *meta, "text", *cb.shorts, *EXTRA_COLUMNS]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in sample.rows:
        w.writerow([r.doi, r.task, *[r.meta.get(m, "") for m in meta], r.text, *[""] * cb.n, "", "",
                    f"{r.pi:.10g}"])
    return buf.getvalue()


def codebook_csv(codebook: Codebook, meta_columns: Sequence[str] = ("mlrc_year",)) -> str:
    """The second sheet: what every column of the coder sheet means, with the codebook's descriptions."""
    rows = [("doi", "the report's DOI", "identifies the item; do not edit", ""),
            ("task", "the labelling task", f"{codebook.task}: {codebook.title}; do not edit", "")]
    if "mlrc_year" in meta_columns:
        rows.append(("mlrc_year", "challenge edition", "do not edit", ""))
    rows.append(("text", "the text to code", codebook.question or codebook.title, ""))
    for c in codebook.categories:
        rule = "1 if the text names this, else 0 (an empty cell in a coded row counts as 0)"
        if c.short == codebook.none:
            rule = "1 only when no other category applies (exclusive); else 0"
        rows.append((c.short, c.name, f"{c.description} {rule}".strip(), "; ".join(c.keywords)))
    rows += [("coder", "your name or initials", ("the same in every row you code; leave a row's category "
                                                "cells all empty to skip it"), ""),
             ("notes", "optional", "anything unclear about this item", ""),
             ("sampling_prob", "the item's probability of being drawn into the sample",
              "do not edit: the prevalence estimators weight by it", "")]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["column", "meaning", "description", "keywords"])
    w.writerows(rows)
    return buf.getvalue()


def labelstudio_tasks(sample: Sample) -> list[dict]:
    """Label Studio's JSON import format: one task per item, the text in data.text."""
    out = []
    for r in sample.rows:
        data = {"text": r.text, "doi": r.doi, "task": r.task, "sampling_prob": r.pi}
        data |= {m: r.meta[m] for m in _meta_columns(sample.rows) if m in r.meta}
        out.append({"data": data})
    return out


def labelstudio_config(codebook: Codebook) -> str:
    """A Label Studio labelling config: the text and one multiple-choice question with a choice per
    category (shown by name, stored by short name through `alias`, description as hint)."""
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="$doi")
    ET.SubElement(view, "Text", name="text", value="$text")
    ET.SubElement(view, "Header", value=codebook.question or codebook.title or codebook.task, size="5")
    choices = ET.SubElement(view, "Choices", name=LS_FROM_NAME, toName="text", choice="multiple",
                            showInline="false", required="true",
                            requiredMessage="Choose every category the text names (or the exclusive none).")
    for c in codebook.categories:
        hint = c.description + (" (exclusive: only when no other applies)" if c.short == codebook.none else "")
        ET.SubElement(choices, "Choice", value=c.name, alias=c.short, hint=hint)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def export_paths(out: str | Path) -> dict[str, Path]:
    p = Path(out)
    if p.suffix.lower() != ".csv":
        raise UserError(f"--out {p}: give a .csv file name (the other files are named after it)")
    stem = p.with_suffix("")
    return {"sheet": p, "codebook": Path(f"{stem}.codebook.csv"), "labelstudio": Path(f"{stem}.labelstudio.json"),
            "labelstudio_config": Path(f"{stem}.labelstudio.xml"), "design": Path(f"{stem}.design.json")}


def check_export_target(out: str | Path, force: bool = False) -> dict[str, Path]:
    """Validate the output names before anything is drawn or written."""
    paths = export_paths(out)
    folder = paths["sheet"].parent
    if not folder.is_dir():
        raise UserError(f"--out {paths['sheet']}: folder {folder} does not exist")
    if not force:
        there = [p for p in paths.values() if p.exists()]
        if there:
            raise UserError(f"{there[0]} exists (it may hold someone's codes); choose another --out or pass --force")
    return paths


def write_export(sample: Sample, out: str | Path, force: bool = False) -> dict[str, Path]:
    """Write the coder sheet (UTF-8 with BOM, so spreadsheet programs read it right), the codebook sheet,
    the Label Studio tasks and config, and the design (every item's sampling probability)."""
    paths = check_export_target(out, force)
    bom = "\ufeff"
    atomic_write(paths["sheet"], bom + sheet_csv(sample))
    atomic_write(paths["codebook"], bom + codebook_csv(sample.codebook, _meta_columns(sample.rows)))
    atomic_write(paths["labelstudio"], json.dumps(labelstudio_tasks(sample), ensure_ascii=False, indent=1) + "\n")
    atomic_write(paths["labelstudio_config"], labelstudio_config(sample.codebook))
    write_json(paths["design"], sample.design)
    return paths
