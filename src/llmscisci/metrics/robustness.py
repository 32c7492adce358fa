"""Do conclusions survive the choice of configuration? Pure functions of arrays; nothing reads files.

A *configuration* is one way of labelling the corpus (a model, a prompt variant, a wording, a seed, or
simply a label file). An *estimand* is a number a researcher reports: the share of a category overall or
in a group of items (e.g. an edition), or a *contrast*, the difference of a category's shares between two
groups (``A - B``). Every configuration gives every estimand three ways (metrics/prevalence.py):

* ``naive`` the configuration's labels taken as truth;
* ``ppi`` and ``dsl`` corrected with the human-coded sample (prediction-powered inference; design-based
  supervised learning), and, once, ``coded``: the coded sample alone (the reference the sign-error rate
  is measured against; it does not depend on the configuration).

Contrast estimator (all methods alike): the two group shares are estimated separately, each within its
group (for PPI and DSL: that group's model labels corrected with that group's coded items only), and
``A - B`` gets the interval ``(a - b) +- z sqrt(se_a^2 + se_b^2)``. The two groups are disjoint sets of
items and the coded items of each group are drawn independently of the other's (a simple random sample
given its group sizes, or a design whose inclusion probabilities are recorded), so the two estimates are
independent and their variances add. Without recorded probabilities a group's coded items are taken as a
simple random sample of that group (pi = n_g / N_g, i.e. conditional on how many fell in each group).
Naive contrasts use the same formula with the Wald standard errors of the two label shares; they measure
the labels' difference, not the truth's.

Verdict of an interval: ``>0`` (its lower end above 0), ``<0`` (upper end below 0), else ``n.d.`` (not
distinguishable from 0). Per estimand and method, across configurations:

* spread   min, max, range and standard deviation of the point estimates;
* disagreement rate   the share of configurations whose verdict differs from the *most common corrected
  verdict* (the mode of all PPI and DSL verdicts of all configurations; a tie goes to ``n.d.``, then ``>0``);
* sign-error rate   the share of configurations that call a significant difference (``>0`` or ``<0``)
  whose sign is opposite to the coded sample's own point estimate (undefined when that estimate is 0 or
  cannot be computed).

Drivers: for each configuration factor with two or more levels (model, variant, paraphrase; seed only
when sampling with temperature > 0), over the estimands: the share of the point estimates' variance
between the factor's levels (eta squared, in the mean over estimands) and the *flip rate*, the share of
pairs of configurations that differ in this factor only whose verdicts differ.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations

import numpy as np

from llmscisci.metrics.prevalence import DEFAULT_LEVEL, Estimate, PrevalenceData, estimate_all, z_value

METHODS = ("naive", "ppi", "dsl")
CORRECTED = ("ppi", "dsl")
VERDICTS = (">0", "<0", "n.d.")
TIE_ORDER = ("n.d.", ">0", "<0")
FACTORS = ("model", "variant", "paraphrase", "seed")
ALL = "all"


@dataclass(frozen=True)
class Point:
    """An estimate with its interval and verdict; ``estimate`` None (with a reason) when undefined."""

    estimate: float | None
    low: float | None
    high: float | None
    se: float | None
    reason: str | None = None

    @property
    def verdict(self) -> str | None:
        if self.estimate is None or self.low is None or self.high is None:
            return None
        if self.low > 0:
            return ">0"
        if self.high < 0:
            return "<0"
        return "n.d."

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def of(cls, e: Estimate) -> Point:
        return cls(e.estimate, e.low, e.high, e.se, e.reason)


def difference(a: Estimate, b: Estimate, level: float = DEFAULT_LEVEL) -> Point:
    """``a - b`` of two independent estimates: normal interval with the variances summed (ends clipped to
    [-1, 1])."""
    if a.estimate is None or b.estimate is None or a.se is None or b.se is None:
        why = a.reason if a.estimate is None else b.reason
        return Point(None, None, None, None, why or "a group share is undefined")
    est = a.unclipped - b.unclipped
    se = math.sqrt(a.se**2 + b.se**2)
    z = z_value(level)
    return Point(
        est,
        max(-1.0, est - z * se),
        min(1.0, est + z * se),
        se,
        "no variation in the sample: a zero-width interval" if se == 0 else None,
    )


# --- one configuration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    """What stays fixed across configurations: the human codes and the groups.

    y       (N, L) human codes, NaN rows for uncoded items
    groups  (N,) group name per item (or None: no groups)
    pi      (N,) recorded inclusion probabilities of the coded items, or None: a simple random sample
            (pi = n/N overall; n_g/N_g within a group)
    """

    y: np.ndarray
    labels: tuple[str, ...]
    groups: np.ndarray | None = None
    pi: np.ndarray | None = None

    @property
    def coded(self) -> np.ndarray:
        return ~np.isnan(np.asarray(self.y, dtype=float)).any(axis=1)

    @property
    def group_names(self) -> list[str]:
        return [] if self.groups is None else sorted(set(np.asarray(self.groups).tolist()))

    def mask(self, group: str) -> np.ndarray:
        n = np.asarray(self.y).shape[0]
        return np.ones(n, dtype=bool) if group == ALL else np.asarray(self.groups) == group

    def data(self, yhat: np.ndarray, valid: np.ndarray, j: int, group: str = ALL) -> PrevalenceData:
        m = self.mask(group)
        coded = self.coded[m]
        if self.pi is None:
            pi = np.full(int(m.sum()), coded.sum() / max(int(m.sum()), 1))
        else:
            pi = np.asarray(self.pi, dtype=float)[m]
        return PrevalenceData(
            np.asarray(yhat, dtype=float)[m, j],
            np.asarray(valid, dtype=bool)[m],
            coded,
            np.asarray(self.y, dtype=float)[m, j],
            pi,
        )


def default_contrasts(groups: Sequence[str]) -> list[tuple[str, str]]:
    """Every pair of groups, later minus earlier in sorted order (2021 - 2020)."""
    g = sorted(groups)
    return [(b, a) for a, b in combinations(g, 2)]


def contrast_name(c: tuple[str, str]) -> str:
    return f"{c[0]} - {c[1]}"


def estimands(corpus: Corpus, contrasts: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(kind, category, what) in report order: overall share, group shares, contrasts, per category."""
    out = []
    for lab in corpus.labels:
        out.append(("prevalence", lab, ALL))
        out += [("prevalence", lab, g) for g in corpus.group_names]
        out += [("contrast", lab, contrast_name(c)) for c in contrasts]
    return out


