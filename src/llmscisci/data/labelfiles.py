"""Label files in every format the toolkit meets, loaded into one shape: (doi, task) -> labels.

Formats (detected from the file):
  * reference CSV       doi, task, labels ("[1, 0, 1, 0, 0]")                 (labels/reference.csv)
  * annotator JSONL     {"doi", "task", "labels", "response"} per line      (labels/annotator_*.jsonl)
  * run folder / its predictions.jsonl   (an `llmscisci label` run; invalid outputs have no labels)
  * the study's file    ReScience_JCDL-23.csv: reason_for_easiness / reason_for_difficulty hold class
                        NUMBERS ("1, 3"), numbered by the study's scheme unless told otherwise
  * per-LLM seed files  *_effortly_labels_*.csv: y_easy_gpt4 / easy_gemini_label ... hold vectors in
                        the lecture order, with easy_*_response / diff_*_response free text
Class numbers are mapped by category name through the codebook's named numbering schemes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from llmscisci.data.codebook import Codebook, load_codebook
from llmscisci.data.problems import Collector
from llmscisci.data.reports import is_study_format, read_csv
from llmscisci.data.textio import read_lines
from llmscisci.data.validate import LabelError, apply_none_rule, check_shape
from llmscisci.errors import DataError
from llmscisci.records import is_valid
from llmscisci.runs import Records, iter_jsonl

TASK_PREFIX = {"easy": "easy", "difficult": "diff"}


@dataclass(frozen=True)
class LabelRecord:
    doi: str
    task: str
    labels: tuple[int, ...] | None  # None: the source gave no usable label (e.g. invalid model output)
    response: str | None = None


@dataclass
class LabelSet:
    name: str
    path: str
    records: dict[tuple[str, str], LabelRecord] = field(default_factory=dict)

    def for_task(self, task: str) -> dict[str, LabelRecord]:
        return {doi: r for (doi, t), r in self.records.items() if t == task}

    def labels(self, task: str) -> dict[str, tuple[int, ...]]:
        return {doi: r.labels for doi, r in self.for_task(task).items() if r.labels is not None}

    def __len__(self) -> int:
        return len(self.records)


def _default_codebooks() -> dict[str, Codebook]:
    return {t: load_codebook(t) for t in ("easy", "difficult")}


def _parse_vector(raw, path, row, column, codebook: Codebook, col: Collector) -> tuple[int, ...] | None:
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            col.error(path, f"not a label list: {raw[:40]!r}", row=row, column=column)
            return None
    try:
        vec = check_shape(value, codebook.n)
    except LabelError as exc:
        col.error(path, f"bad label vector for task {codebook.task!r}: {exc}", row=row, column=column)
        return None
    checked = apply_none_rule(vec, codebook.none_index)
    if checked.repaired:
        col.warning(path, f"label vector {list(vec)} breaks the exclusive-none rule; repaired", row, column)
    return checked.labels


def _numbers(raw: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", raw)]


def _file_lines(p: Path, col: Collector):
    """(line number, JSON object) of a label file's lines; each other line is an error."""
    for i, line in read_lines(p):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            col.error(p, "not a JSON line", row=i)
            continue
        if not isinstance(rec, dict):
            col.error(p, "a line must be a JSON object", row=i)
            continue
        yield i, rec


def _run_lines(p: Path, col: Collector):
    """(line number, record) of a run folder's predictions.jsonl, read as every reader of a run folder
    reads it (runs.iter_jsonl): a torn last line of a killed run is skipped, any other unreadable line
    is an error."""
    bad = Records()
    for i, _, rec in iter_jsonl(p, into=bad, positions=True):
        yield i, rec
    for i in bad.bad_at:
        col.error(p, "not a JSON object line", row=i)


