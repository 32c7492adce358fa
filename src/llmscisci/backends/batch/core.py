"""Batch mode behind the ordinary backend interface: `BatchBackend.generate` answers the same
conversations a live backend would, but through the provider's batch API, at the batch price.

Per conversation: an answer already collected for this run (batch_results.jsonl) or in the response
cache is used as is; the rest get a short custom id (kept with the cache key and the item in
batches.json), are built into provider rows by the live backend's own request builder (same messages,
parameters and structured-output schema), split under the provider's limits, submitted and polled with an
injectable clock. Results come back in any order and are matched by custom id, stored in the run folder
and the response cache, and handed to `on_result`. Rows that failed or expired are resubmitted (in a new
batch, or live with fallback "live") until `attempts` submissions are spent; then the item is recorded
as failed, like a live failure. Batches already submitted are never submitted again: a re-run polls them.

Two modes submit nothing: `file` writes the OpenAI-format request rows (for OpenAI's batch upload or
`vllm run-batch`) and raises BatchPending; `imported` answers from an OpenAI-format results file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from llmscisci.backends.api_common import APIBackend, Reply, _cacheable, safe_url, schema_error
from llmscisci.backends.base import Backend, GenParams, Generation, Messages, OnResult
from llmscisci.backends.batch.provider import BatchProvider, RowResult, split_rows
from llmscisci.backends.batch.state import TERMINAL, BatchState
from llmscisci.backends.cache import cache_key
from llmscisci.errors import UserError

log = logging.getLogger(__name__)
FALLBACKS = ("none", "live")


class BatchPending(Exception):
    """Nothing more to do now (a request file was written); the command ends successfully."""

    def __init__(self, message: str, run_dir=None, file: dict | None = None):
        super().__init__(message)
        self.run_dir, self.file = run_dir, file


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass
class BatchOptions:
    poll_interval: float = 60.0  # seconds between status checks
    attempts: int = 2  # submissions per request (first + resubmissions)
    fallback: str = "none"  # none | live: resubmit failed rows as live requests
    file: str | None = None  # --batch-file: write the request rows here, submit nothing
    file_model: str | None = None  # model name written into the rows (default: the model's own)
    imported: dict[str, RowResult] | None = None  # `batch import`: results read from a file
    import_source: str | None = None
    max_requests: int | None = None  # override the provider's per-batch limits (tests, cautious users)
    max_bytes: int | None = None

    def check(self) -> None:
        if self.poll_interval < 0:
            raise UserError("--poll-interval must not be negative")
        if self.attempts < 1:
            raise UserError("--batch-attempts must be at least 1")
        if self.fallback not in FALLBACKS:
            raise UserError(f"unknown --batch-fallback {self.fallback!r}: use none or live")

    def describe(self) -> dict:
        return {"poll_interval": self.poll_interval, "attempts": self.attempts, "fallback": self.fallback,
                "file": self.file, "file_model": self.file_model}


def to_generation(live: APIBackend, reply: Reply, schema: type[BaseModel] | None, batch_id: str | None) -> Generation:
    """A batch row's reply -> Generation, post-processed exactly as a live answer, at the batch price."""
    gen = Generation(text=reply.text or "", tokens_in=int(reply.tokens_in or 0), tokens_out=int(reply.tokens_out or 0),
                     seconds=0.0, model_version=reply.model_version, refusal=reply.refusal,
                     extra={**reply.extra, "batch": batch_id})
    if reply.finish_reason:
        gen.extra["finish_reason"] = reply.finish_reason
    gen.cost_usd = live.price.batch_cost(gen.tokens_in, gen.tokens_out) if live.price else None
    if not gen.refusal:
        if not gen.text.strip():
            gen.error = f"empty response (finish reason: {reply.finish_reason or 'unknown'})"
        elif schema is not None:
            gen.error = schema_error(schema, gen.text)
    return gen


