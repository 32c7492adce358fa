"""Experiment grids: one TOML file -> tasks x models x prompt variants (x paraphrases x seeds) -> run folders.

A grid is data (`GridSpec`, read from TOML). `expand` turns it into cells; `plan` reads the inputs,
computes every cell's configuration hash and looks in the output folder for run folders that already
hold it (finished: metrics.json and every item done; partial: a killed run); `run_grid` runs what is
left, loading each model's backend once for all its cells, and keeps `grid.json` up to date.

Every cell is a normal run folder written by its task's own run function (`run_label`, `run_judge`,
`run_extract`, `run_baseline`) directly below the grid's output folder, so `llmscisci eval`,
`llmscisci report` and resuming work on a cell exactly as on a run made by hand. A cell killed mid-way
resumes item by item (the task appends predictions as they come).

Cell kinds:
* label     one labelling codebook x model x variant x paraphrase x seed;
* baseline  one labelling codebook x `baseline:METHOD` x seed (no prompt: variants do not apply);
* extract   bibliographic extraction from the data folder's ReScience page x model x variant x seed;
* judge     one codebook x judge model x variant x seed; the candidates are label files (by default
            the three annotator files of the data folder) or this grid's own label cells
            (`grid:MODEL/VARIANT`), which then run first.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmscisci.backends.base import BackendOptions, GenParams
from llmscisci.data.codebook import BUILTIN, Codebook, load_codebook
from llmscisci.data.items import Item
from llmscisci.errors import UserError
from llmscisci.paths import read_toml
from llmscisci.runs import RunFolder, write_json

GRID_FILE = "grid.json"
NON_LABEL_TASKS = ("extract", "judge")
ANNOTATORS = ("labels/annotator_a.jsonl", "labels/annotator_b.jsonl", "labels/annotator_c.jsonl")
GRID_REF = "grid:"
BASELINE_PREFIX = "baseline:"


# ---- the specification (TOML) ------------------------------------------------------------------------
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelEntry(_Section):
    """A model of the grid: a name (as `--model` takes it, or `baseline:METHOD`) and optional overrides."""

    name: str = Field(min_length=1)
    max_new_tokens: int | None = Field(default=None, ge=1)  # e.g. a larger budget for reasoning models
    batch: bool = False  # API models: the provider's batch API (about half the price, answers within 24 h)


class BackendSection(_Section):
    """Backend options shared by every model of the grid (the `label` command's options of the same names)."""

    batch_size: int = Field(default=8, ge=1)
    device: str = "auto"
    dtype: str = "auto"
    chat_template: Literal["llama3", "gemma"] | None = None
    trust_remote_code: bool = False
    base_url: str | None = None
    concurrency: int = Field(default=8, ge=1)
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    cache: str | None = None
    use_cache: bool = True
    refresh: bool = False
    prices: str | None = None
    gemini_safety_off: bool = False
    poll_interval: float = Field(default=60.0, ge=0)  # models with batch = true: seconds between checks
    batch_attempts: int = Field(default=2, ge=1)
    batch_fallback: Literal["none", "live"] = "none"
    structured_mode: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"

    def options(self) -> BackendOptions:
        return BackendOptions(
            device=self.device, dtype=self.dtype, batch_size=self.batch_size,
            chat_template=self.chat_template,
            trust_remote_code=self.trust_remote_code, base_url=self.base_url, concurrency=self.concurrency,
            rpm=self.rpm, tpm=self.tpm, timeout=self.timeout, max_attempts=self.max_attempts,
            cache_path=self.cache, use_cache=self.use_cache, refresh=self.refresh, prices_path=self.prices,
            gemini_safety_off=self.gemini_safety_off, structured_mode=self.structured_mode,
        )


class JudgeSection(_Section):
    tasks: list[str] = Field(default_factory=lambda: list(BUILTIN), min_length=1)  # codebooks judged
    candidates: list[str] = Field(default_factory=lambda: list(ANNOTATORS), min_length=2)
    orders: str = "cyclic"  # all | cyclic | N
    limit: int | None = Field(default=None, ge=1)
    max_new_tokens: int | None = Field(default=None, ge=1)

    @field_validator("orders", mode="before")
    @classmethod
    def _orders(cls, v):
        return str(v)


class ExtractSection(_Section):
    page: str = "rescience/read_index_2025-03-04.html"  # relative to the data folder, else to the cwd
    bib: str = "rescience/published.bib"
    unit: Literal["block", "window", "page"] = "block"
    window: int = Field(default=3, ge=1)
    limit: int | None = Field(default=None, ge=1)
    max_new_tokens: int | None = Field(default=None, ge=1)


class BaselineSection(_Section):
    folds: int = Field(default=5, ge=2)


class GridSpec(_Section):
    """A grid as data: see configs/grid_*.toml for annotated examples."""

    name: str = "grid"
    out: str = "runs/grid"
    data_dir: str | None = None
    tasks: list[str] = Field(min_length=1)  # easy, difficult, a codebook .toml, extract, judge
    variants: list[str] = Field(default_factory=lambda: ["icl", "guidelines", "structured"], min_length=1)
    models: list[ModelEntry] = Field(min_length=1)
    limit: int | None = Field(default=None, ge=1)
    split: Literal["all", "train", "test"] = "all"
    shots: int = Field(default=0, ge=0)
    seeds: list[int] = Field(default_factory=lambda: [2025], min_length=1)
    paraphrases: int = Field(default=0, ge=0)  # K: wordings 0 (original) .. K of each variant
    temperature: float = Field(default=0.0, ge=0)
    max_new_tokens: int | None = Field(default=None, ge=1)  # labelling; default per variant
    backend: BackendSection = Field(default_factory=BackendSection)
    judge: JudgeSection = Field(default_factory=JudgeSection)
    extract: ExtractSection = Field(default_factory=ExtractSection)
    baseline: BaselineSection = Field(default_factory=BaselineSection)

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, v):
        if isinstance(v, list):
            return [{"name": m} if isinstance(m, str) else m for m in v]
        return v

    @field_validator("tasks", "variants", "seeds", "models")
    @classmethod
    def _unique(cls, v):
        keys = [m.name if isinstance(m, ModelEntry) else m for m in v]
        dup = sorted({str(k) for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"listed twice: {', '.join(dup)}")
        return v


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {first['msg']}{more}"


def parse_grid(data: dict, source: str = "grid") -> GridSpec:
    try:
        return GridSpec.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{source}: {_validation_message(exc)}") from None


def load_grid(path: str | Path) -> GridSpec:
    return parse_grid(read_toml(path, "grid file"), str(path))


# ---- models -------------------------------------------------------------------------------------------
def model_kind(name: str) -> str:
    """baseline | api | local."""
    from llmscisci.backends.aliases import api_alias
    from llmscisci.backends.registry import split_provider

    if name.startswith(BASELINE_PREFIX):
        return "baseline"
    if split_provider(name)[0] is not None or api_alias(name) is not None:
        return "api"
    return "local"


def api_target(name: str) -> tuple[str, str]:
    """(provider, model) of an API model name or catalogue alias."""
    from llmscisci.backends.aliases import api_alias
    from llmscisci.backends.registry import split_provider

    provider, model = split_provider(name)
    if provider is None:
        provider, model = api_alias(name)
    return provider, model


def check_models(spec: GridSpec) -> None:
    """Every model name must be usable before anything runs (no model is loaded here)."""
    from llmscisci.tasks.baseline import METHODS

    for m in spec.models:
        kind = model_kind(m.name)
        if kind == "baseline":
            method = m.name[len(BASELINE_PREFIX):]
            if method not in METHODS:
                raise UserError(f"model {m.name!r}: unknown baseline method {method!r} (use one of "
                                f"{', '.join(METHODS)})")
        elif kind == "local":
            from llmscisci.backends.models import resolve_model

            resolve_model(m.name)
        if m.batch and kind != "api":
            raise UserError(f"model {m.name!r}: batch = true needs an API model (openai:, anthropic:, gemini:)")


def batch_models(spec: GridSpec) -> set[str]:
    return {m.name for m in spec.models if m.batch}


def load_model_backend(spec: GridSpec, model: str, options: BackendOptions):
    """The model's backend; wrapped in batch mode when its entry says batch = true."""
    from llmscisci.backends import registry

    if model not in batch_models(spec):
        return registry.load_backend(model, options)
    from llmscisci.backends.batch import BatchOptions, make_batch_backend

    b = spec.backend
    return make_batch_backend(model, options, BatchOptions(poll_interval=b.poll_interval, attempts=b.batch_attempts,
                                                           fallback=b.batch_fallback))


# ---- cells --------------------------------------------------------------------------------------------
@dataclass
class Cell:
    kind: str  # label | baseline | extract | judge
    task: str  # the codebook's task name, or "extract"
    model: str
    variant: str  # "-" for baselines
    seed: int
    paraphrase: int | None = None  # label cells only
    codebook: Codebook | None = None
    max_new_tokens: int | None = None  # the model entry's override
    deps: list[str] = field(default_factory=list)  # ids of label cells a judge cell reads
    refs: list[str] = field(default_factory=list)  # the judge's candidates as given (paths or grid: refs)
    # filled by plan() and run_grid()
    status: str = "pending"  # pending | partial | done | waiting | running | failed | blocked
    previous: str | None = None  # done | partial: what the output folder held before this run
    hash: str | None = None
    dir: str | None = None  # relative to the grid's output folder
    n_items: int = 0  # items (label), calls (judge: items x orders), units (extract)
    n_done: int = 0
    calls: int = 0  # model calls still to make
    tokens_in: int = 0  # estimated, for the calls still to make
    tokens_out: int = 0  # upper bound: max_new_tokens per call
    cost_usd: float | None = 0.0  # estimated; None: no price known
    seconds: float | None = None
    error: str | None = None
    headline: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        parts = [self.kind, self.task, self.model]
        if self.kind != "baseline":
            parts.append(self.variant)
        if self.paraphrase is not None:
            parts.append(f"p{self.paraphrase}")
        parts.append(f"s{self.seed}")
        return "/".join(parts)

    def entry(self) -> dict:
        """The cell's line in grid.json."""
        return {
            "id": self.id, "kind": self.kind, "task": self.task, "model": self.model, "variant": self.variant,
            "paraphrase": self.paraphrase, "seed": self.seed, "status": self.status,
            "previous": self.previous,
            "dir": self.dir, "hash": self.hash, "items": self.n_items, "done_before": self.n_done,
            "calls": self.calls, "estimated_tokens_in": self.tokens_in, "max_tokens_out": self.tokens_out,
            "estimated_cost_usd": self.cost_usd, "seconds": self.seconds, "depends_on": self.deps or None,
            "error": self.error, "headline": self.headline or None,
        }


@dataclass
class Grid:
    spec: GridSpec
    cells: list[Cell]
    notes: list[str] = field(default_factory=list)

    def cell(self, cid: str) -> Cell:
        for c in self.cells:
            if c.id == cid:
                return c
        raise KeyError(cid)


def _has_variant(kind: str, variant: str) -> bool:
    """Whether the task kind (label, judge, extract) has a prompt variant of that name."""
    import importlib

    module = importlib.import_module(f"llmscisci.prompts.{kind}")
    try:
        module.check_variant(variant)
    except UserError:
        return False
    return True


def expand(spec: GridSpec) -> Grid:
    """The grid's cells, in the order of the file (tasks, then models, variants, paraphrases, seeds)."""
    from llmscisci.prompts.label import paraphrases

    grid = Grid(spec, [])
    unknown = [v for v in spec.variants if not any(_has_variant(k, v) for k in ("label", "judge", "extract"))]
    if unknown:
        raise UserError(f"unknown variant {unknown[0]!r}: use icl, guidelines, structured "
                        "(or cot for labelling)")
    books: dict[str, Codebook] = {}
    for t in spec.tasks:
        if t not in NON_LABEL_TASKS:
            books[t] = load_codebook(t)
    judged = [load_codebook(t) for t in spec.judge.tasks] if "judge" in spec.tasks else []
    names = [cb.task for cb in [*books.values(), *judged]]
    clash = sorted({n for n in names if n in NON_LABEL_TASKS})
    if clash:
        raise UserError(f"codebook task name {clash[0]!r} clashes with the grid task of that name")
    missing_para: set[str] = set()
    skipped: set[tuple[str, str]] = set()

    def variants(kind: str) -> list[str]:
        out = []
        for v in spec.variants:
            if _has_variant(kind, v):
                out.append(v)
            else:
                skipped.add((kind, v))
        return out

    llms = [m for m in spec.models if model_kind(m.name) != "baseline"]
    baselines = [m for m in spec.models if model_kind(m.name) == "baseline"]
    label_cells: list[Cell] = []
    for t in spec.tasks:
        if t == "extract":
            for m in llms:
                for v in variants("extract"):
                    for s in spec.seeds:
                        grid.cells.append(Cell("extract", "extract", m.name, v, s,
                                               max_new_tokens=m.max_new_tokens))
        elif t == "judge":
            continue  # after the label cells it may read
        else:
            cb = books[t]
            for m in spec.models:
                if m in baselines:
                    for s in spec.seeds:
                        grid.cells.append(Cell("baseline", cb.task, m.name, "-", s, codebook=cb))
                    continue
                for v in variants("label"):
                    n_para = len(paraphrases(v))
                    if spec.paraphrases > n_para:
                        missing_para.add(f"{v} ({n_para})")
                    for p in range(min(spec.paraphrases, n_para) + 1):
                        for s in spec.seeds:
                            c = Cell("label", cb.task, m.name, v, s, paraphrase=p, codebook=cb,
                                     max_new_tokens=m.max_new_tokens)
                            grid.cells.append(c)
                            label_cells.append(c)
    if "judge" in spec.tasks:
        for cb in judged:
            for m in llms:
                for v in variants("judge"):
                    for s in spec.seeds:
                        c = Cell("judge", cb.task, m.name, v, s, codebook=cb, max_new_tokens=m.max_new_tokens,
                                 refs=list(spec.judge.candidates))
                        c.deps = [_grid_ref(ref, cb, s, label_cells, spec).id
                                  for ref in spec.judge.candidates if ref.startswith(GRID_REF)]
                        grid.cells.append(c)
    if missing_para:
        grid.notes.append(f"paraphrases = {spec.paraphrases}, but fewer wordings exist for: "
                          f"{', '.join(sorted(missing_para))}; those variants run every wording they have")
    for kind, v in sorted(skipped):
        grid.notes.append(f"variant {v!r} has no {kind} prompt: no {kind} cells for it")
    if not grid.cells:
        raise UserError("the grid has no cells (check tasks, models and variants)")
    seen: set[str] = set()
    dup = next((c.id for c in grid.cells if c.id in seen or seen.add(c.id)), None)
    if dup:
        raise UserError(f"two cells would both be {dup}: do two codebooks share a task name?")
    return grid


def _grid_ref(ref: str, cb: Codebook, seed: int, label_cells: list[Cell], spec: GridSpec) -> Cell:
    """The label cell `grid:MODEL/VARIANT` names, for codebook `cb` (original wording; the judge cell's seed
    if the grid has it, else the grid's first seed)."""
    body = ref[len(GRID_REF):]
    model, sep, variant = body.rpartition("/")
    if not sep or not model or not variant:
        raise UserError(f"judge candidate {ref!r}: write grid:MODEL/VARIANT")
    for s in (seed, spec.seeds[0]):
        for c in label_cells:
            if (c.task, c.model, c.variant, c.paraphrase, c.seed) == (cb.task, model, variant, 0, s):
                return c
    raise UserError(f"judge candidate {ref!r}: this grid has no label cell {model} / {variant} for task "
                    f"{cb.task!r} (add the task to `tasks`, the model to `models` and the variant to "
                    "`variants`)")


# ---- inputs and planning ------------------------------------------------------------------------------
class _Unloaded:
    """Stands in for a backend when only a run's configuration hash is wanted (hashes never include the
    backend's description)."""

    def describe(self) -> dict:
        return {}


def _find(path: str, data_dir: Path) -> Path:
    """A path from the grid file: relative to the data folder if it exists there, else as given."""
    p = Path(path).expanduser()
    if not p.is_absolute() and (data_dir / p).exists():
        return data_dir / p
    return p


@dataclass
class Inputs:
    """What the cells read: items per codebook, the extraction page and answer key, candidate label sets."""

    data_dir: Path
    out: Path
    items: dict[str, list[Item]] = field(default_factory=dict)
    page: object = None
    truth: object = None
    label_sets: dict[str, object] = field(default_factory=dict)

    def items_of(self, cb: Codebook) -> list[Item]:
        if cb.task not in self.items:
            from llmscisci.data.items import load_items

            self.items[cb.task] = load_items(cb, data_dir=self.data_dir)
        return self.items[cb.task]

    def page_and_truth(self, spec: GridSpec):
        if self.page is None:
            from llmscisci.tasks.extract.source import read_page
            from llmscisci.tasks.extract.truth import load_truth

            self.page = read_page(_find(spec.extract.page, self.data_dir))
            self.truth = load_truth(_find(spec.extract.bib, self.data_dir))
        return self.page, self.truth

    def label_set(self, path: Path, books: dict[str, Codebook], name: str | None = None):
        key = f"{path}|{name}"
        if key not in self.label_sets:
            from llmscisci.data.labelfiles import load_labels

            self.label_sets[key] = load_labels(path, books, name=name)
        return self.label_sets[key]


def _index(out: Path) -> dict[str, Path]:
    """hash -> run folder, for the run folders directly below the grid's output folder."""
    found: dict[str, Path] = {}
    if not out.is_dir():
        return found
    for d in sorted(out.iterdir()):
        cfg_path = d / "config.json"
        if not cfg_path.is_file():
            continue
        try:
            cfg = json.loads(cfg_path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(cfg, dict) and cfg.get("hash"):
            found.setdefault(str(cfg["hash"]), d)
    return found


def label_params(spec: GridSpec, cell: Cell) -> GenParams:
    from llmscisci.tasks.label import DEFAULT_MAX_NEW_TOKENS

    mnt = cell.max_new_tokens or spec.max_new_tokens or DEFAULT_MAX_NEW_TOKENS.get(cell.variant, 64)
    return GenParams(max_new_tokens=mnt, temperature=spec.temperature, seed=cell.seed)


def label_spec(spec: GridSpec, cell: Cell, inputs: Inputs):
    from llmscisci.tasks.label import LabelSpec

    return LabelSpec(codebook=cell.codebook, variant=cell.variant, model=cell.model,
                     params=label_params(spec, cell), shots=spec.shots, limit=spec.limit, split=spec.split,
                     data_source=str(inputs.data_dir), paraphrase=cell.paraphrase or 0)


def judge_limit(spec: GridSpec) -> int | None:
    return spec.judge.limit or spec.limit


def extract_spec(spec: GridSpec, cell: Cell):
    from llmscisci.tasks.extract.run import ExtractSpec, default_max_new_tokens

    e = spec.extract
    mnt = cell.max_new_tokens or e.max_new_tokens or default_max_new_tokens(e.unit, e.window)
    return ExtractSpec(variant=cell.variant, model=cell.model, unit=e.unit, window=e.window,
                       limit=e.limit or spec.limit,
                       params=GenParams(max_new_tokens=mnt, temperature=spec.temperature, seed=cell.seed))


def _books(spec: GridSpec) -> dict[str, Codebook]:
    books = {t: load_codebook(t) for t in BUILTIN}
    for t in [*spec.tasks, *spec.judge.tasks]:
        if t not in NON_LABEL_TASKS:
            cb = load_codebook(t)
            books[cb.task] = cb
    return books


def judge_candidates(grid: Grid, cell: Cell, inputs: Inputs) -> list:
    """The judge cell's candidates: label files, and its grid label cells' run folders (finished)."""
    from llmscisci.tasks.judge import candidates_from_sets

    books = _books(grid.spec)
    sets, deps = [], iter(cell.deps)
    for ref in cell.refs:
        if ref.startswith(GRID_REF):
            dep = grid.cell(next(deps))
            if dep.status != "done" or not dep.dir:
                raise UserError(f"judge candidate {ref}: its label cell has not finished")
            sets.append(inputs.label_set(inputs.out / dep.dir, books, name=ref[len(GRID_REF):]))
        else:
            p = _find(ref, inputs.data_dir)
            if not p.exists():
                raise UserError(f"judge candidate {ref}: no such label file or run folder (relative paths "
                                f"are looked up in the data folder {inputs.data_dir}, then in the current "
                                "folder)")
            sets.append(inputs.label_set(p, books))
    return candidates_from_sets(sets, cell.task)


def judge_spec(spec: GridSpec, cell: Cell, n_candidates: int, inputs: Inputs):
    from llmscisci.tasks.judge import JudgeSpec, default_max_new_tokens

    mnt = (cell.max_new_tokens or spec.judge.max_new_tokens
           or default_max_new_tokens(cell.variant, n_candidates, cell.codebook.n))
    return JudgeSpec(codebook=cell.codebook, variant=cell.variant, model=cell.model,
                     params=GenParams(max_new_tokens=mnt, temperature=spec.temperature, seed=cell.seed),
                     orders=spec.judge.orders, limit=judge_limit(spec), split=spec.split,
                     data_source=str(inputs.data_dir))


class _Estimator:
    """Prompt tokens of the calls still to make (the backends' offline count: tiktoken if its file is
    cached, else characters / 4) and their cost from the price table (output at the max_new_tokens cap)."""

    def __init__(self, prices: str | None, batch: set[str] = frozenset()):
        self.prices = prices
        self.batch = batch  # models run through a batch API: priced at the batch rate
        self._price: dict[str, object] = {}
        self.unpriced: set[str] = set()

    def count(self, model: str, conversations: list[list[dict]]) -> int:
        from llmscisci.backends.tokens import count_messages

        api = model_kind(model) == "api"
        target = api_target(model)[1] if api else ""
        return sum(count_messages(msgs, target, use_tiktoken=api)[0] for msgs in conversations)

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> float | None:
        if model_kind(model) != "api":
            return 0.0
        if model not in self._price:
            from llmscisci.backends.pricing import lookup

            provider, name = api_target(model)
            self._price[model] = lookup(provider, name, self.prices)
        price = self._price[model]
        if price is None:
            cost = None
        elif model in self.batch:
            cost = price.batch_cost(tokens_in, tokens_out)
        else:
            cost = price.cost(tokens_in, tokens_out)
        if cost is None:
            self.unpriced.add(model)
        return cost

    def fill(self, cell: Cell, model: str, conversations: list[list[dict]], max_new_tokens: int) -> None:
        cell.calls = len(conversations)
        cell.tokens_in = self.count(model, conversations)
        cell.tokens_out = max_new_tokens * len(conversations)
        cell.cost_usd = self.cost(model, cell.tokens_in, cell.tokens_out) if conversations else 0.0


def _state(cell: Cell, run_dir: Path | None, n_done: int, out: Path) -> None:
    """Set a planned cell's status from what its run folder holds."""
    cell.n_done = n_done
    if run_dir is None:
        cell.status, cell.previous = "pending", None
        return
    cell.dir = str(run_dir.relative_to(out)) if run_dir.is_relative_to(out) else str(run_dir)
    finished = (run_dir / "metrics.json").is_file() and n_done >= cell.n_items
    cell.status = cell.previous = "done" if finished else "partial"


def plan(grid: Grid, inputs: Inputs, estimate: bool = True) -> Grid:
    """Work out every cell: its hash, what the output folder already holds, the calls left and (estimate)
    their tokens and cost. Reads the inputs; writes nothing and loads no model."""
    check_models(grid.spec)
    index = _index(inputs.out)
    est = _Estimator(grid.spec.backend.prices, batch_models(grid.spec))
    for cell in grid.cells:
        if cell.kind == "judge":
            continue  # after the label cells they may read
        {"label": _plan_label, "baseline": _plan_baseline, "extract": _plan_extract}[cell.kind](
            grid, cell, inputs, index, est if estimate else None)
    for cell in grid.cells:
        if cell.kind == "judge":
            _plan_judge(grid, cell, inputs, index, est if estimate else None)
    for model in sorted(est.unpriced):
        grid.notes.append(f"{model}: no row in the price table, cost unknown (add one with [backend] prices)")
    return grid


def _plan_label(grid: Grid, cell: Cell, inputs: Inputs, index: dict, est: _Estimator | None) -> None:
    from llmscisci.prompts import label as prompts
    from llmscisci.tasks.label import draw_shots, select_items

    spec = label_spec(grid.spec, cell, inputs)
    items = inputs.items_of(cell.codebook)
    selected = select_items(items, spec.split, spec.limit)
    shots = draw_shots(items, spec.codebook, spec.variant, spec.shots, spec.params.seed)
    train_ref = [list(it.labels) for it in items if it.split == "train" and it.labels is not None]
    cfg = spec.config(_Unloaded(), selected, shots, train_ref)
    cell.hash, cell.n_items = cfg["hash"], len(selected)
    run_dir = index.get(cell.hash)
    keys = {it.key for it in selected}
    done = (RunFolder(run_dir).done_keys() & keys) if run_dir else set()
    _state(cell, run_dir, len(done), inputs.out)
    pending = [it for it in selected if it.key not in done] if cell.status != "done" else []
    cell.calls = len(pending)
    if est is not None:
        convs = [prompts.build_messages(it.text, spec.codebook, spec.variant, shots, spec.paraphrase)
                 for it in pending]
        est.fill(cell, cell.model, convs, spec.params.max_new_tokens)


def _plan_baseline(grid: Grid, cell: Cell, inputs: Inputs, index: dict, est: _Estimator | None) -> None:
    items = [it for it in inputs.items_of(cell.codebook) if it.labels is not None]
    cell.n_items = len(items)
    method = cell.model[len(BASELINE_PREFIX):]
    want = {"kind": "baseline", "task": cell.codebook.task, "method": method, "seed": cell.seed,
            "folds": grid.spec.baseline.folds, "items": [it.doi for it in items]}
    run_dir = None
    for h, d in index.items():
        try:
            cfg = RunFolder(d).config
        except (UserError, ValueError, OSError):
            continue
        same = all(cfg.get(k) == v for k, v in want.items())
        if same and cfg.get("codebook") == cell.codebook.model_dump():
            run_dir, cell.hash = d, h
            break
    _state(cell, run_dir, cell.n_items if run_dir and (run_dir / "metrics.json").is_file() else 0, inputs.out)
    cell.calls, cell.tokens_in, cell.tokens_out, cell.cost_usd = 0, 0, 0, 0.0


def _plan_extract(grid: Grid, cell: Cell, inputs: Inputs, index: dict, est: _Estimator | None) -> None:
    from llmscisci.prompts import extract as prompts
    from llmscisci.tasks.extract.run import plan_units

    spec = extract_spec(grid.spec, cell)
    page, truth = inputs.page_and_truth(grid.spec)
    units, n_blocks = plan_units(spec, page, None)
    cell.n_items = len(units)
    run_dir = None
    if spec.unit != "page":  # page units depend on the model's context window: known only once loaded
        cfg = spec.config(page, truth, units, n_blocks, _Unloaded())
        cell.hash = cfg["hash"]
        run_dir = index.get(cell.hash)
    done = {u for (u, _t) in RunFolder(run_dir).done_keys()} if run_dir else set()
    _state(cell, run_dir, len(done & {u.id for u in units}), inputs.out)
    pending = [u for u in units if u.id not in done] if cell.status != "done" else []
    cell.calls = len(pending)
    if est is not None:
        est.fill(cell, cell.model, [prompts.build_messages(u.text, spec.variant) for u in pending],
                 spec.params.max_new_tokens)


def _plan_judge(grid: Grid, cell: Cell, inputs: Inputs, index: dict, est: _Estimator | None) -> None:
    from llmscisci.prompts import judge as prompts
    from llmscisci.tasks.judge import call_key, make_orders, predictions, prepare

    items = inputs.items_of(cell.codebook)
    k = len(cell.refs)
    ready = all(grid.cell(d).status == "done" for d in cell.deps)
    if not ready:  # its candidates do not exist yet: estimate from the items it will most likely judge
        selected = [it for it in items if it.labels is not None and (grid.spec.split == "all"
                                                                     or it.split == grid.spec.split)]
        limits = [x for x in (judge_limit(grid.spec), grid.spec.limit) if x]
        selected = selected[:min(limits)] if limits else selected
        orders = make_orders(k, grid.spec.judge.orders, cell.seed)
        spec = judge_spec(grid.spec, cell, k, inputs)
        cell.status, cell.n_items, cell.n_done = "waiting", len(selected) * len(orders), 0
        shown = [[prompts.Shown(it.labels, None)] * k for it in selected]
        convs = [prompts.build_messages(it.text, it.labels, s, cell.codebook, cell.variant)
                 for it, s in zip(selected, shown) for _ in orders]
        cell.calls = len(convs)
        if est is not None:
            est.fill(cell, cell.model, convs, spec.params.max_new_tokens)
        return
    candidates = judge_candidates(grid, cell, inputs)
    spec = judge_spec(grid.spec, cell, len(candidates), inputs)
    selected, orders, skipped = prepare(spec, items, candidates)
    cfg = spec.config(_Unloaded(), selected, candidates, orders, skipped)
    cell.hash, cell.n_items = cfg["hash"], len(selected) * len(orders)
    run_dir = index.get(cell.hash)
    done = {call_key(r) for r in predictions(RunFolder(run_dir))} if run_dir else set()
    _state(cell, run_dir, len(done), inputs.out)
    convs = []
    if cell.status != "done":
        for it in selected:
            for order in orders:
                names = [candidates[i].name for i in order]
                if (it.doi, it.task, tuple(names)) in done:
                    continue
                recs = [candidates[i].records[it.doi] for i in order]
                shown = [prompts.Shown(r.labels, r.response) for r in recs]
                convs.append(prompts.build_messages(it.text, it.labels, shown, cell.codebook, cell.variant))
    cell.calls = len(convs)
    if est is not None:
        est.fill(cell, cell.model, convs, spec.params.max_new_tokens)


# ---- totals -------------------------------------------------------------------------------------------
@dataclass
class Totals:
    cells: int = 0
    done: int = 0
    partial: int = 0
    to_run: int = 0
    calls: int = 0
    api_calls: int = 0
    api_tokens_in: int = 0
    api_tokens_out: int = 0
    api_cost_usd: float | None = 0.0
    per_model: dict[str, dict] = field(default_factory=dict)


def totals(grid: Grid) -> Totals:
    t = Totals(cells=len(grid.cells))
    for c in grid.cells:
        t.done += c.status == "done"
        t.partial += c.status == "partial"
        t.to_run += c.status != "done"
        t.calls += c.calls
        m = t.per_model.setdefault(c.model, {"kind": model_kind(c.model), "cells": 0, "to_run": 0, "calls": 0,
                                             "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0})
        m["cells"] += 1
        m["to_run"] += c.status != "done"
        m["calls"] += c.calls
        m["tokens_in"] += c.tokens_in
        m["tokens_out"] += c.tokens_out
        if m["cost_usd"] is not None:
            m["cost_usd"] = None if c.cost_usd is None else m["cost_usd"] + c.cost_usd
        if model_kind(c.model) == "api":
            t.api_calls += c.calls
            t.api_tokens_in += c.tokens_in
            t.api_tokens_out += c.tokens_out
            if t.api_cost_usd is not None:
                t.api_cost_usd = None if c.cost_usd is None else t.api_cost_usd + c.cost_usd
    return t


# ---- running ------------------------------------------------------------------------------------------
def write_grid(grid: Grid, inputs: Inputs, config_path: str | None = None) -> Path:
    t = totals(grid)
    counts: dict[str, int] = {}
    for c in grid.cells:
        counts[c.status] = counts.get(c.status, 0) + 1
    doc = {
        "name": grid.spec.name,
        "config": config_path,
        "data_dir": str(inputs.data_dir),
        "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": counts,
        "estimate": {"calls": t.calls, "api_tokens_in": t.api_tokens_in,
                     "api_max_tokens_out": t.api_tokens_out, "api_cost_usd": t.api_cost_usd},
        "notes": grid.notes,
        "spec": grid.spec.model_dump(),
        "cells": [c.entry() for c in grid.cells],
    }
    path = inputs.out / GRID_FILE
    write_json(path, doc)
    return path


def _headline(cell: Cell, run: RunFolder) -> dict:
    m = run.metrics()
    if cell.kind in ("label", "baseline"):
        a = m.get("all") or {}
        h = {k: a.get(k) for k in ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")}
        h["invalid_rate"] = m.get("invalid_rate", 0.0)
        return h
    if cell.kind == "judge":
        s = ((m.get("audit") or {}).get("scores") or {}).get("exact_agreement")
        return {"valid_rate": m.get("valid_rate"),
                "exact_agreement": s.get("value") if isinstance(s, dict) else s}
    h = (m.get("headline") or {}).get("model") or {}
    return {k: h.get(k) for k in ("record.f1", "mean_field_accuracy", "valid_rate")}


def _one_line(exc: BaseException) -> str:
    """A failure as one line: a UserError's own message, else the exception's type and first line."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    if isinstance(exc, UserError):
        return first or "error"
    return f"{type(exc).__name__}: {first}"[:400]


def run_cell(grid: Grid, cell: Cell, backend, inputs: Inputs, show_progress: bool = True) -> RunFolder:
    """Run (or resume) one cell with an already loaded backend; return its run folder."""
    spec, out = grid.spec, inputs.out
    run_dir = out / cell.dir if cell.dir else None  # a partial run found by its hash: resume it in place
    if cell.kind == "label":
        from llmscisci.tasks.label import run_label

        return run_label(label_spec(spec, cell, inputs), inputs.items_of(cell.codebook), backend, out,
                         run_dir=run_dir, show_progress=show_progress)
    if cell.kind == "baseline":
        from llmscisci.paths import cache_dir
        from llmscisci.tasks.baseline import run_baseline

        method = cell.model[len(BASELINE_PREFIX):]
        return run_baseline(cell.codebook, inputs.items_of(cell.codebook), method, out, k=spec.baseline.folds,
                             seed=cell.seed, data_source=str(inputs.data_dir), cache_dir=cache_dir())
    if cell.kind == "extract":
        from llmscisci.tasks.extract.run import run_extract

        page, truth = inputs.page_and_truth(spec)
        return run_extract(extract_spec(spec, cell), page, truth, backend, out, run_dir=run_dir,
                           show_progress=show_progress)
    from llmscisci.tasks.judge import run_judge

    candidates = judge_candidates(grid, cell, inputs)
    return run_judge(judge_spec(spec, cell, len(candidates), inputs), inputs.items_of(cell.codebook),
                     candidates, backend, out, run_dir=run_dir, show_progress=show_progress)


def needs_model(cell: Cell) -> bool:
    """Whether running the cell needs its model: not for baselines, nor for a run folder that holds every
    answer but no metrics yet (killed while scoring): that one is only scored."""
    if cell.kind == "baseline":
        return False
    return not (cell.status == "partial" and cell.calls == 0 and cell.dir and cell.hash)


def finish_only(grid: Grid, cell: Cell, inputs: Inputs) -> RunFolder:
    """Score a run folder that holds every answer (see needs_model), without a model."""
    run = RunFolder(inputs.out / cell.dir)
    if cell.kind == "label":
        from llmscisci.tasks.label import finish_run

        finish_run(run, cell.codebook)
    elif cell.kind == "judge":
        from llmscisci.tasks.judge import finish_judge

        finish_judge(run, cell.codebook)
    else:
        from llmscisci.tasks.extract.run import finish_run as finish_extract

        finish_extract(run, inputs.page_and_truth(grid.spec)[1])
    return run


def _release(backend) -> None:
    del backend
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _schedule(grid: Grid) -> list[str]:
    """Models in the order of the file."""
    return [m.name for m in grid.spec.models]


def run_grid(grid: Grid, inputs: Inputs, *, config_path: str | None = None, fail_fast: bool = False,
             show_progress: bool = True) -> Grid:
    """Run every cell not yet finished (a planned grid), resuming partial ones; update grid.json as cells
    start and end. Each model's backend is loaded once, when its first cell is due, and released after
    its last; a failing cell is recorded (status failed, error) and the others go on, unless fail_fast."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    inputs.out.mkdir(parents=True, exist_ok=True)
    write_grid(grid, inputs, config_path)
    todo = [c for c in grid.cells if c.status != "done"]
    options = grid.spec.backend.options()
    backends: dict[str, object] = {}
    failed_models: dict[str, str] = {}

    def save() -> None:
        write_grid(grid, inputs, config_path)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with Progress(*columns, transient=False) as bar:
        tid = bar.add_task(f"grid {grid.spec.name}", total=len(todo), status="", visible=show_progress)
        n = {"done": 0, "failed": 0}

        def status(text: str) -> None:
            bar.update(tid, status=f"done {n['done']} failed {n['failed']} | {text}")

        def finish(cell: Cell, state: str, error: str | None = None) -> None:
            cell.status, cell.error = state, error
            n["done" if state == "done" else "failed"] += 1
            bar.update(tid, advance=1)
            save()

        while todo:
            progressed = False
            for model in _schedule(grid):
                for cell in [c for c in todo if c.model == model]:
                    deps = [grid.cell(d) for d in cell.deps]
                    bad = [d for d in deps if d.status in ("failed", "blocked")]
                    if bad:
                        todo.remove(cell)
                        progressed = True
                        finish(cell, "blocked", f"candidate cell {bad[0].id} {bad[0].status}")
                        continue
                    if any(d.status != "done" for d in deps):
                        continue  # waits for a label cell of a later model
                    todo.remove(cell)
                    progressed = True
                    if model in failed_models:
                        finish(cell, "failed", failed_models[model])
                        continue
                    backend = None
                    if needs_model(cell):
                        if model not in backends:
                            status(f"loading {model}")
                            try:
                                backends[model] = load_model_backend(grid.spec, model, options)
                            except Exception as exc:  # noqa: BLE001 - recorded; the other models go on
                                if fail_fast:
                                    save()
                                    raise
                                failed_models[model] = f"loading the model failed: {_one_line(exc)}"
                                finish(cell, "failed", failed_models[model])
                                continue
                        backend = backends[model]
                    status(cell.id)
                    cell.status, cell.error = "running", None
                    save()
                    t0 = time.perf_counter()
                    try:
                        if cell.kind == "judge" and cell.hash is None:
                            _plan_judge(grid, cell, inputs, _index(inputs.out), None)
                        if backend is None and cell.kind != "baseline":
                            run = finish_only(grid, cell, inputs)
                        else:
                            run = run_cell(grid, cell, backend, inputs, show_progress)
                    except KeyboardInterrupt:
                        cell.status, cell.error = "partial", "interrupted"
                        save()
                        raise
                    except Exception as exc:  # noqa: BLE001 - recorded; the other cells go on
                        cell.seconds = round(time.perf_counter() - t0, 3)
                        if fail_fast:
                            cell.status, cell.error = "failed", _one_line(exc)
                            save()
                            raise
                        finish(cell, "failed", _one_line(exc))
                        continue
                    cell.seconds = round(time.perf_counter() - t0, 3)
                    cell.dir = str(run.path.relative_to(inputs.out)) if run.path.is_relative_to(inputs.out) \
                        else str(run.path)
                    cell.hash = run.config.get("hash", cell.hash)
                    cell.headline = _headline(cell, run)
                    finish(cell, "done")
                if model in backends and not any(c.model == model for c in todo):
                    _release(backends.pop(model))
            if not progressed:  # only cells waiting on cells that cannot run remain
                for cell in list(todo):
                    todo.remove(cell)
                    finish(cell, "blocked", "its candidate label cells did not run")
        status("finished")
    for model in list(backends):
        _release(backends.pop(model))
    for cell in grid.cells:  # finished before this run: their results from their run folders
        if cell.status == "done" and not cell.headline and cell.dir:
            cell.headline = _headline(cell, RunFolder(inputs.out / cell.dir))
    save()
    return grid


def prepare_grid(spec: GridSpec, data_dir: str | Path | None = None, out: str | Path | None = None,
                 estimate: bool = True) -> tuple[Grid, Inputs]:
    """Expand and plan a grid (validating everything it needs) without writing anything."""
    from llmscisci.paths import data_dir as resolve_data_dir

    grid = expand(spec)
    inputs = Inputs(data_dir=resolve_data_dir(data_dir or spec.data_dir), out=Path(out or spec.out))
    if inputs.out.exists() and not inputs.out.is_dir():
        raise UserError(f"output folder {inputs.out} is a file")
    plan(grid, inputs, estimate=estimate)
    _carry_over(grid, inputs)
    return grid, inputs


def _carry_over(grid: Grid, inputs: Inputs) -> None:
    """Cells finished by an earlier run keep the time that run recorded for them in grid.json."""
    try:
        old = json.loads((inputs.out / GRID_FILE).read_text("utf-8"))
        entries = {e["id"]: e for e in old.get("cells", []) if isinstance(e, dict) and "id" in e}
    except (OSError, ValueError, AttributeError, TypeError):
        return
    for c in grid.cells:
        e = entries.get(c.id)
        if c.status == "done" and e and e.get("hash") == c.hash and e.get("dir") == c.dir:
            c.seconds = e.get("seconds")
