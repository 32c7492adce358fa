"""`llmscisci label` (study 1 labelling run) and `llmscisci eval` (recompute a run's metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.batch import (RESUMERS, BatchAttemptsOpt, BatchFileOpt, BatchModelOpt, BatchOpt, FallbackOpt, PollOpt,
                                 batch_options, load_run_backend, pending_result)
from llmscisci.backends.settings import BackendSettings
from llmscisci.cli.backend_flags import backend_flags
from llmscisci.cli.dryrun import BASELINE_PREFIX
from llmscisci.cli.common import (
    TasksOpt,
    DataDirOpt,
    EncodingOpt,
    JsonOpt,
    JsonOutOpt,
    ModelOpt,
    OutOpt,
    SkipBadLinesOpt,
    console,
    emit,
    run_result,
    exit_if_unanswered,
)

SPLITS = ("all", "train", "test")
PlaceboOpt = Annotated[Optional[int], typer.Option(
    "--placebo", help="Ask N items again with the text replaced by a neutral passage; report the share of "
    "unchanged answers (does the model read the text?). Answers go to placebo.jsonl.")]
# options a resumed run takes from its config.json: giving another value is an error, never ignored
RESUMED = {"task": "--task", "variant": "--variant", "model": "--model", "limit": "--limit", "split": "--split",
           "shots": "--shots", "max_new_tokens": "--max-new-tokens", "temperature": "--temperature",
           "seed": "--seed", "calibrate": "--calibrate"}


def explicit(ctx: typer.Context | None, name: str) -> bool:
    """Whether the user gave option `name` (on the command line or through the environment)."""
    if ctx is None:
        return False
    source = ctx.get_parameter_source(name)  # an enum of the click that typer ships (compared by name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def check_label_options(limit, split, shots, max_new_tokens, temperature, input_csv) -> None:
    """Range, enum and format checks, done before any data or model is loaded (one-line errors)."""
    from llmscisci.errors import UserError

    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: must be at least 1")
    if split not in SPLITS:
        raise UserError(f"unknown --split {split!r}: use all, train or test")
    if shots < 0:
        raise UserError(f"--shots {shots}: must be 0 or more")
    if max_new_tokens is not None and max_new_tokens < 1:
        raise UserError(f"--max-new-tokens {max_new_tokens}: must be at least 1")
    if temperature < 0:
        raise UserError(f"--temperature {temperature}: must be 0 or more")
    if input_csv is not None and not input_csv.exists():
        raise UserError(f"--input {input_csv}: file not found")


def resume_conflicts(ctx: typer.Context | None, given: dict, cfg: dict) -> None:
    """A resumed run keeps its configuration: an option given with another value is an error."""
    from llmscisci.errors import UserError

    source_book = cfg["codebook"].get("source", "builtin")
    stored = {"task": cfg["task"] if source_book == "builtin" else source_book, "variant": cfg["variant"],
              "model": cfg["model"], "limit": cfg.get("limit"), "split": cfg.get("split_filter", "all"),
              "shots": cfg.get("shots", 0), "calibrate": cfg.get("calibrate"), **{k: cfg["params"][k] for k in ("max_new_tokens", "temperature", "seed")}}
    if source_book != "builtin" and given.get("task"):  # a codebook file, however its path is spelled
        given = {**given, "task": str(Path(str(given["task"])).resolve())}
        stored["task"] = str(Path(source_book).resolve())
    for name, flag in RESUMED.items():
        if explicit(ctx, name) and given[name] != stored[name]:
            raise UserError(f"--resume keeps the run's configuration: {flag} {given[name]} differs from the "
                            f"run's {stored[name]!r}; drop {flag} or start a new run")


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
    from llmscisci.backends.base import GenParams
    from llmscisci.backends.batch import BatchPending
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.errors import UserError
    from llmscisci.metrics.diagnostics import summary_lines
    from llmscisci.metrics.evaluate import format_table
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.paths import data_label
    from llmscisci.prompts.label import check_variant, is_scoring
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.label import DEFAULT_MAX_NEW_TOKENS, LabelSpec, draw_shots, run_label, select_items
    from llmscisci.tasks.placebo import check_placebo_options, run_placebo
    from llmscisci.tasks.score import check_score_options

    check_variant(variant)
    check_label_options(limit, split, shots, max_new_tokens, temperature, input_csv)
    if resume is None:  # a resumed run's variant comes from its config.json (checked below)
        check_score_options(variant, model, shots, calibrate)
    from llmscisci.tasks.label_ray import check_engine

    check_engine(engine, workers, ray_address)
    if engine != "local" and (placebo or is_scoring(variant)):
        raise UserError("--engine ray sends generation requests: not with --placebo (run `llmscisci eval RUN "
                        "--placebo N` after the run) nor with the score variant")
    batch_opts = batch_options(batch, batch_file, batch_model, poll_interval, batch_attempts, batch_fallback)
    check_placebo_options(placebo, model, batch_opts)
    if resume is None and batch_opts is not None and is_scoring(variant):
        raise UserError("--batch and --batch-file send generation requests; the score variant scores live")
    if chunk_size < 1:
        raise UserError(f"--chunk-size {chunk_size}: must be at least 1")
    opts = backend.options()
    paraphrase = 0
    if not dry_run:  # every output path is checked before anything is loaded or sent
        from llmscisci.paths import check_output_path

        if resume is not None:
            check_output_path(resume, "folder", "--resume")
        else:
            check_output_path(out_dir, "folder")
    if (id_column or text_column or text_template or by) and input_csv is None and resume is None:
        raise UserError("--id-column, --text-column, --text and --by apply to --input")
    if resume is not None:
        cfg = RunFolder(resume).config
        if cfg.get("kind", "label") != "label" or "codebook" not in cfg:
            raise UserError(f"--resume {resume}: not a labelling run (kind {cfg.get('kind')!r})")
        resume_conflicts(ctx, {"task": task, "variant": variant, "model": model, "limit": limit, "split": split,
                               "shots": shots, "max_new_tokens": max_new_tokens, "temperature": temperature,
                               "seed": seed, "calibrate": calibrate}, cfg)
        if cfg.get("streamed") and input_csv is None:
            inp = cfg.get("input") or {}
            input_csv, id_column = Path(inp.get("path", "")), inp.get("id_column")
            spec_text = (cfg.get("items") or {}).get("text", "")
            text_template, text_column = (spec_text, None) if "{" in spec_text else (None, spec_text or None)
        source_book = cfg["codebook"].get("source", "builtin")
        task = cfg["task"] if source_book == "builtin" else source_book
        variant, model = cfg["variant"], cfg["model"]
        limit, split, shots = cfg.get("limit"), cfg.get("split_filter", "all"), cfg.get("shots", 0)
        p = cfg["params"]
        max_new_tokens, temperature, seed = p["max_new_tokens"], p["temperature"], p["seed"]
        paraphrase = int(cfg.get("paraphrase") or 0)
        calibrate = cfg.get("calibrate")
        check_score_options(variant, model, shots, calibrate)
        if batch_opts is not None and is_scoring(variant):
            raise UserError("--batch and --batch-file send generation requests; the score variant scores live")
        if data_dir is None and input_csv is None:
            src = Path(cfg.get("data_source", ""))
            input_csv, data_dir = (src, None) if src.is_file() else (None, src)
    codebooks = [load_codebook(t.strip()) for t in task.split(",") if t.strip()]
    if not codebooks:
        raise UserError("--task is empty")
    if batch_opts is not None and batch_opts.file is not None and len(codebooks) > 1:
        raise UserError("--batch-file writes one run's requests: give one --task")
    fitted = model.startswith(BASELINE_PREFIX)  # a saved classifier (`baseline --save DIR`), not an LLM
    if fitted and batch_opts is not None:
        raise UserError("--batch and --batch-file are for LLMs, not a saved classifier")
    if fitted and shots:
        raise UserError("--shots is for language models: a saved classifier takes no examples")
    params = GenParams(max_new_tokens=max_new_tokens or DEFAULT_MAX_NEW_TOKENS.get(variant, 64),
                       temperature=temperature, seed=seed)
    if input_csv is not None:
        from llmscisci.cli.label_corpus import emit_text, label_corpus

        results, tables = [], []
        for cb in codebooks:
            res = label_corpus(cb, input_csv, model=model, variant=variant, params=params, opts=opts, limit=limit,
                               shots=shots, paraphrase=paraphrase, out_dir=out_dir, resume=resume,
                               id_column=id_column, text_column=text_column, template=text_template, by=by,
                               chunk_size=chunk_size, dry_run=dry_run, batch=batch_opts,
                               placebo=None if dry_run else placebo, calibrate=calibrate,
                               engine=(engine, workers, ray_address))
            results.append(res["result"])
            tables += res["tables"]
        emit_text(results[0] if len(results) == 1 else results, tables, as_json, json_out)
        exit_if_unanswered([r["metrics"] for r in results if "metrics" in r])
        return
    if engine != "local":
        raise UserError("--engine ray labels a corpus given with --input")
    source_dir = resolve_data_dir(data_dir)
    source = data_label(source_dir)  # recorded as `bundled` for the packaged dataset
    loaded = [(cb, load_items(cb, data_dir=source_dir)) for cb in codebooks]
    for cb, items in loaded:  # --split/--limit/--shots against the data, before the model loads
        select_items(items, split, limit)
        draw_shots(items, cb, variant, shots, seed)
    if dry_run:
        from llmscisci.cli.label_corpus import dry_run_items, emit_text

        results, tables = [], []
        for cb, items in loaded:
            plan = dry_run_items(cb, select_items(items, split, limit), model=model, variant=variant, params=params,
                                 opts=opts, paraphrase=paraphrase)
            results.append({"task": cb.task, "dry_run": plan.as_dict()})
            tables.append(plan.text)
        emit_text(results[0] if len(results) == 1 else results, tables, as_json, json_out)
        return
    backend = None if fitted else load_run_backend(model, opts, batch_opts)
    if fitted:  # every task's codebook checked against the classifier before any run is written
        from llmscisci.cli.label_corpus import load_labeller

        classifiers = [load_labeller(model, opts, cb) for cb, _ in loaded]
    results, tables = [], []
    for i, (cb, items) in enumerate(loaded):
        spec = LabelSpec(codebook=cb, variant=variant, model=model, params=params, shots=shots, limit=limit,
                         split=split, data_source=source, paraphrase=paraphrase, calibrate=calibrate)
        try:
            if fitted:
                from llmscisci.tasks.label_fitted import run_label_classifier

                run = run_label_classifier(spec, items, classifiers[i], out_dir, run_dir=resume)
            else:
                run = run_label(spec, items, backend, out_dir, run_dir=resume)
        except BatchPending as exc:  # --batch-file: the request rows are written, nothing to score yet
            res, line = pending_result(cb.task, exc)
            results.append(res)
            tables.append(line)
            continue
        metrics = run_placebo(run, backend, placebo) if placebo else run.metrics()
        results.append(run_result(cb.task, run.path, metrics))
        tables += [format_table(metrics, cb.task), *summary_lines(metrics), f"run folder: {run.path}"]
        if fitted and run.config.get("seen_in_training"):
            from llmscisci.tasks.label_fitted import seen_warning

            tables.append("warning: " + seen_warning(run.config["seen_in_training"], metrics["all"]["n"]))
    emit(results[0] if len(results) == 1 else results, tables, as_json, json_out)
    exit_if_unanswered([r["metrics"] for r in results if "metrics" in r])


def eval_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder with config.json and predictions.jsonl.")],
    reparse: Annotated[bool, typer.Option("--reparse", help="Parse the raw outputs again with the current parser.")] = False,
    placebo: PlaceboOpt = None,
    skip_bad_lines: SkipBadLinesOpt = False,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Recompute a run's metrics from its predictions (label, SFT/DPO/GRPO evaluation runs)."""
    from llmscisci.errors import UserError
    from llmscisci.metrics.diagnostics import summary_lines
    from llmscisci.metrics.evaluate import format_table
    from llmscisci.tasks.registry import reevaluate

    if not (run_dir / "predictions.jsonl").is_file():
        raise UserError(f"{run_dir}: no predictions.jsonl (not a run folder)")
    if placebo is not None:
        check_eval_placebo(run_dir, placebo)
    metrics = reevaluate(run_dir, reparse=reparse, skip_bad=skip_bad_lines)
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


def check_eval_placebo(run_dir: Path, placebo: int) -> None:
    """`eval --placebo` needs a labelling run made by an LLM (checked before anything loads)."""
    from llmscisci.errors import UserError
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.placebo import check_placebo, check_placebo_options

    check_placebo(placebo)
    cfg = RunFolder(run_dir).config
    if cfg.get("kind", "label") != "label" or "codebook" not in cfg:
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


def _resume_label(run_dir, *, cache=None, no_cache=False, prices=None, base_url=None) -> None:
    label(None, resume=run_dir, cache=cache, no_cache=no_cache, prices=prices, base_url=base_url)


def register(app: typer.Typer) -> None:
    RESUMERS["label"] = _resume_label  # `llmscisci batch collect/import` resumes label runs through this
    app.command("label")(label)
    app.command("eval")(eval_cmd)
