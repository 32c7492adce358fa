"""Integrity of results: damaged prediction files are refused, partial runs say so, zero-width intervals
carry a note, one writer per run folder, no leftover conversion folders, empty texts follow the label
policy. Models are a fake backend put in place of `registry.load_backend`; nothing heavy loads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llmscisci.backends import registry
from llmscisci.backends.base import Backend, Generation, GenParams
from console import run_console

REPO = Path(__file__).resolve().parents[1]


class FakeBackend(Backend):
    """Labels every text `code` at once; records the texts it was asked about."""

    context_length = None

    def __init__(self):
        self.texts: list[str] = []

    def generate(self, conversations, params: GenParams = GenParams(), schema=None, on_result=None):
        gens = []
        for i, conv in enumerate(conversations):
            self.texts.append(conv[-1]["content"])
            fields = list(schema.model_fields) if schema is not None else []
            text = json.dumps({f: j == 0 for j, f in enumerate(fields)}) if fields else "[1]"
            gen = Generation(text=text, tokens_in=10, tokens_out=3, seconds=0.001)
            if on_result:
                on_result(i, gen)
            gens.append(gen)
        return gens

    def count_tokens(self, messages) -> int:
        return sum(len(m["content"]) for m in messages) // 4


@pytest.fixture
def fake(monkeypatch):
    backend = FakeBackend()
    monkeypatch.setattr(registry, "load_backend", lambda name, options=None: backend)
    return backend


def _label(tmp_path, data_dir, capsys, monkeypatch, *extra) -> Path:
    code, out, err = run_console(["label", "--task", "easy", "--data-dir", data_dir, "--out", tmp_path / "runs",
                                  *extra], capsys, monkeypatch)
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    return run


def _error_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


# ---- damaged predictions -------------------------------------------------------------------------
def test_corrupt_middle_line_is_refused_unless_skipped(tmp_path, data_dir, capsys, monkeypatch, fake):
    run = _label(tmp_path, data_dir, capsys, monkeypatch, "--limit", "4")
    preds = run / "predictions.jsonl"
    lines = preds.read_text("utf-8").splitlines(keepends=True)
    lines[1] = '{"doi": "10.1/x", "lab\n'  # a damaged line in the middle
    preds.write_text("".join(lines), "utf-8")
    before = (run / "metrics.json").read_text("utf-8")

    for cmd in (["eval", run], ["report", run, "--out", tmp_path / "rep", "--n-boot", "200"]):
        code, out, err = run_console(cmd, capsys, monkeypatch)
        assert code == 2, (cmd, out, err)
        line = _error_line(err)
        assert "line 2" in line and "--skip-bad-lines" in line and str(preds) in line
    assert (run / "metrics.json").read_text("utf-8") == before  # nothing rewritten
    assert not (tmp_path / "rep").exists()

    code, out, err = run_console(["eval", run, "--skip-bad-lines"], capsys, monkeypatch)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text("utf-8"))
    assert metrics["bad_lines_skipped"] == 1 and metrics["n_items"] == 3
    assert "1 unreadable prediction lines skipped" in " ".join(out.split())
    code, out, err = run_console(["report", run, "--out", tmp_path / "rep", "--n-boot", "200",
                                  "--skip-bad-lines"], capsys, monkeypatch)
    assert code == 0, err
    assert "1 unreadable line" in (tmp_path / "rep" / "report.md").read_text("utf-8")


def test_torn_last_line_is_still_accepted(tmp_path, data_dir, capsys, monkeypatch, fake):
    run = _label(tmp_path, data_dir, capsys, monkeypatch, "--limit", "3")
    with (run / "predictions.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"doi": "torn')  # a killed run's last write
    code, out, err = run_console(["eval", run], capsys, monkeypatch)
    assert code == 0, err
    assert "bad_lines_skipped" not in json.loads((run / "metrics.json").read_text("utf-8"))


# ---- partial runs --------------------------------------------------------------------------------
def test_partial_run_is_marked_in_metrics_table_and_report(tmp_path, data_dir, capsys, monkeypatch, fake):
    run = _label(tmp_path, data_dir, capsys, monkeypatch, "--limit", "6")
    assert json.loads((run / "metrics.json").read_text("utf-8"))["partial"] is False
    preds = run / "predictions.jsonl"
    preds.write_text("".join(preds.read_text("utf-8").splitlines(keepends=True)[:2]), "utf-8")  # killed early
    (run / "metrics.json").unlink()

    code, out, err = run_console(["eval", run], capsys, monkeypatch)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text("utf-8"))
    assert metrics["partial"] is True and metrics["n_planned"] == 6 and metrics["n_items"] == 2
    assert "PARTIAL: 2 of 6 planned items" in out
    code, out, err = run_console(["report", run, "--out", tmp_path / "rep", "--n-boot", "200"], capsys, monkeypatch)
    assert code == 0, err
    md = (tmp_path / "rep" / "report.md").read_text("utf-8")
    assert "partial" in md.lower() and "2 of 6" in md


# ---- degenerate intervals ------------------------------------------------------------------------
def test_one_cluster_interval_is_flagged():
    import numpy as np

    from llmscisci.metrics import stats as S

    y = np.array([[1, 0], [0, 1], [1, 0]])
    p = np.array([[1, 0], [1, 0], [1, 0]])
    ci = S.label_bootstrap(y, p, ["10.1/a"] * 3, n_boot=200)
    iv = ci["subset_accuracy"]
    assert iv.low == iv.high == iv.estimate  # one DOI: every resample is the same
    assert "one cluster" in iv.degenerate and iv.fmt().endswith("*")
    wide = S.label_bootstrap(y, p, ["10.1/a", "10.1/b", "10.1/c"], n_boot=200)["subset_accuracy"]
    assert wide.degenerate is None and not wide.fmt().endswith("*")


def test_report_notes_a_zero_width_interval(tmp_path, data_dir, capsys, monkeypatch, fake):
    run = _label(tmp_path, data_dir, capsys, monkeypatch, "--limit", "1")
    code, out, err = run_console(["report", run, "--out", tmp_path / "rep", "--n-boot", "200"], capsys, monkeypatch)
    assert code == 0, err
    md = (tmp_path / "rep" / "report.md").read_text("utf-8")
    assert "]*" in md and "zero-width interval (one cluster" in md


# ---- one writer per run folder -------------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys, time
    from llmscisci.runs import RunFolder
    with RunFolder(sys.argv[1]).writing():
        print("locked", flush=True)
        time.sleep(60)
""")


