"""When a run should stop instead of spending hours learning nothing: the rule every runner shares.

A run stops when `first_n` items in a row fail with the same permanent error (authentication, a model
the server does not serve, a request form it rejects, a prompt beyond its context), when `first_n`
items in a row could not reach the server at all after their retries (a wrong --base-url, a server
that crashed; whatever the run's size), or when more than
`max_rate` of the last `window` items got no answer from the server at all. The message names the
server's own words and a hint; what was written stays, and `--resume` continues after the fix.
Answers that arrived but do not parse are not failures of the server and never stop a run.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from llmscisci.backends.base import Generation
from llmscisci.errors import UserError

HINTS = {
    "auth": "check the API key the server expects (OPENAI_API_KEY for openai:..., the provider's key otherwise)",
    "model": "check --model (the name the server serves, e.g. from GET /v1/models) and --base-url",
    "context": "the prompts do not fit the model's context: start the server with a larger context "
               "or lower --max-new-tokens",
    "request": "the server rejects the request: try --structured-mode prompt (or auto), and check --model",
    None: "check that the server is up and --base-url, --model and --structured-mode are right",
}


class RunStopped(UserError):
    """A run stopped by the stop rule (one line for the user; exit status non-zero)."""


def _signature(gen: Generation) -> tuple[str, str]:
    return gen.extra.get("failure_kind") or "", re.sub(r"\d+", "#", gen.error or "")


@dataclass
class StopRule:
    first_n: int = 5  # this many items in a row with the same permanent error stop the run
    window: int = 20  # ... or a share of failed calls above max_rate over this many items
    max_rate: float = 0.5
    _streak: int = 0
    _unreachable: int = 0  # items in a row whose every attempt failed to connect
    _last: tuple[str, str] | None = None
    _recent: deque = field(default_factory=deque)

    def observe(self, gen: Generation) -> str | None:
        """Record one result; the reason to stop (without the hint), or None to go on."""
        failed = bool(gen.extra.get("call_failed"))
        self._recent.append(failed)
        if len(self._recent) > self.window:
            self._recent.popleft()
        if failed and gen.extra.get("failure_kind"):
            sig = _signature(gen)
            self._streak = self._streak + 1 if sig == self._last else 1
            self._last = sig
        else:
            self._streak, self._last = 0, None
        self._unreachable = self._unreachable + 1 if failed and gen.extra.get("connection_failed") else 0
        if self._streak >= self.first_n:
            return f"{self._streak} items in a row failed with the same error: {gen.error}"
        if self._unreachable >= self.first_n:
            return f"{self._unreachable} items in a row could not connect to the server: {gen.error}"
        n_failed = sum(self._recent)
        if len(self._recent) >= self.window and n_failed > self.max_rate * len(self._recent):
            return f"{n_failed} of the last {len(self._recent)} items got no answer; the last: {gen.error}"
        return None

    def check(self, gen: Generation, backend, written: int, run_path) -> None:
        """Record one result (already written); raise RunStopped when the run should stop."""
        reason = self.observe(gen)
        if reason is None:
            return
        url = backend.describe().get("base_url")
        where = backend.name + (f" at {url}" if url else "")
        hint = HINTS.get(gen.extra.get("failure_kind"), HINTS[None])
        raise RunStopped(f"{where}: stopped after {reason}. Hint: {hint}. {written} item(s) written in this "
                         f"session to {run_path}; after the fix continue with --resume {run_path}")
