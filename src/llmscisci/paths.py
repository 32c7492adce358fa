"""Where things live: the data directory (the bundled dataset by default) and the user cache directory;
reading a user's TOML file."""

from __future__ import annotations

import atexit
import contextlib
import os
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path

from llmscisci.errors import UserError

DATA_ENV = "LLMSCISCI_DATA"
BUNDLED = "bundled"  # the name a run records (and --data-dir accepts) for the dataset inside the package


@cache
def bundled_data_dir() -> Path:
    """The dataset that ships inside the package (llmscisci/data/bundled), found through importlib.resources.

    From a zipped install it is extracted once to a temporary folder, removed at exit.
    """
    ref = resources.files("llmscisci").joinpath("data", BUNDLED)
    if isinstance(ref, Path):
        return ref
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    return Path(stack.enter_context(resources.as_file(ref)))


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve the data directory: explicit option, else $LLMSCISCI_DATA, else the bundled dataset.

    `bundled` (as an option value or as a run's recorded data source) names the bundled dataset."""
    raw = explicit or os.environ.get(DATA_ENV)
    if not raw or str(raw) == BUNDLED:
        return bundled_data_dir()
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise UserError(f"data directory {path} does not exist or is not a folder")
    return path


def data_label(path: str | os.PathLike | None) -> str:
    """How results name a data folder: `bundled` for the packaged dataset, else the path as given."""
    if path is None or str(path) == "":
        return ""
    p = Path(path)
    try:
        if p.resolve() == bundled_data_dir().resolve():
            return BUNDLED
    except OSError:
        pass
    return str(path)


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/llmscisci, else ~/.cache/llmscisci (created on demand)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "llmscisci"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_toml(path: str | os.PathLike, what: str) -> dict:
    """A user's TOML file (config, grid, price table) as a dict; a missing, unreadable or malformed
    file is a one-line UserError naming `what` and the path."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{what} {p}: file not found")
    try:
        return tomllib.loads(p.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{what} {p}: invalid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} {p}: cannot read ({exc})") from None


def check_output_path(path: str | os.PathLike, kind: str = "folder", flag: str = "--out") -> Path:
    """Check, before any work starts, that `path` can be written: a `file` (an existing folder is
    refused) or a `folder` (created if missing; an existing file is refused), whose nearest existing
    ancestor is a folder this process can create files in (tried with a probe file, removed at once:
    permission bits say nothing about read-only mounts or root). A one-line UserError naming the path
    otherwise. Returns the path."""
    import tempfile

    if kind not in ("file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder', not {kind!r}")
    p = Path(path).expanduser()
    if p.is_dir():
        if kind == "file":
            raise UserError(f"{flag} {p}: is a folder; give the name of the file to write")
        where = p
    elif p.exists() or p.is_symlink():
        if kind == "folder":
            raise UserError(f"{flag} {p}: is a file, not a folder")
        where = p.parent
    else:
        where = p.parent
    while not where.exists() and where != where.parent:  # the nearest existing ancestor
        where = where.parent
    if not where.is_dir():
        raise UserError(f"{flag} {p}: {where} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".llmscisci-probe-", dir=where)
    except OSError as exc:
        raise UserError(f"{flag} {p}: cannot write in {where} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)
    return p
