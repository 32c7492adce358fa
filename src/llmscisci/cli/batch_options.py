"""Batch mode options shared by `label`, `extract` and `judge` (--batch, --batch-file, ...), checked
before anything loads, and the helpers that turn them into a batch backend."""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.common import console

BatchOpt = Annotated[bool, typer.Option("--batch", help="API models: send the requests through the provider's "
                                        "batch API (about half the price, answered within 24 h; resumable).")]
BatchFileOpt = Annotated[Optional[Path], typer.Option(
    "--batch-file", help="Write OpenAI-format batch request rows (JSONL) for every uncached item and stop; "
    "nothing is submitted (for an OpenAI upload or vllm run-batch).", show_default=False)]
BatchModelOpt = Annotated[Optional[str], typer.Option(
    "--batch-model", help="Model name written into --batch-file rows (default: the model's own name).",
    show_default=False)]
PollOpt = Annotated[float, typer.Option("--poll-interval", help="Batch mode: seconds between status checks.")]
BatchAttemptsOpt = Annotated[int, typer.Option(
    "--batch-attempts", help="Batch mode: submissions per request (failed or expired rows are resubmitted).")]
FallbackOpt = Annotated[str, typer.Option(
    "--batch-fallback", help="Batch mode: none | live (resubmit failed rows as live requests).")]

# `batch collect` / `batch import` re-enter a task command with options the command line cannot carry
_OVERRIDE: contextvars.ContextVar = contextvars.ContextVar("batch_override", default=None)


def batch_options(batch: bool, batch_file: Path | None, batch_model: str | None, poll_interval: float,
                  batch_attempts: int, batch_fallback: str):
    """BatchOptions for a task command, or None for a live run (checked before anything loads)."""
    from llmscisci.backends.batch import BatchOptions
    from llmscisci.errors import UserError

    override = _OVERRIDE.get()
    if override is not None:
        return override
    if batch_model is not None and batch_file is None:
        raise UserError("--batch-model goes with --batch-file")
    if not batch and batch_file is None:
        return None
    opts = BatchOptions(poll_interval=poll_interval, attempts=batch_attempts, fallback=batch_fallback,
                        file=str(batch_file) if batch_file is not None else None, file_model=batch_model)
    opts.check()
    return opts


def load_run_backend(model: str, opts, batch):
    """The live backend, or (batch options given) the batch backend around it."""
    if batch is None:
        from llmscisci.backends.registry import load_backend

        return load_backend(model, opts)
    from llmscisci.backends.batch import make_batch_backend

    return make_batch_backend(model, opts, batch, report=lambda line: console.print(line, highlight=False))


def pending_result(task: str, exc) -> tuple[dict, str]:
    """A request file was written (exit status 0): the --json record and the line to print."""
    info = {"task": task, "run_dir": str(exc.run_dir), "batch_file": exc.file}
    line = (f"{exc}\nrun it (OpenAI batch upload or vllm run-batch), then: "
            f"llmscisci batch import {exc.run_dir} RESULTS.jsonl")
    return info, line
