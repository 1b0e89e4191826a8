"""Circular-shift null, BH-FDR and atom-map t statistics."""

import numpy as np
import pytest

from vlm_brain.encoding._validation import pearson_r
from vlm_brain.encoding.ridge import cross_validate_encoding, fit_full, sdl_regressors
from vlm_brain.encoding.significance import (
    atom_maps,
    circular_shift_offsets,
    circular_shift_test,
    fdr_bh,
    shifted_correlations,
)
from vlm_brain.encoding.simulation import ar1, simulate_layer
from vlm_brain.encoding.temporal import prepare_regressors, zscore_per_run



def test_shifted_correlations_equal_np_roll():
    rng = np.random.default_rng(0)
    runs = np.repeat(["a", "b", "c"], [30, 45, 25])
    p, y = rng.standard_normal((100, 7)), rng.standard_normal((100, 7))
    offsets = np.array([[0, 0, 0], [3, 44, 1], [29, 7, 12]])
    null = shifted_correlations(p, y, runs, offsets)
    for b, shift in enumerate(offsets):
        rolled = np.concatenate([np.roll(p[runs == run], s, axis=0)
                                 for run, s in zip("abc", shift, strict=True)])
        np.testing.assert_allclose(null[b], pearson_r(rolled, y), atol=1e-12)


def test_offsets_cover_every_shift_of_each_run_and_are_seeded():
    runs = np.repeat([0, 1], [100, 7])
    offsets = circular_shift_offsets(runs, n_null=5000, random_state=3)
    assert offsets.shape == (5000, 2)
    assert set(offsets[:, 0]) == set(range(100))
    assert set(offsets[:, 1]) == set(range(7))
    np.testing.assert_array_equal(offsets, circular_shift_offsets(runs, 5000, 3))


def test_tail_p_values_are_exact_on_white_noise_with_short_runs():
    """Small p-values are what BH uses: P(p <= 0.002) must be ~0.002, not more.

    Drawing from the full group of per-run shifts makes the test exact for white noise
    (exchangeability); excluding small shifts would inflate this tail (~1.6x here).
    200,000 p-values give ~400 +- 20 below 0.002.
    """
    runs = np.repeat(np.arange(4), 60)
    p_values = []
    for seed in range(400):
        rng = np.random.default_rng(seed)
        p, y = rng.standard_normal((240, 500)), rng.standard_normal((240, 500))
        p_values.append(circular_shift_test(p, y, runs, random_state=seed).p_values)
    p_values = np.concatenate(p_values)
    assert np.mean(p_values <= 0.002 + 1e-9) < 0.002 * 1.15
    assert np.mean(p_values <= 0.05 + 1e-9) < 0.05 * 1.05


def test_circular_shift_null_is_calibrated_on_ar1_noise():
    """AR(1) phi = 0.6 predictions and data, independent: P(p < 0.05) should be 0.05.

    For two independent AR(1) series r has variance (1 + phi^2) / (1 - phi^2) / T,
    2.1 times the white-noise value, so a shuffle of time points (which assumes white
    noise) rejects ~13 % of the time; the circular shift keeps the autocorrelation.
    """
    rng = np.random.default_rng(0)
    runs = np.repeat(np.arange(4), 150)
    p, y = ar1(600, 2000, 0.6, rng, runs), ar1(600, 2000, 0.6, rng, runs)
    result = circular_shift_test(p, y, runs, n_null=1000, random_state=1)
    np.testing.assert_allclose(result.r, pearson_r(p, y), atol=1e-12)
    assert 0.03 <= np.mean(result.p_values < 0.05) <= 0.075

    pc, yc = p - p.mean(0), y - y.mean(0)
    scale = np.sqrt((pc**2).sum(0) * (yc**2).sum(0))
    shuffled = np.array([(pc[rng.permutation(600)] * yc).sum(0) / scale for _ in range(300)])
    naive_p = (1 + (shuffled >= result.r).sum(0)) / 301
    assert np.mean(naive_p < 0.05) > 0.1