def configuration_points(
    corpus: Corpus,
    yhat,
    valid,
    contrasts: Sequence[tuple[str, str]],
    level: float = DEFAULT_LEVEL,
    methods: Sequence[str] = METHODS,
) -> dict[tuple[str, str, str], dict[str, Point]]:
    """Every estimand of one configuration (``yhat`` (N, L) 0/1 labels, invalid outputs as zeros;
    ``valid`` (N,)), each by every method."""
    yh = np.asarray(yhat, dtype=float)
    if yh.shape != np.asarray(corpus.y).shape:
        raise ValueError(f"yhat {yh.shape} and the codes {np.asarray(corpus.y).shape} differ in shape")
    out: dict[tuple[str, str, str], dict[str, Point]] = {}
    for j, lab in enumerate(corpus.labels):
        shares: dict[str, dict[str, Estimate]] = {}
        for g in [ALL, *corpus.group_names]:
            shares[g] = estimate_all(corpus.data(yh, valid, j, g), level, methods)
            out[("prevalence", lab, g)] = {m: Point.of(e) for m, e in shares[g].items()}
        for a, b in contrasts:
            out[("contrast", lab, contrast_name((a, b)))] = {
                m: difference(shares[a][m], shares[b][m], level) for m in methods
            }
    return out


# --- across configurations -------------------------------------------------------------------------
def modal_verdict(verdicts: Sequence[str | None]) -> str | None:
    counts = Counter(v for v in verdicts if v is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(v for v in TIE_ORDER if counts.get(v) == top)


def _sign(x: float | None) -> int | None:
    if x is None or x == 0 or not math.isfinite(x):
        return None
    return 1 if x > 0 else -1


def summarise(
    points: Sequence[Mapping[str, Point]], coded: Point | None, methods: Sequence[str] = METHODS
) -> dict:
    """One estimand across configurations (``points[k][method]``): spread, verdict counts, disagreement
    and sign-error rates per method, and the most common corrected verdict."""
    modal = modal_verdict([p[m].verdict for p in points for m in CORRECTED if m in p])
    ref = _sign(coded.estimate) if coded is not None else None
    out: dict = {
        "modal_corrected_verdict": modal,
        "coded_estimate": None if coded is None else coded.estimate,
        "methods": {},
    }
    for m in methods:
        ests = [p[m].estimate for p in points if p[m].estimate is not None]
        verdicts = [p[m].verdict for p in points if p[m].verdict is not None]
        k = len(verdicts)
        spread = None
        if ests:
            a = np.asarray(ests)
            spread = {
                "min": float(a.min()),
                "max": float(a.max()),
                "range": float(a.max() - a.min()),
                "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0,
            }
        dis = None if (modal is None or k == 0) else sum(v != modal for v in verdicts) / k
        sign = None
        if ref is not None and k:
            wrong = sum(1 for p in points if p[m].verdict in (">0", "<0") and _sign(p[m].estimate) == -ref)
            sign = wrong / k
        out["methods"][m] = {
            "n": k,
            "spread": spread,
            "verdicts": dict(Counter(verdicts)),
            "disagreement_rate": dis,
            "sign_error_rate": sign,
        }
    if ref is None:
        out["sign_error_note"] = "the coded sample's estimate is 0 or undefined: no sign to contradict"
    return out


def drivers(
    factors: Sequence[Mapping[str, str]],
    values: Sequence[Sequence[float | None]],
    verdicts: Sequence[Sequence[str | None]],
) -> dict[str, dict]:
    """Which configuration factors move the estimates and flip the verdicts.

    factors[k]     the factor levels of configuration k ({"model": ..., "variant": ...})
    values[e][k]   point estimate of estimand e in configuration k (one method)
    verdicts[e][k] its verdict
    Per factor with >= 2 levels: mean eta squared over estimands (share of the estimates' variance
    between the factor's levels; estimands with no variance left out), and the flip rate: among pairs of
    configurations differing in this factor only, the share (over estimands) whose verdicts differ."""
    keys = [
        f
        for f in FACTORS
        if len({str(c.get(f)) for c in factors if f in c}) >= 2 and all(f in c for c in factors)
    ]
    out: dict[str, dict] = {}
    for f in keys:
        levels = [str(c[f]) for c in factors]
        others = [tuple((g, str(c.get(g))) for g in FACTORS if g != f) for c in factors]
        pairs = [
            (i, j)
            for i, j in combinations(range(len(factors)), 2)
            if others[i] == others[j] and levels[i] != levels[j]
        ]
        etas = []
        for vals in values:
            idx = [k for k, v in enumerate(vals) if v is not None]
            if len(idx) < 2:
                continue
            a = np.asarray([vals[k] for k in idx], dtype=float)
            total = float(((a - a.mean()) ** 2).sum())
            if total <= 1e-15:
                continue
            lv = [levels[k] for k in idx]
            between = sum(
                np.sum(lv_mask) * (a[lv_mask].mean() - a.mean()) ** 2
                for lv_mask in (np.asarray(lv) == u for u in set(lv))
            )
            etas.append(float(between) / total)
        flips = compared = 0
        for vs in verdicts:
            for i, j in pairs:
                if vs[i] is None or vs[j] is None:
                    continue
                compared += 1
                flips += vs[i] != vs[j]
        out[f] = {
            "levels": sorted(set(levels)),
            "eta_squared": float(np.mean(etas)) if etas else None,
            "pairs": len(pairs),
            "flips": flips,
            "compared": compared,
            "flip_rate": flips / compared if compared else None,
        }
    return out


@dataclass
class Robustness:
    """Everything `llmscisci robustness` reports for one task."""

    labels: list[str]
    groups: list[str]
    contrasts: list[tuple[str, str]]
    configurations: list[dict]  # {"name", "factors": {...}, ...}
    level: float
    estimands: list[dict] = field(default_factory=list)
    drivers: dict[str, dict] = field(default_factory=dict)  # method -> factor -> numbers

    def to_dict(self) -> dict:
        return {
            "labels": self.labels,
            "groups": self.groups,
            "contrasts": [contrast_name(c) for c in self.contrasts],
            "level": self.level,
            "configurations": self.configurations,
            "estimands": self.estimands,
            "drivers": self.drivers,
        }


def robustness(
    corpus: Corpus,
    configurations: Sequence[Mapping],
    predictions: Sequence[tuple[np.ndarray, np.ndarray]],
    contrasts: Sequence[tuple[str, str]] | None = None,
    level: float = DEFAULT_LEVEL,
) -> Robustness:
    """Every estimand in every configuration (``predictions[k]`` = (yhat (N, L), valid (N,))), naive
    and corrected, with the summaries across configurations and the drivers (over the contrasts; over
    the shares when there are no groups)."""
    if len(configurations) != len(predictions) or not configurations:
        raise ValueError("give one (yhat, valid) pair per configuration, and at least one")
    names = corpus.group_names
    cons = list(default_contrasts(names) if contrasts is None else contrasts)
    for a, b in cons:
        for g in (a, b):
            if g not in names:
                raise ValueError(
                    f"contrast group {g!r} is not a group (groups: {', '.join(names) or 'none'})"
                )
    per_conf = [configuration_points(corpus, yh, v, cons, level) for yh, v in predictions]
    coded = configuration_points(corpus, predictions[0][0], predictions[0][1], cons, level, ("coded",))
    res = Robustness(list(corpus.labels), names, cons, [dict(c) for c in configurations], level)
    for key in estimands(corpus, cons):
        pts = [pc[key] for pc in per_conf]
        ref = coded[key]["coded"]
        res.estimands.append(
            {
                "kind": key[0],
                "category": key[1],
                "what": key[2],
                "coded": ref.to_dict(),
                "per_configuration": [{m: p[m].to_dict() for m in METHODS} for p in pts],
                "summary": summarise(pts, ref),
            }
        )
    factors = [c.get("factors", {}) for c in configurations]
    contrast_rows = [e for e in res.estimands if e["kind"] == "contrast"] or res.estimands
    for m in METHODS:
        vals = [[p[m]["estimate"] for p in e["per_configuration"]] for e in contrast_rows]
        verd = [[p[m]["verdict"] for p in e["per_configuration"]] for e in contrast_rows]
        res.drivers[m] = drivers(factors, vals, verd)
    return res


__all__ = [
    "ALL",
    "CORRECTED",
    "METHODS",
    "VERDICTS",
    "Corpus",
    "Point",
    "Robustness",
    "configuration_points",
    "contrast_name",
    "default_contrasts",
    "difference",
    "drivers",
    "estimands",
    "modal_verdict",
    "robustness",
    "summarise",
]
