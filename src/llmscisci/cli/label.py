"""`llmscisci label` (study 1 labelling run) and `llmscisci eval` (recompute a run's metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.batch import (BatchAttemptsOpt, BatchFileOpt, BatchModelOpt, BatchOpt, FallbackOpt, PollOpt,
                                 batch_options)
from llmscisci.api.options import load_run_backend
from llmscisci.backends.settings import BackendSettings
from llmscisci.cli.backend_flags import backend_flags
from llmscisci.cli.common import (
    TasksOpt,
    DataDirOpt,
    EncodingOpt,
    explicit,
    JsonOpt,
    JsonOutOpt,
    ModelOpt,
    OutOpt,
    SkipBadLinesOpt,
    console,
    emit,
    exit_if_unanswered,
)

PlaceboOpt = Annotated[Optional[int], typer.Option(
    "--placebo", help="Ask N items again with the text replaced by a neutral passage; report the share of "
    "unchanged answers (does the model read the text?). Answers go to placebo.jsonl.")]


@backend_flags
def label(
    ctx: typer.Context,
    task: TasksOpt = "easy,difficult",
    variant: Annotated[str, typer.Option("--variant", help="icl | guidelines | structured | score")] = "structured",
    model: ModelOpt = "smollm2-135m",
    limit: Annotated[Optional[int], typer.Option("--limit", help="Label only the first N items.")] = None,
    split: Annotated[str, typer.Option("--split", help="all | train | test (canonical DOI-grouped split)")] = "all",
    shots: Annotated[int, typer.Option("--shots", help="k in-context examples drawn from the train split.")] = 0,
    data_dir: DataDirOpt = None,
    input_csv: Annotated[Optional[Path], typer.Option("--input", help="Your own corpus: CSV, TSV or JSONL (.gz too), Parquet, a Hugging Face dataset folder or OpenAlex works.")] = None,
    id_column: Annotated[Optional[str], typer.Option("--id-column", help="--input: the id column (default doi, else id).")] = None,
    text_column: Annotated[Optional[str], typer.Option("--text-column", help="--input: the column to label (default: the codebook's).")] = None,
    text_template: Annotated[Optional[str], typer.Option("--text", help="--input: a template over columns, e.g. '{title}. {abstract}'.")] = None,
    by: Annotated[Optional[str], typer.Option("--by", help="--input: label distribution per group of this column.")] = None,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="--input: items read and labelled per chunk.")] = 1000,
    calibrate: Annotated[Optional[str], typer.Option("--calibrate", help="score variant: fit per-category thresholds on this source's reference labels (bundled, a data folder or a coded label file).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (items, first prompt, tokens, cost or ETA); write nothing.")] = False,
    placebo: PlaceboOpt = None,
    out_dir: OutOpt = Path("runs"),
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue this run folder (skips finished items).")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens")] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 2025,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
    batch: BatchOpt = False,
    batch_file: BatchFileOpt = None,
    batch_model: BatchModelOpt = None,
    poll_interval: PollOpt = 60.0,
    batch_attempts: BatchAttemptsOpt = 2,
    batch_fallback: FallbackOpt = "none",
    encoding: EncodingOpt = None,
    engine: Annotated[str, typer.Option("--engine", help="--input: local (this process) | ray (a pool of Ray actors, docs/scale-out.md).")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="--engine ray: a running cluster (auto | HOST:PORT); default: start one here.")] = None,
    workers: Annotated[int, typer.Option("--workers", help="--engine ray: actors, each with its own backend.")] = 1,
    backend: BackendSettings | None = None,
) -> None:
    """Label texts with an LLM under one of three prompt variants; write a run folder with metrics."""
    from llmscisci.api.label_runs import RESUMED, label_runs
    from llmscisci.cli.label_corpus import show_results

    options = dict(task=task, variant=variant, model=model, limit=limit, split=split, shots=shots,
                   max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, calibrate=calibrate)
    done = label_runs(**options, data_dir=data_dir, input_path=input_csv, id_column=id_column,
                      text_column=text_column, text_template=text_template, by=by, chunk_size=chunk_size,
                      dry_run=dry_run, placebo=placebo, out_dir=out_dir, resume=resume, engine=engine,
                      workers=workers, ray_address=ray_address, opts=backend.options(),
                      batch=lambda: batch_options(batch, batch_file, batch_model, poll_interval, batch_attempts,
                                                  batch_fallback),
                      given={k: v for k, v in options.items() if k in RESUMED and explicit(ctx, k)},
                      say=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    show_results(done, as_json, json_out)


def eval_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder with config.json and predictions.jsonl.")],
    reparse: Annotated[bool, typer.Option("--reparse", help="Parse the raw outputs again with the current parser.")] = False,
    placebo: PlaceboOpt = None,
    skip_bad_lines: SkipBadLinesOpt = False,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Recompute a run's metrics from its predictions (label, judge, extract, SFT/DPO/GRPO evaluation
    runs). Exit status 3 when the run holds items the server never answered."""
    from llmscisci.errors import UserError
    from llmscisci.metrics.diagnostics import summary_lines
    from llmscisci.metrics.evaluate import format_table
    from llmscisci.tasks.registry import reevaluate

    if not (run_dir / "predictions.jsonl").is_file():
        raise UserError(f"{run_dir}: no predictions.jsonl (not a run folder)")
    if placebo is not None:
        check_eval_placebo(run_dir, placebo)
    metrics = recomputed = reevaluate(run_dir, reparse=reparse, skip_bad=skip_bad_lines)
    if placebo is not None:
        metrics = placebo_for_run(run_dir, placebo)
    if "all" in metrics:
        emit(metrics, [format_table(metrics), *summary_lines(metrics)], as_json, json_out)
    elif "distribution" in metrics:  # a corpus run without references: what the model said
        from llmscisci.cli.dryrun import emit_text
        from llmscisci.tasks.stream_finish import distribution_table

        emit_text(metrics, [distribution_table(metrics)], as_json, json_out)
    else:  # a judge run's audit, an extraction run's scores
        import json

        from rich.json import JSON

        result = metrics.get("audit", metrics)
        emit(result, JSON(json.dumps(result, default=str)), as_json, json_out)
    console.print(f"metrics written to {run_dir / 'metrics.json'}")
    exit_if_unanswered([recomputed], items_noun(run_dir),
                       retry=f"resume the run (--resume {run_dir}) to ask them again")


