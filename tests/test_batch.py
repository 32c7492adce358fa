"""Batch mode against the fake batch servers (tests/fake_batch.py), in-process with a fake clock: no
test waits in real time. Each provider: 2,000 items labelled through its batch API equal a live run,
at the batch price; a re-run sends nothing; faults (a batch failing validation, one expiring half done,
10% failing rows, results out of order) end with every item answered or recorded as failed, nothing paid
twice; a process stopped after submitting is resumed by collecting the same batches."""

from __future__ import annotations

import json
import os

import pytest
from fake_batch import BATCH_SERVERS, BatchPlan
from fakeservers import KEY_ENV, TEST_KEYS, TEST_MODELS

from llmscisci.backends.base import BackendOptions, GenParams
from llmscisci.backends.batch import BatchOptions, make_batch_backend
from llmscisci.backends.batch.provider import split_rows
from llmscisci.backends.pricing import lookup
from llmscisci.backends.registry import load_backend
from llmscisci.data.codebook import load_codebook
from llmscisci.data.items import load_items
from llmscisci.errors import UserError
from llmscisci.runs import read_jsonl
from llmscisci.tasks.label import LabelSpec, run_label

PROVIDERS = ("openai", "anthropic", "gemini")


class FakeClock:
    """Time that advances only when slept; `stop_after` sleeps raise KeyboardInterrupt (a killed process)."""

    def __init__(self, stop_after: int | None = None):
        self.t, self.sleeps, self.stop_after = 0.0, 0, stop_after

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.stop_after is not None and self.sleeps > self.stop_after:
            raise KeyboardInterrupt
        self.t += seconds


@pytest.fixture
def items_csv(tmp_path):
    def make(n: int):
        path = tmp_path / f"items{n}.csv"
        path.write_text("id,easy\n" + "".join(
            f"r{i:05d},Report {i}: the authors' code ran at once; data set {i % 17} was public.\n"
            for i in range(n)), encoding="utf-8")
        return path
    return make


