"""Prevalence estimators: naive, coded-only, PPI (ppi_python) and DSL, against the papers' formulas and
on simulated corpora with known truth (coverage of the 95% interval over repeated simulations)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmscisci.metrics.prevalence import (
    ZERO_WIDTH,
    PrevalenceData,
    coded_share,
    dsl_pseudo_outcomes,
    dsl_share,
    estimate_all,
    naive_share,
    ppi_share,
    prevalence,
    z_value,
)
from llmscisci.coding import stratified_probabilities, systematic_sample

Z = z_value(0.95)


def biased_corpus(rng, n_items: int, p: float = 0.3, sens: float = 0.85, fpr: float = 0.2):
    """Truth with prevalence p; a model that finds 85% of the 1s and says 1 for 20% of the 0s, so its
    labels put the share at 0.3*0.85 + 0.7*0.2 = 0.395, not 0.3."""
    y = rng.binomial(1, p, n_items).astype(float)
    yhat = np.where(y == 1, rng.binomial(1, sens, n_items), rng.binomial(1, fpr, n_items)).astype(float)
    return y, yhat


# --- against the papers' formulas ----------------------------------------------------------------
def test_ppi_is_the_papers_mean_estimator():
    """Angelopoulos et al. (2023), mean estimation: theta = mean_N(f) - mean_n(f - Y), CI
    theta +- z sqrt(sigma_f^2 / N + sigma_(f-Y)^2 / n); the N predictions include the coded items."""
    rng = np.random.default_rng(1)
    y, yhat = biased_corpus(rng, 500)
    coded = np.zeros(500, dtype=bool)
    coded[rng.choice(500, 60, replace=False)] = True
    d = PrevalenceData.build(yhat, np.where(coded, y, np.nan))
    est = ppi_share(d)
    theta = yhat.mean() - (yhat[coded] - y[coded]).mean()
    se = math.sqrt(yhat.var() / 500 + (yhat[coded] - y[coded]).var() / 60)
    assert est.estimate == pytest.approx(theta, abs=1e-12)
    assert est.low == pytest.approx(theta - Z * se, abs=1e-9)
    assert est.high == pytest.approx(theta + Z * se, abs=1e-9)
    assert (est.n_coded, est.n_total) == (60, 500)


def test_ppi_weights_unequal_probabilities():
    """With unequal inclusion probabilities the rectifier is the 1/pi-weighted (Hajek) mean error."""
    yhat = np.array([1, 0, 1, 1, 0, 0, 1, 0], dtype=float)
    y = np.array([1, 1, 0, np.nan, np.nan, 0, np.nan, np.nan])
    pi = np.array([0.5, 0.25, 0.5, 0.5, 0.25, 0.25, 0.5, 0.25])
    d = PrevalenceData.build(yhat, y, pi=pi)
    w = np.array([2.0, 4.0, 2.0, 4.0])
    err = np.array([0, 1, -1, 0], dtype=float)  # y - yhat on the coded items 0, 1, 2, 5
    expected = yhat.mean() + np.sum(w * err) / np.sum(w)
    assert ppi_share(d).estimate == pytest.approx(expected)


def test_dsl_worked_example_by_hand():
    """Egami et al. (2023): pseudo-outcome yhat + R/pi (y - yhat); mean; sandwich variance mean((yt-mu)^2)/N."""
    yhat = np.array([1, 0, 1, 0, 1, 0], dtype=float)
    y = np.array([1, 1, 0, np.nan, np.nan, np.nan])  # items 0-2 coded with pi = 0.5
    d = PrevalenceData.build(yhat, y, pi=0.5)
    yt = dsl_pseudo_outcomes(d)
    assert yt.tolist() == [1.0, 2.0, -1.0, 0.0, 1.0, 0.0]
    est = dsl_share(d)
    assert est.estimate == pytest.approx(0.5)
    se = math.sqrt(np.mean((yt - 0.5) ** 2) / 6)  # = sqrt(5.5 / 6 / 6)
    assert est.se == pytest.approx(se)
    assert est.se == pytest.approx(math.sqrt(5.5 / 36))
    assert est.low == 0.0  # 0.5 - 1.96 * 0.39 < 0: clipped to [0, 1]
    assert est.high == pytest.approx(min(1.0, 0.5 + Z * se))


def test_dsl_with_everything_coded_is_the_classical_mean():
    """pi = 1 for every item: the pseudo-outcome is the code itself, so DSL is the sample mean with the
    classical CLT interval (ppi_python's classical_mean_ci)."""
    from ppi_py import classical_mean_ci

    rng = np.random.default_rng(3)
    y, yhat = biased_corpus(rng, 200)
    d = PrevalenceData.build(yhat, y, pi=1.0)
    est = dsl_share(d)
    lo, hi = classical_mean_ci(y, alpha=0.05)
    assert est.estimate == pytest.approx(y.mean())
    assert (est.low, est.high) == (pytest.approx(float(lo)), pytest.approx(float(hi)))
    assert coded_share(d).estimate == pytest.approx(y.mean())
    assert coded_share(d).se == pytest.approx(est.se)


def test_dsl_and_ppi_agree_on_the_point_under_simple_random_sampling():
    rng = np.random.default_rng(4)
    y, yhat = biased_corpus(rng, 300)
    coded = np.zeros(300, dtype=bool)
    coded[rng.choice(300, 50, replace=False)] = True
    d = PrevalenceData.build(yhat, np.where(coded, y, np.nan))
    assert dsl_share(d).estimate == pytest.approx(ppi_share(d).estimate)
    # for 0/1 labels the covariance PPI ignores is never positive: its interval is the wider one
    assert ppi_share(d).se >= dsl_share(d).se - 1e-12


def test_naive_uses_valid_outputs_and_wilson():
    from statsmodels.stats.proportion import proportion_confint

    yhat = np.array([1, 1, 0, 0, 0, 1, 0, 0], dtype=float)
    valid = np.array([1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)  # the last two outputs were invalid (as 0)
    d = PrevalenceData.build(yhat, valid=valid)
    est = naive_share(d)
    assert est.estimate == pytest.approx(3 / 6)
    lo, hi = proportion_confint(3, 6, alpha=0.05, method="wilson")
    assert (est.low, est.high) == (pytest.approx(lo), pytest.approx(hi))


def test_undefined_and_degenerate_cases_are_reported_not_raised():
    d = PrevalenceData.build([1, 0, 1], [1, np.nan, np.nan])
    out = estimate_all(d)
    for m in ("coded", "ppi", "dsl"):
        assert out[m].estimate is None and out[m].reason == "fewer than two coded items"
    assert out["naive"].estimate == pytest.approx(2 / 3)
    zero = estimate_all(PrevalenceData.build([0, 0, 0, 0], [0, 0, np.nan, np.nan]))
    assert zero["dsl"].estimate == 0.0 and zero["dsl"].reason == ZERO_WIDTH
    assert zero["ppi"].reason == ZERO_WIDTH
    assert estimate_all(PrevalenceData.build([1, 0], valid=[False, False]))["naive"].reason == "no valid model output"
    with pytest.raises(ValueError, match="pi must lie"):
        PrevalenceData.build([1, 0], [1, 0], pi=0.0)
    with pytest.raises(ValueError, match="yhat must be 0/1"):
        PrevalenceData.build([2, 0], [1, 0])


def test_grouped_estimates_equal_estimates_on_each_group():
    rng = np.random.default_rng(5)
    y, yhat = biased_corpus(rng, 120)
    y2, yhat2 = biased_corpus(rng, 120, p=0.6)
    Y, Yhat = np.stack([y, y2], axis=1), np.stack([yhat, yhat2], axis=1)
    coded = rng.random(120) < 0.4
    Y[~coded] = np.nan
    groups = np.where(np.arange(120) < 50, "2020", "2021")
    res = prevalence(Yhat, Y, coded.mean(), ["a", "b"], groups=groups, by="mlrc_year")
    assert res.groups == ["2020", "2021"]
    rows = {r.group: r for r in res.table["b"]}
    assert [r.group for r in res.table["b"]] == ["all", "2020", "2021"]
    sub = groups == "2021"
    direct = dsl_share(PrevalenceData.build(yhat2[sub], Y[sub, 1], pi=coded.mean()))
    assert rows["2021"].estimates["dsl"].estimate == pytest.approx(direct.estimate)
    assert rows["2021"].n_total == int(sub.sum()) and rows["2021"].n_coded == int(coded[sub].sum())
    assert res.to_dict()["categories"]["a"][0]["dsl"]["method"] == "dsl"


# --- simulations with known truth ----------------------------------------------------------------
SIMS = 500


def _cover(e, truth) -> bool:
    return e.low <= truth <= e.high


def test_coverage_simple_random_sample_and_naive_bias():
    """500 corpora of 1000 items, 100 coded at random: PPI and DSL cover the true share about 95% of
    the time; the naive share (model labels as truth) sits near 0.395 and almost never covers 0.3."""
    rng = np.random.default_rng(2025)
    p, big_n, n = 0.3, 1000, 100
    hits = {"ppi": 0, "dsl": 0, "naive": 0, "coded": 0}
    naive_est = []
    for _ in range(SIMS):
        y, yhat = biased_corpus(rng, big_n, p)
        coded = np.zeros(big_n, dtype=bool)
        coded[rng.choice(big_n, n, replace=False)] = True
        d = PrevalenceData.build(yhat, np.where(coded, y, np.nan))
        est = estimate_all(d)
        for m in hits:
            hits[m] += _cover(est[m], p)
        naive_est.append(est["naive"].estimate)
    cov = {m: h / SIMS for m, h in hits.items()}
    print("coverage (SRS, N=1000, n=100):", cov)
    assert 0.92 <= cov["ppi"] <= 0.98
    assert 0.92 <= cov["dsl"] <= 0.98
    assert 0.92 <= cov["coded"] <= 0.98
    assert np.mean(naive_est) == pytest.approx(0.395, abs=0.01)  # biased by the model's errors
    assert cov["naive"] < 0.05


def test_coverage_under_the_stratified_export_design():
    """The export's own design: strata by predicted label, square-root allocation, systematic draw with
    unequal probabilities. DSL (weights 1/pi) stays near 95%; PPI stays valid (>= 92%); the coded-only
    mean without weights would be biased, so the design must be used."""
    rng = np.random.default_rng(7)
    p, big_n, n = 0.3, 1000, 100
    hits = {"ppi": 0, "dsl": 0}
    unweighted = []
    for _ in range(SIMS):
        y, yhat = biased_corpus(rng, big_n, p)
        strata = np.where(yhat == 1, "predicted 1", "predicted 0")
        pi = stratified_probabilities(list(strata), n)
        picked = systematic_sample(pi, np.argsort(strata, kind="stable"), rng)
        coded = np.zeros(big_n, dtype=bool)
        coded[picked] = True
        d = PrevalenceData.build(yhat, np.where(coded, y, np.nan), pi=pi)
        est = estimate_all(d, methods=("ppi", "dsl"))
        for m in hits:
            hits[m] += _cover(est[m], p)
        unweighted.append(y[coded].mean())
    cov = {m: h / SIMS for m, h in hits.items()}
    print("coverage (stratified export design, N=1000, n=100):", cov)
    assert 0.92 <= cov["dsl"] <= 0.98
    assert 0.92 <= cov["ppi"] <= 0.99
    assert abs(np.mean(unweighted) - p) > 0.03  # predicted 1s are oversampled


def test_estimates_outside_zero_one_are_clipped_into_their_interval():
    """PPI and DSL can leave [0, 1] when the coded sample's errors outweigh the model's share: the
    reported estimate is the bound, inside its own interval, the estimator's value kept apart."""
    from llmscisci.metrics.prevalence import CLIPPED, PrevalenceData, estimate_all

    for fill, coded_yhat, coded_y, want, raw in ((1, 0, 1, 1.0, 1.8), (0, 1, 0, 0.0, -0.8)):
        yhat = np.array([fill] * 16 + [coded_yhat] * 4, dtype=float)
        y = np.array([np.nan] * 16 + [coded_y] * 4)
        d = PrevalenceData.build(yhat, y, pi=0.2)
        for m, e in estimate_all(d).items():
            assert e.low <= e.estimate <= e.high, (m, e)
            assert 0 <= e.low <= e.high <= 1
            if m in ("ppi", "dsl"):
                assert e.estimate == want and e.estimate_unclipped == pytest.approx(raw) and CLIPPED in e.reason
                assert e.to_dict()["estimate_unclipped"] == pytest.approx(raw)
            else:
                assert e.estimate_unclipped is None
