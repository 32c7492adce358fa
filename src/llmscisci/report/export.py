"""`llmscisci export`: a labelling run's predictions as CSV, Parquet, JSON Lines or a Hugging Face dataset.

One row per item: `id`, `task`, the item's metadata (OpenAlex's DOI, title, year, type, topic; a
corpus's other columns), each category as a 0/1 column named by its short name, `valid`, `repaired`,
`empty`, `error` and the model's `raw` answer. Parquet and the Hugging Face form keep types (integers,
booleans, nullable category columns), in every format: a CSV corpus's columns of whole numbers are
integer columns (of decimals, float columns), as pandas would read them. Rows follow the corpus's order
(its `row` column), one per item (the last record of an item answered more than once). The run is read
twice (once to settle the metadata columns' types and the rows' order, keeping three numbers per line,
once to write), so a large run exports in little memory.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

from llmscisci.data.codebook import Codebook
from llmscisci.errors import UserError
from llmscisci.paths import check_output_path
from llmscisci.records import LabelPrediction, is_valid
from llmscisci.runs import RunFolder, iter_jsonl

FORMATS = ("csv", "parquet", "jsonl", "hf")
FLAGS = ("valid", "repaired", "empty")
BATCH = 5000


INT_TEXT = re.compile(r"-?(0|[1-9][0-9]{0,17})")  # int64; no leading zeros: an id like 007 stays text
FLOAT_TEXT = re.compile(r"-?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|-?[0-9]+[eE][-+]?[0-9]+")
TEXT_FORMATS = ("csv", "tsv")  # formats whose every cell is text: numbers are recognised, as pandas would


def _records(run: RunFolder, offsets: Sequence[int]) -> Iterator[LabelPrediction]:
    """The run's records at the given byte offsets (in that order)."""
    return (LabelPrediction.read(rec) for rec in iter_jsonl(run.predictions_path, at=offsets))


def _kind(v, text_numbers: bool) -> str | None:
    if v is None or (text_numbers and isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, str):
        if text_numbers and INT_TEXT.fullmatch(v.strip()):
            return "int"
        if text_numbers and FLOAT_TEXT.fullmatch(v.strip()):
            return "float"
        return "str"
    return "bool" if isinstance(v, bool) else "int" if isinstance(v, int) else "float" if isinstance(v, float) \
        else "str"


def _key_hash(key: tuple) -> int:
    try:
        return hash(key)
    except TypeError:  # a malformed line (a list where an id belongs): hashed by its text
        return hash(repr(key))


def _scan(run: RunFolder, reserved: set[str], text_numbers: bool) -> tuple[dict[str, str], Sequence[int]]:
    """One pass over the run: metadata column -> 'int' | 'float' | 'bool' | 'str' (first-seen order;
    with `text_numbers`, a text column whose every value is a number becomes one), and the byte offsets
    of the records to write: the last record of each item, in input order (the item's `row`; records
    without one after, in file order of the item's first record).

    Per line only three 8-byte numbers are kept (input row, byte offset, a hash of the item key), so the
    scan of a million-item run holds about 24 MB (more while sorting), not a Python object per
    item; items that share a hash
    are told apart by their keys, re-read (an item answered twice is rare: an attempt that got no answer)."""
    import numpy as np

    kinds: dict[str, set[str]] = {}
    rows, offsets, hashes = array("d"), array("q"), array("q")
    # a light pass: only the item key and `meta` of each line (the rows are validated when written)
    for _, start, line in iter_jsonl(run.predictions_path, positions=True):
        meta = line.get("meta") if isinstance(line.get("meta"), dict) else {}
        for k, v in meta.items():
            kind = _kind(v, text_numbers)
            seen = kinds.setdefault(k, set())
            if kind is not None:
                seen.add(kind)
        row = meta.get("row")
        rows.append(row if isinstance(row, int) and not isinstance(row, bool) else float("inf"))
        offsets.append(start)
        hashes.append(_key_hash(LabelPrediction.line_key(line)))
    out = {}
    for k, seen in kinds.items():
        name = f"meta_{k}" if k in reserved else k
        if len(seen) == 1:
            out[name] = seen.pop()
        else:  # none seen (all empty), or mixed: floats where ints and floats mix, else text
            out[name] = "float" if seen == {"int", "float"} else "str"
    return out, _latest_in_order(run, np.frombuffer(rows, dtype=np.float64),
                                 np.frombuffer(offsets, dtype=np.int64), np.frombuffer(hashes, dtype=np.int64))


