"""Options and helpers shared by the subcommands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(stderr=True)
out = Console()

DataDirOpt = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Data folder (mlrc_reports.csv, labels/); else $LLMSCISCI_DATA.",
                 show_default=False),
]
TaskOpt = Annotated[str, typer.Option("--task", help="easy, difficult, or a codebook .toml file.")]
ModelOpt = Annotated[
    str,
    typer.Option("--model", help="Model: smollm2-135m (embedded), a catalogue name, a local folder, a hub id, "
                 "a trained output folder, or provider:model for APIs."),
]
OutOpt = Annotated[Path, typer.Option("--out", help="Folder under which the run folder is created.")]
StructuredModeOpt = Annotated[
    str,
    typer.Option("--structured-mode", help="OpenAI-compatible servers: how structured output is asked for: "
                 "auto (try json_schema, then json_object + schema, then prompt only; remembered per "
                 "--base-url) | json_schema | json_object | prompt."),
]
