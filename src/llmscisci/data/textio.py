"""Reading a user's text file without ever changing it silently.

UTF-8 (with or without a byte-order mark) is the default. A file in another encoding is never
guessed: it is a one-line DataError naming the file, the line and column of the first byte that is
not UTF-8, and how to name the encoding explicitly (`--encoding cp1252`, `latin-1`, ...).
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from llmscisci.errors import DataError, UserError

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


def decode(data: bytes, path: str | os.PathLike, encoding: str | None = None) -> str:
    """Decode a file's bytes: UTF-8 (a leading BOM dropped) unless `encoding` names another codec."""
    name = check_encoding(encoding)
    codec = "utf-8-sig" if name in (None, "utf-8") else name
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = data[exc.start:exc.start + 1].hex().upper()
        label = "UTF-8" if name in (None, "utf-8") else name
        advice = HINT if name is None else "check the --encoding value"
        raise DataError(path, f"not {label} (byte 0x{byte} at column {column}); {advice}", line=line) from None


def read_text(path: str | os.PathLike, encoding: str | None = None) -> str:
    """A whole text file as a string (see the module docstring); a missing file is a DataError."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, "file not found")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(p, f"cannot read ({exc.strerror or exc})") from None
    return decode(data, p, encoding)


def read_lines(path: str | os.PathLike, encoding: str | None = None) -> list[tuple[int, str]]:
    """(line number, line) for every line of a text file, newline characters removed."""
    return list(enumerate(read_text(path, encoding).splitlines(), start=1))
