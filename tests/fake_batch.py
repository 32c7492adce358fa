"""Local servers (127.0.0.1) speaking the providers' batch wire formats, on top of the live fakes in
fakeservers.py (which they extend, so the same server also answers live calls, identically):

- FakeOpenAIBatch: POST /v1/files (multipart upload), POST /v1/batches, GET /v1/batches/{id},
  POST /v1/batches/{id}/cancel, GET /v1/files/{id}/content (output and error files);
- FakeAnthropicBatch: POST /v1/messages/batches (inline requests), GET .../{id}, POST .../{id}/cancel,
  GET .../{id}/results (JSONL);
- FakeGeminiBatch: POST /v1beta/models/{model}:batchGenerateContent (inline requests),
  GET /v1beta/batches/{id} (inline responses in the operation's metadata), POST .../{id}:cancel.

Each row is answered from its request exactly as the live endpoint would answer it, so a batch run and
a live run of the same items can be compared. A seeded BatchPlan injects the faults: batches that fail
validation, batches that expire with some rows done, per-row errors, results out of order, and a hold
(batches stay in progress until released: a process can be killed between submit and collect).
Bookkeeping proves nothing is paid twice: `answered` counts each billed row by its request body.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from fakeservers import FakeAnthropic, FakeGemini, FakeOpenAI, FakeServer


@dataclass
class BatchPlan:
    """Faults by batch creation order (1-based) and per row; everything seeded, nothing timed."""

    polls: int = 1  # status reads that still say "in progress" before a batch ends
    fail_validation: set = field(default_factory=set)  # batch numbers that fail validation
    expire: set = field(default_factory=set)  # batch numbers that expire with half their rows done
    row_error_rate: float = 0.0  # share of rows answered with a per-request error
    shuffle: bool = True  # results in an order other than the requests'
    seed: int = 0
    hold: threading.Event | None = None  # while set is False, batches stay in progress

    def row_fails(self, batch_no: int, cid: str) -> bool:
        if not self.row_error_rate:
            return False
        h = int(hashlib.sha256(f"{self.seed}:{batch_no}:{cid}".encode()).hexdigest()[:8], 16)
        return h / 0xFFFFFFFF < self.row_error_rate


def synth(server: FakeServer, body: dict, model: str) -> tuple[dict, str]:
    """The live endpoint's answer to `body` (no transport faults) and the prompt it answered."""
    prompt, schema = server.parse(body)
    text, refusal, usage = server.reply(prompt, schema)
    return server.answer(body, model, text, refusal, usage), prompt


