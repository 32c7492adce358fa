"""Sampling designs for human coding: every item's inclusion probability is known and recorded, so
the prevalence estimators stay valid whatever the design (see the package docstring and
metrics/prevalence.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmscisci.coding.runs import LoadedRun
from llmscisci.data.codebook import Codebook, codebook_file
from llmscisci.errors import UserError
from llmscisci.runs import versions

STRATEGIES = ("stratified", "disagreement", "random")
FLOOR = 0.1  # disagreement design: size measure FLOOR + disagreement (an agreed item still has a chance)
DEFAULT_SEED = 2025
INVALID = "invalid"


# =================================================================================================
# sampling designs (pure functions of arrays)
# =================================================================================================
def pps_probabilities(sizes: Sequence[float], n: int) -> np.ndarray:
    """Inclusion probabilities proportional to `sizes` for a sample of n, capped at 1 (the capped items
    are certain; the rest share the remainder in proportion). They sum to n."""
    s = np.asarray(sizes, dtype=float)
    if (s <= 0).any() or not np.isfinite(s).all():
        raise ValueError("sizes must be positive and finite")
    if not 0 <= n <= s.size:
        raise ValueError(f"sample size {n} outside 0..{s.size}")
    pi = np.zeros(s.size)
    certain = np.zeros(s.size, dtype=bool)
    while True:
        rest = ~certain
        left = n - certain.sum()
        pi[certain] = 1.0
        pi[rest] = left * s[rest] / s[rest].sum() if rest.any() else 0.0
        over = rest & (pi >= 1.0)
        if not over.any():
            return np.minimum(pi, 1.0)
        certain |= over


def systematic_sample(pi: Sequence[float], order: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Systematic sampling with unequal probabilities (Madow): walk the items in `order`, laying their
    pi end to end, and take the items hit by u, u+1, ..., u+n-1 (u uniform in [0, 1)). Each item is
    drawn with probability exactly pi_i (pi_i <= 1) and the sample has exactly n = sum(pi) items."""
    p = np.asarray(pi, dtype=float)[np.asarray(order)]
    n = int(np.rint(p.sum()))
    if abs(p.sum() - n) > 1e-6:
        raise ValueError(f"inclusion probabilities must sum to a whole number, got {p.sum()}")
    cum = np.cumsum(p)
    cum[-1] = n  # remove rounding drift
    points = rng.uniform() + np.arange(n)
    hit = np.searchsorted(cum, points, side="right")
    picked = np.asarray(order)[hit]
    if np.unique(picked).size != n:  # only possible through floating-point ties at a boundary
        raise RuntimeError("systematic sampling drew an item twice; try another seed")
    return picked


def stratum_keys(predictions: Sequence[tuple[int, ...] | None], codebook: Codebook,
                 editions: Sequence[str] | None = None) -> list[str]:
    """Stratum per item: its edition (when given) x its rarest predicted category (by the corpus's
    predicted counts; ties in codebook order), `invalid` for an invalid output."""
    counts = np.zeros(codebook.n)
    for v in predictions:
        if v is not None:
            counts += np.asarray(v)
    keys = []
    for i, v in enumerate(predictions):
        if v is None or not any(v):
            cat = INVALID
        else:
            on = [j for j in range(codebook.n) if v[j]]
            cat = codebook.shorts[min(on, key=lambda j: (counts[j], j))]
        keys.append(f"{editions[i]}/{cat}" if editions is not None and str(editions[i]) else cat)
    return keys


def stratified_probabilities(strata: Sequence[str], n: int) -> np.ndarray:
    """Square-root allocation: each stratum's expected sample size is proportional to sqrt(N_h)
    (capped at N_h); within a stratum every item has the same probability."""
    keys = [str(s) for s in strata]
    weight = {s: 1.0 / np.sqrt(c) for s, c in Counter(keys).items()}
    return pps_probabilities([weight[s] for s in keys], n)


