"""Reading a user's text file without ever changing it silently.

UTF-8 (with or without a byte-order mark) is the default. A file in another encoding is never
guessed: it is a one-line DataError naming the file, the line and column of the first byte that is
not UTF-8, and how to name the encoding explicitly (`--encoding cp1252`, `latin-1`, ...).

A command's `--encoding` option sets the encoding of the user files it reads for the rest of the
command (`use_encoding`); readers that are given no encoding use it, else UTF-8. Files the toolkit
wrote or ships (a run's predictions.jsonl, the bundled dataset) are always read as UTF-8.
"""

from __future__ import annotations

import codecs
import functools
import os
from contextvars import ContextVar
from pathlib import Path

from llmscisci.errors import DataError, UserError
from llmscisci.paths import bundled_data_dir

OWN_FILES = ("predictions.jsonl",)  # written by the toolkit, always UTF-8

DEFAULT = "utf-8"
HINT = "if the file is in another encoding, pass --encoding NAME (e.g. cp1252, latin-1)"


def check_encoding(encoding: str | None) -> str | None:
    """The codec name for an --encoding option (None stays None = UTF-8); an unknown name is a UserError."""
    if encoding is None or encoding == "":
        return None
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(f"--encoding {encoding}: unknown encoding (try utf-8, cp1252, latin-1, utf-16)") from None


_CHOSEN: ContextVar[str | None] = ContextVar("llmscisci_encoding", default=None)


def use_encoding(encoding: str | None) -> str | None:
    """Set the encoding of user files for this command (None: UTF-8); returns the codec name."""
    name = check_encoding(encoding)
    _CHOSEN.set(name)
    return name


def chosen_encoding() -> str | None:
    """The encoding set by `--encoding` for this command, or None (UTF-8)."""
    return _CHOSEN.get()


def _own(path: str | os.PathLike) -> bool:
    """A file the toolkit wrote or ships, whatever --encoding says about the user's files."""
    return Path(path).name in OWN_FILES or _shipped(os.path.abspath(path))


@functools.lru_cache(maxsize=256)
def _shipped(path: str) -> bool:
    """Whether a file lies in the shipped data (asked once per file: a corpus is decoded line by line)."""
    try:
        return Path(path).resolve().is_relative_to(bundled_data_dir().resolve())
    except OSError:
        return False


def decode(data: bytes, path: str | os.PathLike, encoding: str | None = None, hint: str | None = None,
           first_line: int = 1, row: int | None = None) -> str:
    """Decode a file's bytes: UTF-8 (a leading BOM dropped) unless `encoding` names another codec.

    `hint` replaces the advice of the error message (e.g. for a format that must be UTF-8);
    `first_line` is the line number of the data's first line (for a file read line by line), `row` the
    record it belongs to, where the caller counts records."""
    name = check_encoding(encoding) if encoding else (None if _own(path) else _CHOSEN.get())
    codec = "utf-8-sig" if name in (None, "utf-8") else name
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + first_line
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start:exc.start + 1].hex().upper()
        label = "UTF-8" if name in (None, "utf-8") else name
        advice = hint or (HINT if name is None else "check the --encoding value")
        raise DataError(path, f"not {label} (byte 0x{byte} at column {column}); {advice}", line=line, row=row) from None


def read_text(path: str | os.PathLike, encoding: str | None = None, hint: str | None = None) -> str:
    """A whole text file as a string (see the module docstring); a missing file is a DataError."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(p, f"cannot read ({exc.strerror or exc})") from None
    return decode(data, p, encoding, hint)


def decode_line(raw: bytes, path: str | os.PathLike, lineno: int, encoding: str | None = None,
                row: int | None = None) -> str:
    """One line of a file read line by line (a BOM dropped); errors name that line (and record `row`)."""
    return decode(raw, path, encoding, first_line=lineno, row=row)


def read_lines(path: str | os.PathLike, encoding: str | None = None) -> list[tuple[int, str]]:
    """(line number, line) for every line of a text file, line ends removed (split at newlines only, so
    a U+2028 inside a JSON string stays in its line)."""
    text = read_text(path, encoding)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [(i, line.removesuffix("\r")) for i, line in enumerate(lines, start=1)]
