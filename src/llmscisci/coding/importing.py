"""Import a coded sheet (CSV) or a Label Studio export back as annotator-format label files (doi, task,
labels, coder, sampling_prob), one per coder; codes go through the data layer's validator."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmscisci.coding.export import LS_FROM_NAME
from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.data.labelfiles import load_labels
from llmscisci.data.problems import Collector
from llmscisci.data.reports import read_csv
from llmscisci.data.validate import LabelError, apply_none_rule, check_shape
from llmscisci.errors import DataError, UserError
from llmscisci.runs import atomic_write, slug


# =================================================================================================
# import
# =================================================================================================
@dataclass(frozen=True)
class CodedRecord:
    doi: str
    task: str
    labels: tuple[int, ...]
    coder: str
    sampling_prob: float | None
    row: int
    repaired: bool = False

    def to_json(self, codebook: Codebook) -> dict:
        rec = {"doi": self.doi, "task": self.task, "labels": list(self.labels),
               "label_names": codebook.names_of(self.labels), "coder": self.coder}
        if self.sampling_prob is not None:
            rec["sampling_prob"] = self.sampling_prob
        return rec


@dataclass
class Imported:
    path: Path
    records: list[CodedRecord]
    skipped: int  # items left uncoded
    problems: Collector

    def coders(self) -> list[str]:
        return list(dict.fromkeys(r.coder for r in self.records))


class _Builder:
    """Turns raw codes into validated records, reporting problems against the input file."""

    def __init__(self, path: Path, books: dict[str, Codebook], known: set[str] | None, col: Collector):
        self.path, self.books, self.known, self.col = path, books, known, col
        self.records: list[CodedRecord] = []
        self.seen: set[tuple[str, str, str]] = set()
        self.skipped = 0

    def book(self, task: str, row: int, column: str = "task") -> Codebook | None:
        if task not in self.books:
            self.col.error(self.path, f"unknown task {task!r} (known: {', '.join(self.books)}; for a codebook of "
                                      "your own pass --task CODEBOOK.toml)", row=row, column=column)
            return None
        return self.books[task]

    def prob(self, raw, row: int, column: str = "sampling_prob") -> float | None:
        if raw is None or str(raw).strip() == "":
            return None
        try:
            p = float(raw)
        except (TypeError, ValueError):
            p = float("nan")
        if not 0 < p <= 1:
            self.col.error(self.path, f"sampling probability {raw!r} is not in (0, 1]", row=row, column=column)
            return None
        return p

    def add(self, doi: str, task: str, vector: list[int], coder: str, prob: float | None, row: int,
            column: str) -> None:
        if not doi:
            self.col.error(self.path, "empty DOI", row=row, column="doi")
            return
        if self.known is not None and doi not in self.known:
            self.col.error(self.path, f"unknown DOI {doi} (not in the reports)", row=row, column="doi")
            return
        book = self.books[task]
        try:
            vec = check_shape(vector, book.n)
        except LabelError as exc:
            self.col.error(self.path, f"bad label vector for task {task!r}: {exc}", row=row, column=column)
            return
        checked = apply_none_rule(vec, book.none_index)
        if checked.repaired:
            self.col.warning(self.path, f"codes {book.names_of(vec) or 'all 0'} break the exclusive-none rule; "
                                        f"stored as {book.names_of(checked.labels)}", row, column)
        key = (doi, task, coder)
        if key in self.seen:
            self.col.error(self.path, f"duplicate item {doi} / {task} for coder {coder!r}", row=row, column="doi")
            return
        self.seen.add(key)
        self.records.append(CodedRecord(doi, task, checked.labels, coder, prob, row, checked.repaired))


_CODE = {"": None, "0": 0, "1": 1, "0.0": 0, "1.0": 1}


def _read_sheet(path: Path):
    df = read_csv(path)
    if len(df.columns) == 1 and ";" in df.columns[0]:  # a spreadsheet saved with semicolons
        import pandas as pd

        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", sep=";")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_coded_csv(path: Path, books: dict[str, Codebook], coder: str, known: set[str] | None,
                   task: str | None, col: Collector) -> _Builder:
    df = _read_sheet(path)
    b = _Builder(path, books, known, col)
    if "doi" not in df.columns:
        raise DataError(path, "missing column (the coder sheet's identifier)", column="doi")
    if "task" not in df.columns and task is None:
        raise DataError(path, "missing column (or pass --task)", column="task")
    needed = [books[task]] if task else [books[t] for t in {str(x).strip() for x in df["task"]} if t in books]
    for cb in needed:
        for s in cb.shorts:
            if s not in df.columns:
                raise DataError(path, f"missing category column of task {cb.task!r}", column=s)
    for i, r in enumerate(df.to_dict("records"), start=1):
        t = str(r.get("task") or task or "").strip() if "task" in df.columns else task
        cb = b.book(t, i)
        if cb is None:
            continue
        values = []
        for s in cb.shorts:
            cell = str(r.get(s, "")).strip()
            if cell not in _CODE:
                col.error(path, f"bad code {cell!r}: use 1, 0 or leave empty", row=i, column=s)
                values = None
                break
            values.append(_CODE[cell])
        if values is None:
            continue
        if all(v is None for v in values):
            b.skipped += 1
            continue
        who = str(r.get("coder", "")).strip() or coder
        b.add(str(r["doi"]).strip(), t, [v or 0 for v in values], who, b.prob(r.get("sampling_prob"), i), i,
              cb.none or cb.shorts[0])
    return b


def _choices_of(result) -> list[str] | None:
    """The choices of a Label Studio annotation result list (None when it holds no choices)."""
    found = None
    for res in result or []:
        if not isinstance(res, dict):
            continue
        val = res.get("value") or {}
        if isinstance(val, dict) and "choices" in val and (
                res.get("from_name", LS_FROM_NAME) == LS_FROM_NAME or found is None):
            found = list(val["choices"])
    return found


def _coder_of(ann: dict, default: str) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or f"user{who.get('id')}")
    if ann.get("created_username"):
        return str(ann["created_username"]).split(",")[0].strip()
    if who is not None:
        return f"user{who}"
    return default


def read_labelstudio(path: Path, books: dict[str, Codebook], coder: str, known: set[str] | None,
                     task: str | None, col: Collector) -> _Builder:
    """Label Studio's JSON export (tasks with `annotations`) or JSON-MIN (one flat record per annotation)."""
    try:
        data = json.loads(path.read_text("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a JSON file ({exc})") from None
    if not isinstance(data, list):
        raise DataError(path, "expected a list of tasks (Label Studio's JSON or JSON-MIN export)")
    b = _Builder(path, books, known, col)

    def one(i: int, fields: dict, choices, who: str, column: str) -> None:
        t = str(fields.get("task") or task or "").strip()
        if not t:
            col.error(path, "no task in the task data (or pass --task)", row=i, column="task")
            return
        cb = b.book(t, i)
        if cb is None:
            return
        if isinstance(choices, str):
            choices = [choices]
        if not choices:
            b.skipped += 1
            return
        lookup = {s.lower(): s for s in cb.shorts} | {c.name.lower(): c.short for c in cb.categories}
        vec = [0] * cb.n
        for c in choices:
            short = lookup.get(str(c).strip().lower())
            if short is None:
                col.error(path, f"unknown choice {c!r} for task {t!r} (known: {', '.join(cb.shorts)})", row=i,
                          column=column)
                return
            vec[cb.index(short)] = 1
        b.add(str(fields.get("doi") or "").strip(), t, vec, who, b.prob(fields.get("sampling_prob"), i), i,
              column)

    for i, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            col.error(path, "a task must be a JSON object", row=i)
            continue
        if "annotations" in entry or "data" in entry:
            fields = entry.get("data") or {}
            anns = [a for a in entry.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
            if not anns:
                b.skipped += 1
                continue
            for j, ann in enumerate(anns):
                one(i, fields, _choices_of(ann.get("result")), _coder_of(ann, coder), f"annotations[{j}]")
        else:  # JSON-MIN
            raw = entry.get(LS_FROM_NAME)
            if isinstance(raw, dict):
                raw = raw.get("choices")
            one(i, entry, raw, str(entry.get("annotator") or coder), LS_FROM_NAME)
    return b


def import_coded(path: str | Path, *, coder: str | None = None, task: str | None = None,
                 known_dois: Sequence[str] | None = None, codebooks: dict[str, Codebook] | None = None,
                 collector: Collector | None = None) -> Imported:
    """Read a coded sheet (.csv) or a Label Studio export (.json) and validate every code.
    Raises DataError (file, row, column) at the first error unless given a non-strict collector."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found")
    books = {t: load_codebook(t) for t in BUILTIN} | dict(codebooks or {})
    if task is not None and task not in books:
        raise UserError(f"--task {task!r}: unknown (known: {', '.join(books)})")
    col = collector or Collector(strict=True)
    known = set(known_dois) if known_dois is not None else None
    who = coder or re.sub(r"\.(csv|json)$", "", p.name)
    suffix = p.suffix.lower()
    if suffix == ".json":
        b = read_labelstudio(p, books, who, known, task, col)
    elif suffix in (".csv", ".txt"):
        b = read_coded_csv(p, books, who, known, task, col)
    else:
        raise UserError(f"{p}: unsupported file type {p.suffix!r}: give the coded .csv sheet or a Label Studio "
                        ".json export")
    if not b.records and not col.errors:
        raise DataError(p, f"no coded item ({b.skipped} rows left uncoded)")
    return Imported(p, b.records, b.skipped, col)


def sample_design(path: str | Path) -> tuple[Path, dict] | None:
    """The design file `code export` wrote beside a coder sheet (SHEET.design.json; for its Label Studio
    tasks too), or None: it names the label run(s) and the codebook file."""
    p = Path(path)
    stem = re.sub(r"(\.labelstudio)?\.(csv|json|txt)$", "", p.name, flags=re.IGNORECASE)
    design = p.with_name(f"{stem}.design.json")
    if not design.is_file():
        return None
    try:
        data = json.loads(design.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(design, f"not a readable design file ({exc})") from None
    return (design, data) if isinstance(data, dict) else None


def output_paths(imported: Imported, out: str | Path | None = None) -> dict[str, Path]:
    """One label file per coder: OUT (or FILE.coded.jsonl) for one coder, OUT-stem.CODER.jsonl for several."""
    base = Path(out) if out is not None else imported.path.with_name(
        re.sub(r"\.(csv|json|txt)$", "", imported.path.name, flags=re.IGNORECASE) + ".coded.jsonl")
    if base.suffix != ".jsonl":
        raise UserError(f"--out {base}: give a .jsonl file name")
    coders = imported.coders()
    if len(coders) == 1:
        return {coders[0]: base}
    stem = base.with_suffix("")
    paths = {c: Path(f"{stem}.{slug(c, keep=None, default='coder')}.jsonl") for c in coders}
    if len(set(paths.values())) != len(paths):
        raise UserError(f"coder names {coders} collide as file names")
    return paths


def write_coded(imported: Imported, paths: dict[str, Path], codebooks: dict[str, Codebook] | None = None,
                force: bool = False) -> dict[str, Path]:
    """Write each coder's records as annotator-format JSONL (atomic), then read each file back with the
    data layer's label loader to prove it is usable everywhere a label file is."""
    books = {t: load_codebook(t) for t in BUILTIN} | dict(codebooks or {})
    for c, p in paths.items():
        if not p.parent.is_dir():
            raise UserError(f"{p}: folder {p.parent} does not exist")
        if p.exists() and not force:
            raise UserError(f"{p} exists; choose another --out or pass --force")
    for c, p in paths.items():
        lines = [json.dumps(r.to_json(books[r.task]), ensure_ascii=False) for r in imported.records if r.coder == c]
        atomic_write(p, "\n".join(lines) + "\n")
        load_labels(p, books)
    return paths
