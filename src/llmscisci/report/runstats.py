"""Per-run numbers for the report: each label run's scores per split with cluster-bootstrap intervals,
validity, cost and timing (RunStats)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from llmscisci.metrics import stats as S
from llmscisci.records import CallTotals, LabelPrediction, is_valid
from llmscisci.report.collect import LabelRun

SPLITS = {"all": "all evaluated items", "test": "canonical test split"}


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@dataclass
class SplitStats:
    n_items: int
    n_dois: int
    ci: dict[str, S.Interval]
    confusion: np.ndarray  # (L, 4): TP FP FN TN
    f1: list[float]
    support: list[int]
    invalid_rate: float


@dataclass
class RunStats:
    run: LabelRun
    splits: dict[str, SplitStats] = field(default_factory=dict)
    n_records: int = 0
    invalid_rate: float = float("nan")
    repaired_rate: float = float("nan")
    tokens_in: float = float("nan")
    tokens_out: float = float("nan")
    seconds: float = float("nan")
    cost: float | None = None
    mismatches: list[str] = field(default_factory=list)


def _pred(rec: LabelPrediction):
    labels = rec.labels
    return labels if labels is not None and is_valid(rec) else None


def matrices(records: list[LabelPrediction], n_labels: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    dois = [str(r.doi) for r in records]
    y = S.as_prediction_matrix([r.reference for r in records], n_labels)
    p = S.as_prediction_matrix([_pred(r) for r in records], n_labels)
    return dois, y, p


def _mean(vals: Iterable) -> float:
    v = [float(x) for x in vals if _num(x)]
    return float(np.mean(v)) if v else float("nan")


def run_stats(run: LabelRun, *, n_boot: int, seed: int, level: float) -> RunStats:
    st = RunStats(run)
    L = len(run.shorts)
    for split in SPLITS:
        recs = run.scored(None if split == "all" else split)
        if not recs:
            continue
        dois, y, p = matrices(recs, L)
        ci = S.label_bootstrap(y, p, dois, n_boot=n_boot, seed=seed, level=level)
        conf = S.confusion_counts(y, p)
        tp, fp, fn = conf[:, 0], conf[:, 1], conf[:, 2]
        den = 2 * tp + fp + fn
        f1 = [float(2 * a / d) if d else 0.0 for a, d in zip(tp, den)]
        invalid = float(np.mean([_pred(r) is None for r in recs]))
        st.splits[split] = SplitStats(len(recs), len(set(dois)), ci, conf, f1, [int(x) for x in tp + fn],
                                      invalid)
        reported = run.metrics.get(split) if isinstance(run.metrics.get(split), dict) else None
        for name in S.HEADLINE:
            if reported and _num(reported.get(name)) and abs(reported[name] - ci[name].estimate) > 5e-4:
                st.mismatches.append(
                    f"{run.name}: metrics.json gives {name} {reported[name]:.3f} on {SPLITS[split]}, "
                    f"recomputed from predictions {ci[name].estimate:.3f}")
    recs = run.records
    st.n_records = len(recs)
    if recs:
        st.invalid_rate = float(np.mean([_pred(r) is None for r in recs]))
        st.repaired_rate = float(np.mean([bool(r.repaired) for r in recs]))
        st.tokens_in = _mean(r.tokens_in for r in recs)
        st.tokens_out = _mean(r.tokens_out for r in recs)
        totals = CallTotals.from_records(recs)  # the sums metrics.json gives
        st.seconds = totals.seconds if any(_num(r.seconds) for r in recs) else float("nan")
        st.cost = totals.cost_usd
    if st.cost is None and _num(run.metrics.get("cost_usd")):
        st.cost = float(run.metrics["cost_usd"])
    return st
