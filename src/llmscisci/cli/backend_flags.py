"""The backend flags, declared once: `@backend_flags` gives a command every field of
`BackendSettings` as an option (`--batch-size`, `--device`, ..., `--cache PATH`, `--no-cache`) and hands
the command one checked `BackendSettings` as its `backend` argument. Every command that loads a model
(label, judge, ask, extract, grpo build's teacher, dpo pairs) uses it; the grid's `[backend]` section is
the same model."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.backends.settings import BackendSettings

# fields whose flag is not simply --field-name
_FLAG = {"use_cache": "--no-cache"}
_PATHS = {"cache", "prices"}  # given as paths on the command line
PARAM = "backend"  # the argument the command receives


def _cli_type(field: str, annotation):
    """The type typer shows for a field: a Literal as str, X | None as Optional[X], paths as Path."""
    if field in _PATHS:
        return Optional[Path]
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return str
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return Optional[_cli_type(field, inner[0])]
    return annotation


def _parameters() -> list[inspect.Parameter]:
    params = []
    hints = typing.get_type_hints(BackendSettings)
    for name, info in BackendSettings.model_fields.items():
        if name in _FLAG:  # an inverted switch: --no-cache sets use_cache off
            opt = typer.Option(_FLAG[name], help=info.description, show_default=False)
            params.append(inspect.Parameter(f"no_{name.removeprefix('use_')}", inspect.Parameter.KEYWORD_ONLY,
                                            default=False, annotation=Annotated[bool, opt]))
            continue
        flag = "--" + name.replace("_", "-")
        opt = typer.Option(flag, help=info.description)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info.default,
                                        annotation=Annotated[_cli_type(name, hints[name]), opt]))
    return params


PARAMETERS = _parameters()
NAMES = [p.name for p in PARAMETERS]


def settings_from(values: dict) -> BackendSettings:
    """Checked settings from flag values (missing ones take their defaults)."""
    fields = {}
    for p in PARAMETERS:
        v = values.get(p.name, p.default)
        if p.name.startswith("no_") and p.name not in BackendSettings.model_fields:
            fields["use_" + p.name.removeprefix("no_")] = not v
        elif p.name in _PATHS:
            fields[p.name] = str(v) if v is not None else None
        else:
            fields[p.name] = v
    return BackendSettings.model_construct(**fields).check()


def backend_flags(command=None, **defaults):
    """Add the backend flags to a typer command; it receives `backend: BackendSettings` instead.
    `@backend_flags(batch_size=4)` changes a flag's default for this command."""
    if command is None:
        return functools.partial(backend_flags, **defaults)
    unknown = set(defaults) - set(NAMES)
    if unknown:
        raise TypeError(f"no backend flag {sorted(unknown)[0]!r}")
    params = [p.replace(default=defaults[p.name]) if p.name in defaults else p for p in PARAMETERS]
    sig = inspect.signature(command, eval_str=True)  # typer reads the annotations from the signature
    if PARAM not in sig.parameters:
        raise TypeError(f"{command.__name__} takes no {PARAM!r} argument")
    kept = [p for p in sig.parameters.values() if p.name != PARAM]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        values = {p.name: kwargs.pop(p.name, p.default) for p in params}
        kwargs[PARAM] = settings_from(values)
        return command(*args, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=kept + params)
    annotations = {k: v for k, v in getattr(command, "__annotations__", {}).items() if k != PARAM}
    wrapper.__annotations__ = {**annotations, **{p.name: p.annotation for p in params}}
    return wrapper
