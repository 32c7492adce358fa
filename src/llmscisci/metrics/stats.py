"""Uncertainty for label metrics: cluster bootstrap CIs, paired comparisons, multiple testing, prompt spread.

Everything here is a pure function of arrays; nothing reads files.

* Bootstrap units are REPORTS (DOIs), not items: the easy and difficult items of one report are
  written by the same people about the same work, so they move together (cluster bootstrap).
* `cluster_bootstrap` takes any statistic of a set of row indices (slow path, any metric function).
  `label_bootstrap` computes the headline label metrics from per-cluster confusion counts, so a
  replicate costs one matrix product; it draws exactly the same resamples as `cluster_bootstrap`
  with the same seed and therefore gives identical intervals (tested against scikit-learn).
* Intervals are percentile intervals; `level` defaults to 0.95, `seed` to 2025 (the project's seed).
* Paired comparisons of two runs on the same items: paired cluster bootstrap of the metric
  difference, and McNemar's test (statsmodels) of per-item exact match (subset accuracy).
  McNemar treats items as independent; the paired bootstrap is the one that respects DOI clusters.
* `adjust_pvalues` wraps statsmodels' Holm / Benjamini-Hochberg and says what the adjustment means.
* `spread` summarises one metric across K paraphrase runs of the same prompt (min, max, range, std).

Invalid model outputs are scored, not dropped: `as_prediction_matrix` turns a missing label vector
into an all-zero prediction, which can never equal a valid reference (a vector is never all zero),
so it counts as an exact-match miss and as false negatives for every true label.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_SEED = 2025
DEFAULT_BOOT = 2000
DEFAULT_LEVEL = 0.95

# headline metrics, in report order; `higher` says which direction is better
HEADLINE: dict[str, dict] = {
    "subset_accuracy": {"title": "Subset accuracy", "higher": True},
    "micro_f1": {"title": "Micro F1", "higher": True},
    "macro_f1": {"title": "Macro F1", "higher": True},
    "hamming_loss": {"title": "Hamming loss", "higher": False},
}


# ------------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    level: float = DEFAULT_LEVEL
    n_items: int = 0
    n_clusters: int = 0
    n_boot: int = 0

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def degenerate(self) -> str | None:
        """Why the interval has zero width (one cluster, or no variation across resamples), else None.

        A zero-width interval is not certainty: the resamples had nothing to vary."""
        if math.isnan(self.estimate) or math.isnan(self.low) or math.isnan(self.high) or self.high > self.low:
            return None
        if self.n_clusters <= 1:
            return "one cluster: every resample is the same items, so the interval has zero width"
        return "no variation across resamples: a zero-width interval, not certainty"

    def fmt(self, digits: int = 3) -> str:
        """`estimate [low, high]`; a degenerate (zero-width) interval is marked with a trailing `*`."""
        if math.isnan(self.estimate):
            return "n/a"
        if math.isnan(self.low) or math.isnan(self.high):
            return f"{self.estimate:.{digits}f}"
        mark = "*" if self.degenerate else ""
        return f"{self.estimate:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]{mark}"


@dataclass(frozen=True)
class PairedDiff:
    """Metric(A) - metric(B) on the same items, with a paired cluster-bootstrap CI and p-value.

    The p-value is the two-sided bootstrap p-value 2*min(P(d* <= 0), P(d* >= 0)), capped at 1: how
    often the resampled difference lands on the other side of zero."""

    metric: str
    a: float
    b: float
    diff: Interval
    p_value: float


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of exact match, A vs B. `a_only`: items A gets exactly right and B does not."""

    statistic: float
    p_value: float
    both: int
    a_only: int
    b_only: int
    neither: int
    exact: bool

    @property
    def method(self) -> str:
        return "exact binomial" if self.exact else "chi-square, continuity corrected"