def disagreement(vectors: Sequence[tuple[int, ...] | None]) -> float:
    """How much K runs disagree on one item, in [0, 1]: the mean over label positions of 4p(1-p) (p the
    share of runs saying 1) among valid outputs, an invalid output counting as full disagreement."""
    k = len(vectors)
    if k < 2:
        return 0.0
    valid = [v for v in vectors if v is not None]
    gini = 0.0
    if valid:
        p = np.mean(np.asarray(valid, dtype=float), axis=0)
        gini = float(np.mean(4 * p * (1 - p)))
    return ((k - len(valid)) + len(valid) * gini) / k


# =================================================================================================
# export
# =================================================================================================
@dataclass(frozen=True)
class SampleRow:
    doi: str
    task: str
    text: str
    meta: dict
    pi: float
    stratum: str
    disagreement: float | None = None


@dataclass
class Sample:
    codebook: Codebook
    rows: list[SampleRow]  # shuffled: the order the coders see
    design: dict


def draw_sample(runs: Sequence[LoadedRun], n: int, strategy: str = "stratified", seed: int = DEFAULT_SEED,
                edition: str = "mlrc_year") -> Sample:
    """Draw n items of the first run for human coding (see the module docstring for the designs)."""
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if not runs:
        raise UserError("give at least one label run folder")
    if strategy == "disagreement" and len(runs) < 2:
        raise UserError("--strategy disagreement needs two or more run folders (models or prompt variants "
                        "that labelled the same items)")
    if strategy != "disagreement" and len(runs) > 1:
        raise UserError(f"--strategy {strategy} samples one run; give several run folders only with "
                        "--strategy disagreement")
    first = runs[0]
    for r in runs[1:]:
        if r.task != first.task:
            raise UserError(f"{r.path}: task {r.task!r} differs from {first.path}'s {first.task!r}")
    dois = [d for d in first.dois if d in first.items]
    big_n = len(dois)
    if not 1 <= n <= big_n:
        raise UserError(f"--n {n}: choose between 1 and the run's {big_n} items")
    rng = np.random.default_rng(seed)
    preds = [first.predictions[d] for d in dois]
    editions = None
    if all(str(first.items[d].meta.get(edition, "")).strip() for d in dois):
        editions = [str(first.items[d].meta[edition]) for d in dois]
    dis = None
    if strategy == "random":
        strata = ["all"] * big_n
        pi = np.full(big_n, n / big_n)
        picked = np.sort(rng.choice(big_n, size=n, replace=False))
    elif strategy == "stratified":
        strata = stratum_keys(preds, first.codebook, editions)
        pi = stratified_probabilities(strata, n)
        perm = rng.permutation(big_n)
        order = sorted(perm, key=lambda i: strata[i])  # stable: random within each stratum
        picked = systematic_sample(pi, order, rng)
    else:
        dis = np.array([disagreement([r.predictions[d] for r in runs if d in r.predictions]) for d in dois])
        strata = ["all"] * big_n
        pi = pps_probabilities(FLOOR + dis, n)
        picked = systematic_sample(pi, rng.permutation(big_n), rng)
    shown = rng.permutation(picked)
    rows = [SampleRow(dois[i], first.task, first.items[dois[i]].text, dict(first.items[dois[i]].meta),
                      float(pi[i]), strata[i], None if dis is None else float(dis[i])) for i in shown]
    sizes = Counter(strata)
    drawn = Counter(strata[i] for i in picked)
    expected: dict[str, float] = {}
    for i, s in enumerate(strata):
        expected[s] = expected.get(s, 0.0) + float(pi[i])
    design = {
        "tool": "llmscisci code export",
        "strategy": strategy,
        "seed": seed,
        "task": first.task,
        "n": n,
        "N": big_n,
        "runs": [str(Path(r.path).resolve()) for r in runs],
        "codebook_file": codebook_file(first.codebook),
        "run_hashes": [r.config.get("hash") for r in runs],
        "edition_column": edition if editions is not None else None,
        "floor": FLOOR if strategy == "disagreement" else None,
        "strata": {s: {"N": sizes[s], "expected": round(expected[s], 6), "drawn": drawn.get(s, 0)}
                   for s in sorted(sizes)},
        "items": [{"doi": r.doi, "task": r.task, "sampling_prob": r.pi, "stratum": r.stratum,
                   "disagreement": r.disagreement} for r in rows],
        "versions": versions(),
    }
    return Sample(first.codebook, rows, design)
