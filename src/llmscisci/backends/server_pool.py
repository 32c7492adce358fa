"""Several OpenAI-compatible servers behind one backend: `--base-url URL1,URL2,...` (e.g. one vLLM replica
per GPU). Each request goes to the server with the fewest requests in flight (ties: the one that has been
sent the fewest), so a slow or busy replica gets less work; `--concurrency` is the total over all servers.

The pool looks like the one SDK client it replaces (`pool.chat.completions.create(**kw)`); the backend's
retry policy, rate limits and cache sit around it unchanged. The servers are taken to serve the same
model: the cache and config.json know them as the comma-joined list (without any user:password part).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from llmscisci.errors import UserError

__all__ = ["ServerPool", "split_urls"]


def split_urls(text: str | None) -> list[str]:
    """The URLs of a `--base-url` value (one URL, taken as it is, or several separated by commas, checked)."""
    if not text:
        return []
    if "," not in text:
        return [text]
    urls = [u.strip() for u in text.split(",")]
    if any(not u for u in urls):
        raise UserError(f"--base-url {text!r}: an empty entry in the comma-separated list")
    for u in urls:
        parts = urlsplit(u)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UserError(f"--base-url: {u!r} is not an http(s) URL")
    if len(set(urls)) != len(urls):
        raise UserError(f"--base-url {text!r}: a server is listed twice")
    return urls


class ServerPool:
    """SDK clients, one per server; `chat.completions.create` goes to the least busy one."""

    def __init__(self, urls: list[str], make: Callable[[str], object]):
        self.urls = list(urls)
        self.clients = [make(u) for u in self.urls]
        self.in_flight = [0] * len(self.urls)
        self.sent = [0] * len(self.urls)
        self._lock = threading.Lock()
        self.chat = self  # pool.chat.completions.create(...), as on the SDK client
        self.completions = self

    def _pick(self) -> int:
        with self._lock:
            i = min(range(len(self.urls)), key=lambda k: (self.in_flight[k], self.sent[k]))
            self.in_flight[i] += 1
            self.sent[i] += 1
            return i

    def create(self, **kw):
        i = self._pick()
        try:
            return self.clients[i].chat.completions.create(**kw)
        finally:
            with self._lock:
                self.in_flight[i] -= 1

    def requests_sent(self) -> dict[str, int]:
        """Requests sent to each server so far (attempts included)."""
        with self._lock:
            return dict(zip(self.urls, self.sent))
