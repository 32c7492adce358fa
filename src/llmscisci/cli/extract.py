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
from llmscisci.errors import UserError

HELP = """Extract publication records from a journal page (HTML file or URL) and score them against a
BibTeX bibliography joined on DOI. `--model baseline` runs only the deterministic baseline (the BibTeX
inside each <pre> block); any other model runs with the deterministic baseline on the same units."""


def register(app: typer.Typer) -> None:
    app.command("extract", help=HELP)(extract)


@backend_flags(batch_size=4)
def extract(
    pages: Annotated[list[str], typer.Argument(
        help="HTML files, folders of them (*.html, *.htm) or http(s) URLs; each page gets its own run folder.",
        show_default=False)],
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
    from llmscisci.backends.base import GenParams
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.prompts.extract import VARIANTS
    from llmscisci.tasks.extract.html import UNITS, split_blocks
    from llmscisci.tasks.extract.run import BASELINE, ExtractSpec, default_max_new_tokens, run_extract
    from llmscisci.tasks.extract.source import read_page
    from llmscisci.tasks.extract.truth import load_truth

    from llmscisci.backends.batch import BatchPending
    from llmscisci.cli.batch import batch_options, load_run_backend, pending_result

    # validate everything before loading a model or creating a folder
    batch_opts = batch_options(batch, batch_file, batch_model, poll_interval, batch_attempts, batch_fallback)

    is_baseline = model == BASELINE
    if is_baseline and batch_opts is not None:
        raise UserError("--batch and --batch-file need a model, not the baseline")
    if not is_baseline and variant is None:
        raise UserError(f"--variant is required with a model: one of {', '.join(VARIANTS)}")
    if variant is not None and variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    if unit not in UNITS:
        raise UserError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    if window < 1:
        raise UserError("--window must be at least 1")
    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    if bins < 1:
        raise UserError("--bins must be at least 1")
    if max_new_tokens is not None and max_new_tokens < 1:
        raise UserError("--max-new-tokens must be at least 1")
    page_list = expand_pages(pages)
    if run_dir is not None and len(page_list) > 1:
        raise UserError("--resume continues one page's run: give one page")
    if batch_file is not None and len(page_list) > 1:
        raise UserError("--batch-file writes one run's requests: give one page")
    bib_path = bib if bib is not None else resolve_data_dir(data_dir) / "rescience" / "published.bib"
    truth = load_truth(bib_path)
    params = GenParams(max_new_tokens=max_new_tokens or default_max_new_tokens(unit, window),
                       temperature=temperature, seed=seed)
    spec = ExtractSpec(variant=variant or "structured", model=model, unit=unit, window=window, limit=limit,
                       params=params, bins=bins)
    sources = []
    for page in page_list:
        src = read_page(page, timeout=fetch_timeout)
        sources.append((src, split_blocks(src.text, src.origin)))  # a page without records fails here
    opts = backend.options()
    if not dry_run:
        from llmscisci.paths import check_output_path

        check_output_path(out_dir, "folder")  # before the model loads
    if dry_run:
        from llmscisci.cli.dryrun import emit_text, plan_conversations
        from llmscisci.prompts import extract as extract_prompts
        from llmscisci.tasks.extract.run import decoding_schema, plan_units

        units = [u for src, blocks in sources for u in plan_units(spec, src, None, blocks)[0]]
        convs = (extract_prompts.build_messages(u.text, spec.variant) for u in units)
        schema = decoding_schema(max(u.expected_records for u in units)) if (
            not is_baseline and extract_prompts.is_structured(spec.variant) and units) else None
        plan = plan_conversations(model, convs, params, opts, schema, what=f"units ({len(sources)} page(s))")
        emit_text(None, [plan.text])
        return
    backend = None
    if not is_baseline:
        backend = load_run_backend(model, opts, batch_opts)
    results, tables = [], []
    for src, blocks in sources:
        try:
            run = run_extract(spec, src, truth, backend, out_dir, run_dir=run_dir, show_progress=not quiet,
                              blocks=blocks)
        except BatchPending as exc:  # --batch-file: the request rows are written, nothing to score yet
            res, line = pending_result("extract", exc)
            results.append(res)
            tables.append(line)
            continue
        metrics = run.metrics()
        results.append({"page": str(src), "run_dir": str(run.path), "metrics": metrics})
        tables += summary(metrics, run.path)
    emit(results[0] if len(results) == 1 else results, tables, as_json, json_out)
    exit_if_unanswered([r["metrics"] for r in results if "metrics" in r], "units")


def expand_pages(pages: list[str]) -> list[str]:
    """Pages as given; a folder stands for its *.html and *.htm files (sorted)."""
    found = []
    for p in pages:
        path = Path(p)
        if not p.startswith(("http://", "https://")) and path.is_dir():
            inside = sorted(q for q in path.iterdir() if q.suffix.lower() in (".html", ".htm") and q.is_file())
            if not inside:
                raise UserError(f"{path}: a folder without .html or .htm pages")
            found += [str(q) for q in inside]
        else:
            found.append(p)
    return found


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
