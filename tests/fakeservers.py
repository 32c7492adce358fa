"""Local HTTP servers (127.0.0.1) speaking the wire formats the API backends use, so the real SDKs can
be tested with no internet and no keys:

- FakeOpenAI: POST {base}/chat/completions (base_url = http://127.0.0.1:PORT/v1), incl. the
  json_schema response format, usage and refusals;
- FakeAnthropic: POST /v1/messages, incl. a forced tool call (tool_use) and usage;
- FakeGemini: POST /{v1,v1beta}/models/{model}:generateContent, incl. responseSchema, usageMetadata and
  safety blocks.

Faults are injected from a seeded schedule (FaultPlan): 429 with Retry-After, 500, 503, a slow
answer (longer than the client's timeout), a truncated body (invalid JSON) -- the transient ones a
client retries -- and the content faults "refuse", "invalid_json" (an answer that is not valid JSON
or not the schema) and "empty". Content faults can also be pinned to an item by a marker in its last
user message: [[refuse]], [[invalid_json]], [[empty]].

Also usable by hand and by the benchmark: `python tests/fakeservers.py openai --latency 0.2`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRANSIENT = ("429", "500", "503", "slow", "truncated")
MARKERS = ("refuse", "invalid_json", "empty")
REFUSAL_TEXT = "I'm sorry, but I can't help with that."


class FaultPlan:
    """The first requests follow `script` (None = no fault); then each request draws a fault with
    probability `rate` from `kinds`, from a generator seeded with `seed` (one draw per request)."""

    def __init__(self, rate: float = 0.0, kinds=TRANSIENT, seed: int = 0, script=()):
        self.rate, self.kinds = rate, tuple(kinds)
        self.script = list(script)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def next(self) -> str | None:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            if self.rate and self.rng.random() < self.rate:
                return self.rng.choice(self.kinds)
            return None


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def example_for(schema: dict, seed: int = 0, root: dict | None = None, depth: int = 0):
    """A deterministic instance of a JSON schema (OpenAPI-style uppercase types too)."""
    root = root if root is not None else schema
    if depth > 20:
        return None
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        defs = root.get("$defs") or root.get("definitions") or {}
        return example_for(defs.get(ref, {}), seed, root, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            opts = [s for s in schema[key] if str(s.get("type", "")).lower() != "null"] or schema[key]
            return example_for(opts[0], seed, root, depth + 1)
    if schema.get("enum"):
        return schema["enum"][seed % len(schema["enum"])]
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if str(t).lower() != "null"), "string")
    typ = str(typ or ("object" if "properties" in schema else "string")).lower()
    if typ == "object":
        props = schema.get("properties") or {}
        return {k: example_for(v, seed + i + 1, root, depth + 1) for i, (k, v) in enumerate(props.items())}
    if typ == "array":
        n = max(1, int(schema.get("minItems", 1) or 1))
        return [example_for(schema.get("items") or {}, seed + j, root, depth + 1) for j in range(n)]
    if typ == "integer":
        return seed % 7
    if typ == "number":
        return (seed % 100) / 10
    if typ == "boolean":
        return bool(seed % 2)
    if typ == "null":
        return None
    return f"value-{seed % 1000}"


def default_text(prompt: str) -> str:
    """The plain-text answer: a JSON list of one or two category numbers, derived from the prompt."""
    h = _h(prompt)
    picks = sorted({h % 4 + 1, (h // 7) % 4 + 1}) if h % 3 == 0 else [h % 5 + 1]
    return json.dumps(picks)


class FakeServer:
    """Base class: threading HTTP server, fault plan, latency, bookkeeping. Use as a context manager."""

    provider = "base"
    version_suffix = "-fake"

    def __init__(self, faults: FaultPlan | None = None, latency: float = 0.0, slow_seconds: float = 3.0,
                 retry_after: str = "0.01", expect_key: str | None = None,
                 responder: Callable[[str, dict | None], object] | None = None):
        self.faults = faults or FaultPlan()
        self.latency, self.slow_seconds, self.retry_after = latency, slow_seconds, retry_after
        self.expect_key = expect_key
        self.responder = responder
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.reset()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between headers and body

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                server._handle(self)

            def do_GET(self):  # noqa: N802
                server._send(self, 404, {"error": {"message": "not found"}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.calls = 0  # requests to the generation endpoint, faults included
            self.answered = 0  # 200 answers
            self.fault_counts: Counter = Counter()
            self.inflight = 0
            self.max_inflight = 0
            self.requests: list[dict] = []
            self.times: list[float] = []

    def start(self) -> "FakeServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root

    # --- provider hooks ----------------------------------------------------------------------
    def route(self, path: str) -> str | None:
        """The model name when `path` is this provider's generation endpoint ('' if not in the path)."""
        raise NotImplementedError

    def key_of(self, h: BaseHTTPRequestHandler) -> str | None:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> dict:
        raise NotImplementedError

    def reply(self, prompt: str, schema, fault: str | None = None) -> tuple[str | None, bool, tuple[int, int]]:
        """(text, refusal, (tokens in, tokens out)) of the answer to `prompt`: a scheduled content
        fault, else a marker in the prompt, else the responder, a schema example or the default text."""
        marker = fault or next((m for m in MARKERS if f"[[{m}]]" in prompt), None)
        refusal = marker == "refuse"
        if refusal:
            text = None
        elif marker == "empty":
            text = ""
        elif marker == "invalid_json":
            text = '{"oops": tru' if schema is not None else "not json at all {"
        elif self.responder is not None:
            out = self.responder(prompt, schema)
            text = out if isinstance(out, str) else json.dumps(out)
        elif schema is not None:
            text = json.dumps(example_for(schema, _h(prompt)))
        else:
            text = default_text(prompt)
        return text, refusal, (max(1, len(prompt) // 4), max(1, len(text or REFUSAL_TEXT) // 4))

    def parse(self, body: dict) -> tuple[str, dict | None]:
        """(prompt text, JSON schema or None)"""
        raise NotImplementedError

    def answer(self, body: dict, model: str, text: str | None, refusal: bool, usage: tuple[int, int]) -> dict:
        raise NotImplementedError

    # --- plumbing ----------------------------------------------------------------------------
    def _send(self, h: BaseHTTPRequestHandler, status: int, obj, headers: dict | None = None,
              truncate: bool = False) -> None:
        data = json.dumps(obj).encode()
        if truncate:
            data = data[: max(1, len(data) // 2)]
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        model = self.route(h.path.split("?", 1)[0])
        if model is None:
            self._send(h, 404, self.error_body(404, f"no route {h.path}"))
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(h, 400, self.error_body(400, "request body is not JSON"))
            return
        with self.lock:
            self.calls += 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            self.requests.append({"path": h.path, "body": body,
                                  "headers": {k.lower(): v for k, v in h.headers.items()}})
            self.times.append(time.monotonic())
        try:
            self._respond(h, body, model or body.get("model", ""))
        finally:
            with self.lock:
                self.inflight -= 1

    def _respond(self, h: BaseHTTPRequestHandler, body: dict, model: str) -> None:
        key = self.key_of(h)
        if self.expect_key is not None and key != self.expect_key:
            shown = (key[:3] + "*" * 6 + key[-4:]) if key and len(key) > 8 else "(none)"
            self._send(h, 401, self.error_body(401, f"Incorrect API key provided: {shown}."))
            return
        fault = self.faults.next()
        if fault:
            with self.lock:
                self.fault_counts[fault] += 1
        if fault == "429":
            self._send(h, 429, self.error_body(429, "Rate limit reached, slow down."),
                       headers={"Retry-After": self.retry_after})
            return
        if fault in ("500", "503"):
            self._send(h, int(fault), self.error_body(int(fault), "The server had an error."))
            return
        if fault == "slow":
            if self.stop_event.wait(self.slow_seconds):
                return
        if self.latency:
            if self.stop_event.wait(self.latency):
                return
        prompt, schema = self.parse(body)
        text, refusal, usage = self.reply(prompt, schema, fault if fault in MARKERS else None)
        obj = self.answer(body, model, text, refusal, usage)
        with self.lock:
            self.answered += 0 if fault == "truncated" else 1
        self._send(h, 200, obj, truncate=fault == "truncated")

    def version(self, model: str) -> str:
        return model + self.version_suffix


def _bearer(h) -> str | None:
    auth = h.headers.get("Authorization") or ""
    return auth[7:] if auth.lower().startswith("bearer ") else None


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class FakeOpenAI(FakeServer):
    provider = "openai"
    version_suffix = "-2024-07-18"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    def route(self, path):
        return "" if path.rstrip("/").endswith("/chat/completions") else None

    def key_of(self, h):
        return _bearer(h)

    def error_body(self, status, message):
        kind = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    def parse(self, body):
        msgs = body.get("messages") or []
        users = [m for m in msgs if m.get("role") == "user"]
        prompt = _content_text(users[-1].get("content")) if users else ""
        rf = body.get("response_format") or {}
        schema = (rf.get("json_schema") or {}).get("schema") if rf.get("type") == "json_schema" else None
        return prompt, schema

    with_logprobs = True  # answer `logprobs`/`top_logprobs` requests (False: a server that ignores them)

    def logprobs(self, body) -> dict | None:
        """Log-probabilities of a one-token yes/no answer: yes is likely when the passage says
        "available", else no; both spellings of each answer are listed."""
        if not (body.get("logprobs") and self.with_logprobs):
            return None
        yes = -0.1 if "available" in self.parse(body)[0] else -3.0
        top = [{"token": "Yes", "logprob": yes, "bytes": None}, {"token": " no", "logprob": -1.0, "bytes": None},
               {"token": "Maybe", "logprob": -6.0, "bytes": None}][: int(body.get("top_logprobs") or 0)]
        return {"content": [{"token": "Yes", "logprob": yes, "bytes": None, "top_logprobs": top}]}

    def answer(self, body, model, text, refusal, usage):
        msg = {"role": "assistant", "content": text, "refusal": REFUSAL_TEXT if refusal else None}
        return {
            "id": f"chatcmpl-{self.calls}", "object": "chat.completion", "created": int(time.time()),
            "model": self.version(body.get("model", "")),
            "choices": [{"index": 0, "message": msg, "logprobs": self.logprobs(body),
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                      "total_tokens": usage[0] + usage[1]},
            "system_fingerprint": "fp_fake",
        }


class FakeAnthropic(FakeServer):
    provider = "anthropic"
    version_suffix = "-20241022"

    def route(self, path):
        return "" if path.rstrip("/").endswith("/v1/messages") else None

    def key_of(self, h):
        return h.headers.get("x-api-key") or _bearer(h)

    def error_body(self, status, message):
        kind = {429: "rate_limit_error", 401: "authentication_error", 503: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def parse(self, body):
        msgs = body.get("messages") or []
        users = [m for m in msgs if m.get("role") == "user"]
        prompt = _content_text(users[-1].get("content")) if users else ""
        schema = None
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            for tool in body.get("tools") or []:
                if tool.get("name") == choice.get("name"):
                    schema = tool.get("input_schema")
        return prompt, schema

    def answer(self, body, model, text, refusal, usage):
        choice = body.get("tool_choice") or {}
        if refusal:
            content, stop = [], "refusal"
        elif choice.get("type") == "tool" and text not in (None, ""):
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                data = {"raw": text}  # a malformed tool input still arrives as an object
            content, stop = [{"type": "tool_use", "id": f"toolu_{self.calls}", "name": choice["name"],
                              "input": data}], "tool_use"
        else:
            content, stop = [{"type": "text", "text": text or ""}], "end_turn"
        return {
            "id": f"msg_{self.calls}", "type": "message", "role": "assistant",
            "model": self.version(body.get("model", "")), "content": content,
            "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }


class FakeGemini(FakeServer):
    provider = "gemini"
    version_suffix = "-001"
    _path = re.compile(r"/v1(?:beta|alpha)?/models/([^/:]+):generateContent$")

    def route(self, path):
        m = self._path.search(path)
        return m.group(1) if m else None

    def key_of(self, h):
        if h.headers.get("x-goog-api-key"):
            return h.headers.get("x-goog-api-key")
        m = re.search(r"[?&]key=([^&]+)", h.path)
        return m.group(1) if m else None

    def error_body(self, status, message):
        st = {429: "RESOURCE_EXHAUSTED", 401: "UNAUTHENTICATED", 500: "INTERNAL", 503: "UNAVAILABLE",
              404: "NOT_FOUND", 400: "INVALID_ARGUMENT"}.get(status, "UNKNOWN")
        return {"error": {"code": status, "message": message, "status": st}}

    def parse(self, body):
        contents = body.get("contents") or []
        users = [c for c in contents if c.get("role", "user") == "user"]
        prompt = " ".join(p.get("text", "") for p in (users[-1].get("parts") or [])) if users else ""
        cfg = body.get("generationConfig") or {}
        schema = cfg.get("responseSchema") or cfg.get("responseJsonSchema") if cfg.get("responseMimeType") == \
            "application/json" else None
        return prompt, schema

    def answer(self, body, model, text, refusal, usage):
        meta = {"promptTokenCount": usage[0], "candidatesTokenCount": 0 if refusal else usage[1],
                "totalTokenCount": usage[0] + (0 if refusal else usage[1])}
        base = {"usageMetadata": meta, "modelVersion": self.version(model), "responseId": f"resp-{self.calls}"}
        if refusal:
            return {**base, "promptFeedback": {"blockReason": "SAFETY"}}
        return {**base, "candidates": [{"content": {"role": "model", "parts": [{"text": text or ""}]},
                                        "finishReason": "STOP", "index": 0}]}


SERVERS = {"openai": FakeOpenAI, "anthropic": FakeAnthropic, "gemini": FakeGemini}


def main() -> None:  # pragma: no cover - manual use
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("provider", choices=sorted(SERVERS))
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    srv = SERVERS[args.provider](faults=FaultPlan(args.fault_rate, seed=args.seed), latency=args.latency).start()
    print(srv.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":  # pragma: no cover
    main()


# --- helpers for the tests -------------------------------------------------------------------------
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}
ALL_KEY_ENVS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
# distinctive fake keys, so a test can scan written files for them (and for their fragments)
TEST_KEYS = {"openai": "sk-test-OPENAI-S3CRET-7c1d9e", "anthropic": "sk-ant-test-ANTHROPIC-S3CRET-9b2e4f",
             "gemini": "AIzaTestGEMINI-S3CRET-4f5a6b"}
TEST_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-sonnet-latest", "gemini": "gemini-2.0-flash"}


def set_keys(monkeypatch, only: str | None = None) -> None:
    """Put the fake keys in the environment (all providers, or one), removing any real ones."""
    for env in ALL_KEY_ENVS:
        monkeypatch.delenv(env, raising=False)
    for prov, env in KEY_ENV.items():
        if only is None or prov == only:
            monkeypatch.setenv(env, TEST_KEYS[prov])


def make_server(provider: str, **kw) -> FakeServer:
    kw.setdefault("expect_key", TEST_KEYS[provider])
    return SERVERS[provider](**kw)


def make_backend(provider: str, server: FakeServer, cache_path=None, **opts):
    """A real backend (real SDK) pointed at `server`, with millisecond backoff."""
    from llmscisci.backends.base import BackendOptions
    from llmscisci.backends.registry import load_backend

    base = dict(base_url=server.base_url, timeout=2.0, backoff_base=0.002, backoff_max=0.05, max_attempts=6,
                use_cache=cache_path is not None, cache_path=str(cache_path) if cache_path else None)
    base.update(opts)
    return load_backend(f"{provider}:{TEST_MODELS[provider]}", BackendOptions(**base))


def conversations(n: int, tag: str = "item") -> list[list[dict]]:
    return [[{"role": "system", "content": "You label passages."},
             {"role": "user", "content": f"Passage {tag} {i}: the code was available and easy to run."}]
            for i in range(n)]


def expected_text(conv: list[dict]) -> str:
    """What the fake servers answer (no schema, no marker) to a conversation."""
    return default_text(conv[-1]["content"])
