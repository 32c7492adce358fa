"""Fake OpenAI-compatible servers that answer like the local servers the docs name, on 127.0.0.1.

Each dialect accepts the `response_format` forms the real server accepts and answers everything else
with the real server's status code and error body (from the servers' sources, docs and bug reports):

- vllm: json_schema, json_object, text; errors `{"object": "error", "message", "type", "param", "code"}`;
  an unknown model is 404 "The model `x` does not exist."; a long prompt 400 "This model's maximum
  context length is ..."; a wrong key (`--api-key`) 401 `{"error": "Unauthorized"}`.
- ollama (/v1): json_schema (>= 0.5), json_object, text; errors `{"error": {"message", "type", ...}}`;
  an unknown model 404 "model \"x\" not found, try pulling it first"; no keys.
- llama-server (llama.cpp, current): json_schema and json_object (+ schema); errors
  `{"error": {"code", "message", "type"}}`: 401 "Invalid API Key" authentication_error, 400
  exceed_context_size_error; the model name is not checked (one model per server).
- llama-server-b3 (llama.cpp builds before json_schema support): json_schema is a 500 server_error
  "response_format type must be one of \"text\" or \"json_object\", but got: json_schema".
- llama-cpp-python: text and json_object (+ schema); json_schema fails pydantic validation and the
  server's error route turns it into a 500 internal_server_error carrying the validation message; a
  long prompt 400 context_length_exceeded; a wrong key 401 `{"detail": "Invalid API key"}` (these
  four checked against llama-cpp-python 0.3.36's server). With one model it answers any model name;
  the 400 model_not_found is its error for a model path that does not exist.
- lmstudio: json_schema and text; json_object is a 400 `{"error": "'response_format.type' must be
  'json_schema' or 'text'"}`.
- no-format (a proxy without response_format support): any response_format is a 400 "Unrecognized
  request argument supplied: response_format".

The fake model reads the schema from `response_format` or, failing that, from the system prompt (as a
model told the schema would), and in prompt mode wraps its JSON in a code fence, as small models do.
"""

from __future__ import annotations

import json
import re

from fakeservers import FakeOpenAI, _bearer

DIALECTS = ("vllm", "ollama", "llama-server", "llama-server-b3", "llama-cpp-python", "lmstudio", "no-format")
# what `--structured-mode auto` should settle on for each dialect
EXPECTED_MODE = {"vllm": "json_schema", "ollama": "json_schema", "llama-server": "json_schema",
                 "llama-server-b3": "json_object", "llama-cpp-python": "json_object", "lmstudio": "json_schema",
                 "no-format": "prompt"}
ACCEPTS = {
    "vllm": {"json_schema", "json_object", "text", None},
    "ollama": {"json_schema", "json_object", "text", None},
    "llama-server": {"json_schema", "json_object", "text", None},
    "llama-server-b3": {"json_object", "text", None},
    "llama-cpp-python": {"json_object", "text", None},
    "lmstudio": {"json_schema", "text", None},
    "no-format": {None},
}
_SCHEMA_IN_PROMPT = re.compile(r"JSON schema:\s*(\{.*\})\s*$", re.S)


