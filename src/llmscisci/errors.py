"""One exception type for problems the user can fix; the CLI prints it as one line and exits non-zero."""


class UserError(Exception):
    """Bad input, missing file, missing key...: shown to the user as a one-line message, no traceback."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class DataError(UserError):
    """A data file problem; the message names file, row and column where known."""

    def __init__(self, path, message: str, row: int | None = None, column: str | None = None,
                 line: int | None = None):
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")
        self.path, self.row, self.column, self.line = str(path), row, column, line
