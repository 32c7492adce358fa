"""A codebook of one's own through the whole workflow, as a new user runs it: label a CSV with accents
against the fake OpenAI server, then `code export`, `code import`, `agree`, `prevalence` and
`robustness`, each run exactly as the previous step printed it, from another working folder, with the
corpus file moved away (the runs keep the items' columns)."""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import pytest
from console import run_console

# no text_column: the corpus's `abstract` column is picked by itself
BOOK = '''task = "openness"
title = "Openness"
question = "Does the abstract say data or code are shared?"

[[categories]]
short = "data"
name = "Open data"
description = "Data are shared."

[[categories]]
short = "code"
name = "Open code"
description = "Code is shared."

[[categories]]
short = "none"
name = "Neither"
description = "Nothing is shared."
'''
TEXTS = ("Données ouvertes à Zürich", "Code für Müller on GitHub", "Étude naïve des usagers")


def printed(out: str, prefix: str) -> list[str]:
    """The command a line `PREFIX llmscisci ...` printed, as argv (without `llmscisci`)."""
    line = next(x for x in out.splitlines() if x.startswith(prefix))
    argv = shlex.split(line[len(prefix):].strip())
    assert argv[0] == "llmscisci", line
    return argv[1:]


def code_sheet(sheet: Path) -> None:
    """A coder fills the sheet (the text says what is shared)."""
    with sheet.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["data"], r["code"] = int("Données" in r["text"]), int("Code" in r["text"])
        r["none"], r["coder"] = int(not (r["data"] or r["code"])), "ana"
    with sheet.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_printed_next_steps_work_from_any_folder(openai_server, tmp_path, capsys, monkeypatch):
    project, elsewhere, third = (tmp_path / d for d in ("project", "elsewhere", "third"))
    for d in (project, elsewhere, third):
        d.mkdir()
    (project / "openness.toml").write_text(BOOK, "utf-8")
    rows = ["id,title,abstract,field"] + [f"w{i},Titre {i},{TEXTS[i % 3]} {i},{'bio' if i < 12 else 'phys'}"
                                          for i in range(24)]
    (project / "works.csv").write_text("\n".join(rows) + "\n", "utf-8")
    monkeypatch.chdir(project)  # relative paths, as typed in the project folder
    code, out, err = run_console(["label", "--task", "openness.toml", "--input", "works.csv", "--model",
                                  "openai:gpt-4o-mini", "--base-url", openai_server.base_url, "--out", "runs"],
                                 capsys, monkeypatch)
    assert code == 0, err
    assert "text 'abstract'" in err
    (run,) = (project / "runs").iterdir()
    cfg = json.loads((run / "config.json").read_text("utf-8"))
    assert cfg["data_source"] == str(project / "works.csv") and cfg["input"]["path"] == str(project / "works.csv")
    assert cfg["codebook"]["source"] == str(project / "openness.toml")

    monkeypatch.chdir(elsewhere)
    code, out, err = run_console(["code", "export", run, "--n", "12", "--out", "sheet.csv"], capsys, monkeypatch)
    assert code == 0, err
    design = json.loads((elsewhere / "sheet.design.json").read_text("utf-8"))
    assert design["runs"] == [str(run)] and design["codebook_file"]["path"] == str(project / "openness.toml")
    step = printed(out, "code it, then:")
    code, out, err = run_console(["label", "--resume", run, "--base-url", openai_server.base_url], capsys, monkeypatch)
    assert code == 0, err  # the recorded corpus and codebook are found from here
    code, out, err = run_console(["label", "--resume", run, "--task", project / "openness.toml", "--base-url",
                                  openai_server.base_url], capsys, monkeypatch)
    assert code == 0, err  # the same codebook, spelled another way
    code_sheet(elsewhere / "sheet.csv")

    (project / "works.csv").rename(project / "works.moved")  # --by reads the runs' own records
    monkeypatch.chdir(third)
    code, out, err = run_console(step, capsys, monkeypatch)
    assert code == 0, err
    assert "DOIs not checked" not in out  # the reports hold the study's DOIs, not these
    agree = printed(out, "compare:")
    prevalence = printed(out, "prevalence:")
    code, out, err = run_console([*agree, "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["tasks"]["openness"]["n_complete"] == 12  # the coded items, both coders
    code, out, err = run_console([*prevalence, "--by", "field", "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["groups"] == ["bio", "phys"]
    gold = prevalence[prevalence.index("--gold") + 1]
    code, out, err = run_console(["robustness", run, "--gold", gold, "--by", "field", "--json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["by"] == "field"
    import llmscisci as ls  # the Python face reads the runs' own codebook and columns as the command does

    assert json.loads(json.dumps(ls.robustness(run, gold, by="field"), default=str)) == json.loads(out)
    code, out, err = run_console(["robustness", run, "--gold", gold, "--by", "nope"], capsys, monkeypatch)
    assert code == 2 and "not an item column of the runs (columns: title, field, row)" in err

    # an edited codebook is noticed: the sheet was drawn under the old one
    (project / "openness.toml").write_text(BOOK.replace("Data are shared.", "Data shared."), "utf-8")
    code, out, err = run_console([*step, "--force"], capsys, monkeypatch)
    assert code == 2 and re.search(r"openness\.toml changed since .*pass --task", err), err
    code, out, err = run_console([*step, "--force", "--task", project / "openness.toml"], capsys, monkeypatch)
    assert code == 0, err


def test_export_keeps_column_types_and_input_order(tmp_path, capsys, monkeypatch):
    """A CSV corpus's `year` of whole numbers is an integer column in Parquet and JSON Lines (an id-like
    `007` stays text), and rows follow the corpus's order whatever order the answers came back in
    (one row per item: the last answer of an item asked twice)."""
    import pandas as pd

    from llmscisci.data.codebook import load_codebook

    (tmp_path / "openness.toml").write_text(BOOK, "utf-8")
    cb = load_codebook(tmp_path / "openness.toml")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": "label", "task": "openness", "codebook": cb.model_dump(),
                                                 "input": {"format": "csv"}, "streamed": True}), "utf-8")
    order = [3, 0, 2, 1, 0]  # answers arrive out of order; item 0 answered twice (a retry)
    recs = [{"doi": f"w{r}", "task": "openness", "labels": [1, 0, 0] if k < 4 else [0, 1, 0], "valid": True,
             "raw": "{}", "meta": {"title": f"Étude {r}", "year": str(2015 + r), "ref": f"00{r}",
                                   "score": "0.5", "row": r + 1}} for k, r in enumerate(order)]
    (run / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), "utf-8")
    monkeypatch.chdir(tmp_path)
    for fmt in ("parquet", "jsonl"):
        code, out, err = run_console(["export", run, "--format", fmt, "--out", f"x.{fmt}"], capsys, monkeypatch)
        assert code == 0, err
    df = pd.read_parquet(tmp_path / "x.parquet")
    assert list(df["id"]) == ["w0", "w1", "w2", "w3"] and list(df["row"]) == [1, 2, 3, 4]
    assert str(df["year"].dtype) == "int64" and list(df["year"]) == [2015, 2016, 2017, 2018]
    assert str(df["score"].dtype) == "float64" and df["ref"].tolist() == ["000", "001", "002", "003"]
    assert df["code"].tolist() == [1, 0, 0, 0]  # the category column; w0's last answer
    rows = [json.loads(x) for x in (tmp_path / "x.jsonl").read_text("utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["w0", "w1", "w2", "w3"] and rows[0]["year"] == 2015
    assert rows[0]["code"] == 1 and rows[0]["ref"] == "000" and rows[0]["title"] == "Étude 0"
