"""End to end on a researcher's corpus: an OpenAlex export labelled with their own codebook against the
fake OpenAI server (`--dry-run` first, then the run, then `export --format parquet`); the same corpus in
other formats gives the same predictions; a run killed mid-chunk resumes to exactly one prediction each."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from console import run_console

from llmscisci.backends.base import Backend, Generation
from llmscisci.data.codebook import load_codebook
from llmscisci.data.corpus import CorpusPlan
from llmscisci.data.corpus_read import read_records
from llmscisci.runs import read_jsonl

FIX = Path(__file__).parent / "fixtures" / "corpus"
WORKS = FIX / "openalex_works.jsonl"
BOOK = FIX / "open_science.toml"


def label(srv, inp, out, *extra):
    return ["label", "--input", inp, "--task", BOOK, "--model", "openai:gpt-4o-mini", "--base-url", srv.base_url,
            "--out", out, "--no-cache", "--max-attempts", "2", *extra]


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_openalex_end_to_end(openai_server, tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    code, stdout, err = run_console(label(openai_server, WORKS, out, "--dry-run"), capsys, monkeypatch)
    assert code == 0, err
    assert "items: 200" in stdout and "empty texts (labelled none, no call): 18" in stdout
    assert "estimated cost: at most $" in stdout and "output cap: 64 tokens" in stdout
    first = read_records(WORKS)[0]["abstract"]
    assert first in stdout and "--- system ---" in stdout  # the first item's full messages
    assert openai_server.calls == 0 and not out.exists()  # nothing sent, nothing written

    code, stdout, err = run_console(label(openai_server, WORKS, out, "--by", "type", "--chunk-size", "64"), capsys, monkeypatch)
    assert code == 0, err
    run = only_run(out)
    assert openai_server.calls == 200 - 18  # empty abstracts: no call
    preds = read_jsonl(run / "predictions.jsonl")
    assert len(preds) == 200 and len({p["doi"] for p in preds}) == 200
    empty = [p for p in preds if p.get("empty")]
    assert len(empty) == 18 and all(p["labels"] == [0, 0, 0, 1] and p["raw"] == "" for p in empty)
    metrics = json.loads((run / "metrics.json").read_text())
    dist = metrics["distribution"]
    assert dist["all"]["n"] == 200 and dist["by"] == "type"
    assert sum(g["n"] for g in dist["groups"].values()) == 200
    valid = [p for p in preds if p["valid"]]
    assert dist["all"]["code"]["count"] == sum(p["labels"][0] for p in valid)
    assert metrics["cost_usd"] > 0 and metrics["empty"] == 18
    assert "label distribution" in stdout and "type=article" in stdout

    code, stdout, err = run_console(["eval", run], capsys, monkeypatch)  # recomputed the same way
    assert code == 0, err
    again = json.loads((run / "metrics.json").read_text())
    assert again["distribution"] == metrics["distribution"] and "type=article" in stdout

    code, _, err = run_console(["code", "export", run, "--n", "20", "--edition", "publication_year",
                                "--out", tmp_path / "sample.csv"], capsys, monkeypatch)  # the corpus re-read
    assert code == 0, err
    sheet = pd.read_csv(tmp_path / "sample.csv", encoding="utf-8-sig")
    assert len(sheet) == 20 and set(sheet["doi"]) <= {p["doi"] for p in preds}

    pq = tmp_path / "labels.parquet"
    code, _, err = run_console(["export", run, "--format", "parquet", "--out", pq], capsys, monkeypatch)
    assert code == 0, err
    df = pd.read_parquet(pq)
    assert len(df) == 200 and df["id"].is_unique
    assert str(df["publication_year"].dtype) == "int64"
    for c in ("code", "data", "funding", "none"):
        assert str(df[c].dtype) == "int8" and set(df[c].unique()) <= {0, 1}
    for c in ("valid", "repaired", "empty"):
        assert str(df[c].dtype) == "bool"
    assert int(df["empty"].sum()) == 18
    row = df.set_index("id").loc[preds[0]["doi"]]
    assert row["title"] == preds[0]["meta"]["title"] and row["raw"] == preds[0]["raw"]
    for fmt, name in (("csv", "l.csv"), ("jsonl", "l.jsonl"), ("hf", "l_hf")):
        code, _, err = run_console(["export", run, "--format", fmt, "--out", tmp_path / name], capsys, monkeypatch)
        assert code == 0, err
    from datasets import load_from_disk

    ds = load_from_disk(str(tmp_path / "l_hf"))
    assert len(ds) == 200 and ds.features["code"].dtype == "int8" and ds.features["valid"].dtype == "bool"
    assert len(pd.read_csv(tmp_path / "l.csv")) == 200


def test_same_predictions_in_every_format(openai_server, tmp_path, capsys, monkeypatch):
    from datasets import Dataset

    df = pd.DataFrame(read_records(WORKS))
    inputs = {"openalex": WORKS, "parquet": tmp_path / "c.parquet", "jsonl": tmp_path / "c.jsonl",
              "tsv": tmp_path / "c.tsv", "hf": tmp_path / "hf"}
    df.to_parquet(inputs["parquet"])
    df.to_json(inputs["jsonl"], orient="records", lines=True, force_ascii=False)
    df.to_csv(inputs["tsv"], sep="\t", index=False)
    Dataset.from_pandas(df).save_to_disk(str(inputs["hf"]))
    got = {}
    for name, path in inputs.items():
        out = tmp_path / f"runs_{name}"
        code, _, err = run_console(label(openai_server, path, out, "--id-column", "id"), capsys, monkeypatch)
        assert code == 0, f"{name}: {err}"
        preds = read_jsonl(only_run(out) / "predictions.jsonl")
        got[name] = {p["doi"]: (p["labels"], p["raw"], bool(p.get("empty"))) for p in preds}
    assert len(got["openalex"]) == 200
    for name in inputs:
        assert got[name] == got["openalex"], name


def test_bad_input_is_one_line_exit_2(openai_server, tmp_path, capsys, monkeypatch):
    dup = tmp_path / "dup.csv"
    dup.write_text("id,abstract\na,x\na,y\n", encoding="utf-8")
    code, _, err = run_console(label(openai_server, dup, tmp_path / "r"), capsys, monkeypatch)
    assert code == 2 and err.strip().count("\n") == 0 and "row 2, column 'id': duplicate id a" in err
    code, _, err = run_console(label(openai_server, WORKS, tmp_path / "r", "--text-column", "summary"), capsys, monkeypatch)
    assert code == 2 and "column 'summary'" in err and err.strip().count("\n") == 0
    code, _, err = run_console(label(openai_server, WORKS, tmp_path / "r", "--by", "nope"), capsys, monkeypatch)
    assert code == 2 and "--by 'nope'" in err
    assert openai_server.calls == 0 and not (tmp_path / "r").exists()


class CountingBackend(Backend):
    """Answers `none` for everything; raises after `die_after` answers (a killed process)."""

    name = "counting"

    def __init__(self, die_after: int | None = None):
        self.die_after, self.answered = die_after, 0

    def generate(self, conversations, params=None, schema=None, on_result=None):
        out = []
        for i, _ in enumerate(conversations):
            if self.die_after is not None and self.answered >= self.die_after:
                raise KeyboardInterrupt
            gen = Generation(text='{"code": false, "data": false, "funding": false, "none": true}')
            self.answered += 1
            out.append(gen)
            on_result(i, gen)
        return out

    def count_tokens(self, messages):
        return 10


def test_killed_mid_chunk_resumes_to_one_prediction_each(tmp_path, monkeypatch):
    from llmscisci.backends.base import GenParams
    from llmscisci.tasks.label import LabelSpec
    from llmscisci.tasks.label_stream import run_label_stream

    cb = load_codebook(BOOK)
    plan = CorpusPlan.open(WORKS, cb)
    spec = LabelSpec(codebook=cb, variant="structured", model="counting", params=GenParams(max_new_tokens=64))
    first = CountingBackend(die_after=97)  # chunk 3 of 50 is half done
    with pytest.raises(KeyboardInterrupt):
        run_label_stream(spec, plan, first, tmp_path, chunk_size=50, show_progress=False)
    run_dir = only_run(tmp_path)
    assert json.loads((run_dir / "progress.json").read_text())["chunks"] == 2
    partial = read_jsonl(run_dir / "predictions.jsonl")
    assert 100 < len(partial) < 200
    again = CountingBackend()
    monkeypatch.setattr("llmscisci.tasks.stream_finish.PARQUET_FROM", 150)  # a "large" run here
    run_label_stream(spec, plan, again, tmp_path, chunk_size=50, show_progress=False)
    preds = read_jsonl(run_dir / "predictions.jsonl")
    assert len(preds) == 200 and len({p["doi"] for p in preds}) == 200
    done_before = {p["doi"] for p in partial}
    called = 200 - 18 - sum(1 for p in partial if not p.get("empty"))
    assert again.answered == called  # nothing asked twice
    assert {p["doi"] for p in preds} >= done_before
    table = pd.read_parquet(run_dir / "predictions.parquet")
    assert len(table) == 200 and table["id"].is_unique and str(table["none"].dtype) == "int8"
