"""End to end: `llmscisci label` on an API model (the fake OpenAI server): a run folder with the cost
ledger, a re-run into a new folder served entirely from the cache, and kill -9 + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fakeservers import KEY_ENV, TEST_KEYS, make_server

from llmscisci.runs import read_jsonl

CLI = str(Path(sys.executable).parent / "llmscisci")
VOLATILE = {"timing", "generation_seconds"}  # wall-clock measurements differ between any two runs


def env_for(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env.update({KEY_ENV[p]: TEST_KEYS[p] for p in KEY_ENV})
    return env


def label_cmd(srv, data_dir, out, *extra, limit=10, variant="structured") -> list[str]:
    return [CLI, "label", "--task", "easy", "--variant", variant, "--model", "openai:gpt-4o-mini",
            "--base-url", srv.base_url, "--data-dir", str(data_dir), "--limit", str(limit), "--out", str(out),
            *extra]


def run(cmd, tmp_path) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env_for(tmp_path), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def raw_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines() if line.strip()]


def stable(metrics: dict, drop=()) -> dict:
    out = {k: v for k, v in metrics.items() if k not in VOLATILE and k not in drop}
    # The random "prior" baseline is drawn row by row in the order the predictions were appended (the
    # completion order under concurrency), not from the predictions themselves: left out here.
    if isinstance(out.get("baselines"), dict):
        out["baselines"] = {k: v for k, v in out["baselines"].items() if k != "prior"}
    return out


def test_label_run_then_cached_rerun_into_new_folder(tmp_path, data_dir):
    cache = tmp_path / "responses.sqlite"
    with make_server("openai") as srv:
        run(label_cmd(srv, data_dir, tmp_path / "out1", "--cache", str(cache)), tmp_path)
        assert srv.calls == 10
        srv.reset()
        res2 = run(label_cmd(srv, data_dir, tmp_path / "out2", "--cache", str(cache)), tmp_path)
        assert srv.calls == 0  # a new --out folder, every answer from the cache
    first, second = only_run(tmp_path / "out1"), only_run(tmp_path / "out2")
    p1, p2 = raw_lines(first), raw_lines(second)
    assert len(p1) == len(p2) == 10
    assert not any(p["cached"] for p in p1) and all(p["cached"] for p in p2)
    assert [p["raw"] for p in sorted(p1, key=lambda p: p["doi"])] == [p["raw"] for p in sorted(p2, key=lambda p: p["doi"])]
    assert all(p["error"] is None and p["model_version"] == "gpt-4o-mini-2024-07-18" for p in p1)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (first, second))
    # the ledger: tokens and cost of the first run; the cached re-run paid nothing
    assert m1["tokens"]["in"] == sum(p["tokens_in"] for p in p1) > 0
    assert m1["cost_usd"] == pytest.approx(sum(p["cost_usd"] for p in p1), abs=1e-6) and m1["cost_usd"] > 0
    assert m2["cost_usd"] == 0.0 and m2["tokens"] == m1["tokens"]
    assert stable(m1, drop={"cost_usd"}) == stable(m2, drop={"cost_usd"})
    cfg = json.loads((first / "config.json").read_text())
    assert cfg["backend"]["name"] == "openai:gpt-4o-mini" and cfg["backend"]["base_url"] == srv.base_url
    assert "model_versions" in m1 and m1["model_versions"] == ["gpt-4o-mini-2024-07-18"]
    # no key anywhere on disk
    for folder in (first, second, cache.parent):
        for f in folder.rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                assert not any(k.encode() in data or b"S3CRET" in data for k in TEST_KEYS.values()), f
    assert "run folder" in res2.stdout


def test_label_kill_and_resume_gives_one_prediction_per_item(tmp_path, data_dir):
    n = 16
    with make_server("openai", latency=0.3) as srv:
        out = tmp_path / "killed"
        common = ["--no-cache", "--concurrency", "2"]
        proc = subprocess.Popen(label_cmd(srv, data_dir, out, *common, limit=n, variant="guidelines"),
                                env=env_for(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            done_before = 0
            while time.monotonic() < deadline and proc.poll() is None:
                runs = [p for p in out.glob("*/predictions.jsonl")] if out.exists() else []
                if runs:
                    done_before = sum(1 for line in runs[0].read_text().splitlines() if line.strip())
                    if done_before >= 4:
                        break
                time.sleep(0.05)
            assert proc.poll() is None, "the run finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        run_dir = only_run(out)
        before = read_jsonl(run_dir / "predictions.jsonl")  # skips a line torn by the kill, if any
        assert 4 <= len(before) < n
        srv.reset()
        run([*label_cmd(srv, data_dir, out, *common, limit=n, variant="guidelines"), "--resume", str(run_dir)],
            tmp_path)
        resumed_calls = srv.calls
        srv.reset()
        run(label_cmd(srv, data_dir, tmp_path / "whole", *common, limit=n, variant="guidelines"), tmp_path)
    after = raw_lines(run_dir)
    counts = Counter((p["doi"], p["task"]) for p in after)
    assert len(counts) == n and set(counts.values()) == {1}  # exactly one prediction per item
    assert resumed_calls == n - len(before)  # finished items were not asked again
    whole = only_run(tmp_path / "whole")
    m_resumed = json.loads((run_dir / "metrics.json").read_text())
    m_whole = json.loads((whole / "metrics.json").read_text())
    assert stable(m_resumed) == stable(m_whole)
    assert m_resumed["timing"]["resumed_items"] == len(before)
    from llmscisci.tasks.label import reevaluate

    assert reevaluate(run_dir)["timing"] == m_resumed["timing"]  # eval recomputes scores, keeps the timing
