"""The study's fixed points, for notebooks: `ls.data_dir()` (the study's data folder: the one given,
else $LLMSCISCI_DATA, else the dataset bundled with the package) and `ls.VARIANTS` (the labelling
prompt variants, the values `variant=` takes)."""

from __future__ import annotations

from llmscisci.paths import data_dir
from llmscisci.prompts.label import VARIANTS

__all__ = ["VARIANTS", "data_dir"]
