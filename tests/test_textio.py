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


LATIN = "id,easy\nr1,The code by Müller was available.\nr2,Plain text.\n"


def test_cli_label_input_needs_utf8_or_encoding(tmp_path, capsys, monkeypatch):
    """End to end: a Latin-1 --input is a one-line error (exit 2); --encoding latin-1 reads it unchanged."""
    from console import run_console

    csv = tmp_path / "latin.csv"
    csv.write_bytes(LATIN.encode("latin-1"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = ["label", "--task", "easy", "--input", csv, "--model", "openai:gpt-4o-mini", "--dry-run", "--json"]
    code, out, err = run_console(args, capsys, monkeypatch)
    lines = [x for x in err.strip().splitlines() if x.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "line 2" in lines[0] and "not UTF-8" in lines[0], err
    code, out, err = run_console([*args, "--encoding", "latin-1"], capsys, monkeypatch)
    assert code == 0, err
    assert "Müller" in out and "MÃ¼ller" not in out
    code, _, err = run_console([*args, "--encoding", "klingon"], capsys, monkeypatch)
    assert code == 2 and "unknown encoding" in err


def test_cli_agree_label_file_in_latin1(tmp_path, capsys, monkeypatch):
    from console import run_console

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    rows = "doi,task,labels,response\n10.5281/zenodo.4833219,easy,\"[1, 0, 1, 0, 0]\",Müller\n"
    a.write_bytes(rows.encode("latin-1"))
    b.write_bytes(rows.encode("utf-8"))
    code, _, err = run_console(["agree", a, b, "--task", "easy"], capsys, monkeypatch)
    assert code == 2 and "a.csv, line 2" in err and "not UTF-8" in err
    code, _, err = run_console(["agree", a, a, "--task", "easy", "--encoding", "cp1252"], capsys, monkeypatch)
    assert code == 0, err


def test_toolkit_files_stay_utf8_under_encoding(tmp_path):
    """--encoding is about the user's files: a run's predictions.jsonl is always read as UTF-8."""
    from llmscisci.data.textio import use_encoding

    pred = tmp_path / "predictions.jsonl"
    pred.write_text('{"text": "Müller"}\n', encoding="utf-8")
    try:
        use_encoding("latin-1")
        assert "Müller" in read_text(pred)
        other = tmp_path / "user.csv"
        other.write_bytes("Müller".encode("latin-1"))
        assert read_text(other) == "Müller"
    finally:
        use_encoding(None)
