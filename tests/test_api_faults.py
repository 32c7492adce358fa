"""Retries, backoff, Retry-After and per-item failures under injected faults (real SDKs, local servers)."""

from __future__ import annotations

import random
import time

import pytest
from fakeservers import FaultPlan, TRANSIENT, conversations, expected_text, make_backend, make_server, set_keys

from llmscisci.backends.retry import Failure, RetryPolicy, classify, parse_retry_after, redact

PROVIDERS = ("openai", "anthropic", "gemini")


@pytest.fixture(autouse=True)
def _keys(monkeypatch, tmp_path):
    set_keys(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_all_items_complete_under_30_percent_faults(provider):
    convs = conversations(40, tag=provider)
    plan = FaultPlan(rate=0.3, kinds=TRANSIENT, seed=11)
    # the client timeout leaves headroom for an ordinary answer on a loaded machine; only the
    # scheduled slow answers (3 s) run past it
    with make_server(provider, faults=plan, slow_seconds=3.0) as srv:
        backend = make_backend(provider, srv, concurrency=8, timeout=1.5, max_attempts=10)
        done = []
        gens = backend.generate(convs, on_result=lambda i, g: done.append(i))
        faults = sum(srv.fault_counts.values())
        kinds = set(srv.fault_counts)
        calls = srv.calls
    assert sorted(done) == list(range(40))
    assert [g.error for g in gens] == [None] * 40
    assert [g.text for g in gens] == [expected_text(c) for c in convs]
    # the schedule really hit: about 30% of requests faulted, of several kinds, and each was retried
    assert faults >= 8 and len(kinds) >= 3
    assert calls == 40 + faults
    assert sum(g.extra["attempts"] for g in gens) == calls


@pytest.mark.parametrize("provider", PROVIDERS)
def test_failed_item_is_recorded_and_the_run_goes_on(provider):
    convs = conversations(3)
    # concurrency 1: the first item meets three 503s and runs out of attempts; the others succeed
    with make_server(provider, faults=FaultPlan(script=["503", "503", "503"])) as srv:
        backend = make_backend(provider, srv, concurrency=1, max_attempts=3)
        gens = backend.generate(convs)
        assert srv.calls == 5
    assert gens[0].error.startswith("HTTP 503") and "after 3 attempts" in gens[0].error
    assert gens[0].extra["attempts"] == 3
    assert [g.error for g in gens[1:]] == [None, None]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_is_retried_then_reported(provider):
    with make_server(provider, faults=FaultPlan(script=["slow", "slow"]), slow_seconds=2.0) as srv:
        backend = make_backend(provider, srv, timeout=0.3, max_attempts=2)
        g = backend.generate(conversations(1))[0]
    assert g.error is not None and "time" in g.error.lower() and "after 2 attempts" in g.error


def test_client_errors_are_not_retried():
    with make_server("openai", expect_key="sk-some-other-key-000000") as srv:  # every request: 401
        backend = make_backend("openai", srv, max_attempts=5)
        g = backend.generate(conversations(1))[0]
        assert srv.calls == 1
    assert g.error.startswith("HTTP 401")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_retry_after_is_honoured(provider):
    with make_server(provider, faults=FaultPlan(script=["429"]), retry_after="0.6") as srv:
        backend = make_backend(provider, srv, backoff_base=0.001, backoff_max=0.001)
        g = backend.generate(conversations(1))[0]
        gap = srv.times[1] - srv.times[0]
    assert g.error is None
    assert gap >= 0.55  # the backoff alone would have waited about a millisecond


def test_parse_retry_after_forms():
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "150", "Retry-After": "9"}) == 0.15
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= parse_retry_after({"Retry-After": date}) <= 31
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None
    assert parse_retry_after({"Retry-After": "100000"}) == 600.0  # bounded


def test_backoff_is_exponential_jittered_and_capped():
    policy = RetryPolicy(max_attempts=8, base=0.1, max_delay=1.0, rng=random.Random(0))
    for attempt in range(1, 8):
        raw = min(1.0, 0.1 * 2 ** (attempt - 1))
        for _ in range(20):
            d = policy.delay(attempt)
            assert 0.5 * raw <= d <= raw
    assert policy.delay(1, retry_after=3.0) == 3.0  # Retry-After wins over a shorter backoff


def test_retry_policy_bounds_attempts_and_never_raises():
    slept = []
    policy = RetryPolicy(max_attempts=4, base=0.01, max_delay=0.1, sleep=slept.append)
    calls = []

    def boom():
        calls.append(1)
        raise ConnectionError("connection reset")

    result, err, attempts = policy.run(boom, lambda e: classify(e))
    assert result is None and attempts == 4 and len(calls) == 4 and len(slept) == 3
    assert err.startswith("ConnectionError") and "after 4 attempts" in err
    assert slept[0] < slept[1] < slept[2] or max(slept) <= 0.1

    result, err, attempts = policy.run(lambda: 1 / 0, lambda e: classify(e))
    assert attempts == 1 and err.startswith("ZeroDivisionError")  # not transient: no retry

    ok = iter([ConnectionError("x"), None])

    def flaky():
        e = next(ok)
        if e:
            raise e
        return "fine"

    assert policy.run(flaky, lambda e: Failure("x", True))[0] == "fine"


def test_redact_removes_keys_and_masked_keys():
    key = "sk-test-OPENAI-S3CRET-7c1d9e"
    text = f"Incorrect API key provided: sk-tes******7c1d. Also {key} and Bearer abc.def"
    out = redact(text, (key,))
    assert key not in out and "7c1d" not in out and "abc.def" not in out
    assert redact("AIzaSyA-1234567890abcdef", ()) == "[redacted]"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_scheduled_content_faults_are_recorded_not_retried(provider):
    from pydantic import BaseModel

    class Fact(BaseModel):
        fact: str

    plan = FaultPlan(script=["refuse", "invalid_json", "empty", None] * 3)
    with make_server(provider, faults=plan) as srv:
        gens = make_backend(provider, srv, concurrency=4).generate(conversations(20), schema=Fact)
        counts = dict(srv.fault_counts)
        assert srv.calls == 20
    assert counts == {"refuse": 3, "invalid_json": 3, "empty": 3}
    assert sum(g.refusal for g in gens) == 3
    assert sum(bool(g.error) and "JSON" in g.error for g in gens) == 3
    assert sum(bool(g.error) and g.error.startswith("empty") for g in gens) == 3
    assert sum(g.error is None and not g.refusal for g in gens) == 11
