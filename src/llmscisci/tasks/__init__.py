"""Tasks: the runners that turn items into predictions with a backend (label, judge, extract, the
baselines), their answer parsers, the run plan and the grid of experiments.

Names load lazily: importing the package pulls in no torch/transformers.
"""

from __future__ import annotations

# public name -> the module (in this package) that defines it
_EXPORTS = {
    "LabelSpec": "label",
    "run_label": "label",
    "reevaluate": "label",
    "JudgeSpec": "judge",
    "run_judge": "judge",
    "run_baseline": "baseline",
    "parse_answer": "parse",
    "load_grid": "grid",
    "prepare_grid": "grid",
    "run_grid": "grid",
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
