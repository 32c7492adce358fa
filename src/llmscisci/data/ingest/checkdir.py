"""Check a whole data directory with the data layer's own loaders, gathering every problem.

Reports (mlrc_reports.csv: columns, empty/duplicate DOIs, years, empty texts as warnings), every
label file under labels/ (format, tasks, vector shapes, the exclusive-none rule, duplicates, DOIs
not among the reports), codebooks under codebooks/ if any, and whether the reference labels cover
every report.
"""

from __future__ import annotations

from pathlib import Path

from llmscisci.data.codebook import BUILTIN, load_codebook
from llmscisci.data.labelfiles import load_labels
from llmscisci.data.problems import Collector, Problem
from llmscisci.data.reports import REPORTS_FILE, load_reports
from llmscisci.errors import DataError, UserError

LABEL_SUFFIXES = (".csv", ".jsonl")


def check_directory(path: str | Path) -> tuple[list[Problem], dict]:
    """All problems of a data directory (errors and warnings) and what was checked."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root} is not a folder")
    if not (root / REPORTS_FILE).is_file() and not (root / "labels").is_dir():
        raise UserError(f"{root} holds neither {REPORTS_FILE} nor labels/: not a data directory")
    col = Collector(strict=False)
    checked: dict = {"reports": 0, "label_files": {}, "codebooks": []}
    books = {t: load_codebook(t) for t in BUILTIN}
    codebook_dir = root / "codebooks"
    if codebook_dir.is_dir():
        for p in sorted(codebook_dir.glob("*.toml")):
            try:
                cb = load_codebook(p)
                books[cb.task] = cb
                checked["codebooks"].append(p.name)
            except UserError as exc:
                col.problems.append(Problem(str(p), str(exc)))
    dois: list[str] | None = None
    try:
        reports = load_reports(root, col)
        dois = [d for d in reports["doi"] if d]
        checked["reports"] = len(reports)
    except DataError as exc:
        col.problems.append(Problem(exc.path, exc.reason, exc.row, exc.column))
    labels_dir = root / "labels"
    reference = None
    if labels_dir.is_dir():
        for p in sorted(labels_dir.iterdir()):
            if p.suffix not in LABEL_SUFFIXES or not p.is_file():
                continue
            try:
                ls = load_labels(p, books, known_dois=dois, collector=col)
                checked["label_files"][p.name] = len(ls)
                if p.name == "reference.csv":
                    reference = ls
            except DataError as exc:
                col.problems.append(Problem(exc.path, exc.reason, exc.row, exc.column))
    if reference is not None and dois is not None:
        for task in ("easy", "difficult"):
            have = reference.labels(task)
            missing = [d for d in dois if d not in have]
            if missing:
                col.warning(
                    reference.path,
                    f"no {task} labels for {len(missing)} of {len(dois)} reports (first: "
                    f"{', '.join(missing[:3])})",
                    column="labels",
                )
    return col.problems, checked
