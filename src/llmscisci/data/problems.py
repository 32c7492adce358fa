"""Collecting data problems: loaders raise the first error, or gather all of them for `data validate`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from llmscisci.errors import DataError

log = logging.getLogger("llmscisci.data")
_logged: set[str] = set()  # a command loads the same file several times; say each warning once


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    row: int | None = None  # 1-based data row (the header is row 0)
    column: str | None = None
    level: str = "error"  # or "warning"

    def __str__(self) -> str:
        where = self.path
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{self.level}: {where}: {self.message}"


class Collector:
    """Errors raise at once (strict) or are gathered; warnings are logged and gathered."""

    def __init__(self, strict: bool = True):
        self.strict = strict
        self.problems: list[Problem] = []

    def error(self, path, message: str, row: int | None = None, column: str | None = None) -> None:
        if self.strict:
            raise DataError(path, message, row=row, column=column)
        self.problems.append(Problem(str(path), message, row, column))

    def warning(self, path, message: str, row: int | None = None, column: str | None = None) -> None:
        p = Problem(str(path), message, row, column, level="warning")
        text = str(p).removeprefix("warning: ")
        if text not in _logged:
            _logged.add(text)
            log.warning(text)
        self.problems.append(p)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]
