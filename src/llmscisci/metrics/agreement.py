"""Agreement between coders (annotators, models, people) on multi-label vectors. Pure functions.

Coders are given as ``{coder name: {item key: 0/1 label vector}}``; a coder without a usable label
for an item simply lacks that key. Statistics per label (category), from the field's libraries:

  * Cohen's kappa per pair of coders (scikit-learn), on the items both coded;
  * Fleiss' kappa over all coders (statsmodels), on the items every coder coded;
  * Krippendorff's alpha, nominal (the `krippendorff` package), on every item, missing codes allowed;

and per pair of coders over whole vectors: exact match (subset accuracy) and Hamming agreement
(1 - Hamming loss, both scikit-learn).

A statistic that is undefined on the data (e.g. kappa when both coders give every item the same
value: the chance agreement is 1) is reported as ``value=None`` with a reason, never as an error
or a silent NaN.

Coder groups: ``groups={"anna": "human", "ben": "human", "gpt": "model"}`` adds a comparison of
groups: mean pairwise agreement within each group (two or more people: human-human agreement,
the ceiling a model can be held to) next to between groups (model-human).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

Vector = Sequence[int]
Coders = Mapping[str, Mapping[Hashable, Vector]]


@dataclass(frozen=True)
class Stat:
    """One statistic: its value (None when undefined on these data, with the reason) and its n."""

    value: float | None
    n: int
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _stat(value: float, n: int, undefined_reason: str) -> Stat:
    if value is None or not math.isfinite(value):
        return Stat(None, n, undefined_reason)
    return Stat(float(value), n)


# --- single statistics ----------------------------------------------------------------------------
def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> Stat:
    """Cohen's kappa of two coders' codes for the same items (scikit-learn)."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} codes against {len(b)}")
    n = len(a)
    if n == 0:
        return Stat(None, 0, "no items coded by both")
    if len(set(a) | set(b)) < 2:
        return Stat(None, n, "both coders gave every item the same value (chance agreement is 1)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(list(a), list(b))
    return _stat(value, n, "undefined (chance agreement is 1)")


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> Stat:
    """Fleiss' kappa of an items x raters table of categorical codes, every item coded by the same
    number of raters (statsmodels)."""
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    n = len(ratings)
    if n == 0:
        return Stat(None, 0, "no items coded by every coder")
    widths = {len(r) for r in ratings}
    if len(widths) != 1:
        raise ValueError("fleiss_kappa: every item needs the same number of ratings")
    if widths.pop() < 2:
        return Stat(None, n, "fewer than two coders")
    values = sorted({v for r in ratings for v in r}, key=str)
    if len(values) < 2:
        return Stat(None, n, "every code is the same value (chance agreement is 1)")
    index = {v: i for i, v in enumerate(values)}
    table, _ = aggregate_raters(np.array([[index[v] for v in r] for r in ratings]), n_cat=len(values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = sm_fleiss(table, method="fleiss")
    return _stat(value, n, "undefined (chance agreement is 1)")


def krippendorff_alpha(data: Sequence[Sequence[float | None]], level: str = "nominal") -> Stat:
    """Krippendorff's alpha of a coders x units table (None or NaN = not coded) (`krippendorff`).

    `n` counts the units coded by at least two coders (the pairable units)."""
    import krippendorff

    arr = np.array([[np.nan if v is None else float(v) for v in row] for row in data], dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 2:
        return Stat(None, 0, "fewer than two coders")
    pairable = int((np.sum(~np.isnan(arr), axis=0) >= 2).sum())
    if pairable == 0:
        return Stat(None, 0, "no unit coded by two or more coders")
    present = np.unique(arr[~np.isnan(arr)])
    if len(present) < 2:
        return Stat(None, pairable, "every code is the same value (no variation to agree on)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = krippendorff.alpha(reliability_data=arr, level_of_measurement=level)
    return _stat(value, pairable, "undefined (no expected disagreement)")


def exact_match(a: Sequence[Vector], b: Sequence[Vector]) -> Stat:
    """Share of items whose whole label vectors are identical (subset accuracy, scikit-learn)."""
    from sklearn.metrics import accuracy_score

    if not a:
        return Stat(None, 0, "no items coded by both")
    return Stat(float(accuracy_score(np.array(a), np.array(b))), len(a))


def hamming_loss(a: Sequence[Vector], b: Sequence[Vector]) -> Stat:
    """Share of (item, label) positions where the two coders differ (scikit-learn)."""
    from sklearn.metrics import hamming_loss as sk_hamming

    if not a:
        return Stat(None, 0, "no items coded by both")
    return Stat(float(sk_hamming(np.array(a), np.array(b))), len(a))


def hamming_agreement(a: Sequence[Vector], b: Sequence[Vector]) -> Stat:
    """1 - Hamming loss: share of (item, label) positions where the two coders agree."""
    loss = hamming_loss(a, b)
    return loss if loss.value is None else Stat(1.0 - loss.value, loss.n)


# --- reports over many coders ---------------------------------------------------------------------
@dataclass
class PairAgreement:
    a: str
    b: str
    n: int
    exact_match: Stat
    hamming_agreement: Stat
    hamming_loss: Stat
    kappa: dict[str, Stat]  # per label
    mean_kappa: Stat  # mean over the labels where kappa is defined

    def to_dict(self) -> dict:
        return {
            "a": self.a, "b": self.b, "n": self.n,
            "exact_match": self.exact_match.to_dict(),
            "hamming_agreement": self.hamming_agreement.to_dict(),
            "hamming_loss": self.hamming_loss.to_dict(),
            "kappa": {k: s.to_dict() for k, s in self.kappa.items()},
            "mean_kappa": self.mean_kappa.to_dict(),
        }


@dataclass
class LabelAgreement:
    label: str
    fleiss_kappa: Stat
    krippendorff_alpha: Stat
    mean_pair_kappa: Stat
    positives: dict[str, int]  # coder -> items coded 1 for this label

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "fleiss_kappa": self.fleiss_kappa.to_dict(),
            "krippendorff_alpha": self.krippendorff_alpha.to_dict(),
            "mean_pair_kappa": self.mean_pair_kappa.to_dict(),
            "positives": dict(self.positives),
        }


@dataclass
class GroupComparison:
    """Mean pairwise agreement within one group (a == b) or between two groups."""

    a: str
    b: str
    pairs: int
    kappa: dict[str, Stat]  # per label: mean of the pairs' kappas where defined
    mean_kappa: Stat
    exact_match: Stat
    hamming_agreement: Stat

    @property
    def within(self) -> bool:
        return self.a == self.b

    def to_dict(self) -> dict:
        return {
            "a": self.a, "b": self.b, "within": self.within, "pairs": self.pairs,
            "kappa": {k: s.to_dict() for k, s in self.kappa.items()},
            "mean_kappa": self.mean_kappa.to_dict(),
            "exact_match": self.exact_match.to_dict(),
            "hamming_agreement": self.hamming_agreement.to_dict(),
        }


@dataclass
class AgreementReport:
    labels: list[str]
    coders: list[str]
    n_items: int  # items coded by at least one coder
    n_complete: int  # items coded by every coder (Fleiss' kappa uses these)
    pairs: list[PairAgreement]
    per_label: list[LabelAgreement]
    groups: dict[str, str] = field(default_factory=dict)
    group_pairs: list[GroupComparison] = field(default_factory=list)
    group_stats: dict[str, list[LabelAgreement]] = field(default_factory=dict)  # within-group Fleiss/alpha

    @property
    def ceiling(self) -> GroupComparison | None:
        """Human-human agreement (the 'human' group, two or more coders), when there is one."""
        return next((g for g in self.group_pairs if g.within and g.a == "human" and g.pairs > 0), None)

    def to_dict(self) -> dict:
        return {
            "labels": self.labels, "coders": self.coders, "n_items": self.n_items,
            "n_complete": self.n_complete,
            "pairs": [p.to_dict() for p in self.pairs],
            "per_label": [x.to_dict() for x in self.per_label],
            "groups": dict(self.groups),
            "group_pairs": [g.to_dict() for g in self.group_pairs],
            "group_stats": {g: [x.to_dict() for x in xs] for g, xs in self.group_stats.items()},
        }


def _mean(stats: Sequence[Stat], reason: str) -> Stat:
    vals = [s.value for s in stats if s.value is not None]
    n = max((s.n for s in stats), default=0)
    if not vals:
        return Stat(None, n, reason)
    return Stat(float(np.mean(vals)), n)


def pair_agreement(a_name: str, a: Mapping[Hashable, Vector], b_name: str, b: Mapping[Hashable, Vector],
                   labels: Sequence[str]) -> PairAgreement:
    """Agreement of two coders on the items both coded."""
    keys = [k for k in a if k in b]
    va = [tuple(int(x) for x in a[k]) for k in keys]
    vb = [tuple(int(x) for x in b[k]) for k in keys]
    kappa = {lab: cohen_kappa([v[j] for v in va], [v[j] for v in vb]) for j, lab in enumerate(labels)}
    return PairAgreement(
        a_name, b_name, len(keys),
        exact_match(va, vb), hamming_agreement(va, vb), hamming_loss(va, vb),
        kappa, _mean(list(kappa.values()), "kappa undefined for every label"),
    )


def _check(coders: Coders, labels: Sequence[str]) -> None:
    n = len(labels)
    for name, vecs in coders.items():
        for key, v in vecs.items():
            if len(v) != n:
                raise ValueError(f"coder {name!r}, item {key!r}: {len(v)} labels, expected {n}")


def _label_stats(coders: Coders, labels: Sequence[str], pairs: Sequence[PairAgreement]) -> tuple[list, int, int]:
    names = list(coders)
    keys = sorted({k for vecs in coders.values() for k in vecs}, key=str)
    complete = [k for k in keys if all(k in coders[c] for c in names)]
    out = []
    for j, lab in enumerate(labels):
        fleiss = fleiss_kappa([[int(coders[c][k][j]) for c in names] for k in complete]) if len(names) >= 2 \
            else Stat(None, len(complete), "fewer than two coders")
        alpha = krippendorff_alpha([[int(coders[c][k][j]) if k in coders[c] else None for k in keys] for c in names])
        out.append(LabelAgreement(
            lab, fleiss, alpha,
            _mean([p.kappa[lab] for p in pairs], "kappa undefined for every pair"),
            {c: int(sum(int(v[j]) for v in coders[c].values())) for c in names},
        ))
    return out, len(keys), len(complete)


def agreement_report(coders: Coders, labels: Sequence[str], groups: Mapping[str, str] | None = None) -> AgreementReport:
    """All agreement statistics for a set of coders.

    `labels` names the vector positions (e.g. the codebook's short names). `groups` maps coder names
    to group names (e.g. "human", "model"); coders left out of it form no group comparison. With a
    group "human" of two or more coders, `report.ceiling` is their mean pairwise agreement."""
    labels = list(labels)
    _check(coders, labels)
    names = list(coders)
    pairs = [pair_agreement(x, coders[x], y, coders[y], labels) for x, y in itertools.combinations(names, 2)]
    per_label, n_items, n_complete = _label_stats(coders, labels, pairs)
    report = AgreementReport(labels, names, n_items, n_complete, pairs, per_label)
    if groups:
        unknown = [c for c in groups if c not in coders]
        if unknown:
            raise ValueError(f"groups name unknown coders: {unknown}")
        report.groups = dict(groups)
        report.group_pairs = group_comparisons(pairs, groups, labels)
        for g in sorted(set(groups.values())):
            members = {c: coders[c] for c in names if groups.get(c) == g}
            if len(members) >= 2:
                inner = [p for p in pairs if p.a in members and p.b in members]
                report.group_stats[g] = _label_stats(members, labels, inner)[0]
    return report


def group_comparisons(pairs: Sequence[PairAgreement], groups: Mapping[str, str],
                      labels: Sequence[str]) -> list[GroupComparison]:
    """Mean pairwise agreement within each group and between each two groups."""
    names = sorted(set(groups.values()))
    out = []
    for ga, gb in itertools.combinations_with_replacement(names, 2):
        sel = [p for p in pairs if p.a in groups and p.b in groups and {groups[p.a], groups[p.b]} == {ga, gb}]
        why = "no pair of coders" if not sel else "undefined for every pair"
        out.append(GroupComparison(
            ga, gb, len(sel),
            {lab: _mean([p.kappa[lab] for p in sel], why) for lab in labels},
            _mean([p.mean_kappa for p in sel], why),
            _mean([p.exact_match for p in sel], why),
            _mean([p.hamming_agreement for p in sel], why),
        ))
    return out
