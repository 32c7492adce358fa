"""The registry of task kinds: name -> the class that implements the contract in `tasks/base.py`.

The grid, `llmscisci eval`, `llmscisci report` and the CLI reach a kind only through here. A kind is
one module plus one line in `KINDS` (or `register`, for a kind that lives outside the package):

    KINDS = {..., "echo": "mypackage.echo:Echo"}

    @register("echo")
    class Echo(TaskKind): ...

API providers (backends/registry.py) and rewards (rewards/registry.py) register the same way.

Kinds load when first asked for, so importing the registry pulls in no runner (nor torch).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from llmscisci.errors import UserError
from llmscisci.tasks.base import TaskKind

# name -> "module:Class"; the order is the order of the kinds in a grid built from the same codebook
KINDS: dict[str, str] = {
    "label": "llmscisci.tasks.kinds.label:Label",
    "baseline": "llmscisci.tasks.kinds.baseline:Baseline",
    "judge": "llmscisci.tasks.kinds.judge:Judge",
    "extract": "llmscisci.tasks.kinds.extract:Extract",
}
# run folders written before config.json named its kind are labelling runs
DEFAULT_KIND = "label"

_loaded: dict[str, TaskKind] = {}


def register(name: str, target: str | type[TaskKind] | None = None):
    """Add (or replace) a kind: `register(name, "module:Class")`, `register(name, Class)`, or as a
    decorator on the class (`@register(name)`), which it returns unchanged."""

    def add(t: str | type[TaskKind]):
        KINDS[name] = t if isinstance(t, str) else f"{t.__module__}:{t.__qualname__}"
        _loaded.pop(name, None)
        if not isinstance(t, str):
            _loaded[name] = _check(name, t())
        return t

    return add if target is None else add(target)


def _check(name: str, kind: TaskKind) -> TaskKind:
    if not isinstance(kind, TaskKind) or kind.name != name:
        raise TypeError(f"task kind {name!r}: {kind!r} is not a TaskKind named {name!r}")
    _tell_report(kind)
    return kind


def _tell_report(kind: TaskKind) -> None:
    """`llmscisci report` reads a run folder by its declared kind; it learns the kinds from here."""
    from llmscisci.report import collect

    collect.declare_kind(kind.name, label_like=kind.label_like, note=kind.report_note)


def get(name: str) -> TaskKind:
    """The kind registered under `name` (a UserError names the known ones otherwise)."""
    if name not in _loaded:
        target = KINDS.get(name)
        if target is None:
            raise UserError(f"unknown task kind {name!r} (known: {', '.join(KINDS)})")
        module, _, cls = target.partition(":")
        _loaded[name] = _check(name, getattr(importlib.import_module(module), cls)())
    return _loaded[name]


def kinds() -> list[TaskKind]:
    """Every registered kind, in registry order."""
    return [get(n) for n in list(KINDS)]


def is_grid_task(name: str) -> bool:
    """Whether a grid `tasks` entry names a task kind (extract, judge) rather than a codebook."""
    return name in KINDS and get(name).grid_task


def declared(config: dict) -> TaskKind | None:
    """The kind a run folder declares in config.json (old folders without one: label); None for a kind
    not registered here."""
    name = str(config.get("kind") or DEFAULT_KIND)
    return get(name) if name in KINDS else None


def declares(config: dict, name: str) -> bool:
    """Whether a run folder's config.json declares the kind `name` (a runner checking a folder is its own)."""
    kind = declared(config)
    return kind is not None and kind.name == name


def holds_llm_labels(config: dict) -> bool:
    """Whether a run folder holds a language model's labels per item, with their codebook (a labelling
    kind that needs a model): what the placebo check asks again and distillation learns from."""
    kind = declared(config)
    return kind is not None and kind.label_like and kind.needs_model and "codebook" in config


def of_run(config: dict) -> TaskKind:
    """The kind a run folder declares in config.json; old folders without one, and kinds not registered
    here, are read as labelling runs (which need a codebook in config.json)."""
    name = str(config.get("kind") or DEFAULT_KIND)
    return get(name if name in KINDS else DEFAULT_KIND)


def reevaluate(run_dir: str | Path, reparse: bool = False, skip_bad: bool = False) -> dict:
    """`llmscisci eval`: recompute a run's metrics from its predictions, by the kind it declares.

    The run folder is locked meanwhile; an unreadable predictions line other than a torn last one is an
    error unless `skip_bad` (each kind checks before anything is rewritten)."""
    from llmscisci.runs import RunFolder

    run = RunFolder(run_dir)
    kind = of_run(run.config)
    with run.writing():
        return kind.reevaluate(run_dir, reparse=reparse, skip_bad=skip_bad)


def check_predictions(run_dir: str | Path, skip_bad: bool = False) -> None:
    """Refuse a damaged predictions file (an unreadable line other than a torn last one) unless
    `skip_bad`: one pass, bounded memory, before anything is rewritten."""
    from llmscisci.runs import RunFolder, iter_jsonl

    for _ in iter_jsonl(RunFolder(run_dir).predictions_path, skip_bad=skip_bad):
        pass