def test_bh_on_pure_noise_controls_false_discoveries():
    """Under the global null every discovery is false: P(any) must stay <= q.

    300 seeds give a Monte Carlo SE of sqrt(0.05 * 0.95 / 300) = 0.013 on the mean false
    discovery proportion, so we allow q + 2.5 SE. The pooled p-values must be uniform.
    """
    q = 0.05
    runs = np.repeat(np.arange(4), 60)
    fdp, p_values = [], []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        p, y = ar1(240, 100, 0.5, rng, runs), ar1(240, 100, 0.5, rng, runs)
        result = circular_shift_test(p, y, runs, n_null=1000, q=q, random_state=seed)
        fdp.append(float(result.significant.any()))
        p_values.append(result.p_values)
    assert np.mean(fdp) <= q + 2.5 * 0.013
    p_values = np.concatenate(p_values)
    deciles = np.histogram(p_values, bins=np.linspace(0, 1, 11))[0] / p_values.size
    np.testing.assert_allclose(deciles, 0.1, atol=0.015)
    assert 0.04 <= np.mean(p_values < 0.05) <= 0.06


def test_bh_with_some_signal_keeps_fdr_and_finds_it():
    q = 0.1
    runs = np.repeat(np.arange(4), 60)
    fdp, power = [], []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        y = ar1(240, 100, 0.5, rng, runs)
        p = ar1(240, 100, 0.5, rng, runs)
        p[:, :20] += 0.5 * y[:, :20]  # 20 true effects (r ~ 0.45)
        found = circular_shift_test(p, y, runs, n_null=500, q=q, random_state=seed).significant
        fdp.append(found[20:].sum() / max(found.sum(), 1))
        power.append(found[:20].mean())
    assert np.mean(fdp) <= q * 0.8 + 0.03  # BH: FDR = q * m0 / m = 0.08 for independent tests
    assert np.mean(power) > 0.9


def test_pure_noise_through_the_whole_pipeline():
    """SDL + cross-validated ridge + circular shifts + BH on BOLD that is pure noise."""
    seeds_with_discoveries = 0
    for seed in range(6):
        sim = simulate_layer(n_runs=4, run_length=90, n_ans=40, n_atoms=4, n_targets=150,
                             random_state=seed)
        x, runs = prepare_regressors(sim.features, sim.runs, sim.keep, sim.tr)
        noise = zscore_per_run(ar1(len(runs), 150, 0.5, np.random.default_rng(seed), runs), runs)
        cv = cross_validate_encoding(x, noise, runs, sdl_regressors(n_atoms=4, max_iter=30))
        found = circular_shift_test(cv.predictions, noise, runs, random_state=seed).significant
        seeds_with_discoveries += found.any()
    # P(any discovery) <= 0.05 per seed; P(>= 2 of 6) < 0.035 if calibrated
    assert seeds_with_discoveries <= 1


@pytest.fixture(scope="module")
def autocorrelated_design():
    """6 AR(1) regressors; atom 0 drives the data up, atom 1 down, atoms 2-5 do nothing."""
    rng = np.random.default_rng(0)
    runs = np.repeat(np.arange(4), 200)
    x = zscore_per_run(ar1(800, 6, 0.6, rng, runs), runs)
    beta = np.zeros((6, 1000))
    beta[0], beta[1] = 0.15, -0.15
    y = zscore_per_run(x @ beta + ar1(800, 1000, 0.6, rng, runs), runs)
    return x, y, runs, fit_full(x, y, runs)


def test_atom_maps_hac_t_is_calibrated_and_signed(autocorrelated_design):
    x, y, runs, fit = autocorrelated_design
    maps = atom_maps(x, y, runs, fit.coefficients, fit.best_alphas, max_lag=20)
    assert 0.02 <= np.mean(maps.p_values[2:] < 0.05) <= 0.08
    assert maps.positive[0].mean() > 0.7 and maps.negative[1].mean() > 0.7
    assert not maps.negative[0].any() and not maps.positive[1].any()
    assert (maps.positive[2:] | maps.negative[2:]).mean() < 0.01


def test_atom_maps_white_noise_t_would_be_anti_conservative(autocorrelated_design):
    """max_lag=0 is the usual ridge standard error: ~2x too small a variance here."""
    x, y, runs, fit = autocorrelated_design
    naive = atom_maps(x, y, runs, fit.coefficients, fit.best_alphas, max_lag=0)
    assert np.mean(naive.p_values[2:] < 0.05) > 0.12


