"""Simulation checks against a known truth: a model whose error differs by group makes naive contrasts
wrong (false positives on a true null, sign errors on a true effect) while the corrected ones keep their
nominal error rates; `code plan`'s sample size reaches the target half-width."""

from __future__ import annotations

import numpy as np
import pytest

from llmscisci.metrics.prevalence import PrevalenceData, dsl_share, ppi_share
from llmscisci.metrics.robustness import Corpus, configuration_points
from llmscisci.metrics.sample_size import plan_category

N_SIMS = 600


def _world(rng, n_per_group, p_a, p_b, fp_a, fp_b, fn=0.1):
    """Two groups (A then B) with true shares p_a, p_b; the model's false-positive rate differs by group."""
    truth = np.concatenate([rng.random(n_per_group) < p_a, rng.random(n_per_group) < p_b]).astype(float)
    fp = np.repeat([fp_a, fp_b], n_per_group)
    u = rng.random(truth.size)
    yhat = np.where(truth == 1, u >= fn, u < fp).astype(float)
    groups = np.repeat(np.array(["A", "B"]), n_per_group)
    return truth, yhat, groups


def _verdicts(rng, truth, yhat, groups, n_coded):
    y = np.full((truth.size, 1), np.nan)
    idx = rng.choice(truth.size, n_coded, replace=False)
    y[idx, 0] = truth[idx]
    corpus = Corpus(y, ("cat",), groups)
    pts = configuration_points(corpus, yhat[:, None], np.ones(truth.size, bool), [("A", "B")])
    c = pts[("contrast", "cat", "A - B")]
    return {m: c[m].verdict for m in ("naive", "ppi", "dsl")}


def _rates(p_a, p_b, seed):
    rng = np.random.default_rng(seed)
    counts = {m: {">0": 0, "<0": 0, "n.d.": 0} for m in ("naive", "ppi", "dsl")}
    for _ in range(N_SIMS):
        truth, yhat, groups = _world(rng, 500, p_a, p_b, fp_a=0.05, fp_b=0.25)
        for m, v in _verdicts(rng, truth, yhat, groups, 200).items():
            counts[m][v] += 1
    return {m: {v: k / N_SIMS for v, k in c.items()} for m, c in counts.items()}


def test_true_null_contrast_naive_false_positives_corrected_nominal():
    r = _rates(0.3, 0.3, seed=1)
    naive_fp = r["naive"][">0"] + r["naive"]["<0"]
    assert naive_fp > 0.9  # the labels differ by group, the truth does not
    for m in ("ppi", "dsl"):
        fp = r[m][">0"] + r[m]["<0"]
        assert fp <= 0.08, (m, fp)
        assert fp > 0.0  # the test has power to see the nominal rate at all


def test_true_positive_contrast_naive_sign_errors_corrected_none():
    r = _rates(0.36, 0.30, seed=2)  # A > B in truth; the model inflates B
    assert r["naive"]["<0"] > 0.8  # significant, and the wrong way round
    for m in ("ppi", "dsl"):
        assert r[m]["<0"] <= 0.02, (m, r[m])


def _corpus(rng, big_n, p=0.3, fp=0.1, fn=0.2):
    truth = (rng.random(big_n) < p).astype(float)
    u = rng.random(big_n)
    yhat = np.where(truth == 1, u >= fn, u < fp).astype(float)
    return truth, yhat


def test_plan_reaches_target_halfwidth_random_design():
    rng = np.random.default_rng(3)
    target, ok, sizes = 0.05, 0, []
    sims = 300
    for _ in range(sims):
        truth, yhat = _corpus(rng, 3000)
        pilot = rng.choice(truth.size, 40, replace=False)
        plan = plan_category("cat", yhat, truth[pilot], yhat[pilot], target)
        assert plan.reachable
        sizes.append(plan.n_needed)
        coded = rng.choice(truth.size, plan.n_needed, replace=False)
        y = np.full(truth.size, np.nan)
        y[coded] = truth[coded]
        e = ppi_share(PrevalenceData.build(yhat, y))
        ok += (e.high - e.low) / 2 <= 1.1 * target
    assert ok / sims >= 0.9, ok / sims
    assert 100 < np.median(sizes) < 1000  # a real answer, neither trivial nor everything


def test_plan_reaches_target_halfwidth_stratified_design():
    from llmscisci.coding import stratified_probabilities, systematic_sample

    rng = np.random.default_rng(4)
    target, ok, sims = 0.05, 0, 150
    for _ in range(sims):
        truth, yhat = _corpus(rng, 2000, p=0.15)
        strata = np.where(yhat == 1, "pos", "neg")
        pilot = rng.choice(truth.size, 40, replace=False)

        def pi_for_n(n, strata=strata):
            return stratified_probabilities(strata, n)

        plan = plan_category(
            "cat", yhat, truth[pilot], yhat[pilot], target, design="stratified", pi_for_n=pi_for_n
        )
        assert plan.reachable
        pi = pi_for_n(plan.n_needed)
        order = sorted(rng.permutation(truth.size), key=lambda i: strata[i])
        picked = systematic_sample(pi, order, rng)
        y = np.full(truth.size, np.nan)
        y[picked] = truth[picked]
        e = dsl_share(PrevalenceData.build(yhat, y, pi=pi))
        ok += (e.high - e.low) / 2 <= 1.1 * target
    assert ok / sims >= 0.9, ok / sims


def test_plan_says_when_target_is_unreachable_and_what_is():
    rng = np.random.default_rng(5)
    ok, sims = 0, 200
    for _ in range(sims):
        truth, yhat = _corpus(rng, 70)
        pilot = rng.choice(70, 40, replace=False)
        plan = plan_category("cat", yhat, truth[pilot], yhat[pilot], 0.03)
        assert not plan.reachable and plan.n_needed is None
        assert plan.halfwidth_all_coded > 0.03
        assert plan.halfwidth_naive < plan.halfwidth_all_coded  # naive claims more than is true
        e = ppi_share(PrevalenceData.build(yhat, truth))  # every item coded
        ok += (e.high - e.low) / 2 <= 1.1 * plan.halfwidth_all_coded
    assert ok / sims >= 0.9


@pytest.mark.parametrize("halfwidth", [0.0, 1.0, -0.1])
def test_plan_rejects_a_bad_halfwidth(halfwidth):
    with pytest.raises(ValueError, match="half-width"):
        plan_category("cat", np.zeros(10), np.zeros(3), np.zeros(3), halfwidth)
