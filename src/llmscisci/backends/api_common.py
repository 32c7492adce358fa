"""What every API backend shares: keys from the environment, the response cache, bounded concurrency,
rate limits, the retry policy, pre-flight context checks and the token/cost ledger.

A provider backend only says how to build its SDK client and how to make one call (`_call`), returning
a `Reply`; everything around the call lives here, so the three providers behave the same way.
"""

from __future__ import annotations

import abc
import json
import logging
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError

from llmscisci.backends.base import Backend, BackendOptions, GenParams, Generation, Messages, OnResult
from llmscisci.backends.cache import ResponseCache, cache_key
from llmscisci.backends.pricing import ModelPrice, lookup
from llmscisci.backends.ratelimit import RateLimiter
from llmscisci.backends.retry import Failure, RetryPolicy, classify, redact
from llmscisci.backends.tokens import count_messages
from llmscisci.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class Reply:
    """One provider answer, before the shared post-processing."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    model_version: str | None = None
    refusal: bool = False
    finish_reason: str | None = None
    extra: dict = field(default_factory=dict)


def env_key(names: tuple[str, ...]) -> str | None:
    for n in names:
        val = os.environ.get(n, "").strip()
        if val:
            return val
    return None


def safe_url(url: str | None) -> str | None:
    """A base URL without any user:password part (for config.json and messages); a comma-separated
    list of URLs (several servers) URL by URL."""
    if not url:
        return url
    if "," in url:
        return ",".join(safe_url(u.strip()) or "" for u in url.split(","))
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "(invalid url)"


def check_options(opts: BackendOptions) -> None:
    if opts.concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    if opts.timeout <= 0:
        raise UserError("--timeout must be positive (seconds)")
    if opts.max_attempts < 1:
        raise UserError("the number of attempts must be at least 1")
    for name in ("rpm", "tpm"):
        val = getattr(opts, name)
        if val is not None and val <= 0:
            raise UserError(f"--{name} must be positive")
    if opts.backoff_base < 0 or opts.backoff_max < 0:
        raise UserError("backoff times must not be negative")


def schema_error(schema: type[BaseModel], text: str) -> str | None:
    """None when `text` is JSON that validates against `schema`, else a short reason."""
    try:
        schema.model_validate_json(text)
        return None
    except ValidationError as exc:
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
        kind = "invalid JSON" if first.get("type") == "json_invalid" else "schema-invalid JSON"
        return f"{kind}: {where}: {first.get('msg', 'does not match the schema')}"


class APIBackend(Backend, abc.ABC):
    provider: str = "api"
    key_envs: tuple[str, ...] = ()

    def __init__(self, model: str, options: BackendOptions | None = None):
        self.options = opts = options or BackendOptions()
        if not model or not model.strip():
            raise UserError(f"no model name after '{self.provider}:'")
        check_options(opts)
        if opts.base_url and "," in opts.base_url and self.provider != "openai":
            raise UserError(f"--base-url: a list of servers is for OpenAI-compatible servers, not {self.provider}")
        self.model = model.strip()
        self.name = f"{self.provider}:{self.model}"
        key = self._resolve_key()
        self._secrets = (key,) if key else ()
        self.price: ModelPrice | None = lookup(self.provider, self.model, opts.prices_path)
        self.context_length = self.price.context if self.price else None
        self.policy = RetryPolicy(opts.max_attempts, opts.backoff_base, opts.backoff_max)
        self.limiter = RateLimiter(opts.rpm, opts.tpm)
        self.cache = ResponseCache(opts.cache_path) if opts.use_cache else None
        self.model_versions: set[str] = set()
        self.calls = 0  # provider calls made (attempts included)
        self._count_lock = threading.Lock()
        self.client = self._make_client(key)
        del key

    # --- provider hooks --------------------------------------------------------------------
    @abc.abstractmethod
    def _make_client(self, key: str | None): ...

    @abc.abstractmethod
    def _call(self, messages: Messages, params: GenParams, schema: type[BaseModel] | None) -> Reply: ...

    def _transient(self) -> tuple[type[BaseException], ...]:
        """SDK exception types worth a retry (timeouts, connection errors)."""
        return ()

    def _missing_key_ok(self) -> bool:
        return False

    def _dummy_key(self) -> str | None:
        return None

    # --- setup -----------------------------------------------------------------------------
    def _resolve_key(self) -> str | None:
        key = env_key(self.key_envs)
        if key is None:
            if self._missing_key_ok():
                return self._dummy_key()
            names = " or ".join(self.key_envs)
            raise UserError(f"{names} is not set: export the API key to use {self.name} "
                            "(keys are read from the environment only)")
        return key

    def answer_options(self) -> dict:
        """Provider options (beyond model, messages, params, schema) that change answers."""
        return {}

    def backend_id(self) -> str:
        """The cache's notion of 'which backend': provider, a non-default endpoint, answer options."""
        ident = self.provider + (f"@{safe_url(self.options.base_url)}" if self.options.base_url else "")
        extra = self.answer_options()
        return ident + (json.dumps(extra, sort_keys=True) if extra else "")

    def describe(self) -> dict:
        o = self.options
        return {
            "name": self.name,
            "provider": self.provider,
            "model": self.model,
            "base_url": safe_url(o.base_url),
            "context_length": self.context_length,
            "price_per_mtok": ({"row": self.price.model, "input": self.price.input, "output": self.price.output}
                               if self.price else None),
            "concurrency": o.concurrency, "rpm": o.rpm, "tpm": o.tpm, "timeout": o.timeout,
            "max_attempts": o.max_attempts,
            "cache": {"enabled": o.use_cache, "refresh": o.refresh,
                      "path": str(self.cache.path) if self.cache is not None else None},
            "model_versions": sorted(self.model_versions),
        }

    # --- tokens ------------------------------------------------------------------------------
    def count_tokens(self, messages: Messages) -> int:
        return count_messages(messages, self.model)[0]

    def cost(self, tokens_in: int, tokens_out: int) -> float | None:
        return self.price.cost(tokens_in, tokens_out) if self.price else None

    # --- one item ----------------------------------------------------------------------------
    def _classify(self, exc: BaseException) -> Failure:
        return classify(exc, self._transient(), self._secrets)

    def _attempt(self, messages: Messages, params: GenParams, schema, budget: int, timing: dict) -> Reply:
        self.limiter.acquire(budget)
        with self._count_lock:
            self.calls += 1
        t0 = time.perf_counter()
        try:
            return self._call(messages, params, schema)
        finally:
            timing["last"] = time.perf_counter() - t0

    def _one(self, messages: Messages, params: GenParams, schema, prompt_tokens: int) -> Generation:
        t0 = time.perf_counter()
        timing: dict = {}
        budget = prompt_tokens + params.max_new_tokens

        def on_retry(attempt: int, fail: Failure, delay: float) -> None:
            log.debug("%s: attempt %d failed (%s); retrying in %.3fs", self.name, attempt, fail.reason, delay)

        last: list[Failure] = []

        def classify_fn(exc: BaseException) -> Failure:
            fail = self._classify(exc)
            last[:] = [fail]
            return fail

        reply, err, attempts = self.policy.run(
            lambda: self._attempt(messages, params, schema, budget, timing), classify_fn, on_retry)
        wall = time.perf_counter() - t0
        if err is not None:
            # call_failed: the server gave no answer (a resumed run asks again); failure_kind: a permanent
            # failure's kind (auth, model, context, request), which the runners' stop rule reads
            extra: dict = {"attempts": attempts, "call_failed": True}
            if last and last[0].kind:
                extra["failure_kind"] = last[0].kind
            if last and last[0].connection:  # the server could not be reached: the stop rule counts these
                extra["connection_failed"] = True
            return Generation(error=err, seconds=wall, extra=extra)
        assert isinstance(reply, Reply)
        gen = Generation(
            text=reply.text or "",
            tokens_in=int(reply.tokens_in or 0),
            tokens_out=int(reply.tokens_out or 0),
            seconds=timing.get("last", wall),
            model_version=reply.model_version,
            refusal=reply.refusal,
            extra={**reply.extra, "attempts": attempts, "wall_seconds": round(wall, 4)},
        )
        if reply.finish_reason:
            gen.extra["finish_reason"] = reply.finish_reason
        gen.cost_usd = self.cost(gen.tokens_in, gen.tokens_out)
        if not gen.refusal:
            if not gen.text.strip():
                gen.error = f"empty response (finish reason: {reply.finish_reason or 'unknown'})"
            elif schema is not None:
                gen.error = schema_error(schema, gen.text)
        if reply.model_version:
            self.model_versions.add(reply.model_version)
        return gen

    # --- many items ------------------------------------------------------------------------
    def generate(
        self,
        conversations: list[Messages],
        params: GenParams = GenParams(),
        schema: type[BaseModel] | None = None,
        on_result: OnResult | None = None,
    ) -> list[Generation]:
        n = len(conversations)
        results: list[Generation | None] = [None] * n
        opts = self.options
        read_cache = self.cache is not None and not opts.refresh

        def done(i: int, gen: Generation) -> None:
            results[i] = gen
            if on_result is not None:
                on_result(i, gen)

        todo: list[tuple[int, str | None, int]] = []
        over = 0
        for i, msgs in enumerate(conversations):
            fits, ntok = self.check_context(msgs, params.max_new_tokens)
            if not fits:
                over += 1
                done(i, Generation(error=f"prompt of about {ntok} tokens + {params.max_new_tokens} new tokens "
                                         f"exceeds the context window of {self.name} ({self.context_length})"))
                continue
            key = cache_key(self.backend_id(), self.model, msgs, params, schema) if self.cache is not None else None
            if read_cache and key is not None:
                hit = self.cache.get(key)
                if hit is not None:
                    hit.extra = {**hit.extra, "cached_cost_usd": hit.cost_usd, "cached_seconds": hit.seconds}
                    hit.cost_usd = 0.0 if hit.cost_usd is not None else None
                    hit.seconds = 0.0
                    if hit.model_version:
                        self.model_versions.add(hit.model_version)
                    done(i, hit)
                    continue
            todo.append((i, key, ntok))
        if over:
            log.warning("%s: %d prompt(s) exceed the context window; recorded as failed without a call",
                        self.name, over)
        if not todo:
            return results  # type: ignore[return-value]

        def work(i: int, key: str | None, ntok: int) -> Generation:
            gen = self._one(conversations[i], params, schema, ntok)
            if key is not None and self.cache is not None and _cacheable(gen):
                try:
                    self.cache.put(key, self.backend_id(), self.model, gen)
                except Exception as exc:  # noqa: BLE001 - a cache write failure must not lose the answer
                    log.warning("could not write the response cache: %s", exc)
            return gen

        workers = min(opts.concurrency, len(todo))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"llmscisci-{self.provider}")
        queue = iter(todo)
        pending: dict[Future, int] = {}

        def fill() -> None:
            # at most `workers` requests in flight, each started after the previous results were
            # handed on: when on_result stops the run (it raises), no further request goes out
            while len(pending) < workers:
                nxt = next(queue, None)
                if nxt is None:
                    return
                pending[pool.submit(work, *nxt)] = nxt[0]

        try:
            fill()
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = pending.pop(fut)
                    try:
                        gen = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a bug in post-processing: record, go on
                        gen = Generation(error=redact(f"internal error: {type(exc).__name__}: {exc}", self._secrets))
                    done(i, gen)
                fill()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]


def _cacheable(gen: Generation) -> bool:
    """Answers are cached (refusals and schema-invalid answers too); failures and empty answers are not."""
    if gen.error is None:
        return True
    return gen.error.startswith(("schema-invalid JSON", "invalid JSON"))
