"""Model names -> backends: the one reader of a model name (`resolve_model`) and the table of API
providers.

`resolve_model(name)` says what a name stands for, without loading anything: an API model
(`provider:model`, or a catalogue alias such as `gpt-4o-mini`), a classical baseline
(`baseline:METHOD` in a grid, `baseline:DIR` for a saved classifier), or a local model (a catalogue
name, a folder or a hub id; `models.resolve_local_model` checks those). Every place that reads a
model name asks it.

Providers register by name, as task kinds do (tasks/registry.py): one line in `PROVIDERS`
("module:Class", loaded when first used, so importing this module pulls in no SDK nor torch), or the
decorator on the backend class, for a provider that lives outside the package::

    @register_provider("myapi", scoring=False)
    class MyBackend(APIBackend): ...
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

from llmscisci.backends.aliases import API_ALIASES
from llmscisci.backends.base import Backend, BackendOptions
from llmscisci.errors import UserError


@dataclass(frozen=True)
class Provider:
    """An API provider: its backend class ("module:Class") and whether its answers come with
    log-probabilities (the `score` variant needs them; local models always have them)."""

    target: str
    scoring: bool = False


# provider prefix -> its backend (one file per backend under llmscisci/backends/)
PROVIDERS: dict[str, Provider] = {
    "openai": Provider("llmscisci.backends.openai_backend:OpenAIBackend", scoring=True),
    "anthropic": Provider("llmscisci.backends.anthropic_backend:AnthropicBackend"),
    "gemini": Provider("llmscisci.backends.gemini_backend:GeminiBackend"),
}
LOCAL_BACKEND = "llmscisci.backends.local:LocalBackend"
BASELINE_PREFIX = "baseline:"  # a classical baseline, not a language model


def register_provider(name: str, target: str | type | None = None, *, scoring: bool = False):
    """Add (or replace) an API provider: `register_provider(name, "module:Class")`, or as a decorator
    on the backend class (`@register_provider(name)`), which it returns unchanged. The class is built
    as `Class(model, BackendOptions)`."""

    def add(t: str | type):
        PROVIDERS[name] = Provider(t if isinstance(t, str) else f"{t.__module__}:{t.__qualname__}", scoring)
        return t

    return add if target is None else add(target)


ModelKind = Literal["api", "local", "baseline"]


@dataclass(frozen=True)
class ModelName:
    """What a model name stands for. `provider` is set for API models; `model` is the provider's model
    id (API), the name itself (local) or what follows `baseline:` (a method or a classifier folder)."""

    name: str
    kind: ModelKind
    provider: str | None
    model: str

    @property
    def is_api(self) -> bool:
        return self.kind == "api"

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    @property
    def is_baseline(self) -> bool:
        return self.kind == "baseline"

    @property
    def can_score(self) -> bool:
        """Whether the `score` variant can use it (a local model, or a provider with log-probabilities)."""
        return self.is_local or (self.is_api and PROVIDERS[self.provider].scoring)


def resolve_model(name: str) -> ModelName:
    """Read a model name (no file, network or model is touched): 'openai:gpt-4o-mini' -> api openai
    gpt-4o-mini; 'gpt-4o-mini' (an alias) -> the same; 'baseline:tfidf' -> baseline tfidf; anything
    else -> local."""
    name = str(name)
    if name == BASELINE_PREFIX[:-1] or name.startswith(BASELINE_PREFIX):
        return ModelName(name, "baseline", None, name[len(BASELINE_PREFIX):])
    prefix, sep, rest = name.partition(":")
    if sep and prefix in PROVIDERS:
        return ModelName(name, "api", prefix, rest)
    if name in API_ALIASES:
        provider, model = API_ALIASES[name]
        return ModelName(name, "api", provider, model)
    return ModelName(name, "local", None, name)


def load_class(target: str, what: str):
    """The class a "module:Class" target names (a one-line error when its module cannot load)."""
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UserError(f"backend for {what!r} is not available ({exc.name} missing)") from None
    return getattr(module, cls_name)


def load_backend(name: str, options: BackendOptions | None = None) -> Backend:
    opts = options or BackendOptions()
    m = resolve_model(name)
    if m.is_baseline:
        raise UserError(f"{name!r} is a classical baseline, not a language model")
    target = PROVIDERS[m.provider].target if m.is_api else LOCAL_BACKEND
    return load_class(target, name)(m.model, opts)


def check_can_score(name: str) -> None:
    """A one-line error, before anything loads, for a model the `score` variant cannot use."""
    m = resolve_model(name)
    if m.is_baseline:
        raise UserError(f"the score variant needs a language model, not the classifier {name!r}")
    if not m.can_score:
        raise UserError(f"{name}: {m.provider} returns no log-probabilities, so the score variant cannot use "
                        "it; use a local model or an OpenAI-compatible API (openai:MODEL, --base-url)")
