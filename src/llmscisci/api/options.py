"""Keyword options of the Python API, named as the command line's flags: the backend settings
(`base_url`, `concurrency`, `structured_mode`, ..., `no_cache`: the fields of `BackendSettings`) and
batch mode (`batch`, `batch_file`, `batch_model`, `poll_interval`, `batch_attempts`, `batch_fallback`).
A wrong name or value is a one-line `UserError` naming the option, raised before anything loads."""

from __future__ import annotations

import contextlib
import difflib
from pathlib import Path

from llmscisci.backends.settings import BackendSettings
from llmscisci.errors import UserError

BATCH_NAMES = ("batch", "batch_file", "batch_model", "poll_interval", "batch_attempts", "batch_fallback")
BACKEND_NAMES = tuple(BackendSettings.model_fields) + ("no_cache",)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def unknown_option(name: str, known) -> UserError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UserError(f"unknown option {name!r}{hint}")


def split_options(options: dict, allowed=()) -> tuple[dict, dict, dict]:
    """(backend options, batch options, the others in `allowed`) of a call's extra keywords."""
    backend, batch, rest = {}, {}, {}
    for name, value in options.items():
        if name in BACKEND_NAMES:
            backend[name] = value
        elif name in BATCH_NAMES:
            batch[name] = value
        elif name in allowed:
            rest[name] = value
        else:
            raise unknown_option(name, (*BACKEND_NAMES, *BATCH_NAMES, *allowed))
    return backend, batch, rest


def backend_settings(options: dict) -> BackendSettings:
    """Checked settings from keyword options (the command line's flags, `no_cache` included)."""
    fields = dict(options)
    for name in list(fields):
        if name not in BACKEND_NAMES:
            raise unknown_option(name, BACKEND_NAMES)
    if "no_cache" in fields:
        no_cache = fields.pop("no_cache")
        if "use_cache" in fields and fields["use_cache"] == bool(no_cache):
            raise UserError("give no_cache or use_cache, not both")
        fields["use_cache"] = not no_cache
    for name in ("cache", "prices"):
        if isinstance(fields.get(name), Path):
            fields[name] = str(fields[name])
    from pydantic import ValidationError

    try:
        settings = BackendSettings.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "option"
        raise UserError(f"{_flag(name)} {fields.get(name)!r}: {err['msg']}") from None
    return settings.check()


def batch_options(batch: bool = False, batch_file=None, batch_model: str | None = None, poll_interval: float = 60.0,
                  batch_attempts: int = 2, batch_fallback: str = "none"):
    """BatchOptions for a task, or None for a live run (the same checks as the command line's)."""
    from llmscisci.backends.batch import BatchOptions

    if batch_model is not None and batch_file is None:
        raise UserError("--batch-model goes with --batch-file")
    if not batch and batch_file is None:
        return None
    opts = BatchOptions(poll_interval=poll_interval, attempts=batch_attempts, fallback=batch_fallback,
                        file=str(batch_file) if batch_file is not None else None, file_model=batch_model)
    opts.check()
    return opts


def load_run_backend(model: str, opts, batch):
    """The live backend, or (batch options given) the batch backend around it."""
    if batch is None:
        from llmscisci.backends.registry import load_backend

        return load_backend(model, opts)
    from llmscisci.backends.batch import make_batch_backend
    from llmscisci.console import console

    return make_batch_backend(model, opts, batch,
                              report=lambda line: console.print(line, highlight=False, markup=False))


@contextlib.contextmanager
def encoding(name: str | None):
    """The encoding of the user's files (`encoding="cp1252"`, as `--encoding`) for the duration of a call."""
    from llmscisci.data.textio import chosen_encoding, use_encoding

    before = chosen_encoding()
    use_encoding(name)  # an unknown name is a one-line error before anything loads
    try:
        yield
    finally:
        use_encoding(before)
