"""Noise ceiling from repeated presentations, checked against its analytical value."""

import numpy as np
import pytest

from vlm_brain.encoding._validation import pearson_r
from vlm_brain.encoding.ceiling import (
    half_splits,
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
