"""Token counting for the length rewards and the length analysis: a tokenizer, a function, or a fallback.

`token_counter(spec)` turns any of these into a `str -> int` function:
  * None, "whitespace" or "words": ``len(text.split())`` (Python's ``str.split()``: no model needed,
    no special token);
  * a tokenizer object with `encode` (Hugging Face: with `special_tokens` True, the default, the
    count includes the special tokens the tokenizer adds, as the seed's ``tokenizer(text)`` did: a
    Llama or Gemma tokenizer counts its BOS; tiktoken has none);
  * a callable `str -> int`;
  * a model name (`smollm2-135m`, a local folder, a training output folder, a hub id): its tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from llmscisci.errors import UserError
from llmscisci.rewards.core import TokenCounter, whitespace_tokens

WHITESPACE = "whitespace"
WORDS = ("whitespace", "words")


def _has_tokenizer_files(folder: str | Path | None) -> bool:
    return bool(folder) and any(
        (Path(folder) / f).is_file() for f in ("tokenizer_config.json", "tokenizer.json", "tokenizer.model")
    )


def load_tokenizer(name: str, trust_remote_code: bool = False):
    """The tokenizer of a model name in the local model registry (no weights are loaded)."""
    from transformers import AutoTokenizer

    from llmscisci.backends import embedded
    from llmscisci.backends.models import resolve_local_model

    resolved = resolve_local_model(name)
    source = resolved.path_or_id
    if resolved.kind == "embedded":
        source = str(embedded.ensure_embedded())
    if _has_tokenizer_files(resolved.adapter):
        source = str(resolved.adapter)
    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - network, missing files, bad format: one line for the user
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserError(f"could not load the tokenizer of {name!r} ({source}): {first}") from None


def _from_encoder(tokenizer, special_tokens: bool = True) -> TokenCounter:
    def count(text: str) -> int:
        try:
            return len(tokenizer.encode(text, add_special_tokens=special_tokens))
        except TypeError:  # encoders without that keyword (tiktoken)
            return len(tokenizer.encode(text))

    return count


def token_counter(spec=None, special_tokens: bool = True) -> tuple[TokenCounter, str]:
    """(counter, description) for a tokenizer, a counting function, a model name or None.

    `special_tokens`: count the special tokens a tokenizer adds (BOS...), as the seed's length
    reward did; the length analysis of `grpo build` leaves them out."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in WORDS):
        return whitespace_tokens, WHITESPACE
    if isinstance(spec, str):
        tok = load_tokenizer(spec)
        return _from_encoder(tok, special_tokens), f"tokenizer of {spec}"
    if hasattr(spec, "encode"):
        return _from_encoder(spec, special_tokens), type(spec).__name__
    if isinstance(spec, Callable):
        return spec, getattr(spec, "__name__", "function")
    raise TypeError(f"cannot count tokens with {type(spec).__name__}")
