"""Model backends: one `Backend` interface (generate, count tokens, describe) for the embedded model,
local Hugging Face models and the API providers, chosen by name through `load_backend`;
`resolve_model` reads a model name (API, local or baseline) without loading anything.

Names load lazily: importing the package pulls in no torch/transformers.
"""

from __future__ import annotations

from llmscisci.lazy import lazy_exports

# public name -> the module (in this package) that defines it
_EXPORTS = {
    "Backend": "base",
    "BackendOptions": "base",
    "GenParams": "base",
    "Generation": "base",
    "ModelName": "registry",
    "load_backend": "registry",
    "register_provider": "registry",
    "resolve_model": "registry",
    "resolve_local_model": "models",
    "load_model_and_tokenizer": "models",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
