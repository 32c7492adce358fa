"""`llmscisci extract`: bibliographic records from a journal's HTML page, scored against a BibTeX key."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.batch import BatchAttemptsOpt, BatchFileOpt, BatchModelOpt, BatchOpt, FallbackOpt, PollOpt
from llmscisci.backends.settings import BackendSettings
from llmscisci.cli.backend_flags import backend_flags
from llmscisci.cli.common import DataDirOpt, JsonOpt, JsonOutOpt, OutOpt, emit, exit_if_unanswered
from llmscisci.console import fmt

HELP = """Extract publication records from a journal page (HTML file or URL) and score them against a
BibTeX bibliography joined on DOI. `--model baseline` runs only the deterministic baseline (the BibTeX
inside each <pre> block); any other model runs with the deterministic baseline on the same units."""


def register(app: typer.Typer) -> None:
    app.command("extract", help=HELP)(extract)


@backend_flags(batch_size=4)
def extract(
    ctx: typer.Context,
    pages: Annotated[Optional[list[str]], typer.Argument(
        help="HTML files, folders of them (*.html, *.htm) or http(s) URLs; each page gets its own run "
        "folder (with --resume: the run's own page when none is given).", show_default=False)] = None,
    variant: Annotated[Optional[str], typer.Option(
        "--variant", help="Prompt variant: icl, guidelines or structured (not needed for --model baseline).",
        show_default=False)] = None,
    model: Annotated[str, typer.Option(
        "--model", help="Model: smollm2-135m (embedded), a catalogue name, a local folder, a hub id, "
        "provider:model for APIs, or 'baseline' (no model).")] = "smollm2-135m",
    unit: Annotated[str, typer.Option(
        "--unit", help="What one model call sees: block (one record's markup), window (--window blocks) "
        "or page (the raw page cut to the context length).")] = "block",
    window: Annotated[int, typer.Option("--window", help="Blocks per window for --unit window.")] = 3,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N units.",
                                                 show_default=False)] = None,
    bib: Annotated[Optional[Path], typer.Option(
        "--bib", help="Answer key (BibTeX); default DATA_DIR/rescience/published.bib.", show_default=False)] = None,
    data_dir: DataDirOpt = None,
    out_dir: OutOpt = Path("runs"),
    run_dir: Annotated[Optional[Path], typer.Option(
        "--resume", help="Continue the run in this folder.", show_default=False)] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(
        "--max-new-tokens", help="Answer length cap; default 400 per record a unit may hold "
        "(2048 for --unit page).", show_default=False)] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 2025,
    bins: Annotated[int, typer.Option("--bins", help="Confidence bins for calibration.")] = 5,
    fetch_timeout: Annotated[float, typer.Option("--fetch-timeout", help="Seconds to wait for a URL.")] = 30.0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (units, first prompt, tokens, cost or ETA); write nothing.")] = False,
    batch: BatchOpt = False,
    batch_file: BatchFileOpt = None,
    batch_model: BatchModelOpt = None,
    poll_interval: PollOpt = 60.0,
    batch_attempts: BatchAttemptsOpt = 2,
    batch_fallback: FallbackOpt = "none",
    backend: BackendSettings | None = None,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
) -> None:
    from llmscisci.api.extract_runs import RESUMED, extract_runs
    from llmscisci.cli.batch import batch_options
    from llmscisci.cli.common import explicit

    # validated before a model loads or a folder is made (api/extract_runs.py)
    batch_opts = batch_options(batch, batch_file, batch_model, poll_interval, batch_attempts, batch_fallback)
    done = extract_runs(pages, model=model, opts=backend.options(), variant=variant, unit=unit, window=window,
                        limit=limit, bib=bib, data_dir=data_dir, out_dir=out_dir, run_dir=run_dir,
                        max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, bins=bins,
                        fetch_timeout=fetch_timeout, batch=batch_opts, dry_run=dry_run, progress=not quiet,
                        given={k: v for k, v in locals().items() if k in RESUMED and explicit(ctx, k)})
    if dry_run:
        from llmscisci.cli.dryrun import emit_text

        emit_text(None, [done.text])
        return
    show_results(done, as_json, json_out)


def show_results(done: list, as_json: bool, json_out) -> None:
    """Each page's scores (or the line of a written batch file), as a table or JSON; exit 3 when units
    went unanswered."""
    from llmscisci.cli.common import pending_result

    results, tables = [], []
    for d in done:
        if d.pending is not None:  # --batch-file: the request rows are written, nothing to score yet
            res, line = pending_result("extract", d.pending)
            results.append(res)
            tables.append(line)
            continue
        results.append({"page": d.page, "run_dir": str(d.run.path), "metrics": d.metrics})
        tables += summary(d.metrics, d.run.path)
    emit(results[0] if len(results) == 1 else results, tables, as_json, json_out)
    exit_if_unanswered([r["metrics"] for r in results if "metrics" in r], "units")


def summary(metrics: dict, path: Path) -> list:
    """The extraction scores as a table and a line (printed by `emit`)."""
    from rich.table import Table

    t = Table(title=f"extraction: {metrics.get('model_name')} ({metrics.get('variant') or 'baseline'}, "
              f"{metrics.get('unit')}s)")
    t.add_column("metric")
    t.add_column("model", justify="right")
    t.add_column("baseline", justify="right")
    t.add_column("gap", justify="right")
    head = metrics.get("headline", {})
    for key, m in head.get("model", {}).items():
        b = head.get("baseline", {}).get(key)
        g = metrics.get("gap", {}).get(key)
        t.add_row(key, _fmt(m), _fmt(b), _fmt(g))
    mm = metrics.get("model", {})
    return [t, f"{mm.get('matched_records')} of {mm.get('truth_records')} truth records found, "
               f"{mm.get('predicted_records')} predicted; run folder: {path}"]


_fmt = partial(fmt, none="-", compact=False, thousands=False)