def test_second_writer_is_refused_and_a_killed_writer_leaves_no_lock(tmp_path, data_dir, capsys, monkeypatch,
                                                                      fake):
    run = _label(tmp_path, data_dir, capsys, monkeypatch, "--limit", "2")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, out, err = run_console(["eval", run], capsys, monkeypatch)
        assert code == 2
        assert "being written by another run" in _error_line(err) and f"pid {holder.pid}" in err
        code, out, err = run_console(["label", "--resume", run], capsys, monkeypatch)
        assert code == 2 and "being written by another run" in _error_line(err)
        # readers never lock
        code, out, err = run_console(["report", run, "--out", tmp_path / "rep", "--n-boot", "200"],
                                     capsys, monkeypatch)
        assert code == 0, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, out, err = run_console(["eval", run], capsys, monkeypatch)  # the OS dropped the killed lock
    assert code == 0, err


def test_lock_is_reentrant_within_one_process(tmp_path):
    from llmscisci.runs import RunFolder

    with RunFolder(tmp_path / "r").writing(), RunFolder(tmp_path / "r").writing():
        pass
    with RunFolder(tmp_path / "r").writing():  # released after the outer block
        pass


# ---- the embedded model's conversion -------------------------------------------------------------
def test_failed_conversion_leaves_no_temporary_folder(tmp_path, monkeypatch):
    from llmscisci.backends import embedded

    def boom(tmp):
        (tmp / "model.safetensors").write_bytes(b"x" * 1000)
        raise RuntimeError("disk full")

    monkeypatch.setattr(embedded, "_build", boom)
    with pytest.raises(RuntimeError):
        embedded.convert(tmp_path / "smollm2-135m")
    assert list(tmp_path.iterdir()) == []


KILLED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from llmscisci.backends import embedded
    def slow(tmp):
        (tmp / "model.safetensors").write_bytes(b"x" * 1000)
        print("building", flush=True)
        time.sleep(60)
    embedded._build = slow
    embedded.convert(Path(sys.argv[1]) / "smollm2-135m")
