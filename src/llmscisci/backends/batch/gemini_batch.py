"""Gemini batch mode (Gemini Developer API): inline GenerateContent requests (same contents, system
instruction, generation config and response schema as a live call), each tagged with its custom id in
`metadata.key`; the finished job carries the inline responses. Inline requests are limited to 20 MB per
batch; larger corpora are split into several batches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import BaseModel

from llmscisci.backends.base import GenParams, Messages
from llmscisci.backends.batch.provider import BatchProvider, RemoteStatus, RowResult, register_batch_provider
from llmscisci.backends.retry import MalformedResponse

_STATES = {"JOB_STATE_SUCCEEDED": "completed", "JOB_STATE_FAILED": "failed", "JOB_STATE_EXPIRED": "expired",
           "JOB_STATE_CANCELLED": "cancelled", "JOB_STATE_PARTIALLY_SUCCEEDED": "completed"}


def _state_name(state) -> str:
    return getattr(state, "name", None) or str(state).rsplit(".", 1)[-1]


@register_batch_provider("gemini")
class GeminiBatch(BatchProvider):
    name = "gemini"
    max_requests = 50_000
    max_bytes = 20 * 1024 * 1024

    def row(self, custom_id: str, messages: Messages, params: GenParams, schema: type[BaseModel] | None):
        from google.genai import types

        from llmscisci.backends.gemini_backend import to_contents

        system, contents = to_contents(messages)
        return types.InlinedRequest(model=self.live.model, contents=contents, metadata={"key": custom_id},
                                    config=self.live.config(system, params, schema))

    def row_size(self, row) -> int:
        from llmscisci.backends.cache import schema_fingerprint

        n = len(row.model_dump_json(exclude_none=True, exclude={"config": {"response_schema"}}).encode("utf-8"))
        schema = row.config.response_schema if row.config is not None else None
        if isinstance(schema, type):  # a pydantic class: sent as its JSON schema
            n += len(json.dumps(schema_fingerprint(schema)["json_schema"]))
        return n + 1

    def submit(self, rows: list, attempt: int) -> str:
        from google.genai import types

        job = self.call("creating the batch job", lambda: self.client.batches.create(
            model=self.live.model, src=rows,
            config=types.CreateBatchJobConfig(display_name=f"llmscisci-attempt-{attempt}")))
        return job.name

    def _job(self, batch_id: str):
        return self.call(f"reading batch {batch_id}", lambda: self.client.batches.get(name=batch_id))

    def status(self, batch_id: str) -> RemoteStatus:
        job = self._job(batch_id)
        name = _state_name(job.state)
        responses = (job.dest.inlined_responses or []) if job.dest is not None else []
        ok = sum(1 for r in responses if r.response is not None and r.error is None)
        msg = str(job.error.message) if getattr(job, "error", None) is not None and job.error.message else None
        return RemoteStatus(name, _STATES.get(name, "in_progress"), done=ok, failed=len(responses) - ok,
                            total=len(responses), message=msg)

    def results(self, batch_id: str, status: RemoteStatus, schema: type[BaseModel] | None) -> Iterable[RowResult]:
        from llmscisci.backends.gemini_backend import to_reply

        job = self._job(batch_id)
        responses = (job.dest.inlined_responses or []) if job.dest is not None else []
        for r in responses:
            cid = str((r.metadata or {}).get("key") or "")
            if r.error is not None or r.response is None:
                err = r.error
                detail = (getattr(err, "message", None) or (err.get("message") if isinstance(err, dict) else None)
                          or "no response")
                yield RowResult(cid, error=f"batch request failed: {detail}")
                continue
            try:
                yield RowResult(cid, reply=to_reply(r.response))
            except MalformedResponse as exc:
                yield RowResult(cid, error=f"batch result unreadable: {exc}")

    def cancel(self, batch_id: str) -> None:
        self.call(f"cancelling {batch_id}", lambda: self.client.batches.cancel(name=batch_id))
