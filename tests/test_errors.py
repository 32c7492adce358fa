"""A data error formats its own message: file, line, row and column, then the reason; the parts stay
available to reports that show them in columns."""

from llmscisci.errors import DataError, UserError


def test_data_error_names_where_and_why():
    exc = DataError("labels.csv", "not a 0/1 value:  2", row=7, column="labels")
    assert str(exc) == "labels.csv, row 7, column 'labels': not a 0/1 value: 2"
    assert exc.reason == "not a 0/1 value: 2" and exc.where == "labels.csv, row 7, column 'labels'"
    assert (exc.path, exc.row, exc.column) == ("labels.csv", 7, "labels")
    assert isinstance(exc, UserError)


def test_data_error_with_a_line_and_no_row():
    exc = DataError("x.jsonl", "unreadable JSON", line=3)
    assert str(exc) == "x.jsonl, line 3: unreadable JSON" and exc.reason == "unreadable JSON"
