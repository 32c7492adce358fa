"""Prompts: templates in TOML next to the modules that render them (label, judge, extract and the
chain-of-thought format); each module's `prompt_hash` enters the run's configuration hash.
"""

from __future__ import annotations

# public name -> the module (in this package) that defines it
_EXPORTS = {
    "build_messages": "label",
    "check_variant": "label",
    "label_schema": "label",
    "judge_schema": "judge",
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
