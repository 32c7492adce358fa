"""`llmscisci label` (study 1 labelling run) and `llmscisci eval` (recompute a run's metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.common import DataDirOpt, ModelOpt, OutOpt, StructuredModeOpt, console, out


def backend_options(
    batch_size: int = 8, device: str = "auto", dtype: str = "auto", chat_template: str | None = None,
    trust_remote_code: bool = False, base_url: str | None = None, concurrency: int = 8,
    rpm: float | None = None, tpm: float | None = None, timeout: float = 60.0, max_attempts: int = 6,
    cache: Path | None = None, no_cache: bool = False, refresh: bool = False, prices: Path | None = None,
    gemini_safety_off: bool = False, structured_mode: str = "auto",
):
    from llmscisci.backends.base import BackendOptions
    from llmscisci.backends.structured import check_mode
    from llmscisci.errors import UserError

    if batch_size < 1 or concurrency < 1:
        raise UserError("--batch-size and --concurrency must be at least 1")
    if chat_template not in (None, "llama3", "gemma"):
        raise UserError(f"unknown --chat-template {chat_template!r}: use llama3 or gemma")
    check_mode(structured_mode)
    return BackendOptions(
        device=device, dtype=dtype, batch_size=batch_size, chat_template=chat_template,
        trust_remote_code=trust_remote_code, base_url=base_url, concurrency=concurrency, rpm=rpm, tpm=tpm,
        timeout=timeout, max_attempts=max_attempts, cache_path=str(cache) if cache else None,
        use_cache=not no_cache, refresh=refresh, prices_path=str(prices) if prices else None,
        gemini_safety_off=gemini_safety_off, structured_mode=structured_mode,
    )


def label(
    task: Annotated[str, typer.Option("--task", help="easy, difficult, a codebook .toml, or several joined by commas.")] = "easy,difficult",
    variant: Annotated[str, typer.Option("--variant", help="icl | guidelines | structured")] = "structured",
    model: ModelOpt = "smollm2-135m",
    limit: Annotated[Optional[int], typer.Option("--limit", help="Label only the first N items.")] = None,
    split: Annotated[str, typer.Option("--split", help="all | train | test (canonical DOI-grouped split)")] = "all",
    shots: Annotated[int, typer.Option("--shots", help="k in-context examples drawn from the train split.")] = 0,
    data_dir: DataDirOpt = None,
    input_csv: Annotated[Optional[Path], typer.Option("--input", help="Your own CSV (doi or id column + the codebook's text column).")] = None,
    out_dir: OutOpt = Path("runs"),
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue this run folder (skips finished items).")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens")] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 2025,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Local models: prompts per batch.")] = 8,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda | mps")] = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="auto | float32 | bfloat16 | float16")] = "auto",
    chat_template: Annotated[Optional[str], typer.Option("--chat-template", help="Override: llama3 | gemma")] = None,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code")] = False,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="API models: requests in flight.")] = 8,
    rpm: Annotated[Optional[float], typer.Option("--rpm", help="API rate limit, requests per minute.")] = None,
    tpm: Annotated[Optional[float], typer.Option("--tpm", help="API rate limit, tokens per minute.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="API request timeout, seconds.")] = 60.0,
    max_attempts: Annotated[int, typer.Option("--max-attempts", help="API attempts per item.")] = 6,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="API response cache file.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Ignore cached answers, store fresh ones.")] = False,
    prices: Annotated[Optional[Path], typer.Option("--prices", help="Price table TOML overriding the built-in one.")] = None,
    gemini_safety_off: Annotated[bool, typer.Option("--gemini-safety-off", help="Seed's Gemini safety settings (block none).")] = False,
    structured_mode: StructuredModeOpt = "auto",
) -> None:
    """Label texts with an LLM under one of three prompt variants; write a run folder with metrics."""
    from llmscisci.backends.base import GenParams
    from llmscisci.backends.registry import load_backend
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.errors import UserError
    from llmscisci.metrics.evaluate import format_table
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.prompts.label import check_variant
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.label import DEFAULT_MAX_NEW_TOKENS, LabelSpec, run_label

    check_variant(variant)
    from llmscisci.backends.structured import check_mode

    check_mode(structured_mode)
    paraphrase = 0
    if resume is not None:
        cfg = RunFolder(resume).config
        source_book = cfg["codebook"].get("source", "builtin")
        task = cfg["task"] if source_book == "builtin" else source_book
        variant, model = cfg["variant"], cfg["model"]
        limit, split, shots = cfg.get("limit"), cfg.get("split_filter", "all"), cfg.get("shots", 0)
        p = cfg["params"]
        max_new_tokens, temperature, seed = p["max_new_tokens"], p["temperature"], p["seed"]
        paraphrase = int(cfg.get("paraphrase") or 0)
        if data_dir is None and input_csv is None:
            src = Path(cfg.get("data_source", ""))
            input_csv, data_dir = (src, None) if src.is_file() else (None, src)
    codebooks = [load_codebook(t.strip()) for t in task.split(",") if t.strip()]
    if not codebooks:
        raise UserError("--task is empty")
    if input_csv is not None:
        source = str(input_csv)
        if not input_csv.is_file():
            raise UserError(f"--input {input_csv}: file not found")
    else:
        source = str(resolve_data_dir(data_dir))
    loaded = [(cb, load_items(cb, data_dir=None if input_csv else source, input_csv=input_csv)) for cb in codebooks]
    opts = backend_options(batch_size, device, dtype, chat_template, trust_remote_code, base_url, concurrency,
                           rpm, tpm, timeout, max_attempts, cache, no_cache, refresh, prices, gemini_safety_off,
                           structured_mode)
    backend = load_backend(model, opts)
    params = GenParams(max_new_tokens=max_new_tokens or DEFAULT_MAX_NEW_TOKENS.get(variant, 64),
                       temperature=temperature, seed=seed)
    for cb, items in loaded:
        spec = LabelSpec(codebook=cb, variant=variant, model=model, params=params, shots=shots, limit=limit,
                         split=split, data_source=source, paraphrase=paraphrase)
        run = run_label(spec, items, backend, out_dir, run_dir=resume)
        metrics = run.metrics()
        out.print(format_table(metrics))
        out.print(f"run folder: {run.path}")


def eval_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder with config.json and predictions.jsonl.")],
    reparse: Annotated[bool, typer.Option("--reparse", help="Parse the raw outputs again with the current parser.")] = False,
) -> None:
    """Recompute a run's metrics from its predictions (label, SFT/DPO/GRPO evaluation runs)."""
    from llmscisci.errors import UserError
    from llmscisci.metrics.evaluate import format_table
    from llmscisci.tasks.label import reevaluate

    if not (run_dir / "predictions.jsonl").is_file():
        raise UserError(f"{run_dir}: no predictions.jsonl (not a run folder)")
    metrics = reevaluate(run_dir, reparse=reparse)
    if "all" in metrics:
        out.print(format_table(metrics))
    else:  # a judge run's audit, an extraction run's scores
        import json

        out.print_json(json.dumps(metrics.get("audit", metrics), default=str))
    console.print(f"metrics written to {run_dir / 'metrics.json'}")


def register(app: typer.Typer) -> None:
    app.command("label")(label)
    app.command("eval")(eval_cmd)
