"""Anthropic Message Batches: requests are sent inline (`custom_id` + the same `params` as a live
messages call: system, messages, max_tokens, the forced tool for structured output), polled until
processing ends, and the results (JSONL, in any order) streamed back: succeeded, errored, canceled or
expired per request. custom_id must match ^[a-zA-Z0-9_-]{1,64}$ (ours are short: q0000001).
Limits: 100,000 requests or 256 MB per batch.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from llmscisci.backends.base import GenParams, Messages
from llmscisci.backends.batch.provider import BatchProvider, RemoteStatus, RowResult, register_batch_provider
from llmscisci.backends.retry import MalformedResponse


@register_batch_provider("anthropic")
class AnthropicBatch(BatchProvider):
    name = "anthropic"
    max_requests = 100_000
    max_bytes = 256 * 1024 * 1024

    def row(self, custom_id: str, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> dict:
        return {"custom_id": custom_id, "params": self.live.request(messages, params, schema)}

    def submit(self, rows: list, attempt: int) -> str:
        batch = self.call("creating the message batch", lambda: self.client.messages.batches.create(requests=rows))
        return batch.id

    def status(self, batch_id: str) -> RemoteStatus:
        b = self.call(f"reading batch {batch_id}", lambda: self.client.messages.batches.retrieve(batch_id))
        c = b.request_counts
        failed = (c.errored or 0) + (c.canceled or 0) + (c.expired or 0)
        total = (c.processing or 0) + (c.succeeded or 0) + failed
        if b.processing_status != "ended":
            state = "in_progress"
        elif c.expired:
            state = "expired"
        elif c.canceled or b.cancel_initiated_at is not None:
            state = "cancelled"
        elif c.errored and not c.succeeded:
            state = "failed"
        else:
            state = "completed"
        return RemoteStatus(b.processing_status, state, done=c.succeeded or 0, failed=failed, total=total)

    def results(self, batch_id: str, status: RemoteStatus, schema: type[BaseModel] | None) -> Iterable[RowResult]:
        from llmscisci.backends.anthropic_backend import to_reply

        rows = self.call(f"downloading the results of {batch_id}",
                         lambda: list(self.client.messages.batches.results(batch_id)))
        for r in rows:
            res = r.result
            kind = getattr(res, "type", None)
            if kind == "succeeded":
                try:
                    yield RowResult(r.custom_id, reply=to_reply(res.message, schema))
                except MalformedResponse as exc:
                    yield RowResult(r.custom_id, error=f"batch result unreadable: {exc}")
            elif kind == "errored":
                err = getattr(getattr(res, "error", None), "error", None)
                detail = f"{getattr(err, 'type', 'error')}: {getattr(err, 'message', '')}" if err else "error"
                yield RowResult(r.custom_id, error=f"batch request failed: {detail}")
            else:
                yield RowResult(r.custom_id, error=f"batch request {kind or 'failed'}")

    def cancel(self, batch_id: str) -> None:
        self.call(f"cancelling {batch_id}", lambda: self.client.messages.batches.cancel(batch_id))
