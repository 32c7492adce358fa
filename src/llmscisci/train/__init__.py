"""Training: SFT, DPO and GRPO on a small model (TRL + PEFT), their data builders (preference pairs,
chain-of-thought rows) and the training-folder layout.

Names load lazily: importing the package pulls in no torch/transformers.
"""

from __future__ import annotations

# public name -> the module (in this package) that defines it
_EXPORTS = {
    "train_sft": "sft",
    "train_dpo": "dpo",
    "train_grpo": "grpo",
    "load_config": "config",
    "resolve_config": "config",
    "TrainOutput": "layout",
    "is_train_output": "layout",
    "build_cot": "cot",
    "load_cot": "cot",
    "save_cot": "cot",
    "load_preferences": "preferences",
    "save_preferences": "preferences",
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
