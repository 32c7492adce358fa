"""Statistics: cluster bootstrap CIs, paired comparisons, multiple testing, prompt spread."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import accuracy_score, f1_score, hamming_loss

from llmscisci.metrics import stats as S

SK = {
    "subset_accuracy": lambda t, p: accuracy_score(t, p),
    "micro_f1": lambda t, p: f1_score(t, p, average="micro", zero_division=0),
    "macro_f1": lambda t, p: f1_score(t, p, average="macro", zero_division=0),
    "hamming_loss": lambda t, p: hamming_loss(t, p),
}


def _data(n_dois=50, L=5, flip=0.15, seed=0):
    rng = np.random.default_rng(seed)
    n = 2 * n_dois
    yt = (rng.random((n, L)) < 0.3).astype(int)
    yp = np.where(rng.random((n, L)) < flip, 1 - yt, yt)
    groups = np.repeat([f"10.5281/zenodo.{i}" for i in range(n_dois)], 2)
    return yt, yp, groups


def test_headline_metrics_match_sklearn():
    yt, yp, _ = _data()
    yt[:, 3] = 0  # a label never true ...
    yp[:, 3] = 0  # ... nor predicted: F1 ill-defined, scikit-learn's zero_division=0
    got = S.headline_metrics(yt, yp)
    for name, fn in SK.items():
        assert got[name] == pytest.approx(fn(yt, yp), abs=1e-12), name


def test_confusion_counts():
    yt = np.array([[1, 0], [1, 1], [0, 0]])
    yp = np.array([[1, 1], [0, 1], [0, 0]])
    assert S.confusion_counts(yt, yp).tolist() == [[1, 0, 1, 1], [1, 1, 0, 1]]


def test_invalid_output_is_a_miss():
    m = S.as_prediction_matrix([[0, 1, 0], None], 3)
    assert m.tolist() == [[0, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError):
        S.as_prediction_matrix([[0, 1]], 3)


def test_fast_bootstrap_equals_generic_bootstrap_with_sklearn():
    """The count-based bootstrap draws the same DOI resamples as the generic one: identical CIs."""
    yt, yp, g = _data(n_dois=30)
    fast = S.label_bootstrap(yt, yp, g, n_boot=150, seed=7)
    for name, fn in SK.items():
        slow = S.cluster_bootstrap(lambda idx, fn=fn: fn(yt[idx], yp[idx]), g, n_boot=150, seed=7)
        assert fast[name].estimate == pytest.approx(slow.estimate, abs=1e-12)
        assert fast[name].low == pytest.approx(slow.low, abs=1e-12), name
        assert fast[name].high == pytest.approx(slow.high, abs=1e-12), name
        assert fast[name].n_clusters == 30 and fast[name].n_items == 60


def test_bootstrap_is_seeded():
    yt, yp, g = _data()
    a = S.label_bootstrap(yt, yp, g, n_boot=200, seed=1)["micro_f1"]
    b = S.label_bootstrap(yt, yp, g, n_boot=200, seed=1)["micro_f1"]
    c = S.label_bootstrap(yt, yp, g, n_boot=200, seed=2)["micro_f1"]
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)


def test_ci_of_a_mean_close_to_normal_theory():
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, size=300)
    iv = S.cluster_bootstrap(lambda idx: float(np.mean(x[idx])), np.arange(x.size), n_boot=3000, seed=5)
    half = 1.959964 * x.std(ddof=1) / np.sqrt(x.size)
    assert iv.estimate == pytest.approx(x.mean())
    assert iv.low == pytest.approx(x.mean() - half, abs=0.12 * half)
    assert iv.high == pytest.approx(x.mean() + half, abs=0.12 * half)


def test_ci_of_a_proportion_close_to_wald():
    rng = np.random.default_rng(4)
    n = 400
    yt = np.ones((n, 1), dtype=int)
    yp = (rng.random((n, 1)) < 0.7).astype(int)
    iv = S.label_bootstrap(yt, yp, np.arange(n), n_boot=4000, seed=1)["subset_accuracy"]
    p = yp.mean()
    half = 1.959964 * np.sqrt(p * (1 - p) / n)
    assert iv.half_width == pytest.approx(half, rel=0.1)


def _clustered(rng, n_dois, p_good=0.5):
    """Both items of a report share its difficulty: P(exact match) is 0.9 or 0.5, marginally 0.7."""
    q = np.where(rng.random(n_dois) < p_good, 0.9, 0.5)
    right = rng.random((n_dois, 2)) < q[:, None]
    yt = np.ones((2 * n_dois, 1), dtype=int)
    yp = right.reshape(-1, 1).astype(int)
    return yt, yp, np.repeat(np.arange(n_dois), 2)


def test_cluster_bootstrap_coverage_on_simulated_data():
    rng = np.random.default_rng(11)
    hits = 0
    sims = 300
    for s in range(sims):
        yt, yp, g = _clustered(rng, 60)
        iv = S.label_bootstrap(yt, yp, g, n_boot=800, seed=s)["subset_accuracy"]
        hits += iv.contains(0.7)
    coverage = hits / sims
    assert 0.90 <= coverage <= 0.985, coverage


def test_cluster_bootstrap_moves_both_items_of_a_doi():
    """Duplicated items carry no extra information: the DOI bootstrap is sqrt(2) wider than an item one."""
    rng = np.random.default_rng(5)
    ratios = []
    for s in range(20):
        right = (rng.random(80) < 0.6).astype(int)
        yp = np.repeat(right, 2)[:, None]
        yt = np.ones_like(yp)
        by_doi = S.label_bootstrap(yt, yp, np.repeat(np.arange(80), 2), n_boot=1000, seed=s)
        by_item = S.label_bootstrap(yt, yp, np.arange(160), n_boot=1000, seed=s)
        ratios.append(by_doi["subset_accuracy"].half_width / by_item["subset_accuracy"].half_width)
    assert np.mean(ratios) == pytest.approx(np.sqrt(2), rel=0.08)


def test_paired_bootstrap_identical_runs():
    yt, yp, g = _data()
    res = S.paired_bootstrap(yt, yp, yp.copy(), g, n_boot=300)
    for d in res.values():
        assert d.diff.estimate == 0 and d.diff.low == 0 and d.diff.high == 0 and d.p_value == 1.0


def test_paired_bootstrap_detects_a_real_difference():
    yt, good, g = _data(n_dois=60, flip=0.03, seed=1)
    rng = np.random.default_rng(2)
    bad = np.where(rng.random(yt.shape) < 0.25, 1 - yt, yt)
    res = S.paired_bootstrap(yt, good, bad, g, n_boot=1000)
    d = res["micro_f1"]
    assert d.a == pytest.approx(SK["micro_f1"](yt, good)) and d.b == pytest.approx(SK["micro_f1"](yt, bad))
    assert d.diff.low > 0 and d.p_value < 0.01
    assert res["hamming_loss"].diff.high < 0  # lower is better: A's loss is smaller


def test_paired_bootstrap_fast_equals_generic():
    yt, pa, g = _data(n_dois=25, seed=3)
    _, pb, _ = _data(n_dois=25, flip=0.2, seed=4)
    fast = S.paired_bootstrap(yt, pa, pb, g, n_boot=100, seed=9)["macro_f1"]
    slow = S.paired_bootstrap_metric(SK["macro_f1"], yt, pa, pb, g, n_boot=100, seed=9)
    assert (fast.diff.low, fast.diff.high) == pytest.approx((slow.diff.low, slow.diff.high), abs=1e-12)
    assert fast.p_value == pytest.approx(slow.p_value)


def _pair(both, a_only, b_only, neither):
    ca = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    cb = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return np.array(ca), np.array(cb)


def test_mcnemar_exact_matches_scipy_binomial():
    ca, cb = _pair(40, 3, 12, 5)
    res = S.mcnemar_paired(ca, cb)
    assert res.exact and (res.a_only, res.b_only) == (3, 12)
    assert res.p_value == pytest.approx(sps.binomtest(3, 15, 0.5).pvalue)


def test_mcnemar_chi_square_matches_scipy():
    ca, cb = _pair(100, 30, 52, 18)
    res = S.mcnemar_paired(ca, cb)
    chi2 = (abs(30 - 52) - 1) ** 2 / (30 + 52)
    assert not res.exact
    assert res.statistic == pytest.approx(chi2)
    assert res.p_value == pytest.approx(sps.chi2.sf(chi2, 1))


def test_mcnemar_from_label_matrices():
    yt = np.array([[1, 0], [0, 1], [1, 1], [1, 0]])
    a = np.array([[1, 0], [0, 1], [0, 1], [1, 0]])  # right on items 0, 1, 3
    b = np.array([[1, 0], [1, 1], [1, 1], [0, 0]])  # right on items 0, 2
    res = S.mcnemar_exact_match(yt, a, b)
    assert (res.both, res.a_only, res.b_only, res.neither) == (1, 2, 1, 0)
    assert S.mcnemar_paired([True], [True]).p_value == 1.0  # no discordant items


def test_adjust_pvalues_holm_by_hand_and_bh_against_scipy():
    p = [0.01, 0.04, 0.03, 0.5]
    holm = S.adjust_pvalues(p, "holm")
    assert holm.p_adjusted == pytest.approx((0.04, 0.09, 0.09, 0.5))
    assert holm.reject == (True, False, False, False)
    assert "4 pairs compared" in holm.note and "Holm" in holm.note
    bh = S.adjust_pvalues(p, "fdr_bh")
    assert bh.p_adjusted == pytest.approx(tuple(sps.false_discovery_control(p, method="bh")))
    nan = S.adjust_pvalues([0.01, float("nan"), 0.02])
    assert np.isnan(nan.p_adjusted[1]) and nan.p_adjusted[0] == pytest.approx(0.02)
    with pytest.raises(ValueError):
        S.adjust_pvalues(p, "magic")


def test_comparison_note():
    assert S.comparison_note(1) == ""
    many = S.comparison_note(12)
    assert "12 pairs" in many and "exploratory" in many and "0.6 of 12" in many


def test_spread_across_paraphrases():
    runs = {"p0": {"micro_f1": 0.5, "subset_accuracy": 0.2},
            "p1": {"micro_f1": 0.7, "subset_accuracy": 0.3},
            "p2": {"micro_f1": 0.6, "subset_accuracy": 0.4}}
    sp = S.spread(runs)
    assert set(sp) == {"micro_f1", "subset_accuracy"}
    m = sp["micro_f1"]
    assert (m.k, m.min, m.max) == (3, 0.5, 0.7)
    assert m.range == pytest.approx(0.2)
    assert m.std == pytest.approx(statistics.stdev([0.5, 0.7, 0.6]))
    assert np.isnan(S.spread({"only": {"micro_f1": 0.5}})["micro_f1"].std)
