"""How many items must people code so that a corrected prevalence interval is narrow enough? Pure
functions of arrays.

Inputs per category: the model's labels for the whole corpus (``yhat``, N items; an invalid output as 0)
and a pilot coded sample (human codes ``y`` and the model's labels on those items). The error of the
model's label on an item is ``r = y - yhat``: it can only be +1 where the model said 0 (a miss) and -1
where it said 1 (a false alarm). The pilot measures the two rates

    a0 = P(y = 1 | yhat = 0)      a1 = P(y = 0 | yhat = 1)

and, so that a small pilot does not promise too little, the plan uses their upper confidence bounds at
``assurance`` (default 0.9; Jeffreys' beta(k + 1/2, n - k + 1/2) quantile), an unseen class (no pilot item
with that label) getting the bound of no information. Per item ``E r = a0`` or ``-a1`` and
``E r^2 = a0`` or ``a1`` by its label.

* ``random`` design (a simple random sample of n, PPI): the half-width is
  ``z sqrt(var(yhat) / N + var(r) / n)`` (Angelopoulos et al. 2023; the variance of the rectifier
  ``var(r) = mean(E r^2) - mean(E r)^2`` over the corpus), solved for n in closed form.
* ``stratified`` design (the export's square-root allocation; DSL with the items' inclusion
  probabilities pi_i(n)): the expected DSL sandwich variance
  ``(1/N^2) sum_i [(yhat_i - mu)^2 + 2 (yhat_i - mu) E r_i + E r_i^2 / pi_i(n)]``
  (``E[R/pi] = 1``, ``E[(R/pi)^2] = 1/pi``), searched for the smallest n that reaches the target.

Coding more items cannot shrink the first term (the labels' own variance over N): when the target is
below the half-width reached by coding every item, the category is *unreachable* and the plan gives that
reachable half-width instead. The naive half-width (Wilson, the labels taken as truth) is reported beside
it: how narrow an interval that ignores the model's errors would wrongly claim to be.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from llmscisci.metrics.prevalence import DEFAULT_LEVEL, PrevalenceData, naive_share, z_value

DESIGNS = ("random", "stratified")
DEFAULT_ASSURANCE = 0.9
MIN_N = 2


@dataclass(frozen=True)
class CategoryPlan:
    category: str
    n_needed: int | None  # None: unreachable even coding all N items
    reachable: bool
    halfwidth_target: float
    halfwidth_planned: float  # expected half-width at n_needed (at N when unreachable)
    halfwidth_all_coded: float  # the narrowest reachable: every item coded
    halfwidth_naive: float | None  # Wilson half-width of the labels' share (what naive would claim)
    pilot_n: int
    pilot_errors: dict  # counts and rates per model label, with the upper bounds used

    def to_dict(self) -> dict:
        return asdict(self)


def upper_rate(k: int, n: int, assurance: float = DEFAULT_ASSURANCE) -> float:
    """Jeffreys upper confidence bound of a rate (k of n; n = 0 gives the bound of no information)."""
    from scipy.stats import beta

    return float(beta.ppf(assurance, k + 0.5, n - k + 0.5))


def pilot_errors(pilot_y, pilot_yhat, assurance: float = DEFAULT_ASSURANCE) -> dict:
    """Error counts of the model on the pilot, per model label, and the rates' upper bounds."""
    y = np.asarray(pilot_y, dtype=float)
    yh = np.asarray(pilot_yhat, dtype=float)
    n1, n0 = int((yh == 1).sum()), int((yh == 0).sum())
    k1, k0 = int(((yh == 1) & (y == 0)).sum()), int(((yh == 0) & (y == 1)).sum())
    return {
        "label1_items": n1,
        "false_alarms": k1,
        "a1": k1 / n1 if n1 else None,
        "label0_items": n0,
        "misses": k0,
        "a0": k0 / n0 if n0 else None,
        "a1_upper": upper_rate(k1, n1, assurance),
        "a0_upper": upper_rate(k0, n0, assurance),
        "assurance": assurance,
    }


def _moments(yhat: np.ndarray, a0: float, a1: float) -> tuple[np.ndarray, np.ndarray]:
    er = np.where(yhat == 1, -a1, a0)
    er2 = np.where(yhat == 1, a1, a0)
    return er, er2


