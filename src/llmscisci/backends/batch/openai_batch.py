"""OpenAI Batch API (and OpenAI-compatible servers that offer it): a JSONL file of request rows
(`custom_id`, `method`, `url`, `body`) is uploaded with purpose "batch", a batch is created on
/v1/chat/completions with a 24 h window, polled, and its output and error files are downloaded.

The same row and result formats are those of vLLM's offline runner (`vllm run-batch`), which is why
`--batch-file` writes and `llmscisci batch import` reads them (see `request_row` and `parse_result`).
Limits: 50,000 requests and 200 MB per input file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import BaseModel

from llmscisci.backends.base import GenParams, Messages
from llmscisci.backends.batch.provider import BatchProvider, RemoteStatus, RowResult, register_batch_provider
from llmscisci.backends.retry import MalformedResponse

ENDPOINT = "/v1/chat/completions"
_STATES = {"completed": "completed", "failed": "failed", "expired": "expired", "cancelled": "cancelled"}


def request_row(custom_id: str, body: dict) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}


def parse_result(obj: dict) -> RowResult:
    """One line of an OpenAI-format output or error file -> RowResult (reply, or the row's error)."""
    from openai.types.chat import ChatCompletion

    from llmscisci.backends.openai_backend import to_reply

    cid = str(obj.get("custom_id") or "")
    resp = obj.get("response") or {}
    err = obj.get("error")
    if err:
        msg = err.get("message") if isinstance(err, dict) else str(err)
        code = err.get("code") if isinstance(err, dict) else None
        return RowResult(cid, error=f"batch request failed: {code + ': ' if code else ''}{msg}")
    status = resp.get("status_code")
    body = resp.get("body") or {}
    if status not in (None, 200):
        detail = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
        return RowResult(cid, error=f"batch request failed: HTTP {status}: {detail or 'error'}")
    try:
        return RowResult(cid, reply=to_reply(ChatCompletion.model_validate(body)))
    except (MalformedResponse, ValueError) as exc:
        return RowResult(cid, error=f"batch result unreadable: {' '.join(str(exc).split())[:200]}")


@register_batch_provider("openai")
class OpenAIBatch(BatchProvider):
    name = "openai"
    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024

    def row(self, custom_id: str, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> dict:
        return request_row(custom_id, self.live.request(messages, params, schema))

    def submit(self, rows: list, attempt: int) -> str:
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        up = self.call("uploading the batch file", lambda: self.client.files.create(
            file=("llmscisci-batch.jsonl", data, "application/jsonl"), purpose="batch"))
        batch = self.call("creating the batch", lambda: self.client.batches.create(
            input_file_id=up.id, endpoint=ENDPOINT, completion_window="24h",
            metadata={"source": "llmscisci", "attempt": str(attempt)}))
        return batch.id

    def status(self, batch_id: str) -> RemoteStatus:
        b = self.call(f"reading batch {batch_id}", lambda: self.client.batches.retrieve(batch_id))
        counts = b.request_counts
        msg = None
        if b.errors is not None and b.errors.data:
            msg = "; ".join(f"{e.code}: {e.message}" + (f" (line {e.line})" if e.line else "")
                            for e in b.errors.data[:3])
        return RemoteStatus(b.status, _STATES.get(b.status, "in_progress"),
                            done=getattr(counts, "completed", 0) or 0, failed=getattr(counts, "failed", 0) or 0,
                            total=getattr(counts, "total", 0) or 0, message=msg,
                            handle={"output_file_id": b.output_file_id, "error_file_id": b.error_file_id})

    def _lines(self, file_id: str | None) -> list[dict]:
        if not file_id:
            return []
        text = self.call(f"downloading {file_id}", lambda: self.client.files.content(file_id).text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def results(self, batch_id: str, status: RemoteStatus, schema: type[BaseModel] | None) -> Iterable[RowResult]:
        for obj in self._lines(status.handle.get("output_file_id")) + self._lines(status.handle.get("error_file_id")):
            yield parse_result(obj)

    def cancel(self, batch_id: str) -> None:
        self.call(f"cancelling {batch_id}", lambda: self.client.batches.cancel(batch_id))
