"""Tasks: the runners that turn items into predictions with a backend (label, judge, extract, the
baselines), their answer parsers, the run plan and the grid of experiments.

Names load lazily: importing the package pulls in no torch/transformers.
"""

from __future__ import annotations

from llmscisci.lazy import lazy_exports

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
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
