"""Training: SFT, DPO and GRPO on a small model (TRL + PEFT), their data builders (preference pairs,
chain-of-thought rows) and the training-folder layout.

Names load lazily: importing the package pulls in no torch/transformers.
"""

from __future__ import annotations

from llmscisci.lazy import lazy_exports

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
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
