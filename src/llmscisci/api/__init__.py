"""The Python face of the toolkit, for notebooks and scripts: each function does what the command of
the same name does, with the same options as keyword arguments and the same one-line `UserError`s
(raised, not exits), and returns Python objects (`Run`, DataFrames, dictionaries).
`import llmscisci as ls` offers every name here (`ls.label`, `ls.open_run`, ...).

Names load lazily: importing the package pulls in no torch/transformers.
"""

from __future__ import annotations

from llmscisci.lazy import lazy_exports

# public name -> the module (in this package) that defines it
EXPORTS = {
    "label": "label",
    "judge": "judge",
    "agree": "judge",
    "extract": "extract",
    "baseline": "baseline",
    "prevalence": "measure",
    "robustness": "measure",
    "report": "measure",
    "Run": "run",
    "open_run": "run",
    "Codebook": "codebook",
    "Category": "codebook",
    "load_codebook": "codebook",
    "VARIANTS": "study",
    "data_dir": "study",
    "code_import": "coding",
    "code_plan": "coding",
    "build_data": "data",
    "grid": "grid",
    "export": "export",
    "batch_status": "batch",
    "batch_collect": "batch",
    "batch_import": "batch",
    "batch_cancel": "batch",
    "sft_train": "train",
    "dpo_pairs": "train",
    "dpo_train": "train",
    "dpo_eval": "train",
    "grpo_probe": "train",
    "grpo_score": "train",
    "grpo_build": "train",
    "grpo_train": "train",
    "grpo_eval": "train",
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
