"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches, Gemini batch mode): the same requests
as live calls at about half the price, answered within a day, resumable from the run folder.

`make_batch_backend` wraps the live backend of an `openai:`, `anthropic:` or `gemini:` model in a
BatchBackend (core.py) with the provider's wire format (one module per provider). `--batch-file` also
works for local model names: it only writes OpenAI-format request rows (for `vllm run-batch`).
"""

from __future__ import annotations

from llmscisci.backends.base import BackendOptions
from llmscisci.backends.batch.core import BatchBackend, BatchOptions, BatchPending, RealClock
from llmscisci.errors import UserError

PROVIDERS = {
    "openai": "llmscisci.backends.batch.openai_batch:OpenAIBatch",
    "anthropic": "llmscisci.backends.batch.anthropic_batch:AnthropicBatch",
    "gemini": "llmscisci.backends.batch.gemini_batch:GeminiBatch",
}
FILE_BASE_URL = "http://127.0.0.1:8000/v1"  # a placeholder: a request file is never sent by us

__all__ = ["BatchBackend", "BatchOptions", "BatchPending", "RealClock", "make_batch_backend", "provider_of"]


def provider_of(name: str) -> str | None:
    from llmscisci.backends.aliases import api_alias
    from llmscisci.backends.registry import split_provider

    provider, _ = split_provider(name)
    if provider is None:
        alias = api_alias(name)
        provider = alias[0] if alias else None
    return provider


def make_batch_backend(name: str, options: BackendOptions, batch: BatchOptions, clock=None,
                       report=None) -> BatchBackend:
    import importlib

    from llmscisci.backends.registry import load_backend

    batch.check()
    provider = provider_of(name)
    if provider is None:
        if batch.file is None and batch.imported is None:
            raise UserError(f"--batch needs an API model (openai:, anthropic:, gemini:), not {name!r}; for a "
                            "local model write a request file with --batch-file and run it with vllm run-batch")
        from llmscisci.backends.openai_backend import OpenAIBackend

        opts = BackendOptions(base_url=FILE_BASE_URL, use_cache=False, prices_path=options.prices_path)
        return BatchBackend(OpenAIBackend(batch.file_model or name, opts), None, batch, clock, report)
    if batch.file is not None or batch.imported is not None:
        if provider != "openai":
            raise UserError("--batch-file and batch import use the OpenAI request format: use an openai: model "
                            "(or a local model name with --batch-model)")
        # it only builds requests and reads answers: no API key needed
        return BatchBackend(_offline_openai(name, options), None, batch, clock, report)
    live = load_backend(name, options)
    module, cls = PROVIDERS[provider].split(":")
    return BatchBackend(live, getattr(importlib.import_module(module), cls)(live), batch, clock, report)


def _offline_openai(name: str, options: BackendOptions):
    """The OpenAI backend of `name` (same request builder, price and cache identity) without a key."""
    from llmscisci.backends.openai_backend import OpenAIBackend
    from llmscisci.backends.registry import split_provider

    class OfflineOpenAI(OpenAIBackend):
        def _missing_key_ok(self) -> bool:
            return True

    _, model = split_provider(name)
    if ":" not in name:  # an alias of an OpenAI model
        from llmscisci.backends.aliases import api_alias

        model = api_alias(name)[1]
    return OfflineOpenAI(model, options)
