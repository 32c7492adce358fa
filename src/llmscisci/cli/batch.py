"""Batch mode options shared by `label`, `extract` and `judge`, and `llmscisci batch`
(status, collect, cancel, import) for the batches recorded in a run folder's batches.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.common import out

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

def batch_options(batch: bool, batch_file: Path | None, batch_model: str | None, poll_interval: float,
                  batch_attempts: int, batch_fallback: str):
    """BatchOptions for a task command, or None for a live run (checked before anything loads)."""
    from llmscisci.api.options import batch_options as checked

    return checked(batch, batch_file, batch_model, poll_interval, batch_attempts, batch_fallback)


# --- llmscisci batch ------------------------------------------------------------------------
app = typer.Typer(help="Provider batches recorded in a run folder: status, collect, cancel, import.",
                  no_args_is_help=True)
RunDirArg = Annotated[Path, typer.Argument(help="A run folder made with --batch or --batch-file.")]


@app.command("status")
def status(run_dir: RunDirArg,
           as_json: Annotated[bool, typer.Option("--json", help="Print batches.json's summary as JSON.")] = False) -> None:
    """Show the batches of a run and their requests' states (reads batches.json only; takes no lock)."""
    from llmscisci.api.batch import batch_status

    data = batch_status(run_dir)
    if as_json:
        out.print_json(json.dumps(data))
        return
    from rich.table import Table

    summary = data["summary"]
    out.print(f"{data['backend']} ({data['mode']}): {summary.get('requests', 0)} requests "
              + ", ".join(f"{k} {v}" for k, v in (summary.get("by_state") or {}).items()))
    if data["file"]:
        f = data["file"]
        out.print(f"request file: {f.get('path')} ({f.get('rows')} rows, model {f.get('model')})")
    if data["batches"]:
        t = Table("batch", "try", "status", "requests", "done", "failed", "collected")
        for b in data["batches"]:
            c = b.get("counts") or {}
            t.add_row(str(b["id"]), str(b["attempt"]), str(b.get("status")), str(b["requests"]),
                      str(c.get("done", "-")), str(c.get("failed", "-")), "yes" if b.get("collected") else "no")
        out.print(t)


def show_continued(run) -> None:
    """Print a collected or imported run (a `Run`) as its command does, and exit 3 if items went unanswered."""
    from llmscisci.tasks.registry import of_run

    kind = of_run(run.config)
    if kind.label_like:
        from llmscisci.api.label_runs import Labelled
        from llmscisci.cli.label_corpus import show_results

        show_results([Labelled(run.config.get("task", kind.name), run=run, metrics=run.metrics,
                               streamed=bool(run.config.get("streamed")))], False, None)
        return
    from rich.json import JSON

    from llmscisci.cli.common import emit, exit_if_unanswered

    metrics = run.metrics
    emit({"run_dir": str(run.path), "metrics": metrics},
         [JSON(json.dumps(kind.headline(metrics), default=str)), f"run folder: {run.path}"], False, None)
    exit_if_unanswered([metrics])


@app.command("collect")
def collect(run_dir: RunDirArg, poll_interval: PollOpt = 60.0, batch_attempts: BatchAttemptsOpt = 2,
            batch_fallback: FallbackOpt = "none",
            base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL "
                                                             "(default: the one recorded).")] = None,
            cache: Annotated[Optional[Path], typer.Option("--cache", help="API response cache file.")] = None,
            no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not store the answers in the response cache.")] = False,
            prices: Annotated[Optional[Path], typer.Option("--prices", help="Price table TOML.")] = None) -> None:
    """Wait for the run's submitted batches, collect their results and finish the run folder."""
    from llmscisci.api.batch import batch_collect

    show_continued(batch_collect(run_dir, poll_interval=poll_interval, batch_attempts=batch_attempts,
                                 batch_fallback=batch_fallback, base_url=base_url, cache=cache, no_cache=no_cache,
                                 prices=prices, progress=True))


@app.command("cancel")
def cancel(run_dir: RunDirArg,
           base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL.")] = None) -> None:
    """Cancel the run's batches that are still running (rows already done stay collectable)."""
    from llmscisci.api.batch import batch_cancel

    cancelled = batch_cancel(run_dir, base_url=base_url)
    if not cancelled:
        out.print("no open batches")
        return
    for b in cancelled:
        out.print(f"cancelling {b['id']} ({b['requests']} requests)")
    out.print("collect what was done with: llmscisci batch collect " + str(run_dir))


@app.command("import")
def import_(run_dir: RunDirArg,
            results: Annotated[Path, typer.Argument(help="OpenAI-format batch output JSONL (OpenAI, vllm run-batch).")],
            cache: Annotated[Optional[Path], typer.Option("--cache", help="API response cache file.")] = None,
            no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not store the answers in the response cache.")] = False,
            prices: Annotated[Optional[Path], typer.Option("--prices", help="Price table TOML.")] = None) -> None:
    """Read a results file for a --batch-file run and finish the run folder (unknown ids are an error)."""
    from llmscisci.api.batch import batch_import

    show_continued(batch_import(run_dir, results, cache=cache, no_cache=no_cache, prices=prices, progress=True))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="batch")
