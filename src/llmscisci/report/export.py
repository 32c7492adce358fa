"""`llmscisci export`: a labelling run's predictions as CSV, Parquet, JSON Lines or a Hugging Face dataset.

One row per item: `id`, `task`, the item's metadata (OpenAlex's DOI, title, year, type, topic; a
corpus's other columns), each category as a 0/1 column named by its short name, `valid`, `repaired`,
`empty`, `error` and the model's `raw` answer. Parquet and the Hugging Face form keep types (integers,
booleans, nullable category columns); the run is read twice, one record at a time (once to settle the
metadata columns' types, once to write), so a run of any size exports in bounded memory.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from llmscisci.data.codebook import Codebook
from llmscisci.errors import UserError
from llmscisci.paths import check_output_path
from llmscisci.runs import RunFolder

FORMATS = ("csv", "parquet", "jsonl", "hf")
FLAGS = ("valid", "repaired", "empty")
BATCH = 5000


def _records(run: RunFolder) -> Iterator[dict]:
    """One record per item, its latest attempt (a retried item is written once per attempt)."""
    return run.iter_predictions()


def _meta_types(run: RunFolder, reserved: set[str]) -> dict[str, str]:
    """Metadata column -> 'int' | 'float' | 'bool' | 'str', in first-seen order."""
    kinds: dict[str, set[str]] = {}
    for rec in _records(run):
        for k, v in (rec.get("meta") or {}).items():
            seen = kinds.setdefault(k, set())
            if v is None:
                continue
            seen.add("bool" if isinstance(v, bool) else "int" if isinstance(v, int)
                     else "float" if isinstance(v, float) else "str")
    out = {}
    for k, seen in kinds.items():
        name = f"meta_{k}" if k in reserved else k
        out[name] = (seen.pop() if len(seen) == 1 else "float" if seen == {"int", "float"} else "str") if seen else "str"
    return out


def _row(rec: dict, cb: Codebook, meta_cols: dict[str, str], reserved: set[str]) -> dict:
    row = {"id": rec.get("doi"), "task": rec.get("task")}
    meta = rec.get("meta") or {}
    for k, v in meta.items():
        name = f"meta_{k}" if k in reserved else k
        if meta_cols.get(name) == "str" and v is not None and not isinstance(v, str):
            v = json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)
        row[name] = v
    for name in meta_cols:
        row.setdefault(name, None)
    labels = rec.get("labels")
    for j, s in enumerate(cb.shorts):
        row[s] = None if labels is None else int(labels[j])
    for f in FLAGS:
        row[f] = bool(rec.get(f))
    row["error"] = rec.get("error")
    row["raw"] = rec.get("raw")
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
    meta_cols = _meta_types(run, reserved)
    n = [0]

    def rows() -> Iterator[dict]:
        for rec in _records(run):
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
