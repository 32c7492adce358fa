"""The one copy of extraction behind `llmscisci extract` and `ls.extract(...)`: the option checks (done
before anything heavy loads), the pages (a folder stands for its HTML files) read and split into records,
the plan of a dry run, and the runner, one run folder per page. Each face turns the `Extracted` results
into what it shows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmscisci.errors import UserError


@dataclass
class Extracted:
    """One page's outcome: a finished run (`run`, `metrics`) or request rows written for a batch file
    (`pending`, the BatchPending)."""

    page: str
    run: Any = None
    metrics: dict | None = None
    pending: Any = None


def expand_pages(pages: list[str]) -> list[str]:
    """Pages as given; a folder stands for its *.html and *.htm files (sorted)."""
    found = []
    for p in pages:
        path = Path(p)
        if not p.startswith(("http://", "https://")) and path.is_dir():
            inside = sorted(q for q in path.iterdir()
                            if q.suffix.lower() in (".html", ".htm") and q.is_file())
            if not inside:
                raise UserError(f"{path}: a folder without .html or .htm pages")
            found += [str(q) for q in inside]
        else:
            found.append(p)
    return found


def check_extract_options(model: str, variant: str | None, unit: str, window: int, limit: int | None,
                          bins: int, max_new_tokens: int | None, batch) -> None:
    """Names and ranges, checked before any page, answer key or model is loaded (one-line errors)."""
    from llmscisci.prompts.extract import VARIANTS
    from llmscisci.tasks.extract.html import UNITS
    from llmscisci.tasks.extract.run import BASELINE

    is_baseline = model == BASELINE
    if is_baseline and batch is not None:
        raise UserError("--batch and --batch-file need a model, not the baseline")
    if not is_baseline and variant is None:
        raise UserError(f"--variant is required with a model: one of {', '.join(VARIANTS)}")
    if variant is not None and variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    if unit not in UNITS:
        raise UserError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    for name, value in (("--window", window), ("--limit", limit), ("--bins", bins),
                        ("--max-new-tokens", max_new_tokens)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1")


# the options a resumed run takes from its config.json: given with another value, they are refused
RESUMED = {"model": "--model", "variant": "--variant", "unit": "--unit", "window": "--window",
           "limit": "--limit", "max_new_tokens": "--max-new-tokens", "temperature": "--temperature",
           "seed": "--seed", "bins": "--bins"}


def extract_runs(pages: list[str], *, model: str, opts, variant: str | None = None, unit: str = "block",
                 window: int = 3, limit: int | None = None, bib=None, data_dir=None, out_dir="runs",
                 run_dir=None, max_new_tokens: int | None = None, temperature: float = 0.0, seed: int = 2025,
                 bins: int = 5, fetch_timeout: float = 30.0, batch=None, dry_run: bool = False,
                 progress: bool = True, given: dict | None = None):
    """Extract (or plan, `dry_run`) every page of `pages` (files, folders, URLs): one `Extracted` per page,
    in order, or the dry run's plan. `opts` are the backend options (BackendOptions), `batch` the
    BatchOptions or None. `run_dir`: a run folder to continue on its own page (or the one page given),
    with its own options and answer key; `given` names the options the user gave (a resumed run refuses
    another value of them; None: every option counts as given)."""
    from llmscisci.backends.base import GenParams
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.tasks.extract.html import split_blocks
    from llmscisci.tasks.extract.run import ExtractSpec, default_max_new_tokens
    from llmscisci.tasks.extract.source import read_page
    from llmscisci.tasks.extract.truth import load_truth
    from llmscisci.tasks.kinds.extract import check_same_page

    if not pages and run_dir is None:
        raise UserError("give a page: an HTML file, a folder of them or a URL (or --resume RUN_DIR)")
    cfg = None
    if run_dir is not None:
        asked = dict(model=model, variant=variant, unit=unit, window=window, limit=limit,
                     max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, bins=bins)
        spec, cfg = resumed_spec(run_dir, asked if given is None else given)
        check_extract_options(spec.model, None if spec.is_baseline else spec.variant, spec.unit, spec.window,
                              spec.limit, spec.bins, spec.params.max_new_tokens, batch)
        pages = list(pages or []) or [cfg["source"]]
    else:
        check_extract_options(model, variant, unit, window, limit, bins, max_new_tokens, batch)
        params = GenParams(max_new_tokens=max_new_tokens or default_max_new_tokens(unit, window),
                           temperature=temperature, seed=seed)
        spec = ExtractSpec(variant=variant or "structured", model=model, unit=unit, window=window,
                           limit=limit, params=params, bins=bins)
    page_list = expand_pages([str(p) for p in pages])
    if run_dir is not None and len(page_list) > 1:
        raise UserError("--resume continues one page's run: give one page")
    if batch is not None and batch.file is not None and len(page_list) > 1:
        raise UserError("--batch-file writes one run's requests: give one page")
    if bib is not None:
        bib_path = Path(bib)
    elif cfg is not None:  # a resumed run keeps its answer key
        bib_path = Path(cfg["bib"])
    else:
        bib_path = resolve_data_dir(data_dir) / "rescience" / "published.bib"
    truth = load_truth(bib_path)
    sources = []
    for page in page_list:
        src = read_page(page, timeout=fetch_timeout)
        if cfg is not None:  # before the model loads
            check_same_page(cfg, src, run_dir)
        sources.append((src, split_blocks(src.text, src.origin)))  # a page without records fails here
    if dry_run:
        return _plan(spec, sources, opts)
    from llmscisci.paths import check_output_path

    check_output_path(run_dir if run_dir is not None else out_dir, "folder")  # before the model loads
    return _run(spec, sources, truth, opts, batch, out_dir, run_dir, progress)


def _plan(spec, sources: list, opts):
    """A dry run's plan over every page's units (calls, the first prompt, tokens, cost or ETA)."""
    from llmscisci.prompts import extract as extract_prompts
    from llmscisci.tasks.extract.run import BASELINE, decoding_schema, plan_units
    from llmscisci.tasks.label_plan import plan_conversations

    units = [u for src, blocks in sources for u in plan_units(spec, src, None, blocks)[0]]
    convs = (extract_prompts.build_messages(u.text, spec.variant) for u in units)
    schema = decoding_schema(max(u.expected_records for u in units)) if (
        spec.model != BASELINE and extract_prompts.is_structured(spec.variant) and units) else None
    return plan_conversations(spec.model, convs, spec.params, opts, schema,
                              what=f"units ({len(sources)} page(s))")


def resumed_spec(run_dir, given: dict):
    """The spec and config.json of the extraction run folder `run_dir`; an option given (`given`: name ->
    value, names of RESUMED) with another value than the run's is refused."""
    from llmscisci.tasks.extract.run import ExtractSpec
    from llmscisci.tasks.registry import get

    cfg = get("extract").resumed_config(run_dir)
    stored = ExtractSpec.from_config(cfg)
    have = {"model": stored.model, "variant": None if stored.is_baseline else stored.variant,
            "unit": stored.unit, "window": stored.window, "limit": stored.limit,
            "max_new_tokens": stored.params.max_new_tokens,
            "temperature": stored.params.temperature, "seed": stored.params.seed, "bins": stored.bins}
    for name, value in given.items():
        if name in RESUMED and value is not None and value != have[name]:
            raise UserError(f"--resume keeps the run's configuration: {RESUMED[name]} {value} differs from "
                            f"the run's {have[name]!r}; drop {RESUMED[name]} or start a new run")
    return stored, cfg


def _run(spec, sources: list, truth, opts, batch, out_dir, run_dir, progress: bool) -> list[Extracted]:
    """One run folder per page, with the baseline and (unless `spec.model` is the baseline) the model; a
    resumed run (`run_dir`) continues through the extract kind."""
    from llmscisci.api.options import load_run_backend
    from llmscisci.backends.batch import BatchPending
    from llmscisci.tasks.extract.run import BASELINE, run_extract
    from llmscisci.tasks.registry import get

    backend = None if spec.model == BASELINE else load_run_backend(spec.model, opts, batch)
    done = []
    for src, blocks in sources:
        try:
            if run_dir is not None:
                run = get("extract").resume(run_dir, backend, show_progress=progress, page=src, truth=truth,
                                            blocks=blocks)
            else:
                run = run_extract(spec, src, truth, backend, out_dir, run_dir=run_dir, show_progress=progress,
                                  blocks=blocks)
        except BatchPending as exc:  # --batch-file: the request rows are written, nothing to score yet
            done.append(Extracted(str(src), pending=exc))
            continue
        done.append(Extracted(str(src), run=run, metrics=run.metrics()))
    return done
