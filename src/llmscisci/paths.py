"""Where things live: the data directory and the user cache directory; reading a user's TOML file."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from llmscisci.errors import UserError

DATA_ENV = "LLMSCISCI_DATA"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve the data directory: explicit option, else $LLMSCISCI_DATA, else a clear error."""
    raw = explicit or os.environ.get(DATA_ENV)
    if not raw:
        raise UserError(
            f"no data directory given: pass --data-dir DIR or set {DATA_ENV}=DIR "
            "(a folder holding mlrc_reports.csv and labels/, e.g. ../shared/data)"
        )
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise UserError(f"data directory {path} does not exist or is not a folder")
    return path


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
