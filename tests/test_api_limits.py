"""Bounded concurrency and client-side rate limits (requests and tokens per minute)."""

from __future__ import annotations

import threading
import time

import pytest
from fakeservers import conversations, make_backend, make_server, set_keys

from llmscisci.backends.ratelimit import Bucket, RateLimiter


@pytest.fixture(autouse=True)
def _keys(monkeypatch, tmp_path):
    set_keys(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def test_concurrency_is_bounded_and_used():
    with make_server("openai", latency=0.15) as srv:
        gens = make_backend("openai", srv, concurrency=4).generate(conversations(16))
        peak = srv.max_inflight
    assert all(g.error is None for g in gens)
    assert 2 <= peak <= 4


def test_requests_per_minute_are_limited():
    with make_server("openai") as srv:
        t0 = time.monotonic()
        # 5 per second, a burst of at most one second's worth (5): 8 requests take at least 3/5 s
        make_backend("openai", srv, concurrency=8, rpm=300).generate(conversations(8))
        elapsed = time.monotonic() - t0
        assert srv.calls == 8
    assert elapsed >= 0.55


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_bucket_rate_and_debt():
    clock = FakeClock()
    b = Bucket(600, clock=clock, sleep=clock.sleep)  # 10 per second, holds 10
    for _ in range(10):
        assert b.acquire() == 0.0
    waited = b.acquire()
    assert waited == pytest.approx(0.1)
    # a request bigger than the bucket waits for a full bucket, then goes into debt
    big = Bucket(60, clock=clock, sleep=clock.sleep)  # 1 per second, holds 1
    assert big.acquire(5) == 0.0
    assert big.acquire(1) == pytest.approx(5.0)


def test_token_limit_counts_prompt_and_completion_budget():
    limiter = RateLimiter(rpm=None, tpm=6000)  # 100 tokens per second, holds 100
    clock = FakeClock()
    limiter.tokens.clock, limiter.tokens.sleep = clock, clock.sleep
    limiter.tokens.stamp = 0.0
    assert limiter.acquire(100) == 0.0
    assert limiter.acquire(50) == pytest.approx(0.5)
    assert RateLimiter().acquire(10**9) == 0.0  # no limits: never waits
