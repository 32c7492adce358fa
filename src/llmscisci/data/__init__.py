"""Data layer: reports, codebooks, label files, the label validator and the canonical split."""

from llmscisci.data.codebook import Category, Codebook, load_codebook
from llmscisci.data.items import Item, load_items, to_dataset_dict
from llmscisci.data.labelfiles import LabelRecord, LabelSet, load_labels
from llmscisci.data.problems import Collector, Problem
from llmscisci.data.reports import load_reports
from llmscisci.data.split import SPLIT_INFO, canonical_split, grouped_folds
from llmscisci.data.validate import Checked, LabelError, apply_none_rule, check_shape, validate

__all__ = [
    "Category", "Codebook", "load_codebook", "Item", "load_items", "to_dataset_dict", "LabelRecord",
    "LabelSet", "load_labels", "Collector", "Problem", "load_reports", "SPLIT_INFO", "canonical_split",
    "grouped_folds", "Checked", "LabelError", "apply_none_rule", "check_shape", "validate",
]