""")


def test_killed_conversion_is_cleaned_by_the_next_one(tmp_path, monkeypatch):
    from llmscisci.backends import embedded

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "building"
        (running,) = tmp_path.glob(".smollm2-135m-*")
        assert embedded.remove_stale(tmp_path) == [] and running.is_dir()  # still converting: kept
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert running.is_dir()  # a kill runs no clean-up ...

    def build(tmp):
        (tmp / "config.json").write_text("{}", "utf-8")
        (tmp / embedded.MARKER).write_text(json.dumps(embedded.source_record()), "utf-8")

    monkeypatch.setattr(embedded, "_build", build)
    dest = embedded.convert(tmp_path / "smollm2-135m")  # ... the next conversion removes the leftover
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smollm2-135m"]
    assert embedded.is_converted(dest) and not (dest / embedded.TMP_LOCK).exists()


# ---- empty texts ---------------------------------------------------------------------------------
def test_empty_text_is_none_without_a_model_call(tmp_path, data_dir, capsys, monkeypatch, fake):
    # the study's data: two empty difficult texts among the first 40 reports
    code, out, err = run_console(["label", "--task", "difficult", "--data-dir", data_dir, "--limit", "40",
                                  "--out", tmp_path / "study"], capsys, monkeypatch)
    assert code == 0, err
    assert len(fake.texts) == 38 and all(t.strip() for t in fake.texts)
    (run,) = (tmp_path / "study").iterdir()
    preds = [json.loads(x) for x in (run / "predictions.jsonl").read_text("utf-8").splitlines()]
    empty = [p for p in preds if p.get("empty")]
    assert len(empty) == 2 and all(p["labels"] == [0, 0, 0, 0, 1] and p["valid"] for p in empty)
    assert all(p["raw"] == "" and p["tokens_in"] == 0 for p in empty)
    metrics = json.loads((run / "metrics.json").read_text("utf-8"))
    assert metrics["n_items"] == 40 and metrics["empty"] == 2  # counted in the metrics
    assert "2 empty texts labelled none" in " ".join(out.split())

    # one's own corpus (the streaming path shares the rule)
    csv = tmp_path / "mine.csv"
    csv.write_text("id,easy\na1,The code ran at once.\na2,   \na3,Data were public.\n", "utf-8")
    fake.texts.clear()
    code, out, err = run_console(["label", "--task", "easy", "--input", csv, "--out", tmp_path / "own"],
                                 capsys, monkeypatch)
    assert code == 0, err
    assert len(fake.texts) == 2 and all("The code ran" in t or "Data were" in t for t in fake.texts)
    (run,) = (tmp_path / "own").iterdir()
    preds = {p["doi"]: p for p in map(json.loads, (run / "predictions.jsonl").read_text("utf-8").splitlines())}
    assert preds["a2"]["empty"] is True and preds["a2"]["labels"] == [0, 0, 0, 0, 1] and preds["a2"]["valid"]
    assert not preds["a1"].get("empty")
    assert json.loads((run / "metrics.json").read_text("utf-8"))["empty"] == 1


def test_data_warnings_are_about_the_task_being_run(data_dir):
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.data.problems import Collector

    warned = {}
    for task in ("easy", "difficult"):
        col = Collector(strict=False)
        load_items(load_codebook(task), data_dir=data_dir, collector=col)
        warned[task] = [str(p) for p in col.warnings]
    assert not any("'difficult'" in w for w in warned["easy"])  # the data has two empty difficult texts
    assert sum("column 'difficult': empty text" in w for w in warned["difficult"]) == 2


def test_corrupt_line_in_a_corpus_run(tmp_path, capsys, monkeypatch, fake):
    csv = tmp_path / "mine.csv"
    csv.write_text("id,easy\n" + "".join(f"a{i},Text number {i}.\n" for i in range(4)), "utf-8")
    code, out, err = run_console(["label", "--task", "easy", "--input", csv, "--out", tmp_path / "runs"],
                                 capsys, monkeypatch)
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    preds = run / "predictions.jsonl"
    lines = preds.read_text("utf-8").splitlines(keepends=True)
    lines[0] = "{broken\n"
    preds.write_text("".join(lines), "utf-8")
    code, out, err = run_console(["eval", run], capsys, monkeypatch)
    assert code == 2 and "line 1" in _error_line(err)
    code, out, err = run_console(["eval", run, "--skip-bad-lines"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text("utf-8"))["bad_lines_skipped"] == 1
