"""Structured output in the dialect an OpenAI-compatible server speaks.

Servers that offer OpenAI's chat completions accept different `response_format` forms:

- `json_schema`: OpenAI's form, `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`
  (OpenAI, vLLM, Ollama >= 0.5, LM Studio, recent llama.cpp `llama-server`);
- `json_object`: `{"type": "json_object", "schema": {...}}`, the llama.cpp form (llama-cpp-python's
  server and older `llama-server` builds constrain decoding to the schema; servers that ignore the
  `schema` key still return JSON); the schema is also written into the system prompt;
- `prompt`: no `response_format`; the schema is written into the system prompt and the JSON is taken
  out of the answer (code fences and prose around it removed) before it is checked.

`auto` tries them in that order on the first item and keeps the first form the server accepts; the
form that worked is remembered per base URL in the cache folder, so later runs start from it.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path

from pydantic import BaseModel

from llmscisci.errors import UserError
from llmscisci.paths import cache_dir

log = logging.getLogger(__name__)

MODES = ("json_schema", "json_object", "prompt")
CHOICES = ("auto",) + MODES
MEMORY_FILE = "structured_modes.json"
MEMORY_MAX = 200  # base URLs remembered (the oldest are dropped)
SCHEMA_NOTE = "Answer with one JSON value only (no prose, no code fences) that follows this JSON schema:"
_FORM_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar", "validation", "literal_error",
               "input should be", "must be one of", "unrecognized request argument", "not supported",
               "unsupported", "extra inputs")
_lock = threading.Lock()
_announced: set[tuple[str, str]] = set()


def check_mode(mode: str) -> str:
    if mode not in CHOICES:
        raise UserError(f"unknown --structured-mode {mode!r}: use one of {', '.join(CHOICES)}")
    return mode


def candidates(requested: str, remembered: str | None) -> list[str]:
    """The forms to try, in order: the requested one, or (auto) the remembered one first."""
    if requested != "auto":
        return [requested]
    order = list(MODES)
    if remembered in order:
        order.remove(remembered)
        order.insert(0, remembered)
    return order


def rejects_form(kind: str | None, reason: str) -> bool:
    """Whether a failed first request says the server does not take this request form: a request
    error (a 4xx, or a 5xx naming a validation error), or any error that names response_format."""
    if kind == "request":
        return True
    low = reason.lower()
    return kind is None and low.startswith("http 5") and any(w in low for w in _FORM_WORDS)


def with_schema_note(messages: list[dict], schema_json: dict) -> list[dict]:
    """The conversation with the schema appended to its system prompt (a system message is added if none)."""
    note = f"{SCHEMA_NOTE}\n{json.dumps(schema_json, separators=(',', ':'))}"
    msgs = [dict(m) for m in messages]
    for m in msgs:
        if m.get("role") == "system" and isinstance(m.get("content"), str):
            m["content"] = m["content"].rstrip() + "\n\n" + note
            return msgs
    return [{"role": "system", "content": note}] + msgs


def extract_json(text: str) -> str:
    """The first JSON object or array in `text` (inside code fences or prose), else `text` unchanged."""
    stripped = text.strip()
    decoder = json.JSONDecoder()
    for start, ch in enumerate(stripped):
        if ch not in "{[":
            continue
        try:
            _, end = decoder.raw_decode(stripped[start:])
        except json.JSONDecodeError:
            continue
        return stripped[start:start + end]
    return text


# --- memory of what worked, per base URL ----------------------------------------------------------
def _memory_path() -> Path:
    return cache_dir() / MEMORY_FILE


def _read_memory() -> dict:
    try:
        data = json.loads(_memory_path().read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def remembered(base_url: str) -> str | None:
    entry = _read_memory().get(base_url)
    mode = entry.get("mode") if isinstance(entry, dict) else None
    return mode if mode in MODES else None


def remember(base_url: str, mode: str, model: str) -> None:
    """Record the form that worked for `base_url` (atomic write; a failure only logs)."""
    with _lock:
        try:
            data = _read_memory()
            data.pop(base_url, None)
            data[base_url] = {"mode": mode, "model": model, "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
            while len(data) > MEMORY_MAX:
                data.pop(next(iter(data)))
            path = _memory_path()
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            log.warning("could not remember the structured-output mode: %s", exc)


def announce(base_url: str, mode: str, how: str) -> None:
    """Say once per process and base URL which form structured output uses (on stderr)."""
    with _lock:
        if (base_url, mode) in _announced:
            return
        _announced.add((base_url, mode))
    print(f"structured output at {base_url}: {mode} ({how})", file=sys.stderr, flush=True)


def schema_json_of(schema: type[BaseModel]) -> dict:
    return schema.model_json_schema()
