"""Text input is UTF-8 (BOM or not) or an explicitly named encoding; never a silent re-decoding."""

from __future__ import annotations

import pytest

from llmscisci.data.reports import read_csv
from llmscisci.data.textio import check_encoding, read_lines, read_text
from llmscisci.errors import DataError, UserError

ROWS = "doi,title\n10.1/a,Plain\n10.1/b,Müller et al.\n"


def test_utf8_with_and_without_bom(tmp_path):
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_bytes(ROWS.encode("utf-8"))
    bom.write_bytes(ROWS.encode("utf-8-sig"))
    assert read_text(plain) == read_text(bom) == ROWS
    assert read_csv(bom).columns[0] == "doi"
    assert read_lines(plain)[2] == (3, "10.1/b,Müller et al.")


def test_garbled_csv_is_an_error_naming_file_line_and_encoding(tmp_path):
    """One Latin-1 byte used to switch the whole file to cp1252 silently (Müller -> MÃ¼ller elsewhere)."""
    bad = tmp_path / "garbled.csv"
    bad.write_bytes(ROWS.encode("latin-1"))
    with pytest.raises(DataError) as exc:
        read_csv(bad)
    msg = str(exc.value)
    assert str(bad) in msg and "line 3" in msg and "not UTF-8" in msg and "--encoding" in msg
    assert "0xFC" in msg and "\n" not in msg
    assert exc.value.line == 3


def test_explicit_encoding_reads_the_file(tmp_path):
    bad = tmp_path / "latin.csv"
    bad.write_bytes(ROWS.encode("latin-1"))
    df = read_csv(bad, encoding="latin-1")
    assert df["title"].tolist() == ["Plain", "Müller et al."]


def test_wrong_explicit_encoding_and_unknown_name(tmp_path):
    f = tmp_path / "u16.txt"
    f.write_bytes(b"abc\n\xff")
    with pytest.raises(DataError, match="not ascii"):
        read_text(f, "ascii")
    with pytest.raises(UserError, match="unknown encoding"):
        check_encoding("no-such-codec")
    with pytest.raises(DataError, match="file not found"):
        read_text(tmp_path / "missing.csv")