@dataclass(frozen=True)
class Adjusted:
    """p-values adjusted for multiple comparisons, with a sentence a reader can act on."""

    method: str
    p_raw: tuple[float, ...]
    p_adjusted: tuple[float, ...]
    reject: tuple[bool, ...]
    alpha: float
    note: str


@dataclass(frozen=True)
class Spread:
    """One metric across K runs that differ only in the prompt's wording."""

    metric: str
    k: int
    values: tuple[float, ...]
    min: float
    max: float
    mean: float
    std: float  # sample standard deviation (ddof=1); nan for k == 1

    @property
    def range(self) -> float:
        return self.max - self.min


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------
def as_prediction_matrix(vectors: Sequence[Sequence[int] | None], n_labels: int) -> np.ndarray:
    """Stack label vectors into an (n, L) 0/1 int array; None (an invalid output) becomes all zeros."""
    out = np.zeros((len(vectors), n_labels), dtype=np.int64)
    for i, v in enumerate(vectors):
        if v is None:
            continue
        row = np.asarray(v, dtype=np.int64)
        if row.shape != (n_labels,):
            raise ValueError(f"row {i}: label vector of length {row.size}, expected {n_labels}")
        out[i] = row
    return out


def _check(y_true, y_pred, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    if yt.ndim != 2 or yt.shape != yp.shape:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} must be equal (n, L) arrays")
    g = np.asarray(groups)
    if g.shape != (yt.shape[0],):
        raise ValueError(f"groups has shape {g.shape}, expected ({yt.shape[0]},)")
    return yt, yp, g


def _cluster_index(groups) -> tuple[np.ndarray, int]:
    """Map group labels to 0..G-1 (order of first appearance)."""
    g = np.asarray(groups)
    _, first, inverse = np.unique(g, return_index=True, return_inverse=True)
    order = np.argsort(first)  # unique() sorts; renumber by first appearance (stable across dtypes)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse.ravel()], order.size


def _draws(n_clusters: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, G) cluster indices: the resamples shared by every bootstrap in this module."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_clusters, size=(n_boot, n_clusters))


def _weights(draws: np.ndarray, n_clusters: int) -> np.ndarray:
    """How many times each cluster appears in each resample: (n_boot, G)."""
    b = draws.shape[0]
    flat = draws + (np.arange(b)[:, None] * n_clusters)
    return np.bincount(flat.ravel(), minlength=b * n_clusters).reshape(b, n_clusters)


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    vals = values[~np.isnan(values)]
    if vals.size == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(vals, [a, 1 - a])
    return float(lo), float(hi)