class BatchMixin:
    """Batch bookkeeping shared by the three fakes; the provider classes do the wire formats."""

    def setup_batches(self, plan: BatchPlan | None) -> None:
        self.plan = plan or BatchPlan()
        self.rng = random.Random(self.plan.seed)
        self.batches: dict[str, dict] = {}
        self.batch_creates = 0
        self.rows_submitted = 0
        self.billed: Counter = Counter()  # request body hash -> rows answered (and paid)
        self.status_reads = 0
        self.cancels = 0
        self.http_requests = 0  # every request of any kind (uploads, creates, polls, downloads, live calls)
        server = self
        base = self.httpd.RequestHandlerClass

        class Handler(base):
            def do_GET(self):  # noqa: N802
                server._count()
                server._batch_route(self, "GET")

            def do_POST(self):  # noqa: N802
                server._count()
                if not server._batch_route(self, "POST"):
                    server._handle(self)

        self.httpd.RequestHandlerClass = Handler

    def _count(self) -> None:
        with self.lock:
            self.http_requests += 1

    def _read(self, h) -> bytes:
        if (h.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            data = b""
            while True:
                size = int(h.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    h.rfile.readline()
                    return data
                data += h.rfile.read(size)
                h.rfile.readline()
        n = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(n) if n else b""

    def _send_text(self, h, status: int, text: str) -> None:
        data = text.encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/binary")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _new_batch(self, rows: list[tuple[str, dict]], model: str, prefix: str) -> dict:
        """rows: (custom_id, live request body). Answers are computed now, released when the batch ends."""
        with self.lock:
            self.batch_creates += 1
            no = self.batch_creates
            self.rows_submitted += len(rows)
        bid = f"{prefix}{no:04d}"
        b = {"id": bid, "no": no, "rows": rows, "model": model, "reads": 0, "status": "in_progress",
             "results": None, "cancelled": False, "created": time.time()}
        self.batches[bid] = b
        return b

    def _advance(self, b: dict) -> None:
        """One status read: after plan.polls reads (and the hold released), the batch ends."""
        with self.lock:
            self.status_reads += 1
        if b["results"] is not None:
            return
        b["reads"] += 1
        held = self.plan.hold is not None and not self.plan.hold.is_set()
        if not b["cancelled"] and (held or b["reads"] <= self.plan.polls):
            return
        plan, no = self.plan, b["no"]
        rows = list(b["rows"])
        results = []  # (custom_id, kind, payload): kind ok | error | expired | cancelled
        if no in plan.fail_validation:
            b["status"], b["results"] = "failed", []
            return
        cut = len(rows) // 2 if (no in plan.expire or b["cancelled"]) else len(rows)
        for j, (cid, body) in enumerate(rows):
            if j >= cut:
                results.append((cid, "cancelled" if b["cancelled"] else "expired", None))
            elif plan.row_fails(no, cid):
                results.append((cid, "error", "the server had an error processing this request"))
            else:
                obj, _ = synth(self, body, b["model"] or body.get("model", ""))
                with self.lock:
                    self.billed[hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()] += 1
                results.append((cid, "ok", obj))
        if plan.shuffle:
            self.rng.shuffle(results)
        b["results"] = results
        b["status"] = "cancelled" if b["cancelled"] else ("expired" if no in plan.expire else "completed")

    def counts(self, b: dict) -> tuple[int, int, int]:
        res = b["results"] or []
        return (len(b["rows"]), sum(k == "ok" for _, k, _ in res), sum(k != "ok" for _, k, _ in res))

    @property
    def paid_twice(self) -> int:
        return sum(1 for v in self.billed.values() if v > 1)

    @property
    def rows_answered(self) -> int:
        return sum(self.billed.values())


# --- OpenAI --------------------------------------------------------------------------------------
def _multipart_file(h, raw: bytes) -> bytes:
    m = re.search(r"boundary=\"?([^\";]+)\"?", h.headers.get("Content-Type") or "")
    if not m:
        return raw
    for part in raw.split(b"--" + m.group(1).encode()):
        head, _, body = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            return body[:-2] if body.endswith(b"\r\n") else body
    return b""


class FakeOpenAIBatch(BatchMixin, FakeOpenAI):
    def __init__(self, plan: BatchPlan | None = None, **kw):
        super().__init__(**kw)
        self.files: dict[str, bytes] = {}
        self.setup_batches(plan)

    def _file_obj(self, fid: str, data: bytes, purpose: str) -> dict:
        return {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": f"{fid}.jsonl", "purpose": purpose, "status": "processed"}

    def _batch_obj(self, b: dict) -> dict:
        total, ok, bad = self.counts(b)
        out_id = err_id = None
        if b["results"] is not None:
            oks = [r for r in b["results"] if r[1] == "ok"]
            errs = [r for r in b["results"] if r[1] != "ok"]
            if oks:
                out_id = f"file-out-{b['id']}"
                self.files[out_id] = "".join(json.dumps({
                    "id": f"batch_req_{cid}", "custom_id": cid,
                    "response": {"status_code": 200, "request_id": f"req_{cid}", "body": obj},
                    "error": None}) + "\n" for cid, _, obj in oks).encode()
            if errs:
                err_id = f"file-err-{b['id']}"
                lines = []
                for cid, kind, msg in errs:
                    if kind == "error":
                        lines.append({"id": f"batch_req_{cid}", "custom_id": cid, "response": {
                            "status_code": 500, "request_id": f"req_{cid}",
                            "body": {"error": {"message": msg, "type": "server_error"}}}, "error": None})
                    else:
                        code = "batch_expired" if kind == "expired" else "batch_cancelled"
                        lines.append({"id": f"batch_req_{cid}", "custom_id": cid, "response": None,
                                      "error": {"code": code, "message": f"This request could not be executed "
                                                f"before the batch was {kind}."}})
                self.files[err_id] = "".join(json.dumps(x) + "\n" for x in lines).encode()
        errors = None
        if b["status"] == "failed":
            errors = {"object": "list", "data": [{"code": "invalid_request", "line": 1,
                                                  "message": "Model 'x' is not available for batch", "param": "body.model"}]}
        return {"id": b["id"], "object": "batch", "endpoint": "/v1/chat/completions", "errors": errors,
                "input_file_id": b["input_file_id"], "completion_window": "24h", "status": b["status"],
                "output_file_id": out_id, "error_file_id": err_id, "created_at": int(b["created"]),
                "request_counts": {"total": total, "completed": ok, "failed": bad}, "metadata": b["metadata"]}

    def _batch_route(self, h, method: str) -> bool:
        path = h.path.split("?", 1)[0].rstrip("/")
        if method == "POST" and path.endswith("/v1/files"):
            data = _multipart_file(h, self._read(h))
            fid = f"file-{len(self.files) + 1:04d}"
            self.files[fid] = data
            self._send(h, 200, self._file_obj(fid, data, "batch"))
            return True
        if method == "POST" and path.endswith("/v1/batches"):
            body = json.loads(self._read(h) or b"{}")
            lines = [json.loads(x) for x in self.files[body["input_file_id"]].decode().splitlines() if x.strip()]
            b = self._new_batch([(r["custom_id"], r["body"]) for r in lines], "", "batch_")
            b["input_file_id"], b["metadata"] = body["input_file_id"], body.get("metadata")
            self._send(h, 200, self._batch_obj(b))
            return True
        m = re.search(r"/v1/batches/([^/]+)(/cancel)?$", path)
        if m and m.group(1) in self.batches:
            if m.group(2):
                self._read(h)
                self.batches[m.group(1)]["cancelled"] = True
                self.cancels += 1
                self._send(h, 200, {**self._batch_obj(self.batches[m.group(1)]), "status": "cancelling"})
                return True
            b = self.batches[m.group(1)]
            self._advance(b)
            self._send(h, 200, self._batch_obj(b))
            return True
        m = re.search(r"/v1/files/([^/]+)/content$", path)
        if m and m.group(1) in self.files:
            self._send_text(h, 200, self.files[m.group(1)].decode())
            return True
        if method == "GET":
            self._send(h, 404, self.error_body(404, f"no route {path}"))
            return True
        return False


# --- Anthropic -----------------------------------------------------------------------------------
def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class FakeAnthropicBatch(BatchMixin, FakeAnthropic):
    def __init__(self, plan: BatchPlan | None = None, **kw):
        super().__init__(**kw)
        self.setup_batches(plan)

    def _batch_obj(self, b: dict) -> dict:
        res = b["results"]
        counts = {"processing": len(b["rows"]) if res is None else 0, "succeeded": 0, "errored": 0,
                  "canceled": 0, "expired": 0}
        for _, kind, _ in res or []:
            counts[{"ok": "succeeded", "error": "errored", "expired": "expired", "cancelled": "canceled"}[kind]] += 1
        ended = res is not None
        return {"id": b["id"], "type": "message_batch", "processing_status": "ended" if ended else (
                    "canceling" if b["cancelled"] else "in_progress"),
                "request_counts": counts, "created_at": _iso(b["created"]), "expires_at": _iso(b["created"] + 86400),
                "ended_at": _iso(time.time()) if ended else None,
                "cancel_initiated_at": _iso(time.time()) if b["cancelled"] else None, "archived_at": None,
                "results_url": f"{self.root}/v1/messages/batches/{b['id']}/results" if ended else None}

    def _advance(self, b: dict) -> None:
        super()._advance(b)
        if b["status"] == "failed" and b["results"] == []:  # Anthropic validates per request: all rows errored
            b["results"] = [(cid, "error", "invalid_request_error: max_tokens: field required") for cid, _ in b["rows"]]

    def _batch_route(self, h, method: str) -> bool:
        path = h.path.split("?", 1)[0].rstrip("/")
        if method == "POST" and path.endswith("/v1/messages/batches"):
            body = json.loads(self._read(h) or b"{}")
            bad = [r.get("custom_id") for r in body.get("requests", [])
                   if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", str(r.get("custom_id", "")))]
            if bad:
                self._send(h, 400, self.error_body(400, f"requests.custom_id: invalid {bad[0]!r}"))
                return True
            b = self._new_batch([(r["custom_id"], r["params"]) for r in body["requests"]], "", "msgbatch_")
            self._send(h, 200, self._batch_obj(b))
            return True
        m = re.search(r"/v1/messages/batches/([^/]+)(/cancel|/results)?$", path)
        if m and m.group(1) in self.batches:
            b = self.batches[m.group(1)]
            if m.group(2) == "/cancel":
                self._read(h)
                b["cancelled"] = True
                self.cancels += 1
                self._send(h, 200, self._batch_obj(b))
            elif m.group(2) == "/results":
                lines = []
                for cid, kind, payload in b["results"] or []:
                    if kind == "ok":
                        res = {"type": "succeeded", "message": payload}
                    elif kind == "error":
                        etype, _, msg = str(payload).partition(": ")
                        if not msg:
                            etype, msg = "api_error", str(payload)
                        res = {"type": "errored", "error": {"type": "error", "error": {"type": etype, "message": msg}}}
                    else:
                        res = {"type": "expired" if kind == "expired" else "canceled"}
                    lines.append(json.dumps({"custom_id": cid, "result": res}) + "\n")
                self._send_text(h, 200, "".join(lines))
            else:
                self._advance(b)
                self._send(h, 200, self._batch_obj(b))
            return True
        if method == "GET":
            self._send(h, 404, self.error_body(404, f"no route {path}"))
            return True
        return False


# --- Gemini --------------------------------------------------------------------------------------
_GEMINI_STATES = {"in_progress": "BATCH_STATE_RUNNING", "completed": "BATCH_STATE_SUCCEEDED",
                  "failed": "BATCH_STATE_FAILED", "expired": "BATCH_STATE_EXPIRED",
                  "cancelled": "BATCH_STATE_CANCELLED"}


class FakeGeminiBatch(BatchMixin, FakeGemini):
    _batch_create = re.compile(r"/v1(?:beta|alpha)?/models/([^/:]+):batchGenerateContent$")

    def __init__(self, plan: BatchPlan | None = None, **kw):
        super().__init__(**kw)
        self.setup_batches(plan)

    def _batch_obj(self, b: dict) -> dict:
        meta = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
                "model": f"models/{b['model']}", "displayName": b.get("display"),
                "state": _GEMINI_STATES[b["status"]], "createTime": _iso(b["created"])}
        if b["results"] is not None:
            out = []
            for cid, kind, payload in b["results"]:
                if kind == "ok":
                    out.append({"response": payload, "metadata": {"key": cid}})
                else:
                    msg = payload if kind == "error" else f"request {kind}"
                    out.append({"error": {"code": 500 if kind == "error" else 499, "message": msg},
                                "metadata": {"key": cid}})
            if b["status"] != "failed":
                meta["output"] = {"inlinedResponses": {"inlinedResponses": out}}
        return {"name": b["id"], "metadata": meta, "done": b["results"] is not None}

    def _batch_route(self, h, method: str) -> bool:
        path = h.path.split("?", 1)[0].rstrip("/")
        m = self._batch_create.search(path)
        if method == "POST" and m:
            body = json.loads(self._read(h) or b"{}")
            batch = body.get("batch") or {}
            reqs = ((batch.get("inputConfig") or {}).get("requests") or {}).get("requests") or []
            rows = [(str((r.get("metadata") or {}).get("key")), r.get("request") or {}) for r in reqs]
            b = self._new_batch(rows, m.group(1), "batches/fake")
            b["display"] = batch.get("displayName")
            self._send(h, 200, self._batch_obj(b))
            return True
        m = re.search(r"/v1(?:beta|alpha)?/(batches/[^/:]+)(:cancel)?$", path)
        if m and m.group(1) in self.batches:
            b = self.batches[m.group(1)]
            if m.group(2):
                self._read(h)
                b["cancelled"] = True
                self.cancels += 1
                self._send(h, 200, {})
            else:
                self._advance(b)
                self._send(h, 200, self._batch_obj(b))
            return True
        if method == "GET":
            self._send(h, 404, self.error_body(404, f"no route {path}"))
            return True
        return False


BATCH_SERVERS = {"openai": FakeOpenAIBatch, "anthropic": FakeAnthropicBatch, "gemini": FakeGeminiBatch}


def main() -> None:  # pragma: no cover - manual use (the docs' examples)
    import argparse

    ap = argparse.ArgumentParser(description="A fake provider batch server on 127.0.0.1 (prints its base URL).")
    ap.add_argument("provider", choices=sorted(BATCH_SERVERS))
    ap.add_argument("--polls", type=int, default=1)
    ap.add_argument("--row-error-rate", type=float, default=0.0)
    ap.add_argument("--expire", type=int, action="append", default=[], help="batch number that expires")
    ap.add_argument("--fail", type=int, action="append", default=[], help="batch number that fails validation")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    plan = BatchPlan(polls=args.polls, row_error_rate=args.row_error_rate, expire=set(args.expire),
                     fail_validation=set(args.fail), seed=args.seed)
    srv = BATCH_SERVERS[args.provider](plan=plan).start()
    print(srv.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
