"""Client-side rate limits: requests per minute and tokens per minute (thread-safe token buckets).

Each bucket refills continuously at limit/60 per second and holds at most one second's worth (at least
one request), so the rate is smooth rather than a burst of a whole minute's quota. A request larger
than the bucket waits until the bucket is full, then takes it into debt (so it is never starved).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Bucket:
    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.clock, self.sleep = clock, sleep
        self.stamp = clock()
        self.lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def acquire(self, cost: float = 1.0) -> float:
        """Block until `cost` units may be spent; returns the seconds waited."""
        need = min(cost, self.capacity)
        waited = 0.0
        while True:
            with self.lock:
                self._refill()
                if self.level >= need:
                    self.level -= cost
                    return waited
                wait = (need - self.level) / self.rate
            self.sleep(wait)
            waited += wait


class RateLimiter:
    """Both limits at once; either may be None (no limit)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None):
        self.requests = Bucket(rpm) if rpm else None
        self.tokens = Bucket(tpm) if tpm else None

    def acquire(self, tokens: int = 0) -> float:
        waited = 0.0
        if self.requests is not None:
            waited += self.requests.acquire(1.0)
        if self.tokens is not None and tokens > 0:
            waited += self.tokens.acquire(float(tokens))
        return waited