# ------------------------------------------------------------------------------------------------
# headline metrics from confusion counts
# ------------------------------------------------------------------------------------------------
def _item_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-item sufficient statistics: [tp(L), fp(L), fn(L), tn(L), exact, 1] -> (n, 4L+2)."""
    tp = (y_true == 1) & (y_pred == 1)
    fp = (y_true == 0) & (y_pred == 1)
    fn = (y_true == 1) & (y_pred == 0)
    tn = (y_true == 0) & (y_pred == 0)
    exact = (y_true == y_pred).all(axis=1, keepdims=True)
    ones = np.ones((y_true.shape[0], 1), dtype=bool)
    return np.hstack([tp, fp, fn, tn, exact, ones]).astype(np.float64)


def _metrics_from_counts(totals: np.ndarray, n_labels: int) -> dict[str, np.ndarray]:
    """Headline metrics from summed counts, vectorised over rows (resamples). zero_division = 0,
    as scikit-learn's default."""
    L = n_labels
    tp, fp, fn = totals[:, 0:L], totals[:, L:2 * L], totals[:, 2 * L:3 * L]
    exact, n = totals[:, 4 * L], totals[:, 4 * L + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        den_l = 2 * tp + fp + fn
        f1_l = np.where(den_l > 0, 2 * tp / np.where(den_l > 0, den_l, 1), 0.0)
        den = den_l.sum(axis=1)
        micro = np.where(den > 0, 2 * tp.sum(axis=1) / np.where(den > 0, den, 1), 0.0)
        nn = np.where(n > 0, n, np.nan)
        return {
            "subset_accuracy": exact / nn,
            "micro_f1": np.where(n > 0, micro, np.nan),
            "macro_f1": np.where(n > 0, f1_l.mean(axis=1), np.nan),
            "hamming_loss": (fp + fn).sum(axis=1) / (nn * L),
        }


def headline_metrics(y_true, y_pred) -> dict[str, float]:
    """Subset accuracy, micro/macro F1 and Hamming loss of (n, L) 0/1 arrays (scikit-learn's
    definitions, zero_division=0)."""
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    totals = _item_counts(yt, yp).sum(axis=0, keepdims=True)
    return {k: float(v[0]) for k, v in _metrics_from_counts(totals, yt.shape[1]).items()}


def confusion_counts(y_true, y_pred) -> np.ndarray:
    """(L, 4) array of TP, FP, FN, TN per label."""
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    L = yt.shape[1]
    c = _item_counts(yt, yp).sum(axis=0)
    return np.stack([c[0:L], c[L:2 * L], c[2 * L:3 * L], c[3 * L:4 * L]], axis=1).astype(np.int64)


# ------------------------------------------------------------------------------------------------
# bootstrap
# ------------------------------------------------------------------------------------------------
def cluster_bootstrap(
    statistic: Callable[[np.ndarray], float],
    groups,
    *,
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Percentile CI of `statistic(row_indices)` resampling whole clusters (e.g. DOIs) with replacement.

    `statistic` receives an int array of row indices (rows of a resampled cluster all appear,
    as often as the cluster was drawn) and returns a float. Works for any metric function, e.g.
    ``lambda idx: f1_score(Y[idx], P[idx], average="micro")``. Slow path: one call per resample."""
    cid, n_clusters = _cluster_index(groups)
    if n_clusters == 0:
        raise ValueError("no items to bootstrap")
    rows_of = [np.flatnonzero(cid == c) for c in range(n_clusters)]
    draws = _draws(n_clusters, n_boot, seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        reps[b] = statistic(np.concatenate([rows_of[c] for c in draws[b]]))
    est = float(statistic(np.arange(cid.size)))
    lo, hi = _percentile(reps, level)
    return Interval(est, lo, hi, level, int(cid.size), n_clusters, n_boot)


def bootstrap_replicates(y_true, y_pred, groups, *, n_boot: int = DEFAULT_BOOT,
                         seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """Headline metrics on `n_boot` cluster resamples (same draws as `cluster_bootstrap`)."""
    yt, yp, g = _check(y_true, y_pred, groups)
    cid, n_clusters = _cluster_index(g)
    counts = _item_counts(yt, yp)
    per_cluster = np.zeros((n_clusters, counts.shape[1]))
    np.add.at(per_cluster, cid, counts)
    w = _weights(_draws(n_clusters, n_boot, seed), n_clusters).astype(np.float64)
    return _metrics_from_counts(w @ per_cluster, yt.shape[1])


def label_bootstrap(
    y_true,
    y_pred,
    groups,
    *,
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
) -> dict[str, Interval]:
    """CIs of every headline metric of a multi-label run, resampling DOIs (fast, exact path)."""
    yt, yp, g = _check(y_true, y_pred, groups)
    if yt.shape[0] == 0:
        raise ValueError("no items to bootstrap")
    point = headline_metrics(yt, yp)
    reps = bootstrap_replicates(yt, yp, g, n_boot=n_boot, seed=seed)
    n_clusters = _cluster_index(g)[1]
    out = {}
    for name in HEADLINE:
        lo, hi = _percentile(reps[name], level)
        out[name] = Interval(point[name], lo, hi, level, int(yt.shape[0]), n_clusters, n_boot)
    return out


def _two_sided_p(reps: np.ndarray) -> float:
    reps = reps[~np.isnan(reps)]
    if reps.size == 0:
        return float("nan")
    if np.all(reps == 0):
        return 1.0
    return float(min(1.0, 2 * min(np.mean(reps <= 0), np.mean(reps >= 0))))


def paired_bootstrap(
    y_true,
    pred_a,
    pred_b,
    groups,
    *,
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
) -> dict[str, PairedDiff]:
    """Paired cluster bootstrap of metric(A) - metric(B) for every headline metric. Both runs are
    scored on the same resampled DOIs in each replicate, so item difficulty cancels out."""
    yt, pa, g = _check(y_true, pred_a, groups)
    _, pb, _ = _check(y_true, pred_b, groups)
    if yt.shape[0] == 0:
        raise ValueError("no shared items to compare")
    ra = bootstrap_replicates(yt, pa, g, n_boot=n_boot, seed=seed)
    rb = bootstrap_replicates(yt, pb, g, n_boot=n_boot, seed=seed)
    ma, mb = headline_metrics(yt, pa), headline_metrics(yt, pb)
    n_clusters = _cluster_index(g)[1]
    out = {}
    for name in HEADLINE:
        d = ra[name] - rb[name]
        lo, hi = _percentile(d, level)
        iv = Interval(ma[name] - mb[name], lo, hi, level, int(yt.shape[0]), n_clusters, n_boot)
        out[name] = PairedDiff(name, ma[name], mb[name], iv, _two_sided_p(d))
    return out


def paired_bootstrap_metric(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y_true,
    pred_a,
    pred_b,
    groups,
    *,
    n_boot: int = DEFAULT_BOOT,
    level: float = DEFAULT_LEVEL,
    seed: int = DEFAULT_SEED,
    name: str = "metric",
) -> PairedDiff:
    """Paired cluster bootstrap of any `metric(y_true, y_pred)` difference (slow path)."""
    yt, pa, g = _check(y_true, pred_a, groups)
    _, pb, _ = _check(y_true, pred_b, groups)
    cid, n_clusters = _cluster_index(g)
    rows_of = [np.flatnonzero(cid == c) for c in range(n_clusters)]
    draws = _draws(n_clusters, n_boot, seed)
    d = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rows_of[c] for c in draws[b]])
        d[b] = metric(yt[idx], pa[idx]) - metric(yt[idx], pb[idx])
    a, bb = float(metric(yt, pa)), float(metric(yt, pb))
    lo, hi = _percentile(d, level)
    return PairedDiff(name, a, bb, Interval(a - bb, lo, hi, level, int(yt.shape[0]), n_clusters, n_boot),
                      _two_sided_p(d))


# ------------------------------------------------------------------------------------------------
# McNemar and multiple comparisons
# ------------------------------------------------------------------------------------------------
def mcnemar_exact_match(y_true, pred_a, pred_b, *, exact: bool | None = None) -> McNemar:
    """McNemar's test on per-item exact match of two runs over the same items (statsmodels).

    `exact=None` picks the exact binomial test when there are fewer than 25 discordant items, else
    the continuity-corrected chi-square."""
    yt = np.asarray(y_true, dtype=np.int64)
    ca = (yt == np.asarray(pred_a, dtype=np.int64)).all(axis=1)
    cb = (yt == np.asarray(pred_b, dtype=np.int64)).all(axis=1)
    return mcnemar_paired(ca, cb, exact=exact)


def mcnemar_paired(correct_a, correct_b, *, exact: bool | None = None) -> McNemar:
    """McNemar's test from two boolean 'item right' vectors."""
    from statsmodels.stats.contingency_tables import mcnemar

    ca = np.asarray(correct_a, dtype=bool)
    cb = np.asarray(correct_b, dtype=bool)
    if ca.shape != cb.shape:
        raise ValueError("the two runs must cover the same items")
    both = int(np.sum(ca & cb))
    a_only = int(np.sum(ca & ~cb))
    b_only = int(np.sum(~ca & cb))
    neither = int(np.sum(~ca & ~cb))
    use_exact = (a_only + b_only) < 25 if exact is None else exact
    if a_only + b_only == 0:
        return McNemar(0.0, 1.0, both, a_only, b_only, neither, use_exact)
    res = mcnemar([[both, a_only], [b_only, neither]], exact=use_exact, correction=True)
    return McNemar(float(res.statistic), float(res.pvalue), both, a_only, b_only, neither, use_exact)


METHODS = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni"}


def adjust_pvalues(p_values: Sequence[float], method: str = "holm", alpha: float = 0.05) -> Adjusted:
    """Adjust p-values for multiple comparisons (statsmodels.stats.multitest.multipletests).

    method: holm (family-wise error, default), fdr_bh (false discovery rate), bonferroni.
    NaN p-values are left out of the family and stay NaN."""
    from statsmodels.stats.multitest import multipletests

    if method not in METHODS:
        raise ValueError(f"unknown adjustment {method!r} (known: {', '.join(METHODS)})")
    p = np.asarray(list(p_values), dtype=np.float64)
    adj = np.full(p.shape, np.nan)
    rej = np.zeros(p.shape, dtype=bool)
    ok = ~np.isnan(p)
    if ok.any():
        r, padj, _, _ = multipletests(p[ok], alpha=alpha, method=method)
        adj[ok], rej[ok] = padj, r
    return Adjusted(method, tuple(map(float, p)), tuple(map(float, adj)), tuple(map(bool, rej)), alpha,
                    comparison_note(int(ok.sum()), method, alpha))


def comparison_note(m: int, method: str = "holm", alpha: float = 0.05) -> str:
    """A sentence on what comparing m pairs does to p-values; empty for m < 2."""
    if m < 2:
        return ""
    name = METHODS.get(method, method)
    kind = "family-wise error rate" if method in ("holm", "bonferroni") else "false discovery rate"
    note = (f"{m} pairs compared: p-values adjusted by {name} to control the {kind} at {alpha:g}. "
            f"Unadjusted, about {alpha * m:.1f} of {m} comparisons would look significant by chance alone.")
    if m >= 10:
        note += " With this many pairs, treat unadjusted differences as exploratory."
    return note


# ------------------------------------------------------------------------------------------------
# prompt sensitivity
# ------------------------------------------------------------------------------------------------
def spread(runs: Mapping[str, Mapping[str, float]],
           metrics: Sequence[str] | None = None) -> dict[str, Spread]:
    """Spread of each metric across K paraphrase runs ({run name: {metric: value}}).

    A difference between prompt variants smaller than the spread within one variant's paraphrases
    holds for one wording only."""
    if not runs:
        raise ValueError("no runs to summarise")
    if metrics is not None:
        names = list(metrics)
    else:
        names = [m for m in HEADLINE if all(m in r for r in runs.values())]
    out = {}
    for m in names:
        vals = np.array([float(r[m]) for r in runs.values() if m in r and r[m] is not None], dtype=float)
        vals = vals[~np.isnan(vals)]
        if vals.size == 0:
            continue
        std = float(np.std(vals, ddof=1)) if vals.size > 1 else float("nan")
        out[m] = Spread(m, int(vals.size), tuple(map(float, vals)), float(vals.min()), float(vals.max()),
                        float(vals.mean()), std)
    return out


__all__ = [
    "HEADLINE", "Interval", "PairedDiff", "McNemar", "Adjusted", "Spread", "as_prediction_matrix",
    "headline_metrics", "confusion_counts", "cluster_bootstrap", "bootstrap_replicates", "label_bootstrap",
    "paired_bootstrap", "paired_bootstrap_metric", "mcnemar_exact_match", "mcnemar_paired",
    "adjust_pvalues", "comparison_note", "spread",
]