def ppi_halfwidth(yhat, a0: float, a1: float, n: float, level: float = DEFAULT_LEVEL) -> float:
    """Expected PPI half-width with a simple random sample of n coded items."""
    yh = np.asarray(yhat, dtype=float)
    er, er2 = _moments(yh, a0, a1)
    var_r = float(er2.mean() - er.mean() ** 2)
    return z_value(level) * math.sqrt(yh.var() / yh.size + var_r / n)


def dsl_halfwidth(yhat, a0: float, a1: float, pi, level: float = DEFAULT_LEVEL) -> float:
    """Expected DSL half-width under a design with inclusion probabilities pi (N,)."""
    yh = np.asarray(yhat, dtype=float)
    p = np.asarray(pi, dtype=float)
    er, er2 = _moments(yh, a0, a1)
    mu = yh.mean() + er.mean()
    big_n = yh.size
    v = float(np.sum((yh - mu) ** 2 + 2 * (yh - mu) * er + er2 / p)) / big_n**2
    return z_value(level) * math.sqrt(max(v, 0.0))


def plan_category(
    category: str,
    yhat,
    pilot_y,
    pilot_yhat,
    halfwidth: float,
    *,
    design: str = "random",
    pi_for_n: Callable[[int], np.ndarray] | None = None,
    level: float = DEFAULT_LEVEL,
    assurance: float = DEFAULT_ASSURANCE,
    valid=None,
) -> CategoryPlan:
    """The total number of items to code for one category's corrected interval to reach ``halfwidth``."""
    if design not in DESIGNS:
        raise ValueError(f"design {design!r}: use one of {', '.join(DESIGNS)}")
    if not 0 < halfwidth < 1:
        raise ValueError(f"half-width {halfwidth}: must be between 0 and 1")
    yh = np.asarray(yhat, dtype=float)
    big_n = yh.size
    errs = pilot_errors(pilot_y, pilot_yhat, assurance)
    a0, a1 = errs["a0_upper"], errs["a1_upper"]
    nv = naive_share(PrevalenceData.build(yh, valid=valid), level)
    naive_hw = None if nv.estimate is None else (nv.high - nv.low) / 2
    if design == "stratified" and pi_for_n is None:
        raise ValueError("the stratified design needs pi_for_n (inclusion probabilities for a sample of n)")

    def hw(n: int) -> float:
        if design == "random":
            return ppi_halfwidth(yh, a0, a1, n, level)
        return dsl_halfwidth(yh, a0, a1, pi_for_n(n), level)

    at_all = hw(big_n)
    common = {
        "category": category,
        "halfwidth_target": halfwidth,
        "halfwidth_all_coded": at_all,
        "halfwidth_naive": naive_hw,
        "pilot_n": int(np.asarray(pilot_y).size),
        "pilot_errors": errs,
    }
    if at_all > halfwidth:
        return CategoryPlan(n_needed=None, reachable=False, halfwidth_planned=at_all, **common)
    if design == "random":
        z = z_value(level)
        er, er2 = _moments(yh, a0, a1)
        var_r = float(er2.mean() - er.mean() ** 2)
        room = (halfwidth / z) ** 2 - yh.var() / big_n
        n = max(MIN_N, math.ceil(var_r / room - 1e-9)) if var_r > 0 else MIN_N
        n = min(n, big_n)
    else:  # the smallest n that reaches the target; hw(n) falls as n grows
        lo, hi = MIN_N, big_n
        if hw(lo) <= halfwidth:
            hi = lo
        while lo < hi:
            mid = (lo + hi) // 2
            if hw(mid) <= halfwidth:
                hi = mid
            else:
                lo = mid + 1
        n = hi
    return CategoryPlan(n_needed=int(n), reachable=True, halfwidth_planned=hw(int(n)), **common)


def total_to_code(plans: list[CategoryPlan], n_items: int) -> int:
    """Items to code so that every category reaches its target (all items where one cannot)."""
    return max((p.n_needed if p.reachable else n_items) for p in plans) if plans else 0


__all__ = [
    "DESIGNS",
    "CategoryPlan",
    "dsl_halfwidth",
    "pilot_errors",
    "plan_category",
    "ppi_halfwidth",
    "total_to_code",
    "upper_rate",
]
