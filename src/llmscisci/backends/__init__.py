"""Model backends: one `Backend` interface (generate, count tokens, describe) for the embedded model,
local Hugging Face models and the API providers, chosen by name through `load_backend`.

Names load lazily: importing the package pulls in no torch/transformers.
"""

from __future__ import annotations

# public name -> the module (in this package) that defines it
_EXPORTS = {
    "Backend": "base",
    "BackendOptions": "base",
    "GenParams": "base",
    "Generation": "base",
    "load_backend": "registry",
    "split_provider": "registry",
    "resolve_model": "models",
    "load_model_and_tokenizer": "models",
}
__all__ = sorted(_EXPORTS)

def __getattr__(name: str):
    """Import on first use, so importing the package stays cheap (no torch/transformers)."""
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
