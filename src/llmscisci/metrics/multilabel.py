"""Multi-label scores and baselines. Pure functions over 0/1 int arrays of shape (n_items, n_labels).

Scores come from scikit-learn (`zero_division=0`: a label with no predicted or no true positives
scores 0 where the ratio is undefined; `ZERO_DIVISION` says so in words). `macro_f1_present` averages
over the labels with reference positives only, and `scores` names the labels it leaves out. Baselines are fitted on training labels only and obey the
exclusive-`none` policy of the project's validator.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from sklearn.metrics import hamming_loss as _sk_hamming

from llmscisci.data.validate import apply_none_rule


def as_matrix(y, n_labels: int | None = None) -> np.ndarray:
    """A (n_items, n_labels) int array of 0/1 (an empty input keeps its label count when given)."""
    arr = np.asarray(y, dtype=int)
    if arr.size == 0:
        return np.zeros((0, n_labels or (arr.shape[1] if arr.ndim == 2 else 0)), dtype=int)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array (items x labels), got shape {arr.shape}")
    if n_labels is not None and arr.shape[1] != n_labels:
        raise ValueError(f"expected {n_labels} labels per item, got {arr.shape[1]}")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError("label arrays must hold only 0 and 1")
    return arr


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = as_matrix(y_true), as_matrix(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"shapes differ: y_true {t.shape} vs y_pred {p.shape}")
    if t.shape[0] == 0:
        raise ValueError("no items to score")
    return t, p


def hamming_loss(y_true, y_pred) -> float:
    """Fraction of wrong label entries."""
    t, p = _pair(y_true, y_pred)
    return float(_sk_hamming(t, p))


def subset_accuracy(y_true, y_pred) -> float:
    """Fraction of items whose whole label vector is right (exact match)."""
    t, p = _pair(y_true, y_pred)
    return float(accuracy_score(t, p))


def micro_f1(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred)
    return float(f1_score(t, p, average="micro", zero_division=0))


def macro_f1(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred)
    return float(f1_score(t, p, average="macro", zero_division=0))


ZERO_DIVISION = ("F1, precision and recall are 0 where undefined (scikit-learn's zero_division=0): a category "
                 "with no reference positives scores 0 in macro F1 whatever the model does, so macro F1 over "
                 "all categories is capped below 1; macro_f1_present averages over the categories with "
                 "reference positives only")


def present_labels(y_true) -> list[int]:
    """The columns with at least one reference positive."""
    t = as_matrix(y_true)
    return [j for j in range(t.shape[1]) if t[:, j].any()]


def macro_f1_present(y_true, y_pred) -> float | None:
    """Macro F1 over the labels with at least one reference positive: a label the reference never
    carries (its F1 is 0 or undefined whatever the model does) is left out instead of scored 0. None
    when the reference carries no label at all."""
    t, p = _pair(y_true, y_pred)
    present = present_labels(t)
    if not present:
        return None
    return float(f1_score(t, p, average="macro", labels=present, zero_division=0))


def per_label(y_true, y_pred, names: Sequence[str]) -> dict[str, dict[str, float | int]]:
    """Precision, recall, F1 and support (true positives + false negatives) of each label, by name."""
    t, p = _pair(y_true, y_pred)
    if len(names) != t.shape[1]:
        raise ValueError(f"{len(names)} names for {t.shape[1]} labels")
    prec, rec, f1, sup = precision_recall_fscore_support(
        t, p, labels=list(range(t.shape[1])), average=None, zero_division=0
    )
    return {
        name: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
               "support": int(sup[i])}
        for i, name in enumerate(names)
    }


def scores(y_true, y_pred, names: Sequence[str]) -> dict:
    """All scores of one comparison; None values (and n = 0) when there is nothing to score."""
    t = as_matrix(y_true, len(names))
    if t.shape[0] == 0:
        return {"hamming_loss": None, "subset_accuracy": None, "micro_f1": None, "macro_f1": None,
                "macro_f1_present": None, "macro_f1_left_out": [], "n": 0,
                "per_label": {}}
    present = set(present_labels(t))
    return {
        "hamming_loss": hamming_loss(t, y_pred),
        "subset_accuracy": subset_accuracy(t, y_pred),
        "micro_f1": micro_f1(t, y_pred),
        "macro_f1": macro_f1(t, y_pred),
        "macro_f1_present": macro_f1_present(t, y_pred),
        # the categories macro_f1_present leaves out: no reference positive among these items
        "macro_f1_left_out": [name for j, name in enumerate(names) if j not in present],
        "n": int(t.shape[0]),
        "per_label": per_label(t, y_pred, names),
    }


def _resolve_none(none_index: int | None, n_labels: int) -> int | None:
    if none_index is None:
        return None
    idx = none_index + n_labels if none_index < 0 else none_index
    if not 0 <= idx < n_labels:
        raise ValueError(f"none_index {none_index} outside the {n_labels} labels")
    return idx


def _none_rule_rows(y: np.ndarray, none_index: int | None) -> np.ndarray:
    rows = [apply_none_rule(row.tolist(), none_index).labels for row in y]
    return np.array(rows, dtype=int).reshape(y.shape)


def majority_vector(y_train, *, none_index: int | None = None) -> np.ndarray:
    """Per-label majority of the training labels (a label is on when more than half the training items
    carry it; ties are off), then the exclusive-`none` policy. One vector, predicted for every item.
    `none_index`: the codebook's `none` column (`codebook.none_index`; negative counts from the end).
    Pass it: with None (a codebook without `none`) no policy applies, so an all-zero vector stays."""
    t = as_matrix(y_train)
    if t.shape[0] == 0:
        raise ValueError("majority baseline needs at least one training item")
    vec = (t.mean(axis=0) > 0.5).astype(int)
    return np.asarray(apply_none_rule(vec.tolist(), _resolve_none(none_index, t.shape[1])).labels, dtype=int)


def prior_predictions(y_train, n: int, seed: int, *, none_index: int | None = None) -> np.ndarray:
    """n predictions, each label drawn independently with its training prevalence (numpy Generator
    seeded with `seed`), then the exclusive-`none` policy row by row (`none_index` as in
    `majority_vector`)."""
    t = as_matrix(y_train)
    if t.shape[0] == 0:
        raise ValueError("prior baseline needs at least one training item")
    prevalence = t.mean(axis=0)
    rng = np.random.default_rng(seed)
    draws = (rng.random((int(n), t.shape[1])) < prevalence).astype(int)
    return _none_rule_rows(draws, _resolve_none(none_index, t.shape[1]))
