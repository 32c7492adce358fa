"""`llmscisci label --batch`, `--batch-file`, `llmscisci batch status|collect|import` end to end (real
processes, the fake batch servers): kill -9 after submission and re-run collects the same batches; a
request file is valid OpenAI batch JSONL; importing a results file gives the run a collected batch gives."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fake_batch import BATCH_SERVERS, BatchPlan, synth
from fakeservers import KEY_ENV, TEST_KEYS

from llmscisci.runs import read_jsonl

CLI = str(Path(sys.executable).parent / "llmscisci")
VOLATILE = {"timing", "generation_seconds"}


def env_for(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env.update({KEY_ENV[p]: TEST_KEYS[p] for p in KEY_ENV})
    return env


def items(tmp_path, n: int) -> Path:
    path = tmp_path / "items.csv"
    path.write_text("id,easy\n" + "".join(f"d{i:04d},Report {i}: code and data {i % 5} were public.\n"
                                          for i in range(n)), encoding="utf-8")
    return path


def label(srv, csv, out, *extra) -> list[str]:
    return [CLI, "label", "--task", "easy", "--variant", "structured", "--model", "openai:gpt-4o-mini",
            "--base-url", srv.base_url, "--input", str(csv), "--out", str(out), *extra]


def run(cmd, tmp_path, code=0) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env_for(tmp_path), timeout=300)
    assert res.returncode == code, res.stderr[-3000:]
    return res


def only(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def stable_preds(run_dir: Path) -> list[dict]:
    drop = {"seconds", "cost_usd", "cached"}
    return sorted(({k: v for k, v in p.items() if k not in drop} for p in read_jsonl(run_dir / "predictions.jsonl")),
                  key=lambda p: p["doi"])


@pytest.mark.parametrize("how", ["rerun", "collect"])
def test_kill_after_submit_rerun_collects_the_same_batches(tmp_path, how):
    csv = items(tmp_path, 30)
    hold = threading.Event()
    with BATCH_SERVERS["openai"](plan=BatchPlan(hold=hold), expect_key=TEST_KEYS["openai"]) as srv:
        cmd = label(srv, csv, tmp_path / "out", "--batch", "--poll-interval", "0.05", "--no-cache")
        proc = subprocess.Popen(cmd, env=env_for(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while srv.status_reads < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert srv.batch_creates == 1
        run_dir = only(tmp_path / "out")
        ids = [b["id"] for b in json.loads((run_dir / "batches.json").read_text())["batches"]]
        # status: read-only, no lock, answers while nothing is collected
        before = {f.name: f.stat().st_mtime_ns for f in run_dir.iterdir()}
        st = json.loads(run([CLI, "batch", "status", str(run_dir), "--json"], tmp_path).stdout)
        assert st["summary"]["by_state"] == {"submitted": 30} and [b["id"] for b in st["batches"]] == ids
        assert {f.name: f.stat().st_mtime_ns for f in run_dir.iterdir()} == before
        hold.set()
        if how == "rerun":
            res = run(cmd, tmp_path)  # the same command again
        else:
            res = run([CLI, "batch", "collect", str(run_dir), "--poll-interval", "0.05", "--no-cache"], tmp_path)
        assert srv.batch_creates == 1 and srv.rows_submitted == 30 and srv.paid_twice == 0
    state = json.loads((run_dir / "batches.json").read_text())
    assert [b["id"] for b in state["batches"]] == ids and state["summary"]["by_state"] == {"done": 30}
    preds = read_jsonl(run_dir / "predictions.jsonl")
    assert len(preds) == 30 and all(p["error"] is None for p in preds)
    assert "run folder:" in res.stdout and json.loads((run_dir / "metrics.json").read_text())["failed"] == 0


def test_batch_file_is_valid_and_import_equals_a_collected_batch(tmp_path):
    csv = items(tmp_path, 25)
    with BATCH_SERVERS["openai"](plan=BatchPlan(), expect_key=TEST_KEYS["openai"]) as srv:
        # a collected batch, for comparison
        run(label(srv, csv, tmp_path / "collected", "--batch", "--poll-interval", "0", "--no-cache"), tmp_path)
        sent = srv.http_requests
        req_file = tmp_path / "requests.jsonl"
        res = run(label(srv, csv, tmp_path / "filed", "--batch-file", str(req_file), "--no-cache", "--json"), tmp_path)
        assert srv.http_requests == sent  # nothing submitted
        info = json.loads(res.stdout)
        assert info["batch_file"]["rows"] == 25 and info["batch_file"]["model"] == "gpt-4o-mini"
        rows = [json.loads(line) for line in req_file.read_text().splitlines()]
        # valid OpenAI batch JSONL: one object per line with exactly these keys, unique ids, one model
        assert all(set(r) == {"custom_id", "method", "url", "body"} for r in rows)
        assert all(r["method"] == "POST" and r["url"] == "/v1/chat/completions" for r in rows)
        assert len({r["custom_id"] for r in rows}) == 25 and {r["body"]["model"] for r in rows} == {"gpt-4o-mini"}
        assert all(r["body"]["response_format"]["type"] == "json_schema" and r["body"]["messages"] for r in rows)
        run_dir = Path(info["run_dir"])
        state = json.loads((run_dir / "batches.json").read_text())
        assert set(state["requests"]) == {r["custom_id"] for r in rows} and state["mode"] == "file"
        # what vllm run-batch (or OpenAI) writes back: one output row per request, in any order
        out_rows = [{"id": f"vllm-{i}", "custom_id": r["custom_id"],
                     "response": {"status_code": 200, "request_id": f"vllm-batch-{i}",
                                  "body": synth(srv, r["body"], r["body"]["model"])[0]}, "error": None}
                    for i, r in enumerate(rows)]
        random.Random(0).shuffle(out_rows)
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in out_rows))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**out_rows[0], "custom_id": "not-ours"}) + "\n")
    err = run([CLI, "batch", "import", str(run_dir), str(bad)], tmp_path, code=2)
    assert "not-ours" in err.stderr and "row 1" in err.stderr and "Traceback" not in err.stderr
    assert not read_jsonl(run_dir / "predictions.jsonl")  # nothing half-imported
    run([CLI, "batch", "import", str(run_dir), str(results)], tmp_path)
    collected = only(tmp_path / "collected")
    assert stable_preds(run_dir) == stable_preds(collected)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, collected))
    assert {k: v for k, v in m1.items() if k not in VOLATILE} == {k: v for k, v in m2.items() if k not in VOLATILE}
    assert m1["cost_usd"] > 0  # at the batch price of the file's model


def test_batch_file_for_a_local_model_names_the_served_model(tmp_path):
    csv = items(tmp_path, 5)
    req_file = tmp_path / "vllm.jsonl"
    res = run([CLI, "label", "--task", "easy", "--variant", "guidelines", "--model", "qwen-2.5-1.5b",
               "--input", str(csv), "--out", str(tmp_path / "out"), "--batch-file", str(req_file),
               "--batch-model", "Qwen/Qwen2.5-1.5B-Instruct"], tmp_path)
    rows = [json.loads(line) for line in req_file.read_text().splitlines()]
    assert len(rows) == 5 and {r["body"]["model"] for r in rows} == {"Qwen/Qwen2.5-1.5B-Instruct"}
    assert all("max_tokens" in r["body"] and "response_format" not in r["body"] for r in rows)
    assert "vllm run-batch" in res.stdout


def test_batch_needs_an_api_model_and_checks_options(tmp_path):
    csv = items(tmp_path, 3)
    base = [CLI, "label", "--task", "easy", "--input", str(csv), "--out", str(tmp_path / "o")]
    err = run(base + ["--model", "smollm2-135m", "--batch"], tmp_path, code=2)
    assert "--batch needs an API model" in err.stderr
    err = run(base + ["--model", "openai:gpt-4o-mini", "--batch", "--batch-attempts", "0"], tmp_path, code=2)
    assert "--batch-attempts" in err.stderr
    err = run(base + ["--model", "openai:gpt-4o-mini", "--batch-model", "x"], tmp_path, code=2)
    assert "--batch-model goes with --batch-file" in err.stderr
    err = run([CLI, "batch", "status", str(tmp_path)], tmp_path, code=2)
    assert "batches.json" in err.stderr


def test_batch_file_for_openai_needs_no_key(tmp_path):
    csv = items(tmp_path, 4)
    env = {k: v for k, v in env_for(tmp_path).items() if not k.endswith("_API_KEY")}
    req = tmp_path / "r.jsonl"
    res = subprocess.run([CLI, "label", "--task", "easy", "--model", "openai:gpt-4o-mini", "--input", str(csv),
                          "--out", str(tmp_path / "o"), "--batch-file", str(req)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(line) for line in req.read_text().splitlines()]
    assert len(rows) == 4 and all("max_completion_tokens" in r["body"] for r in rows)  # OpenAI's own dialect
