"""What a provider's batch API must offer the batch runner: build one request row from the same
messages, parameters and schema as a live call; submit rows; report a batch's status; hand back its
results (in any order, keyed by custom_id); cancel it. One subclass per provider, each in its own module.

SDK calls go through the live backend's retry policy (transient HTTP errors are retried); a call that
still fails raises UserError, leaving batches.json as it was, so a re-run picks up where this one stopped.

Batch providers register by the name of their live provider (backends/registry.py), as the live ones
do: one line in `PROVIDERS` ("module:Class", loaded when first used) or `@register_batch_provider(name)`
on the class.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel

from llmscisci.backends.api_common import APIBackend, Reply
from llmscisci.backends.base import GenParams, Messages
from llmscisci.errors import UserError

# live provider name -> its batch API ("module:Class"; the class is built as `Class(live_backend)`)
PROVIDERS: dict[str, str] = {
    "openai": "llmscisci.backends.batch.openai_batch:OpenAIBatch",
    "anthropic": "llmscisci.backends.batch.anthropic_batch:AnthropicBatch",
    "gemini": "llmscisci.backends.batch.gemini_batch:GeminiBatch",
}


def register_batch_provider(name: str, target: str | type | None = None):
    """Add (or replace) the batch API of provider `name`: `register_batch_provider(name, "module:Class")`,
    or as a decorator on the BatchProvider subclass, which it returns unchanged."""

    def add(t: str | type):
        PROVIDERS[name] = t if isinstance(t, str) else f"{t.__module__}:{t.__qualname__}"
        return t

    return add if target is None else add(target)


@dataclass
class RemoteStatus:
    """A batch as the provider reports it; `state` is normalised to in_progress | completed | failed |
    expired | cancelled (the last four are terminal: results can be collected)."""

    status: str
    state: str
    done: int = 0
    failed: int = 0
    total: int = 0
    message: str | None = None
    handle: dict = field(default_factory=dict)  # what results() needs (file ids, inline responses)


@dataclass
class RowResult:
    """One request's outcome inside a batch: a reply, or an error (per-request error, expired, cancelled)."""

    custom_id: str
    reply: Reply | None = None
    error: str | None = None


class BatchProvider(abc.ABC):
    name = "batch"
    max_requests = 50_000  # per batch
    max_bytes = 100 * 1024 * 1024  # per batch (request file or inline payload)

    def __init__(self, live: APIBackend):
        self.live = live
        self.client = live.client

    # --- provider hooks ------------------------------------------------------------------
    @abc.abstractmethod
    def row(self, custom_id: str, messages: Messages, params: GenParams, schema: type[BaseModel] | None): ...

    @abc.abstractmethod
    def submit(self, rows: list, attempt: int) -> str: ...

    @abc.abstractmethod
    def status(self, batch_id: str) -> RemoteStatus: ...

    @abc.abstractmethod
    def results(self, batch_id: str, status: RemoteStatus, schema: type[BaseModel] | None) -> Iterable[RowResult]: ...

    @abc.abstractmethod
    def cancel(self, batch_id: str) -> None: ...

    def row_size(self, row) -> int:
        return len(json.dumps(row, ensure_ascii=False, default=str).encode("utf-8")) + 1

    # --- shared ----------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], object]):
        """fn() under the live backend's retry policy; a failure that outlasts it is a UserError."""
        value, err, _ = self.live.policy.run(fn, self.live._classify)
        if err is not None:
            raise UserError(f"{self.live.name}: {what} failed: {err}")
        return value


def split_rows(rows: list[tuple[str, object]], size: Callable[[object], int], max_requests: int,
               max_bytes: int) -> list[list[tuple[str, object]]]:
    """Consecutive chunks of (custom_id, row) pairs, each within the request-count and size limits."""
    chunks: list[list[tuple[str, object]]] = []
    cur: list[tuple[str, object]] = []
    cur_bytes = 0
    for cid, row in rows:
        n = size(row)
        if n > max_bytes:
            raise UserError(f"request {cid} alone is {n} bytes, over the batch size limit of {max_bytes}")
        if cur and (len(cur) >= max_requests or cur_bytes + n > max_bytes):
            chunks.append(cur)
            cur, cur_bytes = [], 0
        cur.append((cid, row))
        cur_bytes += n
    if cur:
        chunks.append(cur)
    return chunks