def _latest_in_order(run: RunFolder, rows, offsets, hashes) -> Sequence[int]:
    """The offsets of each item's last line, ordered by (input row, the item's first line, offset), as an
    array (a list of Python ints would cost 36 bytes an item)."""
    import numpy as np

    n = len(offsets)
    by_hash = np.argsort(hashes, kind="stable")  # lines of one hash together, in file order
    sorted_h = hashes[by_hash]
    new = np.ones(n, dtype=bool)  # where a run of equal hashes starts
    np.not_equal(sorted_h[1:], sorted_h[:-1], out=new[1:])
    del sorted_h
    if new.all():  # every line an item of its own (the usual run): by row, then file order
        return offsets[np.lexsort((offsets, rows))]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], n]
    keep, first = by_hash[ends - 1], by_hash[starts]
    more_keep, more_first = [], []
    for g in np.flatnonzero(ends - starts > 1):  # an item answered again, or items whose keys share a hash
        lines = by_hash[starts[g]:ends[g]]
        groups: dict[str, list[int]] = {}
        for i, rec in zip(lines, iter_jsonl(run.predictions_path, at=offsets[lines])):
            groups.setdefault(repr(LabelPrediction.line_key(rec)), []).append(int(i))
        (keep[g], first[g]), *others = [(ls[-1], ls[0]) for ls in groups.values()]
        more_keep += [last for last, _ in others]
        more_first += [head for _, head in others]
    if more_keep:
        keep, first = np.r_[keep, more_keep].astype(np.int64), np.r_[first, more_first].astype(np.int64)
    order = np.lexsort((offsets[keep], first, rows[keep]))  # the last key sorts first
    return offsets[keep[order]]


def _cell(v, kind: str | None):
    """A metadata value in its column's type (text numbers of a CSV as numbers)."""
    if kind == "str":
        if v is not None and not isinstance(v, str):
            return json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)
        return v
    if isinstance(v, str):
        if not v.strip():
            return None
        return int(v) if kind == "int" else float(v) if kind == "float" else v
    if kind == "float" and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def _row(rec: LabelPrediction, cb: Codebook, meta_cols: dict[str, str], reserved: set[str]) -> dict:
    row = {"id": rec.doi, "task": rec.task}
    meta = rec.meta if isinstance(rec.meta, dict) else {}
    for k, v in meta.items():
        name = f"meta_{k}" if k in reserved else k
        row[name] = _cell(v, meta_cols.get(name))
    for name in meta_cols:
        row.setdefault(name, None)
    labels = rec.labels
    for j, s in enumerate(cb.shorts):
        row[s] = None if labels is None else int(labels[j])
    for f in FLAGS:
        row[f] = is_valid(rec) if f == "valid" else bool(getattr(rec, f))
    row["error"] = rec.error
    row["raw"] = rec.raw
    return row


def _schema(cb: Codebook, meta_cols: dict[str, str]):
    import pyarrow as pa

    arrow = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
    fields = [pa.field("id", pa.string()), pa.field("task", pa.string())]
    fields += [pa.field(k, arrow[t]) for k, t in meta_cols.items()]
    fields += [pa.field(s, pa.int8()) for s in cb.shorts]
    fields += [pa.field(f, pa.bool_()) for f in FLAGS]
    fields += [pa.field("error", pa.string()), pa.field("raw", pa.string())]
    return pa.schema(fields)


def _write_parquet(rows: Iterator[dict], schema, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))


def export_run(run_dir: str | Path, fmt: str, out: str | Path) -> int:
    """Write the run's predictions to `out` in `fmt`; return the number of rows."""
    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}: use one of {', '.join(FORMATS)}")
    run = RunFolder(run_dir)
    cfg = run.config
    if "codebook" not in cfg:
        raise UserError(f"{run_dir}: config.json has no codebook; only labelling runs can be exported")
    if not run.predictions_path.is_file():
        raise UserError(f"{run_dir}: no predictions.jsonl")
    cb = Codebook(**cfg["codebook"])
    out = Path(out)
    if fmt == "hf" and out.exists():
        raise UserError(f"--out {out} already exists; choose a new folder for the dataset")
    check_output_path(out, "folder" if fmt == "hf" else "file")  # before the pass over the predictions
    reserved = {"id", "task", "error", "raw", *FLAGS, *cb.shorts}
    text_numbers = str((cfg.get("input") or {}).get("format", "")).lower() in TEXT_FORMATS
    meta_cols, offsets = _scan(run, reserved, text_numbers)
    n = [0]

    def rows() -> Iterator[dict]:
        for rec in _records(run, offsets):
            n[0] += 1
            yield _row(rec, cb, meta_cols, reserved)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        return _write(fmt, out, tmp, rows, cb, meta_cols, n)
    except BaseException:  # nothing half-written is left behind
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def _write(fmt: str, out: Path, tmp: Path, rows, cb: Codebook, meta_cols: dict, n: list[int]) -> int:
    if fmt == "csv":
        fields = list(_schema(cb, meta_cols).names)
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(rows())
    elif fmt == "jsonl":
        with tmp.open("w", encoding="utf-8") as fh:
            for row in rows():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "parquet":
        _write_parquet(rows(), _schema(cb, meta_cols), tmp)
    else:  # hf: a datasets folder, built from a temporary Parquet file
        from datasets import Dataset

        with tempfile.TemporaryDirectory(prefix="llmscisci-export-") as work:
            pq_path = Path(work) / "rows.parquet"
            _write_parquet(rows(), _schema(cb, meta_cols), pq_path)
            ds = Dataset.from_parquet(str(pq_path), cache_dir=str(Path(work) / "cache"))
            ds.save_to_disk(str(tmp))
            del ds
        if out.exists():
            shutil.rmtree(tmp)
            raise UserError(f"--out {out} already exists")
        os.replace(tmp, out)
        return n[0]
    os.replace(tmp, out)
    return n[0]
