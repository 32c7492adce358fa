"""The grid as data: `GridSpec`, read from a TOML file and validated by pydantic (annotated examples in
configs/grid_*.toml), the kinds of its models (baseline, api, local) and their backends."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmscisci.backends.base import BackendOptions
from llmscisci.backends.registry import resolve_model
from llmscisci.backends.settings import BackendSettings
from llmscisci.data.codebook import BUILTIN
from llmscisci.errors import UserError
from llmscisci.paths import read_toml

ANNOTATORS = ("labels/annotator_a.jsonl", "labels/annotator_b.jsonl", "labels/annotator_c.jsonl")
GRID_REF = "grid:"


# ---- the specification (TOML) ------------------------------------------------------------------------
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelEntry(_Section):
    """A model of the grid: a name (as `--model` takes it, or `baseline:METHOD`) and optional overrides."""

    name: str = Field(min_length=1)
    max_new_tokens: int | None = Field(default=None, ge=1)  # e.g. a larger budget for reasoning models
    batch: bool = False  # API models: the provider's batch API (about half the price, answers within 24 h)


class BackendSection(BackendSettings):
    """Backend options shared by every model of the grid: the same settings as the flags of the commands
    that load a model (llmscisci.backends.settings), plus batch mode's and the engine's (`engine = "ray"`:
    each model's calls on a pool of `workers` Ray actors, tasks/label_ray.py; not part of any run hash)."""

    poll_interval: float = Field(default=60.0, ge=0)  # models with batch = true: seconds between checks
    batch_attempts: int = Field(default=2, ge=1)
    batch_fallback: Literal["none", "live"] = "none"
    engine: Literal["local", "ray"] = "local"
    workers: int = Field(default=1, ge=1)  # engine = "ray": actors per model, each with its own backend
    ray_address: str | None = None  # engine = "ray": a running cluster (auto | HOST:PORT); default: start one


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
    tasks: list[str] = Field(min_length=1)  # easy, difficult, a codebook .toml, or a kind: extract, judge
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
        spec = GridSpec.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{source}: {_validation_message(exc)}") from None
    try:
        check_grid_engine(spec)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    return spec


def check_grid_engine(spec: GridSpec) -> None:
    """`[backend] engine = "ray"` sends each model's generation requests to a pool of Ray actors: refused
    (one line) where a cell would need more than generation: the score variant (yes/no log-odds, scored
    in the driver), models with batch = true (one provider batch) and extraction by whole pages (sized
    with the model's tokenizer)."""
    from llmscisci.prompts.label import templates
    from llmscisci.tasks.label_ray import check_engine

    b = spec.backend
    if b.engine == "local":
        if b.workers != 1 or b.ray_address:
            raise UserError('backend: workers and ray_address apply to engine = "ray"')
        return
    scoring = [v for v in spec.variants if templates().get(v, {}).get("scoring")]
    if scoring:
        raise UserError(f'backend: engine = "ray" sends generation requests: not with the {scoring[0]!r} variant '
                        "(it scores yes/no answers; run it with the local engine)")
    batch = sorted(batch_models(spec))
    if batch:
        raise UserError(f'backend: engine = "ray" sends live requests: model {batch[0]!r} has batch = true')
    if "extract" in spec.tasks and spec.extract.unit == "page":
        raise UserError('backend: engine = "ray" does not size whole pages (extract.unit = "page"): use block or '
                        "window units, or the local engine")
    check_engine(b.engine, b.workers, b.ray_address)


def load_grid(path: str | Path) -> GridSpec:
    return parse_grid(read_toml(path, "grid file"), str(path))


# ---- models (their kinds: backends.registry.resolve_model) -------------------------------------------
def check_models(spec: GridSpec) -> None:
    """Every model name must be usable before anything runs (no model is loaded here)."""
    from llmscisci.tasks.baseline import METHODS

    for m in spec.models:
        name = resolve_model(m.name)
        if name.is_baseline:
            if name.model not in METHODS:
                raise UserError(f"model {m.name!r}: unknown baseline method {name.model!r} (use one of "
                                f"{', '.join(METHODS)})")
        elif name.is_local:
            from llmscisci.backends.models import resolve_local_model

            resolve_local_model(m.name)
        if m.batch and not name.is_api:
            raise UserError(f"model {m.name!r}: batch = true needs an API model (openai:, anthropic:, gemini:)")


def batch_models(spec: GridSpec) -> set[str]:
    return {m.name for m in spec.models if m.batch}


def load_model_backend(spec: GridSpec, model: str, options: BackendOptions):
    """The model's backend; wrapped in batch mode when its entry says batch = true; a pool of Ray actors
    (RayPool, a Backend) under `engine = "ray"`."""
    from llmscisci.backends import registry

    b = spec.backend
    if b.engine == "ray":  # checked when the grid was read: no batch model under Ray
        from llmscisci.tasks.label_ray import RayPool

        return RayPool(model, options, workers=b.workers, address=b.ray_address)
    if model not in batch_models(spec):
        return registry.load_backend(model, options)
    from llmscisci.backends.batch import BatchOptions, make_batch_backend

    return make_batch_backend(model, options, BatchOptions(poll_interval=b.poll_interval, attempts=b.batch_attempts,
                                                           fallback=b.batch_fallback))
