"""Inference across subjects: against scipy, by hand, and FDR on simulated cohorts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from vlm_brain.cohort.inference import (
    across_subjects,
    fisher_z,
    one_sample_t,
    sign_flip_p,
    sign_flips,
)
from vlm_brain.cohort.summary import across_subject_summary, finding_numbers


def test_one_sample_t_equals_scipy():
    z = np.random.default_rng(0).normal(0.1, 1.0, size=(7, 50))
    t, p = one_sample_t(z)
    ref = stats.ttest_1samp(z, 0.0, axis=0, alternative="greater")
    np.testing.assert_allclose(t, ref.statistic, rtol=1e-12)
    np.testing.assert_allclose(p, ref.pvalue, rtol=1e-10)


def test_constant_grayordinate_is_not_significant_and_one_subject_is_refused():
    t, p = one_sample_t(np.ones((4, 2)))
    assert np.all(t == 0) and np.all(p == 1)
    with pytest.raises(ValueError, match=">= 2 subjects"):
        one_sample_t(np.ones((1, 3)))


def test_sign_flip_p_by_hand():
    # 3 subjects: 8 sign patterns. z = (1, 2, 3): only the identity reaches sum 6 -> p = 1/8.
    # z = (3, -1, -1): sums >= 1 are (3,-1,-1)=1, (3,1,-1)=3, (3,-1,1)=3, (3,1,1)=5 -> p = 4/8.
    z = np.array([[1.0, 3.0], [2.0, -1.0], [3.0, -1.0]])
    np.testing.assert_allclose(sign_flip_p(z, n_perm=1000), [1 / 8, 4 / 8])
    assert len(sign_flips(3, 1000, 0)) == 8 and np.all(sign_flips(3, 1000, 0)[0] == 1)
    random = sign_flips(30, 500, 0)  # 2^30 patterns: sampled, identity first
    assert random.shape == (501, 30) and np.all(random[0] == 1)


def test_sign_flip_p_is_valid_under_the_null():
    z = np.random.default_rng(1).standard_normal((12, 4000))
    p = sign_flip_p(z, n_perm=999, seed=2)
    assert p.min() >= 1 / 1000
    assert abs(np.mean(p <= 0.05) - 0.05) < 0.015  # uniform p on symmetric null data


def test_fisher_z_clips_perfect_correlations():
    z = fisher_z(np.array([-1.0, 0.0, 0.5, 1.0]))
    assert np.all(np.isfinite(z)) and z[2] == pytest.approx(np.arctanh(0.5))


def _cohort(rng, n_subjects, n_targets, driven, effect):
    """Per-subject r with a population effect on the first ``driven`` grayordinates."""
    true = np.zeros(n_targets)
    true[:driven] = effect
    z = true + rng.normal(0.0, 0.1, size=(n_subjects, n_targets))  # between-subject spread of z
    return np.tanh(z), true > 0


def test_across_subject_fdr_is_controlled_on_simulated_cohorts():
    rng = np.random.default_rng(3)
    any_null_discovery, fdp, power = [], [], []
    for _ in range(100):
        r, _ = _cohort(rng, 8, 2000, 0, 0.0)  # pure noise: BH keeps P(any discovery) <= q
        any_null_discovery.append(across_subjects(r, r > 0.1, q=0.05, n_perm=100)["bn"].any())
        r, truth = _cohort(rng, 8, 2000, 200, 0.15)  # 10% driven
        found = across_subjects(r, r > 0.1, q=0.05, n_perm=100)["bn"]
        fdp.append((found & ~truth).sum() / max(found.sum(), 1))
        power.append(found[truth].mean())
    assert np.mean(any_null_discovery) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 100)
    assert np.mean(fdp) <= 0.05 + 0.01
    assert np.mean(power) > 0.5  # and it finds the driven ones


def test_across_subjects_maps():
    rng = np.random.default_rng(4)
    r, truth = _cohort(rng, 6, 500, 100, 0.5)
    bn = np.zeros_like(r, dtype=bool)
    bn[:3, :10] = True
    out = across_subjects(r, bn, q=0.05, test="sign_flip", n_perm=100)
    np.testing.assert_allclose(out["frac_subjects_bn"][:10], 0.5)
    assert out["n_subjects"] == 6 and np.all(out["p"] == out["p_sign_flip"])
    # with 6 subjects the exact sign-flip p cannot go below 1/64 > q / m: no BN survives BH
    assert out["p_sign_flip"].min() == pytest.approx(1 / 64) and not out["bn"].any()
    t_based = across_subjects(r, bn, q=0.05, test="t")
    found = t_based["bn"]
    assert found[truth].mean() > 0.9 and (found & ~truth).sum() <= 0.1 * found.sum()
    with pytest.raises(ValueError, match="'t' or 'sign_flip'"):
        across_subjects(r, bn, test="wilcoxon")


def test_across_subject_summary_equals_scipy():
    values = {"s1": {"a": 1.0, "b": 2.0}, "s2": {"a": 2.0, "b": np.nan}, "s3": {"a": 4.0}}
    out = across_subject_summary(values, ci=0.95)
    x = np.array([1.0, 2.0, 4.0])
    low, high = stats.t.interval(0.95, 2, loc=x.mean(), scale=stats.sem(x))
    assert out["a"]["mean"] == pytest.approx(x.mean()) and out["a"]["n"] == 3
    assert (out["a"]["ci_low"], out["a"]["ci_high"]) == pytest.approx((low, high))
    assert out["a"]["p"] == pytest.approx(stats.ttest_1samp(x, 0.0).pvalue)
    assert "b" not in out  # finite in one subject only
    assert finding_numbers({"x/mean": 1.0, "x/ci_low": 0.0, "x/n": 3.0, "y/p": 0.1, "y/r": 0.2}) == {
        "x/mean": 1.0, "y/r": 0.2}