def items_noun(run_dir: Path) -> str:
    """What a run folder's kind counts its model calls in (items, calls)."""
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.registry import of_run

    return of_run(RunFolder(run_dir).config).items_column


def check_eval_placebo(run_dir: Path, placebo: int) -> None:
    """`eval --placebo` needs a labelling run made by an LLM (checked before anything loads)."""
    from llmscisci.errors import UserError
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.placebo import check_placebo, check_placebo_options

    check_placebo(placebo)
    from llmscisci.tasks import registry

    cfg = RunFolder(run_dir).config
    if not registry.holds_llm_labels(cfg):
        raise UserError(f"{run_dir}: --placebo needs a labelling run (kind {cfg.get('kind')!r})")
    check_placebo_options(placebo, str(cfg.get("model", "")), None)


def placebo_for_run(run_dir: Path, placebo: int) -> dict:
    """The placebo check on a finished run, with the backend its config.json names (the model, and the
    OpenAI-compatible server it used, if any); the backend flags' defaults otherwise."""
    from llmscisci.cli.backend_flags import settings_from
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.placebo import run_placebo

    run = RunFolder(run_dir)
    cfg = run.config
    base_url = (cfg.get("backend") or {}).get("base_url")
    backend = load_run_backend(cfg["model"], settings_from({"base_url": base_url}).options(), None)
    return run_placebo(run, backend, placebo)


def register(app: typer.Typer) -> None:
    app.command("label")(label)
    app.command("eval")(eval_cmd)
