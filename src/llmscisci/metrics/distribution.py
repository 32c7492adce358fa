"""The label distribution of a run without reference labels: the share of valid answers in each
category, with Wilson intervals (statsmodels), overall and per group of items. Pure functions.

This is the result of a run on one's own corpus: what the model said, and how sure the shares are
given the number of answers. The intervals are about the model's labels, not about the truth (that
needs a human-coded sample: `llmscisci prevalence`). Invalid answers are left out of the shares and
counted separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from statsmodels.stats.proportion import proportion_confint

from llmscisci.records import LabelPrediction, is_valid, typed

GROUP_KEYS = ("group", "year", "mlrc_year")  # item columns a corpus is grouped by, first present wins


@dataclass(frozen=True)
class Share:
    category: str
    count: int
    n: int
    share: float | None
    low: float | None
    high: float | None


@dataclass
class Distribution:
    group: str  # "all" or the group's value
    n_answers: int
    n_valid: int
    shares: list[Share] = field(default_factory=list)


def shares(vectors: Sequence[Sequence[int] | None], categories: Sequence[str], level: float = 0.95,
           group: str = "all") -> Distribution:
    """Share of the valid answers (non-None vectors) in each category, with Wilson intervals."""
    valid = [v for v in vectors if v is not None and len(v) == len(categories)]
    n = len(valid)
    out = Distribution(group, len(vectors), n)
    for j, cat in enumerate(categories):
        k = sum(int(v[j]) for v in valid)
        if n:
            lo, hi = proportion_confint(k, n, alpha=1 - level, method="wilson")
            out.shares.append(Share(cat, k, n, k / n, float(lo), float(hi)))
        else:
            out.shares.append(Share(cat, k, 0, None, None, None))
    return out


def _meta(r: LabelPrediction) -> dict:
    return r.meta if isinstance(r.meta, dict) else {}


def group_key(records: Sequence[LabelPrediction] | Sequence[dict]) -> str | None:
    """The grouping column the records carry (in their `meta`) with at least two values, if any."""
    records = list(typed(records, LabelPrediction))
    for key in GROUP_KEYS:
        values = {str(_meta(r).get(key, "")).strip() for r in records}
        values.discard("")
        if len(values) >= 2:
            return key
    return None


def label_distribution(records: Sequence[LabelPrediction] | Sequence[dict], categories: Sequence[str],
                       level: float = 0.95) -> tuple[str | None, list[Distribution]]:
    """(grouping column or None, [overall distribution, then one per group in sorted order]).

    A record's answer counts when it is valid (`records.is_valid`) and has a label vector. `records`:
    `LabelPrediction`s, or dicts as read (validated into them here)."""
    records = list(typed(records, LabelPrediction))

    def vec(r):
        return r.labels if is_valid(r) and isinstance(r.labels, list) else None

    key = group_key(records)
    dists = [shares([vec(r) for r in records], categories, level)]
    if key is not None:
        groups: dict[str, list] = {}
        for r in records:
            g = str(_meta(r).get(key, "")).strip() or "(none)"
            groups.setdefault(g, []).append(vec(r))
        dists += [shares(v, categories, level, group=g) for g, v in sorted(groups.items())]
    return key, dists
