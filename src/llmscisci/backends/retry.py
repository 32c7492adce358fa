"""Retry policy for API calls: exponential backoff with jitter, honouring Retry-After, bounded attempts.

The SDKs' own retries are turned off (max_retries=0 or equivalent) so that this policy is the only one.
Transient failures (HTTP 408/409/429/5xx, timeouts, connection errors, a response body that is not
valid JSON) are retried; anything else (400, 401, 404, ...) fails the item at once.

Permanent failures are also named (`Failure.kind`): auth, model (not found), context (overflow) and
request (a request the server will never accept). Servers differ in the status code they use -- a
llama.cpp build answers an unsupported `response_format` with HTTP 500 and a validation message, vLLM
reports an unknown model as 404, llama-cpp-python as 400 -- so the kind is read from the status AND the
message, and a 5xx whose message says the request is invalid is not retried.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})
MAX_RETRY_AFTER = 600.0  # never wait longer than this on one Retry-After

_SECRETISH = re.compile(r"\b(sk-[A-Za-z0-9_*.-]{3,}|AIza[0-9A-Za-z_*-]{6,}|Bearer\s+\S+)|\S*\*{3,}\S*")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove key values, key-looking tokens and masked keys (providers echo 'sk-ab****wxyz' in 401s)."""
    for s in secrets:
        if s:
            text = text.replace(s, "[redacted]")
    return _SECRETISH.sub("[redacted]", text)


class MalformedResponse(Exception):
    """A response that arrived but cannot be read (no choices, truncated body...): worth a retry."""


PERMANENT_KINDS = ("auth", "model", "context", "request")
_CONTEXT = ("maximum context length", "context_length_exceeded", "context length exceeded",
            "exceeds the available context size", "exceed_context_size", "context window", "too many tokens",
            "prompt is too long", "input is too long", "longer than the model's context")
_MODEL = ("model_not_found", "does not exist", "not found", "no such model", "unknown model", "try pulling it")
_AUTH = ("invalid api key", "incorrect api key", "invalid_api_key", "unauthorized", "authentication",
         "api key not valid", "permission denied", "missing api key")
_INVALID_5XX = ("validation error", "input should be", "literal_error", "response_format", "must be one of",
                "json_schema", "invalid request", "unrecognized request argument", "extra inputs are not permitted")


def permanent_kind(status: int | None, message: str) -> str | None:
    """The kind of a permanent failure (auth, model, context, request), or None when it may pass."""
    msg = message.lower()
    if status in (401, 403) or (status in (400, 404, 500) and any(k in msg for k in _AUTH)):
        return "auth"
    if status is None:
        return None
    if status <= 500 and any(k in msg for k in _CONTEXT):
        return "context"
    if status == 404 or (status in (400, 422) and "model" in msg and any(k in msg for k in _MODEL)):
        return "model"
    if status in (400, 405, 413, 415, 422):
        return "request"
    if status >= 500 and status not in (502, 503, 504) and any(k in msg for k in _INVALID_5XX):
        return "request"
    return None


@dataclass
class Failure:
    """What went wrong with one attempt: whether to retry, the server's Retry-After (seconds), and the
    kind of a permanent failure (see PERMANENT_KINDS; None for transient or unknown ones)."""

    reason: str
    retryable: bool
    retry_after: float | None = None
    kind: str | None = None
    status: int | None = None
    connection: bool = False  # the server could not be reached at all (refused, reset, unknown host)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds, fractional allowed, or HTTP date)."""
    if not headers:
        return None
    try:
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
    except Exception:  # noqa: BLE001 - odd header containers
        return None
    ms = lower.get("retry-after-ms")
    if ms:
        try:
            return min(max(float(ms) / 1000.0, 0.0), MAX_RETRY_AFTER)
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if not raw:
        return None
    try:
        return min(max(float(raw), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
        return min(max(when.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "code", "status"):
        val = getattr(exc, attr, None)
        if isinstance(val, int) and 100 <= val < 600:
            return val
    resp = getattr(exc, "response", None)
    val = getattr(resp, "status_code", None)
    return val if isinstance(val, int) else None


def headers_of(exc: BaseException) -> Mapping[str, str] | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    return headers if headers is not None else None


def classify(exc: BaseException, transient: tuple[type[BaseException], ...] = (),
             secrets: tuple[str, ...] = ()) -> Failure:
    """Map an exception raised by an SDK call to a Failure (generic: works for all three SDKs)."""
    status = status_of(exc)
    name = type(exc).__name__
    if status is not None:
        msg = redact(_short(exc), secrets)
        kind = permanent_kind(status, msg)
        retryable = kind is None and (status in RETRY_STATUS or status >= 500)
        return Failure(f"HTTP {status} {name}: {msg}", retryable, parse_retry_after(headers_of(exc)), kind, status)
    lname = name.lower()
    if isinstance(exc, ConnectionError) or ("connect" in lname and "timeout" not in lname):
        return Failure(f"{name}: {redact(_short(exc), secrets)}", True, connection=True)
    if isinstance(exc, transient) or isinstance(exc, (TimeoutError, json.JSONDecodeError, MalformedResponse)):
        return Failure(f"{name}: {redact(_short(exc), secrets)}", True)
    if any(w in lname for w in ("timeout", "connection", "transport", "protocol", "remoteprotocol", "decode",
                                "validation")):
        return Failure(f"{name}: {redact(_short(exc), secrets)}", True)
    return Failure(f"{name}: {redact(_short(exc), secrets)}", False)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    body = getattr(exc, "body", None)
    if body and " - " not in text and text.startswith("Error code"):  # the SDK left a non-OpenAI body out
        text += " - " + " ".join((body if isinstance(body, str) else json.dumps(body, default=str)).split())
    return text[:limit] + ("..." if len(text) > limit else "")


@dataclass
class RetryPolicy:
    """delay(n) = min(max_delay, base * 2**(n-1)) scaled by a jitter factor in [0.5, 1]; at least Retry-After."""

    max_attempts: int = 6
    base: float = 1.0
    max_delay: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        with self._lock:
            jitter = 0.5 + 0.5 * self.rng.random()
        backoff = min(self.max_delay, self.base * (2 ** max(attempt - 1, 0))) * jitter
        if retry_after is not None:
            return max(backoff, retry_after)
        return backoff

    def run(self, fn: Callable[[], object], classify_fn: Callable[[BaseException], Failure],
            on_retry: Callable[[int, Failure, float], None] | None = None):
        """Call fn until it succeeds or attempts run out. Returns (result, None, attempts) or
        (None, last_failure_reason, attempts). Never raises for failures of fn (BaseException
        subclasses such as KeyboardInterrupt still propagate)."""
        attempts = max(1, int(self.max_attempts))
        last: Failure | None = None
        for attempt in range(1, attempts + 1):
            try:
                return fn(), None, attempt
            except Exception as exc:  # noqa: BLE001 - every per-item failure is recorded, never raised
                last = classify_fn(exc)
                if not last.retryable or attempt == attempts:
                    break
                wait = self.delay(attempt, last.retry_after)
                if on_retry is not None:
                    on_retry(attempt, last, wait)
                self.sleep(wait)
        assert last is not None
        suffix = f" (after {attempt} attempts)" if last.retryable else ""
        return None, last.reason + suffix, attempt
