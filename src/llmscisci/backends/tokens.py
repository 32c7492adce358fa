"""Pre-flight token counts for API prompts, without the network.

tiktoken fetches its encoding files from the internet on first use. We only use it when the file is
already, intact (sha256 checked), in its local cache ($TIKTOKEN_CACHE_DIR, $DATA_GYM_CACHE_DIR or <tmp>/data-gym-cache); otherwise
(and on any error at all) we fall back to a documented estimate: ceil(characters / 4) per message plus
4 tokens of per-message overhead and 3 for the reply priming. That is OpenAI's rule of thumb for
English text; it is only used to warn about prompts that will not fit, never for billing (costs come
from the usage each provider reports).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
from functools import lru_cache

CHARS_PER_TOKEN = 4
PER_MESSAGE = 4
REPLY_PRIMING = 3

# encoding -> (the URL tiktoken downloads it from, that file's sha256)
_ENCODINGS = {
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}
_lock = threading.Lock()


def _tiktoken_cache_file(encoding: str) -> str | None:
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        base = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        base = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        base = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not base or encoding not in _ENCODINGS:  # an empty cache dir means "always download": not offline
        return None
    return os.path.join(base, hashlib.sha1(_ENCODINGS[encoding][0].encode()).hexdigest())


def encoding_name(model: str) -> str:
    try:
        from tiktoken.model import encoding_name_for_model

        return encoding_name_for_model(model)
    except Exception:  # noqa: BLE001 - unknown model names, missing package
        return "o200k_base"


@lru_cache(maxsize=8)
def _encoder(encoding: str):
    """The tiktoken encoding if its file is cached locally, else None. Never touches the network."""
    path = _tiktoken_cache_file(encoding)
    if path is None or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as fh:  # a corrupt file would make tiktoken delete it and download again
            if hashlib.sha256(fh.read()).hexdigest() != _ENCODINGS[encoding][1]:
                return None
    except OSError:
        return None
    try:
        import tiktoken

        return tiktoken.get_encoding(encoding)
    except Exception:  # noqa: BLE001 - corrupt file, version mismatch...: fall back to the estimate
        return None


def estimate(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content or "")


def count_messages(messages: list[dict], model: str = "", use_tiktoken: bool = True) -> tuple[int, str]:
    """(prompt tokens, method) where method is the tiktoken encoding name or 'chars/4'."""
    enc = None
    if use_tiktoken:
        with _lock:
            enc = _encoder(encoding_name(model))
    total = REPLY_PRIMING
    for m in messages:
        text = _content_text(m.get("content"))
        n = None
        if enc is not None:
            try:
                n = len(enc.encode(text, disallowed_special=()))
            except Exception:  # noqa: BLE001
                n = None
        if n is None:
            n = estimate(text)
            enc = None
        total += n + PER_MESSAGE
    return total, (enc.name if enc is not None else f"chars/{CHARS_PER_TOKEN}")
