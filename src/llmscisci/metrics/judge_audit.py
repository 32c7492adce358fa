"""Audit of an LLM judge: its scores against the exact scores, its picks, and its position bias. Pure.

The judge scores each candidate LLM's label vector against the ground truth on a documented scale:
the number of categories (out of n) on which the candidate agrees with the truth. The exact score is
known from the vectors themselves: ``n - Hamming distance`` (a candidate without a valid label vector
matches no category: exact score 0). The audit compares the two:

  * scores: exact-agreement rate (judge score == exact score), mean absolute error, mean signed
    error (the judge's leniency), Spearman and Kendall correlation (scipy); a correlation is
    reported as undefined (value None + reason), not an error, when one side is constant;
  * best pick: how often the LLM(s) the judge scores highest are truly among the best;
  * position bias: the same item judged with the candidates in different orders. Per position: the
    mean judge score, the mean error (judge - exact) and the *effect* (a candidate's score at that
    position minus its mean score over all the orders it was judged in, averaged); per candidate and
    overall: the mean absolute change of a candidate's score between two orders of the same item.
    With all K! orders (or cyclic rotations) each candidate sits at each position equally often, so
    a judge without position bias has effects of 0.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class JudgedOrder:
    """One judge call: an item judged with the candidates in one order."""

    item: str
    order: tuple[str, ...]  # candidate names, position 1..K
    judge: Mapping[str, int | None]  # the judge's score per candidate (None: not parsed)
    exact: Mapping[str, int]  # the exact score per candidate


@dataclass(frozen=True)
class Correlation:
    value: float | None
    pvalue: float | None
    n: int
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def exact_score(labels: Sequence[int] | None, truth: Sequence[int]) -> int:
    """Categories (of n) on which `labels` agrees with `truth`: n - Hamming distance; None -> 0."""
    if labels is None:
        return 0
    if len(labels) != len(truth):
        raise ValueError(f"exact_score: {len(labels)} labels against a truth of {len(truth)}")
    return sum(int(a) == int(b) for a, b in zip(labels, truth))


def correlation(x: Sequence[float], y: Sequence[float], method: str = "spearman") -> Correlation:
    """Spearman or Kendall correlation (scipy); undefined (None + reason) for n < 2 or a constant side."""
    from scipy import stats

    n = len(x)
    if n != len(y):
        raise ValueError("correlation: sequences of different length")
    if n < 2:
        return Correlation(None, None, n, "fewer than two scores")
    if len(set(x)) < 2:
        return Correlation(None, None, n, "the judge's scores are constant")
    if len(set(y)) < 2:
        return Correlation(None, None, n, "the exact scores are constant")
    fn = {"spearman": stats.spearmanr, "kendall": stats.kendalltau}[method]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fn(x, y)
    value, p = float(res.statistic), float(res.pvalue)
    if not math.isfinite(value):
        return Correlation(None, None, n, "undefined on these scores")
    return Correlation(value, p if math.isfinite(p) else None, n)


def score_agreement(judge: Sequence[float], exact: Sequence[float]) -> dict:
    """Judge scores against exact scores, paired."""
    n = len(judge)
    if n != len(exact):
        raise ValueError("score_agreement: sequences of different length")
    if n == 0:
        return {"n": 0, "exact_agreement": None, "mae": None, "mean_error": None,
                "spearman": Correlation(None, None, 0, "no scores").to_dict(),
                "kendall": Correlation(None, None, 0, "no scores").to_dict()}
    j, e = np.asarray(judge, dtype=float), np.asarray(exact, dtype=float)
    return {
        "n": n,
        "exact_agreement": float(np.mean(j == e)),
        "mae": float(np.mean(np.abs(j - e))),
        "mean_error": float(np.mean(j - e)),
        "spearman": correlation(list(j), list(e), "spearman").to_dict(),
        "kendall": correlation(list(j), list(e), "kendall").to_dict(),
    }


def _pairs(cases: Sequence[JudgedOrder]) -> tuple[list[int], list[int]]:
    js, es = [], []
    for c in cases:
        for name in c.order:
            s = c.judge.get(name)
            if s is not None:
                js.append(int(s))
                es.append(int(c.exact[name]))
    return js, es


def best_pick(cases: Sequence[JudgedOrder]) -> dict:
    """How often the judge's top-scored candidates are all truly best (highest exact score).

    Only calls where the judge scored every candidate count. `judge_ties` is the share of those calls
    where the judge's top score is shared; `truth_ties` the same for the exact scores."""
    n = hits = jt = tt = 0
    for c in cases:
        scores = [c.judge.get(name) for name in c.order]
        if any(s is None for s in scores):
            continue
        n += 1
        top_j = max(scores)
        judge_top = {name for name in c.order if c.judge[name] == top_j}
        top_e = max(c.exact[name] for name in c.order)
        true_best = {name for name in c.order if c.exact[name] == top_e}
        hits += judge_top <= true_best
        jt += len(judge_top) > 1
        tt += len(true_best) > 1
    if n == 0:
        return {"n": 0, "rate": None, "judge_ties": None, "truth_ties": None,
                "reason": "no call with every candidate scored"}
    return {"n": n, "rate": hits / n, "judge_ties": jt / n, "truth_ties": tt / n}


