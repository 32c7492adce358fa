"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches, Gemini batch mode): the same requests
as live calls at about half the price, answered within a day, resumable from the run folder.

`make_batch_backend` wraps the live backend of an `openai:`, `anthropic:` or `gemini:` model in a
BatchBackend (core.py) with the provider's wire format (one module per provider). `--batch-file` also
works for local model names: it only writes OpenAI-format request rows (for `vllm run-batch`).
"""

from __future__ import annotations

from llmscisci.backends.base import BackendOptions
from llmscisci.backends.batch.core import BatchBackend, BatchOptions, BatchPending, RealClock
from llmscisci.backends.batch.provider import PROVIDERS, register_batch_provider
from llmscisci.errors import UserError

FILE_BASE_URL = "http://127.0.0.1:8000/v1"  # a placeholder: a request file is never sent by us

__all__ = ["PROVIDERS", "BatchBackend", "BatchOptions", "BatchPending", "RealClock", "make_batch_backend",
           "register_batch_provider"]


def make_batch_backend(name: str, options: BackendOptions, batch: BatchOptions, clock=None,
                       report=None) -> BatchBackend:
    from llmscisci.backends.registry import load_backend, load_class, resolve_model

    batch.check()
    m = resolve_model(name)
    provider = m.provider
    if not m.is_api:
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
        return BatchBackend(_offline_openai(m.model, options), None, batch, clock, report)
    if provider not in PROVIDERS:
        raise UserError(f"--batch: {provider} has no batch API here (batch providers: {', '.join(PROVIDERS)})")
    live = load_backend(name, options)
    return BatchBackend(live, load_class(PROVIDERS[provider], name)(live), batch, clock, report)


def _offline_openai(model: str, options: BackendOptions):
    """The OpenAI backend of `model` (same request builder, price and cache identity) without a key."""
    from llmscisci.backends.openai_backend import OpenAIBackend

    class OfflineOpenAI(OpenAIBackend):
        def _missing_key_ok(self) -> bool:
            return True

    return OfflineOpenAI(model, options)