class DialectServer(FakeOpenAI):
    """A FakeOpenAI that speaks one dialect. `models`: names served (None: any, like llama.cpp);
    `n_ctx`: the context in tokens (about 4 characters a token); `reject_all`: every request fails
    with this (status, body) pair, from the first one on."""

    def __init__(self, dialect: str, models=None, n_ctx: int | None = None, reject_all=None, **kw):
        if dialect not in DIALECTS:
            raise ValueError(dialect)
        kw.setdefault("expect_key", None)
        super().__init__(**kw)
        self.dialect, self.models, self.n_ctx, self.reject_all = dialect, models, n_ctx, reject_all
        self.rejected = 0  # requests answered with an error of the dialect

    # --- the dialect's error bodies ------------------------------------------------------------
    def error(self, status: int, message: str, kind: str, code=None) -> dict:
        d = self.dialect
        if d == "vllm":
            return {"object": "error", "message": message, "type": kind, "param": None, "code": status}
        if d.startswith("llama-server"):
            return {"error": {"code": status, "message": message, "type": kind}}
        if d == "lmstudio":
            return {"error": message}
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def auth_error(self) -> tuple[int, dict]:
        if self.dialect == "vllm":
            return 401, {"error": "Unauthorized"}
        if self.dialect == "llama-cpp-python":
            return 401, {"detail": "Invalid API key"}
        if self.dialect.startswith("llama-server"):
            return 401, self.error(401, "Invalid API Key", "authentication_error")
        return 401, self.error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    def model_error(self, name: str) -> tuple[int, dict]:
        if self.dialect == "vllm":
            return 404, self.error(404, f"The model `{name}` does not exist.", "NotFoundError")
        if self.dialect == "ollama":
            return 404, self.error(404, f'model "{name}" not found, try pulling it first', "api_error")
        if self.dialect == "llama-cpp-python":
            return 400, self.error(400, f"The model `{name}` does not exist", "invalid_request_error",
                                   "model_not_found")
        return 404, self.error(404, f'Model "{name}" not found. Please load it first.', "invalid_request_error",
                               "model_not_found")

    def context_error(self, n_prompt: int, max_tokens: int) -> tuple[int, dict]:
        if self.dialect.startswith("llama-server"):
            body = self.error(400, "the request exceeds the available context size, try increasing it",
                              "exceed_context_size_error")
            body["error"] |= {"n_prompt_tokens": n_prompt, "n_ctx": self.n_ctx}
            return 400, body
        msg = (f"This model's maximum context length is {self.n_ctx} tokens. However, you requested "
               f"{n_prompt + max_tokens} tokens ({n_prompt} in the messages, {max_tokens} in the completion). "
               "Please reduce the length of the messages or completion.")
        if self.dialect == "vllm":
            return 400, self.error(400, msg, "BadRequestError")
        body = self.error(400, msg, "invalid_request_error", "context_length_exceeded")
        body["error"]["param"] = "messages"
        return 400, body

    def format_error(self, rtype: str | None) -> tuple[int, dict]:
        d = self.dialect
        if d == "llama-server-b3":
            return 500, self.error(500, 'response_format type must be one of "text" or "json_object", '
                                        f"but got: {rtype}", "server_error")
        if d == "llama-cpp-python":
            detail = [{"type": "literal_error", "loc": ("body", "response_format", "type"),
                       "msg": "Input should be 'text' or 'json_object'", "input": rtype,
                       "ctx": {"expected": "'text' or 'json_object'"}}]
            message = (f"1 validation error:\n  {detail[0]}\n\n  File \"llama_cpp/server/app.py\", line 376, "
                       "in create_chat_completion\n    POST /v1/chat/completions")
            return 500, self.error(500, message, "internal_server_error")
        if d == "lmstudio":
            return 400, self.error(400, "'response_format.type' must be 'json_schema' or 'text'", "")
        if d == "no-format":
            return 400, self.error(400, "Unrecognized request argument supplied: response_format",
                                   "invalid_request_error")
        return 400, self.error(400, f"unknown response_format type {rtype!r}", "BadRequestError")

    # --- request handling ----------------------------------------------------------------------
    def _fail(self, h, status: int, body: dict) -> None:
        with self.lock:
            self.rejected += 1
        self._send(h, status, body)

    def _respond(self, h, body, model):
        if self.reject_all is not None:
            return self._fail(h, *self.reject_all)
        if self.expect_key is not None and _bearer(h) != self.expect_key:
            return self._fail(h, *self.auth_error())
        name = body.get("model", "")
        if self.models is not None and name not in self.models:
            return self._fail(h, *self.model_error(name))
        if self.n_ctx is not None:
            n_prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages") or []) // 4
            max_tokens = int(body.get("max_tokens") or 0)
            if n_prompt + max_tokens > self.n_ctx:
                return self._fail(h, *self.context_error(n_prompt, max_tokens))
        rf = body.get("response_format")
        rtype = rf.get("type") if isinstance(rf, dict) else None
        if rtype not in ACCEPTS[self.dialect]:
            return self._fail(h, *self.format_error(rtype))
        super()._respond(h, body, model)

    def parse(self, body):
        """(prompt, schema): the schema from response_format, else from the system prompt."""
        prompt, schema = super().parse(body)
        rf = body.get("response_format") or {}
        if schema is None and rf.get("type") == "json_object" and isinstance(rf.get("schema"), dict):
            schema = rf["schema"]
        if schema is None:
            system = " ".join(str(m.get("content", "")) for m in body.get("messages") or []
                              if m.get("role") == "system")
            found = _SCHEMA_IN_PROMPT.search(system)
            if found:
                schema = json.loads(found.group(1))
        return prompt, schema

    def answer(self, body, model, text, refusal, usage):
        rf = body.get("response_format")
        if not rf and text and text.lstrip().startswith(("{", "[")) and _SCHEMA_IN_PROMPT.search(
                " ".join(str(m.get("content", "")) for m in body.get("messages") or [] if m.get("role") == "system")):
            text = f"Here is the answer:\n```json\n{text}\n```"  # prompt mode: a model's chatter around JSON
        return super().answer(body, model, text, refusal, usage)