def position_bias(cases: Sequence[JudgedOrder]) -> dict:
    """How the judge's score of a candidate moves with the candidate's position."""
    by_key: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)  # (item, llm) -> (pos, s, e)
    for c in cases:
        for pos, name in enumerate(c.order, start=1):
            s = c.judge.get(name)
            if s is not None:
                by_key[(c.item, name)].append((pos, int(s), int(c.exact[name])))
    k = max((len(c.order) for c in cases), default=0)
    pos_scores: dict[int, list[float]] = defaultdict(list)
    pos_errors: dict[int, list[float]] = defaultdict(list)
    pos_effects: dict[int, list[float]] = defaultdict(list)
    changes: list[float] = []
    ranges: list[float] = []
    llm_changes: dict[str, list[float]] = defaultdict(list)
    changed = 0
    for (_, name), obs in by_key.items():
        for pos, s, e in obs:
            pos_scores[pos].append(s)
            pos_errors[pos].append(s - e)
        if len(obs) < 2:
            continue
        mean_s = float(np.mean([s for _, s, _ in obs]))
        for pos, s, _ in obs:
            pos_effects[pos].append(s - mean_s)
        diffs = [abs(a[1] - b[1]) for a, b in itertools.combinations(obs, 2)]
        change = float(np.mean(diffs))
        changes.append(change)
        llm_changes[name].append(change)
        ranges.append(float(max(s for _, s, _ in obs) - min(s for _, s, _ in obs)))
        changed += ranges[-1] > 0

    def mean(xs):
        return float(np.mean(xs)) if xs else None

    per_position = [
        {"position": p, "n": len(pos_scores[p]), "mean_score": mean(pos_scores[p]),
         "mean_error": mean(pos_errors[p]), "effect": mean(pos_effects[p])}
        for p in range(1, k + 1)
    ]
    effects = [x["effect"] for x in per_position if x["effect"] is not None]
    out = {
        "n_compared": len(changes),  # (item, candidate) pairs judged in two or more orders
        "mean_abs_change": mean(changes),
        "mean_range": mean(ranges),
        "changed_rate": changed / len(changes) if changes else None,
        "max_position_effect": max((abs(x) for x in effects), default=None),
        "per_position": per_position,
        "per_llm": {name: {"n": len(v), "mean_abs_change": mean(v)} for name, v in sorted(llm_changes.items())},
    }
    if not changes:
        out["reason"] = "no item was judged in two or more orders"
    return out


def top_position(cases: Sequence[JudgedOrder]) -> dict:
    """Share of fully scored calls in which each position holds (one of) the judge's top scores."""
    counts: dict[int, int] = defaultdict(int)
    n = 0
    for c in cases:
        scores = [c.judge.get(name) for name in c.order]
        if any(s is None for s in scores):
            continue
        n += 1
        top = max(scores)
        for pos, s in enumerate(scores, start=1):
            counts[pos] += s == top
    k = max((len(c.order) for c in cases), default=0)
    return {"n": n, "share": {p: (counts[p] / n if n else None) for p in range(1, k + 1)}}


def per_llm(cases: Sequence[JudgedOrder]) -> dict:
    """Each candidate's mean judge score, mean exact score and score agreement."""
    names = sorted({name for c in cases for name in c.order})
    out = {}
    for name in names:
        js, es = [], []
        for c in cases:
            if name in c.judge and c.judge[name] is not None:
                js.append(int(c.judge[name]))
                es.append(int(c.exact[name]))
        exact_all = [int(c.exact[name]) for c in cases if name in c.exact]
        out[name] = {
            "n": len(js),
            "mean_judge": float(np.mean(js)) if js else None,
            "mean_exact": float(np.mean(exact_all)) if exact_all else None,
            "mae": float(np.mean(np.abs(np.array(js) - np.array(es)))) if js else None,
        }
    return out


def audit(cases: Sequence[JudgedOrder]) -> dict:
    """The whole audit of a set of judge calls."""
    js, es = _pairs(cases)
    total = sum(len(c.order) for c in cases)
    return {
        "calls": len(cases),
        "items": len({c.item for c in cases}),
        "scores_parsed": len(js),
        "scores_expected": total,
        "scores": score_agreement(js, es),
        "best_pick": best_pick(cases),
        "position": position_bias(cases),
        "top_position": top_position(cases),
        "per_llm": per_llm(cases),
    }
