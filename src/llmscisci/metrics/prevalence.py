"""Category prevalences from model labels, corrected with a small human-coded sample. Pure functions.

The setting: a corpus of N items, each labelled by a model (``yhat``, 0/1 per category; an invalid
output counts as 0), and a sample of n of them coded by people (``y``), drawn with known inclusion
probabilities ``pi`` (n/N for a simple random sample; per item for a stratified or a
disagreement-weighted sample). Four estimates of the share of a category:

* ``naive``  the model's labels taken as truth: the share among the items with a valid output, with a
  Wilson interval (statsmodels). The interval is about the model's labels, not about the truth: it is
  narrow and wrong whenever the model is biased.
* ``coded``  the human codes alone: the inverse-probability-weighted (Hajek) mean over the coded
  sample with a normal interval (linearisation variance). Valid, but it ignores the N - n predictions.
* ``ppi``    prediction-powered inference (Angelopoulos, Bates, Fannjiang, Jordan, Zrnic 2023,
  *Science* 382:669), from the maintained `ppi_python` package (``ppi_mean_ci``, ``lam=1``, i.e. the
  paper's estimator without power tuning): mean of the predictions over the corpus plus the
  "rectifier", the (weighted) mean error of the predictions on the coded sample,
  ``theta = mean_N(yhat) + mean_n(y - yhat)``, CI ``theta +- z sqrt(var(yhat)/N + var(y - yhat)/n)``.
  Unequal inclusion probabilities enter as rectifier weights ``1/pi``. The N corpus predictions are
  the "unlabelled" set, coded items included; for 0/1 labels the covariance this ignores is never
  positive (an error ``y - yhat`` is >= 0 where ``yhat`` = 0 and <= 0 where ``yhat`` = 1), so the
  interval is if anything conservative, most so when the coded sample is a large share of the corpus.
* ``dsl``    design-based supervised learning (Egami, Hinck, Stewart, Wei 2023, NeurIPS), implemented
  from the paper (no maintained Python library): the pseudo-outcome
  ``ytilde_i = yhat_i + (R_i / pi_i) (y_i - yhat_i)`` (``R_i`` = 1 when item i was coded), the estimate
  ``mean_N(ytilde)`` and its sandwich variance ``mean_N((ytilde - mean)^2) / N`` (for a mean the
  estimating equation is ``ytilde - mu = 0``, so the bread is 1 and the meat is the variance of
  ``ytilde``). Unbiased for any predictions when the pi are the true sampling probabilities.

Both corrected estimators target the mean of the population the corpus stands for (the papers'
super-population); for the finite corpus itself their intervals are conservative. Point estimates and
interval ends are clipped to [0, 1] (a PPI or DSL estimate can fall outside when the coded sample's
errors outweigh the model's share); a clipped estimate keeps the estimator's own value as
``estimate_unclipped``, with a note, and differences of shares are made of the unclipped values. An
estimate that cannot be computed (e.g. fewer than two coded items) is reported with ``estimate=None`` and a reason, never as an error or a NaN; a zero-width
interval (no variation in the sample, e.g. nobody coded the category) carries a reason too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

DEFAULT_LEVEL = 0.95
METHODS = ("naive", "coded", "ppi", "dsl")
TITLES = {"naive": "naive (model = truth)", "coded": "coded only", "ppi": "PPI", "dsl": "DSL"}


@dataclass(frozen=True)
class Estimate:
    """A share with its confidence interval; ``estimate`` is None (with a reason) when undefined."""

    method: str
    estimate: float | None
    low: float | None
    high: float | None
    se: float | None
    n_coded: int
    n_total: int
    level: float = DEFAULT_LEVEL
    reason: str | None = None
    estimate_unclipped: float | None = None  # set only when the estimate fell outside [0, 1]

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def unclipped(self) -> float | None:
        """The estimator's own value (outside [0, 1] possibly): what differences and sums are made of."""
        return self.estimate if self.estimate_unclipped is None else self.estimate_unclipped


