"""One exception type for problems the user can fix; the CLI prints it as one line and exits non-zero."""


class UserError(Exception):
    """Bad input, missing file, missing key...: shown to the user as a one-line message, no traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ItemsFailed(UserError):
    """A run that finished with items that got no usable answer: its results are written, and the
    command exits with `exit_code` (3, not the 2 of bad input) so that a script notices."""

    exit_code = 3


class DataError(UserError):
    """A data file problem; the message names file, row and column where known.

    `str(exc)` is the full one-line message ("FILE, row R, column 'C': reason"); `exc.reason` is the
    reason alone, for reports that list file, row and column in their own columns.
    """

    def __init__(self, path, message: str, row: int | None = None, column: str | None = None,
                 line: int | None = None):
        self.path, self.row, self.column, self.line = str(path), row, column, line
        self.reason = " ".join(str(message).split())
        super().__init__(f"{self.where}: {self.reason}")

    @property
    def where(self) -> str:
        """"FILE, row R, line L, column 'C'": the location part of the message."""
        where = self.path
        if self.row is not None:
            where += f", row {self.row}"
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return where