def test_atom_maps_t_equals_ols_t_for_white_noise_and_tiny_alpha():
    rng = np.random.default_rng(1)
    runs = np.repeat([0, 1], 150)
    x = rng.standard_normal((300, 3))
    y = x @ np.array([[0.3], [0.0], [-0.2]]) + rng.standard_normal((300, 1))
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    maps = atom_maps(x, y, runs, coef, np.array([1e-9]), max_lag=0)
    sigma2 = np.sum((y - x @ coef) ** 2) / (300 - 3)
    ols_t = coef[:, 0] / np.sqrt(sigma2 * np.diag(np.linalg.inv(x.T @ x)))
    np.testing.assert_allclose(maps.t[:, 0], ols_t, rtol=1e-6)


def test_fdr_bh_known_case_and_errors():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, np.nan])
    # BH at 0.05 with m = 8 tested: thresholds 0.05 * i / 8 -> first two pass
    np.testing.assert_array_equal(fdr_bh(p, 0.05), [1, 1, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="q must be"):
        fdr_bh(p, 1.5)
    with pytest.raises(ValueError, match="differ in shape"):
        circular_shift_test(np.zeros((10, 2)), np.zeros((10, 3)), np.zeros(10))


def test_fdr_bh_along_an_axis_is_bh_of_each_slice():
    rng = np.random.default_rng(0)
    p = rng.random((5, 200)) ** 3
    p[2, 7] = np.nan
    rows = np.stack([fdr_bh(row, 0.1) for row in p])
    np.testing.assert_array_equal(fdr_bh(p, 0.1, axis=1), rows)
    np.testing.assert_array_equal(fdr_bh(p[[0, 1, 3, 4]], 0.1, axis=1), rows[[0, 1, 3, 4]])
    assert rows.any() and not rows.all()


def test_fdr_bh_equals_scipy():
    from scipy import stats

    rng = np.random.default_rng(1)
    for p in (rng.random(500) ** 4, rng.random(300), np.r_[rng.random(50) * 1e-4, rng.random(950)]):
        np.testing.assert_array_equal(fdr_bh(p, 0.05), stats.false_discovery_control(p, method="bh") <= 0.05)


def test_adaptive_fdr_controls_the_fdr_and_finds_more_than_bh_when_many_tests_are_non_null():
    """Monte Carlo with planted truth: independent p-values, 30 % non-null; the adaptive procedure's mean FDP stays
    at or below q (Storey-Taylor-Siegmund 2004), it has more power than BH, and equals BH's count on pure noise."""
    from scipy import stats

    from vlm_brain.encoding.significance import fdr_adaptive, fdr_bh

    rng = np.random.default_rng(0)
    m, q = 2000, 0.05
    fdp, gain, pi0s = [], [], []
    for _ in range(200):
        signal = rng.random(m) < 0.3
        z = rng.standard_normal(m) + 2.5 * signal
        p = stats.norm.sf(z)
        adaptive, pi0 = fdr_adaptive(p, q)
        fdp.append((adaptive & ~signal).sum() / max(adaptive.sum(), 1))
        gain.append(adaptive.sum() - fdr_bh(p, q).sum())
        pi0s.append(pi0)
        assert not (fdr_bh(p, q) & ~adaptive).any()  # it finds everything BH finds
    assert np.mean(fdp) <= q + 0.005 and np.mean(fdp) > 0.02
    assert np.mean(gain) > 20 and abs(np.mean(pi0s) - 0.7) < 0.03
    noise = stats.norm.sf(rng.standard_normal((1000, 500)))  # global null: FDR = P(any discovery)
    assert np.mean([fdr_adaptive(p, q)[0].any() for p in noise]) <= q + 0.02
    # hand case: 6 p-values, two above lam = 0.5 -> pi0 = (1 + 2) / (6 * 0.5) = 1 (capped): plain BH
    p = np.array([0.001, 0.01, 0.02, 0.04, 0.6, 0.9])
    mask, pi0 = fdr_adaptive(p, 0.05)
    assert pi0 == 1.0 and list(mask) == list(fdr_bh(p, 0.05))
    p = np.r_[np.full(8, 0.045), 0.7, 0.8]  # BH: 0.045 > 0.05 * 8 / 10; pi0 = 3 / 5 -> 0.045 <= 0.05 / 0.6 * 8 / 10
    mask, pi0 = fdr_adaptive(p, 0.05)
    assert pi0 == pytest.approx(0.6) and list(mask) == [True] * 8 + [False] * 2 and not fdr_bh(p, 0.05).any()
