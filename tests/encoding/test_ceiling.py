"""Noise ceiling from repeated presentations, checked against its analytical value."""

import numpy as np
import pytest

from vlm_brain.encoding._validation import pearson_r
from vlm_brain.encoding.ceiling import (
    half_splits,
    loso_noise_ceiling,
    loso_reliability,
    noise_ceiling,
    normalized_r,
    spearman_brown,
    split_half_reliability,
)


def simulate_repeats(var_signal: np.ndarray, n_repeats: int, length: int, seed: int):
    """x_i = s + e_i with var(s) = var_signal per grayordinate and var(e_i) = 1."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((length, var_signal.size)) * np.sqrt(var_signal)
    noise = rng.standard_normal((n_repeats + 1, length, var_signal.size))
    return signal, signal + noise[:n_repeats], signal + noise[n_repeats]


def test_half_splits_are_distinct_and_complete():
    assert half_splits(4) == [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    assert len(half_splits(6)) == 10
    with pytest.raises(ValueError, match="even number"):
        half_splits(3)


@pytest.mark.parametrize("var_signal", [0.1, 0.5, 2.0])
def test_ceiling_matches_the_analytical_value(var_signal):
    """rho_1 = var_s / (var_s + 1); the ceiling for one presentation is sqrt(rho_1).

    2000 grayordinates share the true value, 80 TRs each (like HCP's 83 s clip). The
    per-grayordinate estimate is noisy and, at low reliability, skewed by the clip at 0
    and the concave sqrt (the mean is 0.03 low for rho_4 at var_s = 0.1), so we compare
    medians; their sampling error is < 0.01, hence the 0.02 tolerance.
    """
    var = np.full(2000, var_signal)
    signal, repeats, fresh = simulate_repeats(var, n_repeats=4, length=80, seed=0)
    rho_1 = var_signal / (var_signal + 1)
    ceiling = noise_ceiling(repeats)
    assert np.median(ceiling) == pytest.approx(np.sqrt(rho_1), abs=0.02)
    # a perfect model (the signal itself) against a new single presentation
    assert np.median(pearson_r(signal, fresh)) == pytest.approx(np.sqrt(rho_1), abs=0.02)
    # against the mean of 4 presentations the ceiling is higher: sqrt(rho_4)
    rho_4 = 4 * rho_1 / (1 + 3 * rho_1)
    assert np.median(noise_ceiling(repeats, n_averaged=4)) == pytest.approx(np.sqrt(rho_4),
                                                                            abs=0.02)
    assert np.median(pearson_r(signal, repeats.mean(0))) == pytest.approx(np.sqrt(rho_4),
                                                                          abs=0.02)


def test_split_half_is_reliability_of_two_averaged_repeats():
    var = np.full(2000, 0.5)
    _, repeats, _ = simulate_repeats(var, n_repeats=4, length=80, seed=1)
    rho_1 = 0.5 / 1.5
    assert np.mean(split_half_reliability(repeats)) == pytest.approx(
        spearman_brown(rho_1, 2), abs=0.02
    )


def test_spearman_brown_round_trip():
    rho = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(spearman_brown(spearman_brown(rho, 2), 0.5), rho)


def test_no_signal_gives_zero_ceiling_and_nan_ratio():
    var = np.r_[np.zeros(500), np.full(500, 1.0)]
    _, repeats, _ = simulate_repeats(var, n_repeats=4, length=60, seed=2)
    ceiling = noise_ceiling(repeats)
    assert np.all(ceiling >= 0) and np.isfinite(ceiling).all()
    ratio = normalized_r(np.full(1000, 0.3), ceiling, min_ceiling=0.1)
    assert np.all(np.isnan(ratio[ceiling < 0.1]))
    np.testing.assert_allclose(ratio[ceiling >= 0.1], 0.3 / ceiling[ceiling >= 0.1])
    assert np.isnan(ratio[:500]).mean() > 0.5  # most pure-noise grayordinates are guarded


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(n_repeats, n_samples, n_grayordinates\)"):
        noise_ceiling(np.zeros((4, 10)))
    with pytest.raises(ValueError, match="even number"):
        noise_ceiling(np.random.default_rng(0).standard_normal((3, 10, 2)))
    bad = np.zeros((4, 10, 2))
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        noise_ceiling(bad)
    with pytest.raises(ValueError, match="differ in shape"):
        normalized_r(np.zeros(3), np.zeros(4))


# --------------------------------------------------------------------------- leave-one-subject-out ceiling
SNRS = np.array([0.05, 0.2, 0.5, 1.0, 3.0])


def simulate_subjects(snr: np.ndarray, n_subjects: int, length: int, per_snr: int, seed: int):
    """x_i = s + e_i, var(s) = snr, var(e_i) = 1; per_snr targets share each snr."""
    rng = np.random.default_rng(seed)
    var = np.repeat(snr, per_snr)
    signal = rng.standard_normal((length, var.size)) * np.sqrt(var)
    return signal, signal + rng.standard_normal((n_subjects, length, var.size))


@pytest.mark.parametrize("n_subjects", [3, 6])
def test_loso_ceiling_matches_the_analytical_value(n_subjects):
    """True ceiling: corr(s, mean of S subjects) = sqrt(S snr / (S snr + 1)) in expectation.

    4000 TRs, 40 targets per snr: the sampling error of each estimate is < 0.02 and of
    the mean over 40 targets < 0.005, hence the 0.015 tolerance.
    """
    signal, bold = simulate_subjects(SNRS, n_subjects, length=4000, per_snr=40, seed=n_subjects)
    ceiling = loso_noise_ceiling(bold).reshape(len(SNRS), 40)
    analytic = np.sqrt(n_subjects * SNRS / (n_subjects * SNRS + 1))
    np.testing.assert_allclose(ceiling.mean(axis=1), analytic, atol=0.015)
    # the realised r of the perfect model (the signal) against the noisy group mean
    realised = pearson_r(signal, bold.mean(axis=0)).reshape(len(SNRS), 40).mean(axis=1)
    np.testing.assert_allclose(realised, analytic, atol=0.015)
    # for a single subject the ceiling is sqrt(rho_1) = sqrt(snr / (snr + 1))
    single = loso_noise_ceiling(bold, n_averaged=1).reshape(len(SNRS), 40).mean(axis=1)
    np.testing.assert_allclose(single, np.sqrt(SNRS / (SNRS + 1)), atol=0.015)


def test_loso_reliability_inverts_the_leave_one_out_correlation():
    rho_1 = np.array([0.0, 0.05, 0.3, 0.8, 1.0])
    for n_subjects in (2, 3, 10):
        rho_rest = spearman_brown(rho_1, n_subjects - 1)
        r_loo = np.sqrt(rho_1 * rho_rest)
        np.testing.assert_allclose(loso_reliability(r_loo, n_subjects), rho_1, atol=1e-12)
    np.testing.assert_array_equal(loso_reliability(np.array([-0.3, np.nan]), 4)[0], 0.0)
    assert np.isnan(loso_reliability(np.array([np.nan]), 4)[0])


def test_loso_two_subjects_is_spearman_brown_of_their_correlation_on_shared_trs():
    """S = 2: each leave-one-out r is corr(x_1, x_2) on the TRs both have; ceiling sqrt(2 r / (1 + r))."""
    _, bold = simulate_subjects(np.array([0.5, 1.0]), 2, length=200, per_snr=1, seed=3)
    bold[0, 10:30, 0] = np.nan
    bold[1, 25:40, 0] = np.nan
    both = np.isfinite(bold[0, :, 0]) & np.isfinite(bold[1, :, 0])
    r = np.corrcoef(bold[0, both, 0], bold[1, both, 0])[0, 1]
    r_full = np.corrcoef(bold[0, :, 1], bold[1, :, 1])[0, 1]
    np.testing.assert_allclose(loso_noise_ceiling(bold), np.sqrt([2 * r / (1 + r), 2 * r_full / (1 + r_full)]),
                               atol=1e-10)


def test_loso_with_missing_trs_stays_close_to_the_analytical_value():
    signal, bold = simulate_subjects(SNRS, 5, length=4000, per_snr=40, seed=7)
    rng = np.random.default_rng(8)
    bold[rng.random(bold.shape) < 0.1] = np.nan  # 10% of TRs missing, independently per subject and target
    ceiling = loso_noise_ceiling(bold).reshape(len(SNRS), 40).mean(axis=1)
    np.testing.assert_allclose(ceiling, np.sqrt(5 * SNRS / (5 * SNRS + 1)), atol=0.02)


def test_loso_no_signal_constant_and_bad_inputs():
    rng = np.random.default_rng(9)
    bold = rng.standard_normal((4, 300, 3))
    bold[:, :, 1] = 5.0  # constant
    bold[:, 2:, 2] = np.nan  # 2 shared TRs, fewer than the 3 needed
    ceiling = loso_noise_ceiling(bold)
    assert 0 <= ceiling[0] < 0.35  # pure noise: r_loo near 0
    assert np.isnan(ceiling[1]) and np.isnan(ceiling[2])
    with pytest.raises(ValueError, match=r"\(n_subjects, n_trs, n_targets\)"):
        loso_noise_ceiling(np.zeros((3, 10)))
    with pytest.raises(ValueError, match=">= 2 subjects"):
        loso_noise_ceiling(np.zeros((1, 10, 2)))
    bad = rng.standard_normal((3, 10, 2))
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        loso_noise_ceiling(bad)