def load_labels(
    path: str | Path,
    codebooks: dict[str, Codebook] | None = None,
    *,
    scheme: str | None = None,
    known_dois: Iterable[str] | None = None,
    name: str | None = None,
    collector: Collector | None = None,
) -> LabelSet:
    """Load any supported label file. `scheme` names the class numbering of the study's file
    (default `study`); `known_dois` turns an unknown DOI into an error."""
    col = collector or Collector(strict=True)
    books = codebooks or _default_codebooks()
    p = Path(path)
    if p.is_dir():
        p = p / "predictions.jsonl"
    if not p.is_file():
        raise DataError(p, "file not found")
    known = set(known_dois) if known_dois is not None else None
    out = LabelSet(name=name or p.stem if p.name != "predictions.jsonl" else (name or p.parent.name), path=str(p))

    def add(doi: str, task: str, labels, response, row: int, column: str) -> None:
        if task not in books:
            col.error(p, f"unknown task {task!r} (known: {', '.join(books)})", row=row, column="task")
            return
        if not doi:
            col.error(p, "empty DOI", row=row, column="doi")
            return
        if known is not None and doi not in known:
            col.error(p, f"unknown DOI {doi} (not in the reports)", row=row, column="doi")
            return
        key = (doi, task)
        if key in out.records:
            col.error(p, f"duplicate item {doi} / {task}", row=row, column="doi")
            return
        vec = None if labels is None else _parse_vector(labels, p, row, column, books[task], col)
        out.records[key] = LabelRecord(doi, task, vec, response)

    if p.suffix == ".jsonl":
        is_run = p.name == "predictions.jsonl"
        for i, rec in (_run_lines(p, col) if is_run else _file_lines(p, col)):
            for key in ("doi", "task"):
                if key not in rec:
                    col.error(p, "missing field", row=i, column=key)
            if "doi" not in rec or "task" not in rec:
                continue
            labels = rec.get("labels")
            if not is_valid(rec):
                labels = None  # a run's unparseable output
            response = rec.get("response", rec.get("raw"))
            if is_run:  # a run writes an item once per attempt: the latest attempt counts
                out.records.pop((str(rec["doi"]).strip(), str(rec["task"]).strip()), None)
            add(str(rec["doi"]).strip(), str(rec["task"]).strip(), labels, response, i, "labels")
        return out

    df = read_csv(p)
    if {"doi", "task", "labels"} <= set(df.columns):
        for i, r in enumerate(df.to_dict("records"), start=1):
            add(r["doi"].strip(), r["task"].strip(), r["labels"], r.get("response") or None, i, "labels")
        return out
    if is_study_format(df):
        use = scheme or "study"
        for task, column in (("easy", "reason_for_easiness"), ("difficult", "reason_for_difficulty")):
            if task not in books:
                continue
            for i, r in enumerate(df.to_dict("records"), start=1):
                raw = (r.get(column) or "").strip()
                if not raw:
                    col.warning(p, "no class numbers; item skipped", row=i, column=column)
                    continue
                try:
                    vec = books[task].vector_from_numbers(_numbers(raw), use)
                except ValueError as exc:
                    col.error(p, str(exc), row=i, column=column)
                    continue
                add(r["doi"].strip(), task, vec, None, i, column)
        return out
    # per-LLM seed files: find the label and response columns of each task by name
    found = False
    for task, prefix in TASK_PREFIX.items():
        if task not in books:
            continue
        label_col = next(
            (c for c in df.columns if re.fullmatch(rf"y_{prefix}_\w+|{prefix}_\w+_label", c)), None
        )
        if label_col is None:
            continue
        found = True
        resp_col = next((c for c in df.columns if re.fullmatch(rf"{prefix}_\w+_response", c)), None)
        if scheme and scheme != "lecture":
            # vectors are positional; a non-lecture scheme reorders them by name
            order = books[task].numbering[scheme]
        else:
            order = None
        for i, r in enumerate(df.to_dict("records"), start=1):
            raw = r[label_col]
            if order is not None:
                try:
                    vals = json.loads(raw)
                    raw = [0] * books[task].n
                    for pos, v in enumerate(vals):
                        raw[books[task].index(order[pos])] = v
                except (json.JSONDecodeError, IndexError, TypeError):
                    pass
            add(r["doi"].strip(), task, raw, (r.get(resp_col) if resp_col else None) or None, i, label_col)
    if not found:
        raise DataError(p, "unrecognised label file: expected doi,task,labels columns, the study's "
                           "reason_for_* columns or per-LLM y_easy_*/easy_*_label columns")
    return out
