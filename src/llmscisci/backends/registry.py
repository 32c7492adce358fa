"""Model names -> backends. `provider:model` goes to an API backend, anything else is a local model."""

from __future__ import annotations

import importlib

from llmscisci.backends.base import Backend, BackendOptions
from llmscisci.errors import UserError

# provider prefix -> "module:Class" (one file per backend under llmscisci/backends/)
PROVIDERS: dict[str, str] = {
    "openai": "llmscisci.backends.openai_backend:OpenAIBackend",
    "anthropic": "llmscisci.backends.anthropic_backend:AnthropicBackend",
    "gemini": "llmscisci.backends.gemini_backend:GeminiBackend",
}
# providers whose answers come with log-probabilities (the `score` variant); local models always do
SCORING_PROVIDERS = ("openai",)


def split_provider(name: str) -> tuple[str | None, str]:
    """('openai', 'gpt-4o-mini') for 'openai:gpt-4o-mini'; (None, name) for local names and paths."""
    if ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix in PROVIDERS:
            return prefix, rest
    return None, name


def load_backend(name: str, options: BackendOptions | None = None) -> Backend:
    opts = options or BackendOptions()
    provider, model = split_provider(name)
    if provider is None:
        from llmscisci.backends.aliases import api_alias

        alias = api_alias(name)
        if alias is not None:
            provider, model = alias
    if provider is not None:
        target = PROVIDERS[provider]
    else:
        target = "llmscisci.backends.local:LocalBackend"
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UserError(f"backend for {name!r} is not available ({exc.name} missing)") from None
    return getattr(module, cls_name)(model, opts)


def check_can_score(name: str) -> None:
    """A one-line error, before anything loads, for a model the `score` variant cannot use."""
    provider, _ = split_provider(name)
    if provider is None:
        from llmscisci.backends.aliases import api_alias

        alias = api_alias(name)
        provider = alias[0] if alias else None
    if name.startswith("baseline:") or name == "baseline":
        raise UserError(f"the score variant needs a language model, not the classifier {name!r}")
    if provider is not None and provider not in SCORING_PROVIDERS:
        raise UserError(f"{name}: {provider} returns no log-probabilities, so the score variant cannot use "
                        "it; use a local model or an OpenAI-compatible API (openai:MODEL, --base-url)")
