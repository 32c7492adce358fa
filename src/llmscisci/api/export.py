"""`ls.export(run, out, format=...)`: a labelling run's predictions as CSV, Parquet, JSON Lines or a
Hugging Face dataset folder, as `llmscisci export` writes them (one row per item: id, metadata, each
category as a 0/1 column, valid/repaired/empty flags, raw answer)."""

from __future__ import annotations

from pathlib import Path

from llmscisci.errors import UserError


def export(run, out, *, format: str = "parquet") -> int:
    """Write the predictions of `run` (a run folder or a `Run`) to `out` (a file; a folder for `hf`) in
    `format` (csv, parquet, jsonl or hf); returns the number of rows written."""
    from llmscisci.report.export import FORMATS, export_run

    if format not in FORMATS:
        raise UserError(f"unknown --format {format!r}: use one of {', '.join(FORMATS)}")
    run_dir = Path(getattr(run, "path", run))
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir}: not a run folder (no config.json)")
    return export_run(run_dir, format, out)
