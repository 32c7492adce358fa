"""`llmscisci label --input FILE --engine ray --workers 2` on 2,000 OpenAlex works against the fake OpenAI
server: the labels of a one-process run, id by id, in the same run folder (the engine is not part of the
run's identity) that `eval`, `export` and `report` read; a run stopped half-way (the server stops
answering) and re-run ends with exactly one prediction per item. The option checks are fast tests."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
from console import run_console
from fakeservers import FaultPlan, make_server, set_keys

from llmscisci.runs import read_jsonl

FIX = Path(__file__).parent / "fixtures" / "corpus"
BOOK = FIX / "open_science.toml"
N = 2000


@pytest.fixture(scope="module")
def works(tmp_path_factory) -> Path:
    """2,000 OpenAlex-style works (the fixture generator's records, seeded)."""
    sys.path.insert(0, str(FIX))
    from make_openalex import work

    rng = random.Random(26)
    path = tmp_path_factory.mktemp("corpus") / "works.jsonl"
    path.write_text("".join(json.dumps(work(i, rng)) + "\n" for i in range(N)), encoding="utf-8")
    return path


@pytest.fixture
def ray_local():
    ray = pytest.importorskip("ray")
    yield
    ray.shutdown()


def label(srv, inp, out, *extra):
    return ["label", "--input", inp, "--task", BOOK, "--model", "openai:gpt-4o-mini", "--base-url", srv.base_url,
            "--out", out, "--no-cache", "--max-attempts", "2", "--chunk-size", "500", *extra]


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.slow
def test_ray_labels_like_one_process_and_resumes(works, ray_local, tmp_path, capsys, monkeypatch):
    set_keys(monkeypatch, "openai")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with make_server("openai") as srv:
        code, _, err = run_console(label(srv, works, tmp_path / "one"), capsys, monkeypatch)
        assert code == 0, err
        calls = srv.calls
        srv.reset()
        code, _, err = run_console(label(srv, works, tmp_path / "ray", "--engine", "ray", "--workers", "2"),
                                   capsys, monkeypatch)
        assert code == 0, err
        assert srv.calls == calls  # each item asked once
    one, ray_run = only_run(tmp_path / "one"), only_run(tmp_path / "ray")
    assert ray_run.name == one.name  # same run hash
    p1, p2 = read_jsonl(one / "predictions.jsonl"), read_jsonl(ray_run / "predictions.jsonl")
    assert len(p2) == N and len({p["doi"] for p in p2}) == N
    assert {p["doi"]: (p["labels"], p["raw"], p["valid"]) for p in p2} == \
        {p["doi"]: (p["labels"], p["raw"], p["valid"]) for p in p1}
    c1, c2 = (json.loads((d / "config.json").read_text()) for d in (one, ray_run))
    assert c2["hash"] == c1["hash"] and c2["backend"]["engine"] == "ray" and c2["backend"]["workers"] == 2
    assert "engine" not in c1["backend"]
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, ray_run))
    assert m2["distribution"] == m1["distribution"] and m2["empty"] == m1["empty"] > 0

    for args in (["eval", ray_run], ["export", ray_run, "--format", "csv", "--out", tmp_path / "l.csv"],
                 ["report", ray_run, "--out", tmp_path / "report", "--n-boot", "1000"]):
        code, _, err = run_console(args, capsys, monkeypatch)
        assert code == 0, (args[0], err)
    assert json.loads((ray_run / "metrics.json").read_text())["distribution"] == m1["distribution"]
    assert (tmp_path / "report" / "report.html").is_file()
    assert len((tmp_path / "l.csv").read_text(encoding="utf-8-sig").splitlines()) == N + 1

    # stopped half-way: the server answers 700 requests (mid-chunk), then only errors; the same command again
    with make_server("openai", faults=FaultPlan(rate=1.0, kinds=("500",), script=[None] * 700)) as srv:
        cmd = label(srv, works, tmp_path / "stopped", "--engine", "ray", "--workers", "2")
        code, _, err = run_console(cmd, capsys, monkeypatch)
        assert code != 0 and "--resume" in err
        part = read_jsonl(only_run(tmp_path / "stopped") / "predictions.jsonl")
        assert 500 <= len(part) < N
        srv.faults = FaultPlan()
        srv.reset()
        code, _, err = run_console(cmd, capsys, monkeypatch)
        assert code == 0, err
    stopped = only_run(tmp_path / "stopped")
    preds = read_jsonl(stopped / "predictions.jsonl")
    assert len(preds) == N and len({p["doi"] for p in preds}) == N and not any(p.get("call_failed") for p in preds)
    assert {p["doi"]: p["labels"] for p in preds} == {p["doi"]: p["labels"] for p in p1}


@pytest.mark.parametrize("extra, message", [
    (["--engine", "spark"], "unknown --engine 'spark'"),
    (["--engine", "ray", "--workers", "0"], "--workers 0"),
    (["--workers", "3"], "apply to --engine ray"),
    (["--engine", "ray", "--placebo", "3"], "not with --placebo"),
    (["--engine", "ray", "--variant", "score"], "nor with the score variant"),
])
def test_engine_options_are_checked_first(extra, message, works, tmp_path, capsys, monkeypatch):
    set_keys(monkeypatch, "openai")
    with make_server("openai") as srv:
        code, _, err = run_console(label(srv, works, tmp_path / "out", *extra), capsys, monkeypatch)
        assert srv.calls == 0
    assert code != 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_ray_names_the_extra(works, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    set_keys(monkeypatch, "openai")
    with make_server("openai") as srv:
        code, _, err = run_console(label(srv, works, tmp_path / "out", "--engine", "ray"), capsys, monkeypatch)
    assert code != 0 and "pip install 'llmscisci[ray]'" in err and "Traceback" not in err


def test_ray_needs_a_corpus(tmp_path, capsys, monkeypatch):
    code, _, err = run_console(["label", "--task", "easy", "--model", "openai:gpt-4o-mini", "--engine", "ray",
                                "--out", tmp_path], capsys, monkeypatch)
    if "needs Ray" in err:
        pytest.skip("ray is not installed")
    assert code != 0 and "--engine ray labels a corpus given with --input" in err