@pytest.fixture
def no_fsync(monkeypatch):
    """Disk syncs (one per appended prediction) are not what these tests measure."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def keys(monkeypatch, provider):
    monkeypatch.setenv(KEY_ENV[provider], TEST_KEYS[provider])


def spec_for(csv, cb):
    return LabelSpec(codebook=cb, variant="structured", model="x", params=GenParams(max_new_tokens=64),
                     data_source=str(csv))


def batch_run(provider, srv, csv, out, cache=None, clock=None, **bopts):
    cb = load_codebook("easy")
    items = load_items(cb, input_csv=csv)
    opts = BackendOptions(base_url=srv.base_url, timeout=5, backoff_base=0.001, backoff_max=0.01,
                          use_cache=cache is not None, cache_path=str(cache) if cache else None)
    bopts.setdefault("poll_interval", 30.0)
    be = make_batch_backend(f"{provider}:{TEST_MODELS[provider]}", opts, BatchOptions(**bopts),
                            clock=clock or FakeClock(), report=lambda line: None)
    spec = spec_for(csv, cb)
    spec.model = be.name
    return run_label(spec, items, be, out, show_progress=False), be


def live_run(provider, srv, csv, out):
    cb = load_codebook("easy")
    items = load_items(cb, input_csv=csv)
    be = load_backend(f"{provider}:{TEST_MODELS[provider]}",
                      BackendOptions(base_url=srv.base_url, timeout=5, use_cache=False, concurrency=16))
    spec = spec_for(csv, cb)
    spec.model = be.name
    return run_label(spec, items, be, out, show_progress=False)


def by_doi(run) -> dict:
    return {p["doi"]: p for p in read_jsonl(run.path / "predictions.jsonl")}


# 2,000 items for every provider; the Anthropic and Gemini SDKs take some seconds to build 2,000 typed
# requests, so those two run at 2,000 in the slow suite and at 300 in the fast one
SIZES = [("openai", 2000), ("anthropic", 300), ("gemini", 300),
         pytest.param("anthropic", 2000, marks=pytest.mark.slow), pytest.param("gemini", 2000, marks=pytest.mark.slow)]


@pytest.mark.parametrize(("provider", "n"), SIZES)
def test_batch_equals_live_at_batch_price_and_rerun_sends_nothing(provider, n, tmp_path, items_csv, monkeypatch,
                                                                  no_fsync):
    keys(monkeypatch, provider)
    csv = items_csv(n)
    with BATCH_SERVERS[provider](plan=BatchPlan(polls=2, seed=1), expect_key=TEST_KEYS[provider]) as srv:
        run, be = batch_run(provider, srv, csv, tmp_path / "batch", cache=tmp_path / "c.sqlite",
                            max_requests=n // 4 + n % 4)
        assert srv.batch_creates == 4 and srv.rows_submitted == n  # split under the request-count limit
        assert srv.calls == 0  # no live call
        before = srv.http_requests
        rerun, _ = batch_run(provider, srv, csv, tmp_path / "batch", cache=tmp_path / "c.sqlite")
        assert srv.http_requests == before and rerun.path == run.path  # the finished run: nothing sent
        elsewhere, _ = batch_run(provider, srv, csv, tmp_path / "other", cache=tmp_path / "c.sqlite")
        assert srv.http_requests == before  # a new folder: every answer from the response cache
        live = live_run(provider, srv, csv, tmp_path / "live")
        assert srv.calls == n
    b, lv = by_doi(run), by_doi(live)
    assert len(b) == len(lv) == n and len(read_jsonl(run.path / "predictions.jsonl")) == n
    assert all(p["error"] is None for p in b.values())
    assert {d: p["labels"] for d, p in b.items()} == {d: p["labels"] for d, p in lv.items()}
    assert {d: p["raw"] for d, p in b.items()} == {d: p["raw"] for d, p in lv.items()}
    price = lookup(provider, TEST_MODELS[provider])
    m, ml = run.metrics(), live.metrics()
    assert m["tokens"] == ml["tokens"]
    assert m["cost_usd"] == pytest.approx(price.batch_cost(m["tokens"]["in"], m["tokens"]["out"]), abs=1e-5)
    assert m["cost_usd"] == pytest.approx(ml["cost_usd"] * 0.5, abs=1e-5) and m["cost_usd"] > 0
    assert elsewhere.metrics()["cost_usd"] == 0.0
    state = json.loads((run.path / "batches.json").read_text())
    assert state["summary"]["by_state"] == {"done": n}
    assert len(state["batches"]) == 4 and all(b_["collected"] for b_ in state["batches"])
    cid, req = next(iter(state["requests"].items()))
    assert req["items"] and req["items"][0][1] == "easy" and len(cid) <= 64


@pytest.mark.parametrize("provider", PROVIDERS)
def test_faults_end_answered_or_recorded_and_nothing_paid_twice(provider, tmp_path, items_csv, monkeypatch, no_fsync):
    keys(monkeypatch, provider)
    csv = items_csv(400)
    plan = BatchPlan(polls=1, fail_validation={2}, expire={3}, row_error_rate=0.1, seed=7)
    with BATCH_SERVERS[provider](plan=plan, expect_key=TEST_KEYS[provider]) as srv:
        run, _ = batch_run(provider, srv, csv, tmp_path / "out", max_requests=100, attempts=3)
        preds = by_doi(run)
        assert srv.paid_twice == 0
        assert srv.rows_answered == sum(p["error"] is None for p in preds.values())
    assert len(preds) == 400
    assert all((p["labels"] is not None) != bool(p["error"]) for p in preds.values())
    failed = [p for p in preds.values() if p["error"]]
    assert all("after 3 batch submissions" in p["error"] for p in failed)
    assert len(failed) < 5  # 10% per try, three tries
    state = json.loads((run.path / "batches.json").read_text())
    assert {b["state"] for b in state["batches"]} >= {"failed", "expired", "completed"}
    assert run.metrics()["failed"] == len(failed)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stopped_after_submit_rerun_collects_the_same_batches(provider, tmp_path, items_csv, monkeypatch, no_fsync):
    keys(monkeypatch, provider)
    csv = items_csv(120)
    with BATCH_SERVERS[provider](plan=BatchPlan(polls=3), expect_key=TEST_KEYS[provider]) as srv:
        with pytest.raises(KeyboardInterrupt):
            batch_run(provider, srv, csv, tmp_path / "out", clock=FakeClock(stop_after=0), max_requests=50)
        assert srv.batch_creates == 3
        run_dir = next((tmp_path / "out").iterdir())
        first = json.loads((run_dir / "batches.json").read_text())
        assert not (run_dir / "predictions.jsonl").exists() or not read_jsonl(run_dir / "predictions.jsonl")
        run, _ = batch_run(provider, srv, csv, tmp_path / "out", max_requests=50)
        assert srv.batch_creates == 3 and srv.rows_submitted == 120 and srv.paid_twice == 0
    state = json.loads((run.path / "batches.json").read_text())
    assert [b["id"] for b in state["batches"]] == [b["id"] for b in first["batches"]]
    assert all(b["collected"] for b in state["batches"])
    assert len(by_doi(run)) == 120 and all(p["error"] is None for p in by_doi(run).values())


def test_failed_rows_go_live_with_fallback(tmp_path, items_csv, monkeypatch, no_fsync):
    keys(monkeypatch, "openai")
    csv = items_csv(200)
    with BATCH_SERVERS["openai"](plan=BatchPlan(row_error_rate=0.2, seed=3), expect_key=TEST_KEYS["openai"]) as srv:
        run, _ = batch_run("openai", srv, csv, tmp_path / "out", fallback="live")
        state = json.loads((run.path / "batches.json").read_text())
        assert len(state["batches"]) == 1 and srv.batch_creates == 1
        failed_in_batch = 200 - srv.rows_answered
        assert failed_in_batch > 10 and srv.calls == failed_in_batch  # each failed row sent live once
    preds = by_doi(run)
    assert all(p["error"] is None for p in preds.values())
    live_priced = [p for p in read_jsonl(run.path / "batch_results.jsonl") if p["generation"]["extra"].get("live_fallback")]
    assert len(live_priced) == failed_in_batch


def test_cancel_keeps_done_rows_and_records_the_rest(tmp_path, items_csv, monkeypatch, no_fsync):
    import threading

    keys(monkeypatch, "anthropic")
    csv = items_csv(40)
    hold = threading.Event()
    with BATCH_SERVERS["anthropic"](plan=BatchPlan(hold=hold), expect_key=TEST_KEYS["anthropic"]) as srv:
        with pytest.raises(KeyboardInterrupt):
            batch_run("anthropic", srv, csv, tmp_path / "out", clock=FakeClock(stop_after=0), attempts=1)
        run_dir = next((tmp_path / "out").iterdir())
        from llmscisci.cli.batch import cancel

        monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEYS["anthropic"])
        cancel(run_dir, base_url=None)
        assert srv.cancels == 1
        run, _ = batch_run("anthropic", srv, csv, tmp_path / "out", attempts=1)
    preds = by_doi(run)
    ok = [p for p in preds.values() if p["error"] is None]
    assert len(preds) == 40 and len(ok) == 20  # the fake finishes half the rows of a cancelled batch
    assert all("cancel" in p["error"] for p in preds.values() if p["error"])


def test_split_rows_respects_count_and_size():
    rows = [(f"q{i}", {"x": "a" * 10}) for i in range(10)]
    size = lambda r: 20  # noqa: E731
    assert [len(c) for c in split_rows(rows, size, 4, 10_000)] == [4, 4, 2]
    assert [len(c) for c in split_rows(rows, size, 100, 60)] == [3, 3, 3, 1]
    with pytest.raises(UserError, match="over the batch size limit"):
        split_rows(rows, size, 100, 10)


def test_batch_prices(tmp_path):
    p = lookup("anthropic", "claude-3-5-sonnet-latest")
    assert (p.batch_input, p.batch_output) == (1.5, 7.5)
    assert p.batch_cost(1_000_000, 1_000_000) == pytest.approx(p.cost(1_000_000, 1_000_000) / 2)
    own = tmp_path / "prices.toml"
    own.write_text('[openai."my-model"]\ninput = 1.0\noutput = 2.0\nbatch_input = 0.1\nbatch_output = 0.3\n')
    mine = lookup("openai", "my-model", own)
    assert mine.batch_cost(1_000_000, 1_000_000) == pytest.approx(0.4)


def test_batch_options_are_checked_before_anything_loads():
    with pytest.raises(UserError, match="--batch-attempts"):
        BatchOptions(attempts=0).check()
    with pytest.raises(UserError, match="--batch-fallback"):
        BatchOptions(fallback="maybe").check()
    with pytest.raises(UserError, match="needs an API model"):
        make_batch_backend("smollm2-135m", BackendOptions(), BatchOptions())


def test_dry_run_shows_live_and_batch_cost(data_dir, monkeypatch):
    from typer.testing import CliRunner

    from llmscisci.cli import app

    res = CliRunner().invoke(app, ["label", "--task", "easy", "--model", "openai:gpt-4o-mini", "--data-dir",
                                   str(data_dir), "--limit", "20", "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)["dry_run"]
    assert plan["batch_cost_usd_max"] == pytest.approx(plan["cost_usd_max"] / 2, rel=1e-6) and plan["cost_usd_max"] > 0
    assert "with --batch: at most" in res.stderr