@dataclass(frozen=True)
class PrevalenceData:
    """One category in one group of items.

    yhat   (N,) model labels, 0/1 (an invalid output as 0)
    valid  (N,) True where the model gave a valid output (the naive share uses only these)
    coded  (N,) True where a person coded the item
    y      (N,) the human code where coded (anything, e.g. NaN, elsewhere)
    pi     (N,) the item's probability of being drawn into the coded sample (used where coded)
    """

    yhat: np.ndarray
    valid: np.ndarray
    coded: np.ndarray
    y: np.ndarray
    pi: np.ndarray

    def __post_init__(self) -> None:
        n = np.asarray(self.yhat).shape
        for name in ("valid", "coded", "y", "pi"):
            if np.asarray(getattr(self, name)).shape != n:
                raise ValueError(f"{name} has shape {np.asarray(getattr(self, name)).shape}, expected {n}")
        if len(n) != 1:
            raise ValueError("PrevalenceData holds one category: 1-d arrays")
        yh = np.asarray(self.yhat, dtype=float)
        if not np.isin(yh, (0.0, 1.0)).all():
            raise ValueError("yhat must be 0/1")
        c = np.asarray(self.coded, dtype=bool)
        yc = np.asarray(self.y, dtype=float)[c]
        if not np.isin(yc, (0.0, 1.0)).all():
            raise ValueError("y must be 0/1 on the coded items")
        pc = np.asarray(self.pi, dtype=float)[c]
        if not ((pc > 0) & (pc <= 1)).all():
            raise ValueError("pi must lie in (0, 1] on the coded items")

    @classmethod
    def build(cls, yhat, y=None, coded=None, pi=None, valid=None) -> PrevalenceData:
        """Convenience: ``y`` with NaN where not coded; ``pi`` defaults to n/N (a simple random sample)."""
        yh = np.asarray(yhat, dtype=float)
        yy = np.full(yh.shape, np.nan) if y is None else np.asarray(y, dtype=float)
        cm = ~np.isnan(yy) if coded is None else np.asarray(coded, dtype=bool)
        if pi is None:
            pi = np.full(yh.shape, cm.sum() / max(yh.size, 1))
        pp = np.broadcast_to(np.asarray(pi, dtype=float), yh.shape)
        vv = np.ones(yh.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        return cls(yh, vv, cm, yy, pp)

    @property
    def n_total(self) -> int:
        return int(np.asarray(self.yhat).size)

    @property
    def n_coded(self) -> int:
        return int(np.asarray(self.coded, dtype=bool).sum())

    def coded_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(y, yhat, pi) on the coded items."""
        c = np.asarray(self.coded, dtype=bool)
        return (np.asarray(self.y, dtype=float)[c], np.asarray(self.yhat, dtype=float)[c],
                np.asarray(self.pi, dtype=float)[c])


def z_value(level: float) -> float:
    from scipy.stats import norm

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(norm.ppf(1 - (1 - level) / 2))


def _clip(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


ZERO_WIDTH = "no variation in the sample: a zero-width interval, not certainty"
CLIPPED = ("a corrected estimate outside [0, 1] (the coded sample's errors outweigh the model's share) is shown "
           "as 0 or 100%; its unclipped value is in the JSON as estimate_unclipped")


def _bounded(method: str, est: float, lo: float, hi: float, se: float, d: PrevalenceData,
             level: float) -> Estimate:
    """A share and its interval, both in [0, 1]: a share is never below 0 or above 1, so an estimate
    beyond is reported as the bound (which then lies inside the clipped interval), the estimator's value
    kept as `estimate_unclipped`, with a note."""
    reasons = [ZERO_WIDTH] if se == 0 else []
    raw = None
    if not 0.0 <= est <= 1.0:
        raw, est = float(est), _clip(est)
        reasons.append(CLIPPED)
    lo, hi = min(_clip(lo), est), max(_clip(hi), est)
    return Estimate(method, float(est), lo, hi, float(se), d.n_coded, d.n_total, level,
                    "; ".join(reasons) or None, raw)


def _normal(method: str, est: float, se: float, d: PrevalenceData, level: float) -> Estimate:
    if not (math.isfinite(est) and math.isfinite(se)):
        return Estimate(method, None, None, None, None, d.n_coded, d.n_total, level, "not finite on these data")
    z = z_value(level)
    return _bounded(method, est, est - z * se, est + z * se, se, d, level)


def _undefined(method: str, d: PrevalenceData, level: float, reason: str) -> Estimate:
    return Estimate(method, None, None, None, None, d.n_coded, d.n_total, level, reason)


# --- the estimators --------------------------------------------------------------------------------
def naive_share(d: PrevalenceData, level: float = DEFAULT_LEVEL) -> Estimate:
    """The model's labels as truth: share of 1s among valid outputs, Wilson interval (statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint

    v = np.asarray(d.valid, dtype=bool)
    k, n = int(np.asarray(d.yhat)[v].sum()), int(v.sum())
    if n == 0:
        return _undefined("naive", d, level, "no valid model output")
    lo, hi = proportion_confint(k, n, alpha=1 - level, method="wilson")
    return Estimate("naive", k / n, float(lo), float(hi), math.sqrt(k / n * (1 - k / n) / n), d.n_coded,
                    d.n_total, level)


def coded_share(d: PrevalenceData, level: float = DEFAULT_LEVEL) -> Estimate:
    """Human codes only: Hajek (1/pi-weighted) mean over the coded sample, normal interval with the
    linearisation variance sum(w^2 (y - mean)^2) / sum(w)^2 (the plain var/n for equal weights)."""
    if d.n_coded < 2:
        return _undefined("coded", d, level, "fewer than two coded items")
    y, _, pi = d.coded_arrays()
    w = 1.0 / pi
    est = float(np.sum(w * y) / np.sum(w))
    se = float(math.sqrt(np.sum(w ** 2 * (y - est) ** 2)) / np.sum(w))
    return _normal("coded", est, se, d, level)


def ppi_share(d: PrevalenceData, level: float = DEFAULT_LEVEL) -> Estimate:
    """Prediction-powered estimate and interval (``ppi_py.ppi_mean_ci`` with ``lam=1``).

    Labelled set: the coded items (weights 1/pi when the inclusion probabilities differ); unlabelled
    set: the predictions of all N items."""
    if d.n_coded < 2:
        return _undefined("ppi", d, level, "fewer than two coded items")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

        y, yh, pi = d.coded_arrays()
        w = None if np.allclose(pi, pi[0]) else 1.0 / pi
        all_yh = np.asarray(d.yhat, dtype=float)
        est = float(np.ravel(ppi_mean_pointestimate(y, yh, all_yh, lam=1, w=w))[0])
        lo, hi = ppi_mean_ci(y, yh, all_yh, alpha=1 - level, lam=1, w=w)
    lo, hi = float(np.ravel(lo)[0]), float(np.ravel(hi)[0])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _undefined("ppi", d, level, "not finite on these data")
    se = (hi - lo) / (2 * z_value(level))
    return _bounded("ppi", est, lo, hi, se, d, level)


def dsl_pseudo_outcomes(d: PrevalenceData) -> np.ndarray:
    """DSL's bias-corrected pseudo-outcome per item: yhat + (R / pi) (y - yhat)."""
    yh = np.asarray(d.yhat, dtype=float)
    c = np.asarray(d.coded, dtype=bool)
    out = yh.copy()
    y = np.asarray(d.y, dtype=float)
    pi = np.asarray(d.pi, dtype=float)
    out[c] = yh[c] + (y[c] - yh[c]) / pi[c]
    return out


def dsl_share(d: PrevalenceData, level: float = DEFAULT_LEVEL) -> Estimate:
    """Design-based supervised learning for a mean: mean of the pseudo-outcomes, sandwich variance."""
    if d.n_coded < 2:
        return _undefined("dsl", d, level, "fewer than two coded items")
    yt = dsl_pseudo_outcomes(d)
    n = yt.size
    est = float(yt.mean())
    se = float(math.sqrt(np.mean((yt - est) ** 2) / n))
    return _normal("dsl", est, se, d, level)


ESTIMATORS = {"naive": naive_share, "coded": coded_share, "ppi": ppi_share, "dsl": dsl_share}


def estimate_all(d: PrevalenceData, level: float = DEFAULT_LEVEL,
                 methods: Sequence[str] = METHODS) -> dict[str, Estimate]:
    unknown = [m for m in methods if m not in ESTIMATORS]
    if unknown:
        raise ValueError(f"unknown methods {unknown} (known: {', '.join(ESTIMATORS)})")
    return {m: ESTIMATORS[m](d, level) for m in methods}


# --- many categories, optionally grouped ----------------------------------------------------------
@dataclass
class GroupPrevalence:
    group: str
    n_total: int
    n_coded: int
    estimates: dict[str, Estimate]

    def to_dict(self) -> dict:
        return {"group": self.group, "n_total": self.n_total, "n_coded": self.n_coded,
                **{m: e.to_dict() for m, e in self.estimates.items()}}


@dataclass
class Prevalence:
    labels: list[str]
    level: float
    by: str | None
    groups: list[str]
    table: dict[str, list[GroupPrevalence]] = field(default_factory=dict)  # label -> rows (overall first)

    def to_dict(self) -> dict:
        return {"labels": self.labels, "level": self.level, "by": self.by, "groups": self.groups,
                "categories": {lab: [r.to_dict() for r in rows] for lab, rows in self.table.items()}}


ALL = "all"


def prevalence(
    yhat,
    y,
    pi,
    labels: Sequence[str],
    *,
    valid=None,
    groups: Sequence[Hashable] | None = None,
    by: str | None = None,
    level: float = DEFAULT_LEVEL,
    methods: Sequence[str] = METHODS,
) -> Prevalence:
    """Every estimate for every category (columns of the (N, L) arrays), overall and per group.

    yhat (N, L) model labels (0/1; an invalid output as zeros), y (N, L) human codes with NaN rows for
    uncoded items, pi (N,) inclusion probabilities (used where coded), valid (N,) model-output validity,
    groups (N,) a group label per item (e.g. the edition)."""
    yh = np.asarray(yhat, dtype=float)
    yy = np.asarray(y, dtype=float)
    if yh.ndim != 2 or yh.shape != yy.shape or yh.shape[1] != len(labels):
        raise ValueError(f"yhat {yh.shape} and y {yy.shape} must be (N, {len(labels)}) arrays")
    coded = ~np.isnan(yy).any(axis=1)
    pp = np.broadcast_to(np.asarray(pi, dtype=float), (yh.shape[0],))
    vv = np.ones(yh.shape[0], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    names = [ALL]
    g = None
    if groups is not None:
        g = np.asarray([str(x) for x in groups])
        if g.shape != (yh.shape[0],):
            raise ValueError(f"groups has {g.size} entries, expected {yh.shape[0]}")
        names += sorted(set(g.tolist()))
    out = Prevalence(list(labels), level, by, names[1:])
    for j, lab in enumerate(labels):
        rows = []
        for name in names:
            m = np.ones(yh.shape[0], dtype=bool) if name == ALL else (g == name)
            d = PrevalenceData(yh[m, j], vv[m], coded[m], yy[m, j], pp[m])
            rows.append(GroupPrevalence(name, d.n_total, d.n_coded, estimate_all(d, level, methods)))
        out.table[lab] = rows
    return out


__all__ = [
    "METHODS",
    "TITLES",
    "Estimate",
    "GroupPrevalence",
    "Prevalence",
    "PrevalenceData",
    "coded_share",
    "dsl_pseudo_outcomes",
    "dsl_share",
    "estimate_all",
    "naive_share",
    "ppi_share",
    "prevalence",
    "z_value",
]
