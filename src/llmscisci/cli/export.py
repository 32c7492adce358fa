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
    from llmscisci.api.export import export as write

    n = write(run_dir, out_path, format=fmt)
    console.print(f"wrote {n:,} rows to {out_path} ({fmt})", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
