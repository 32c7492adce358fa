"""Decision thresholds for scores (the `score` variant's calibrated log-odds), fitted on items with
reference labels: per category, the cut that maximises that category's F1 on the fitting items.

Pure functions over arrays (n items x k categories); a label is 1 where score > threshold. Cross-fitting
(`cross_fit`) predicts each fold with thresholds fitted on the other folds only, so the scores it
gives are out-of-sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score


def fit_threshold(scores: Sequence[float], truth: Sequence[int], default: float = 0.0) -> float:
    """The cut t (label = score > t) with the best F1 on these items; among equally good cuts the one
    nearest `default`. A category with no positive (F1 undefined) or no scores keeps `default`."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(truth, dtype=int)
    if s.size == 0 or y.sum() == 0:
        return float(default)
    u = np.unique(s)
    cuts = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2, [u[-1] + 1.0]])
    f1 = np.array([f1_score(y, (s > t).astype(int), zero_division=0) for t in cuts])
    best = np.flatnonzero(np.isclose(f1, f1.max()))
    return float(cuts[best[np.argmin(np.abs(cuts[best] - default))]])


def fit_thresholds(scores, truth, default: float = 0.0) -> list[float]:
    """One threshold per column of `scores` against the same column of `truth` (n x k each)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(truth, dtype=int)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and reference labels {y.shape} differ in shape")
    return [fit_threshold(s[:, j], y[:, j], default) for j in range(s.shape[1])]


def apply_thresholds(scores, thresholds: Sequence[float]) -> np.ndarray:
    """0/1 labels: score > threshold, per column."""
    return (np.asarray(scores, dtype=float) > np.asarray(thresholds, dtype=float)[None, :]).astype(int)


def cross_fit(scores, truth, folds: Sequence[int],
              default: float = 0.0) -> tuple[np.ndarray, dict[int, list[float]]]:
    """(out-of-fold labels, thresholds per fold): each fold's items thresholded with cuts fitted on the
    other folds' items only."""
    s, y, f = np.asarray(scores, dtype=float), np.asarray(truth, dtype=int), np.asarray(folds)
    pred = np.zeros_like(y)
    fitted: dict[int, list[float]] = {}
    for fold in np.unique(f):
        test = f == fold
        fitted[int(fold)] = fit_thresholds(s[~test], y[~test], default)
        pred[test] = apply_thresholds(s[test], fitted[int(fold)])
    return pred, fitted


__all__ = ["apply_thresholds", "cross_fit", "fit_threshold", "fit_thresholds"]
