"""What a call of the Python API is given, made into what the runners read: a task (a built-in name, a
codebook file or a `Codebook` object) and the data (None: the study's data; a corpus file in any format;
a pandas DataFrame or a list of dicts, written once as Parquet or JSONL under the output folder's
`inputs/`, named by its content, so the same table labels into the same run folder as the same file
given to `llmscisci label --input`)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.errors import UserError

INPUTS = "inputs"  # under the output folder: the tables given as DataFrames or lists


def codebook_of(task) -> Codebook:
    """A Codebook from a built-in name, a codebook .toml path or a Codebook (one built in Python that
    is not a built-in task is recorded with the source `python`)."""
    if isinstance(task, Codebook):
        if task.source == "builtin" and (task.task not in BUILTIN or task != load_codebook(task.task)):
            return task.model_copy(update={"source": "python"})
        return task
    if isinstance(task, (str, os.PathLike)):
        if "," in str(task):
            raise UserError(f"task {str(task)!r}: give one task per call (or a list of them)")
        return load_codebook(task)
    raise UserError(f"task {task!r}: give a built-in name ({', '.join(BUILTIN)}), a codebook .toml file or a "
                    "Codebook")


def codebooks_of(task) -> list[Codebook]:
    """One Codebook per task of `task` (one task, or a list or tuple of them)."""
    tasks = list(task) if isinstance(task, (list, tuple)) else [task]
    if not tasks:
        raise UserError("task is empty")
    return [codebook_of(t) for t in tasks]


def _is_frame(data) -> bool:
    return type(data).__module__.startswith("pandas") and type(data).__name__ == "DataFrame"


def _store(out: Path, payload: bytes, suffix: str) -> Path:
    """`payload` written once under out/inputs, named by its content (atomically; a rerun reuses it)."""
    digest = hashlib.sha256(payload).hexdigest()[:16]
    dest = Path(out) / INPUTS / f"data_{digest}{suffix}"
    if not dest.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        tmp.write_bytes(payload)
        os.replace(tmp, dest)
    return dest


def frame_bytes(df) -> bytes:
    """A DataFrame as Parquet bytes (its index dropped, as a corpus file has none)."""
    import io

    if df.empty:
        raise UserError("data: the DataFrame has no rows")
    if not all(isinstance(c, str) for c in df.columns):
        raise UserError("data: DataFrame column names must be strings")
    buf = io.BytesIO()
    df.reset_index(drop=True).to_parquet(buf, index=False)
    return buf.getvalue()


def records_bytes(rows: list) -> bytes:
    """A list of dicts as JSONL bytes (one record a line, in order)."""
    if not rows:
        raise UserError("data: the list is empty")
    lines = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserError(f"data: item {i} is a {type(row).__name__}, not a dict")
        try:
            lines.append(json.dumps(row, ensure_ascii=False, sort_keys=False, default=str))
        except (TypeError, ValueError) as exc:
            raise UserError(f"data: item {i}: {exc}") from None
    return ("\n".join(lines) + "\n").encode("utf-8")


def corpus_path(data, out: str | Path) -> Path | None:
    """The corpus file to read for `data`: None for the study's data, a path as given (it must exist),
    a DataFrame or a list of dicts stored under out/inputs."""
    if data is None:
        return None
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise UserError(f"data {path}: file not found")
        return path
    if _is_frame(data):
        return _store(Path(out), frame_bytes(data), ".parquet")
    if isinstance(data, (list, tuple)):
        return _store(Path(out), records_bytes(list(data)), ".jsonl")
    raise UserError(f"data: a path, a pandas DataFrame or a list of dicts, not a {type(data).__name__}")
