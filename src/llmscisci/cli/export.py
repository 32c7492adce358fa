"""`llmscisci export`: a run's predictions as CSV, Parquet, JSON Lines or a Hugging Face dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmscisci.cli.common import console


def export(
    run_dir: Annotated[Path, typer.Argument(help="A labelling run folder.")],
    fmt: Annotated[str, typer.Option("--format", help="csv | parquet | jsonl | hf")] = "parquet",
    out_path: Annotated[Path, typer.Option("--out", help="The file (or, for hf, the folder) to write.")] = ...,
) -> None:
    """One row per item: id, metadata, each category as a 0/1 column, valid/repaired/empty flags, raw answer."""
    from llmscisci.errors import UserError
    from llmscisci.report.export import FORMATS, export_run

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir}: not a run folder (no config.json)")
    n = export_run(run_dir, fmt, out_path)
    console.print(f"wrote {n:,} rows to {out_path} ({fmt})", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