class BatchBackend(Backend):
    """Wraps a live API backend (its request builder, price, cache and client) with batch submission."""

    def __init__(self, live: APIBackend, provider: BatchProvider | None, options: BatchOptions | None = None,
                 clock=None, report: Callable[[str], None] | None = None):
        self.live, self.provider = live, provider
        self.opts = options or BatchOptions()
        self.opts.check()
        self.clock = clock or RealClock()
        self.report = report or (lambda line: log.warning("%s", line))
        self.name = live.name
        self.context_length = live.context_length
        self.run_dir: Path | None = None
        self.items: list | None = None
        self.calls = 0  # provider calls for batches (submits, polls, downloads)

    # --- Backend ---------------------------------------------------------------------------
    def count_tokens(self, messages: Messages) -> int:
        return self.live.count_tokens(messages)

    def describe(self) -> dict:
        return {**self.live.describe(), "batch": self.opts.describe()}

    def bind_run(self, run_dir: str | Path, items: list | None = None) -> None:
        """Where batches.json lives, and the item each conversation of the next generate() stands for."""
        self.run_dir, self.items = Path(run_dir), items

    def bind_items(self, items: list) -> None:
        self.items = items

    def generate(self, conversations: list[Messages], params: GenParams = GenParams(),
                 schema: type[BaseModel] | None = None, on_result: OnResult | None = None) -> list[Generation]:
        st = BatchState.load(self.run_dir)
        st.backend = self.name
        st.base_url = safe_url(self.live.options.base_url)
        results: list[Generation | None] = [None] * len(conversations)

        def done(i: int, gen: Generation) -> None:
            results[i] = gen
            if on_result is not None:
                on_result(i, gen)

        waiting = self._assign(st, conversations, params, schema, done)
        first = {cid: conversations[idx[0]] for cid, idx in waiting.items()}
        if self.opts.file is not None:
            self._write_file(st, first, params, schema)
        if self.opts.imported is not None:
            self._import(st, waiting, schema, done)
            return results  # type: ignore[return-value]
        if waiting or st.open_batches():
            self._loop(st, waiting, first, params, schema, done)
        return results  # type: ignore[return-value]

    # --- steps -----------------------------------------------------------------------------
    def _assign(self, st: BatchState, conversations, params, schema, done) -> dict[str, list[int]]:
        """Answer what is already answered; give every other distinct request a custom id."""
        live = self.live
        read_cache = live.cache is not None and not live.options.refresh
        by_key = st.by_key()
        waiting: dict[str, list[int]] = {}
        for i, msgs in enumerate(conversations):
            key = cache_key(live.backend_id(), live.model, msgs, params, schema)
            cid = by_key.get(key)
            if cid is not None and cid in st.results:
                done(i, st.result(cid))
                continue
            if read_cache:
                hit = live.cache.get(key)
                if hit is not None:
                    hit.extra = {**hit.extra, "cached_cost_usd": hit.cost_usd, "cached_seconds": hit.seconds}
                    hit.cost_usd = 0.0 if hit.cost_usd is not None else None
                    hit.seconds = 0.0
                    done(i, hit)
                    continue
            item = list(self.items[i]) if self.items is not None and i < len(self.items) else None
            if cid is None:
                cid = st.new_id()
                st.requests[cid] = {"key": key, "items": [], "attempts": 0, "state": "new", "batch": None,
                                    "error": None}
                by_key[key] = cid
            if item is not None and item not in st.requests[cid]["items"]:
                st.requests[cid]["items"].append(item)
            waiting.setdefault(cid, []).append(i)
        st.save()
        return waiting

    def _write_file(self, st: BatchState, first: dict[str, Messages], params, schema) -> None:
        from llmscisci.backends.batch.openai_batch import request_row

        model = self.opts.file_model or self.live.model
        path = Path(self.opts.file).expanduser()
        rows = []
        for cid, msgs in first.items():
            body = self.live.request(msgs, params, schema)
            body["model"] = model
            rows.append(request_row(cid, body))
            st.requests[cid]["state"] = "in_file"
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            raise UserError(f"--batch-file {path}: cannot write ({exc})") from None
        st.mode = "file"
        st.file = {"path": str(path), "model": model, "rows": len(rows)}
        st.save()
        raise BatchPending(f"wrote {len(rows)} request rows to {path} (model {model}); nothing was submitted; "
                           f"run folder: {self.run_dir}", self.run_dir, st.file)

    def _import(self, st: BatchState, waiting: dict[str, list[int]], schema, done) -> None:
        got = self.opts.imported or {}
        src = self.opts.import_source or "the results file"
        answered, gens = [], {}
        for cid in waiting:
            row = got.get(cid)
            if row is not None and row.reply is not None:
                gens[cid] = to_generation(self.live, row.reply, schema, None)
                answered.append((cid, gens[cid], None))
            else:
                err = row.error if row is not None else f"no result for request {cid} in {src}"
                st.requests[cid].update(state="failed", error=err)
                gens[cid] = Generation(error=err, extra={"custom_id": cid})
        self._store(st, answered)
        st.save()
        for cid, idx in waiting.items():
            for i in idx:
                done(i, gens[cid])

    def _store(self, st: BatchState, rows: list[tuple[str, Generation, str | None]]) -> None:
        """Answers into the run folder's results file, then (cacheable ones) into the response cache."""
        st.add_results(rows)
        cache = self.live.cache
        keep = [(st.requests[cid]["key"], self.live.backend_id(), self.live.model, gen)
                for cid, gen, _ in rows if _cacheable(gen)]
        if cache is not None and keep:
            try:
                cache.put_many(keep)
            except Exception as exc:  # noqa: BLE001 - a cache write failure must not lose the answer
                log.warning("could not write the response cache: %s", exc)

    def _loop(self, st: BatchState, waiting: dict[str, list[int]], first: dict[str, Messages], params, schema,
              done) -> None:
        t0 = self.clock.now()
        last_line: dict[str, str] = {}
        while True:
            self._settle(st, waiting, first, params, schema, done)
            todo = [cid for cid in waiting if st.requests[cid]["state"] in ("new", "retry", "in_file")]
            if todo:
                self._submit(st, todo, first, params, schema)
            open_ = st.open_batches()
            if not open_:
                self._settle(st, waiting, first, params, schema, done)
                if not waiting:
                    return
                if not any(st.requests[c]["state"] == "retry" for c in waiting):
                    raise UserError(f"internal error: {len(waiting)} batch requests neither open nor answered")
                continue
            for b in open_:
                s = self.provider.status(b["id"])
                self.calls += 1
                b.update(status=s.status, state=s.state, counts={"done": s.done, "failed": s.failed, "total": s.total})
                line = (f"batch {b['id']} [{s.status}] {s.done}/{s.total or len(b['ids'])} done, {s.failed} failed, "
                        f"elapsed {_hms(self.clock.now() - t0)}")
                if last_line.get(b["id"]) != line.rsplit(", elapsed", 1)[0]:
                    self.report(line)
                    last_line[b["id"]] = line.rsplit(", elapsed", 1)[0]
                if s.state in TERMINAL:
                    self._collect(st, b, s, schema)
            st.save()
            if any(not b.get("collected") for b in st.batches):
                self.clock.sleep(self.opts.poll_interval)

    def _submit(self, st: BatchState, todo: list[str], first: dict[str, Messages], params, schema) -> None:
        if self.opts.fallback == "live" and any(st.requests[c]["attempts"] >= 1 for c in todo):
            again = [c for c in todo if st.requests[c]["attempts"] >= 1]
            self._live(st, again, first, params, schema)
            todo = [c for c in todo if c not in again]
            if not todo:
                return
        p = self.provider
        rows = [(cid, p.row(cid, first[cid], params, schema)) for cid in todo]
        chunks = split_rows(rows, p.row_size, self.opts.max_requests or p.max_requests,
                            self.opts.max_bytes or p.max_bytes)
        for chunk in chunks:
            ids = [cid for cid, _ in chunk]
            attempt = max(st.requests[c]["attempts"] for c in ids) + 1
            batch_id = p.submit([row for _, row in chunk], attempt)
            self.calls += 1
            st.batches.append({"id": batch_id, "provider": p.name, "attempt": attempt, "ids": ids,
                               "submitted_unix": round(time.time(), 3), "status": "submitted",
                               "state": "in_progress", "collected": False})
            for c in ids:
                st.requests[c].update(state="submitted", batch=batch_id, attempts=st.requests[c]["attempts"] + 1)
            st.save()  # at once: a crash after this line never submits these rows again
            self.report(f"submitted batch {batch_id}: {len(ids)} requests (attempt {attempt})")

    def _live(self, st: BatchState, cids: list[str], first: dict[str, Messages], params, schema) -> None:
        self.report(f"resubmitting {len(cids)} failed requests live (--batch-fallback live)")
        gens = self.live.generate([first[c] for c in cids], params, schema=schema)
        answered = []
        for cid, gen in zip(cids, gens):
            st.requests[cid]["attempts"] += 1
            if gen.error is None or _cacheable(gen):
                gen.extra = {**gen.extra, "live_fallback": True}
                answered.append((cid, gen, None))
            else:
                st.requests[cid].update(state="failed", error=gen.error)
        st.add_results(answered)  # the live backend has cached them already
        st.save()

    def _collect(self, st: BatchState, b: dict, s, schema) -> None:
        ids = set(b["ids"])
        answered: dict[str, Generation] = {}
        for row in self.provider.results(b["id"], s, schema):
            cid = row.custom_id
            if cid not in ids:
                log.warning("batch %s: result for unknown custom_id %r ignored", b["id"], cid)
                continue
            if cid in st.results or cid in answered:
                continue
            if row.reply is not None:
                answered[cid] = to_generation(self.live, row.reply, schema, b["id"])
            else:
                st.requests[cid].update(state="failed", error=row.error)
        self._store(st, [(cid, gen, b["id"]) for cid, gen in answered.items()])
        reason = {"failed": f"batch {b['id']} failed" + (f": {s.message}" if s.message else ""),
                  "expired": f"batch {b['id']} expired before this request ran",
                  "cancelled": f"batch {b['id']} was cancelled before this request ran"}.get(s.state)
        for cid in b["ids"]:
            req = st.requests[cid]
            if cid not in st.results and req.get("batch") == b["id"]:
                req.update(state="failed", error=req.get("error") or reason or "no result in the batch output")
        b["collected"] = True

    def _settle(self, st: BatchState, waiting: dict[str, list[int]], first, params, schema, done) -> None:
        """Hand out answered requests; send failed ones back (attempts left) or record them as failed."""
        collected = {b["id"] for b in st.batches if b.get("collected")}
        for cid in list(waiting):
            req = st.requests[cid]
            if req["state"] == "submitted" and req.get("batch") in collected and cid not in st.results:
                req.update(state="failed", error=req.get("error") or "no result in the batch output")
            if cid in st.results:
                gen = st.result(cid)
            elif req["state"] == "failed":
                if req["attempts"] < self.opts.attempts:
                    req["state"] = "retry"
                    continue
                gen = Generation(error=f"{req['error']} (after {req['attempts']} batch submissions)",
                                 extra={"custom_id": cid, "batch": req.get("batch")})
            else:
                continue
            for i in waiting.pop(cid):
                done(i, gen)


def _hms(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
