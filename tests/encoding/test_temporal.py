"""HRF convolution, exclusion and z-scoring of regressors."""

import numpy as np
import pytest

from vlm_brain.encoding.temporal import (
    convolve_hrf,
    glover_kernel,
    prepare_regressors,
    zscore_per_run,
)


@pytest.mark.parametrize("tr", [0.5, 0.72, 1.0, 2.0])
def test_kernel_is_glover_sampled_at_the_tr(tr):
    kernel = glover_kernel(tr)
    assert kernel.sum() == pytest.approx(1.0)
    assert kernel[0] == 0.0
    # Glover's peak gamma (shape 6, scale 1 s) has its mode at 5 s, whatever the TR
    assert abs(kernel.argmax() * tr - 5.0) <= tr / 2
    # 32 s of support
    assert len(kernel) == pytest.approx(32.0 / tr, abs=1.5)


def test_impulse_at_end_of_run_does_not_bleed_into_next_run():
    runs = np.repeat(["run1", "run2"], [40, 40])
    x = np.zeros((80, 2), dtype=np.float32)
    x[39, 0] = 1.0  # last TR of run 1
    x[:, 1] = 1.0  # a sustained input restarts from zero in run 2
    out = convolve_hrf(x, runs, tr=1.0)
    assert np.all(out[40:, 0] == 0.0)
    np.testing.assert_allclose(out[40:, 1], out[:40, 1], atol=1e-7)


def test_convolution_is_causal_and_uses_the_kernel():
    runs = np.zeros(60, dtype=int)
    x = np.zeros((60, 1))
    x[3, 0] = 2.0
    out = convolve_hrf(x, runs, tr=1.0)[:, 0]
    kernel = glover_kernel(1.0)
    assert np.all(out[:3] == 0)
    np.testing.assert_allclose(out[3 : 3 + len(kernel)], 2 * kernel, atol=1e-6)


def test_zscore_per_run_and_constant_columns():
    rng = np.random.default_rng(0)
    runs = np.repeat([0, 1], [30, 50])
    x = rng.normal(5, 3, size=(80, 3))
    x[:, 2] = 7.0
    x[30:, 1] *= 10
    z = zscore_per_run(x, runs)
    assert np.all(z[:, 2] == 0) and np.isfinite(z).all()
    for rows in (slice(0, 30), slice(30, 80)):
        np.testing.assert_allclose(z[rows, :2].mean(0), 0, atol=1e-6)
        np.testing.assert_allclose(z[rows, :2].std(0), 1, atol=1e-5)


def test_prepare_regressors_convolves_before_exclusion():
    runs = np.repeat([0, 1], 50)
    keep = np.tile(np.arange(50) >= 10, 2)  # 10 rest TRs at each run start
    x = np.zeros((100, 1))
    x[8, 0] = 1.0  # an event during rest still shapes the kept TRs
    x[60, 0] = 1.0
    x_kept, runs_kept = prepare_regressors(x, runs, keep, tr=1.0)
    expected = zscore_per_run(convolve_hrf(x, runs, 1.0)[keep], runs[keep])
    np.testing.assert_array_equal(x_kept, expected)
    np.testing.assert_array_equal(runs_kept, runs[keep])
    dropped_first = zscore_per_run(convolve_hrf(x[keep], runs[keep], 1.0), runs[keep])
    assert not np.allclose(x_kept, dropped_first, atol=1e-3)


def test_bad_inputs():
    runs = np.repeat([0, 1], 5)
    x = np.ones((10, 2))
    with pytest.raises(ValueError, match="boolean"):
        prepare_regressors(x, runs, np.ones(10), 1.0)
    with pytest.raises(ValueError, match="contiguous"):
        convolve_hrf(x, np.array([0, 0, 1, 1, 0, 0, 1, 1, 1, 1]), 1.0)
    with pytest.raises(ValueError, match="one label per sample"):
        convolve_hrf(x, runs[:9], 1.0)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="1 non-finite"):
        convolve_hrf(x, runs, 1.0)


def test_none_on_pre_convolved_features_equals_the_glover_fit_of_the_raw_ones():
    """Data already in BOLD time (here: convolved beforehand) with temporal_model none give the same fit."""
    from vlm_brain.encoding.layer import encode_layer
    from vlm_brain.encoding.simulation import simulate_layer

    sim = simulate_layer(n_runs=4, run_length=80, n_ans=40, n_atoms=4, n_targets=60, snr=1.0, random_state=2)
    settings = dict(n_atoms=4, sdl_max_iter=10, n_refit=50, refit_targets=60)
    glover = encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, **settings)
    shifted = convolve_hrf(sim.features, sim.runs, sim.tr)
    none = encode_layer(shifted, sim.y, sim.runs, sim.keep, sim.tr, temporal_model="none", **settings)
    for key in ("r", "p", "bn", "atom_t"):
        np.testing.assert_array_equal(glover[key], none[key])
    # and the raw features taken as if already in BOLD time fit worse: the HRF matters for this data
    raw = encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, temporal_model="none", **settings)
    assert np.mean(raw["r"]) < np.mean(glover["r"]) - 0.05


def test_a_lag_delays_each_run_without_crossing_its_start():
    from vlm_brain.encoding.temporal import delay_per_run

    features = np.arange(10, dtype=float)[:, None] + 1
    runs = np.repeat([0, 1], 5)
    np.testing.assert_array_equal(delay_per_run(features, runs, 2)[:, 0], [0, 0, 1, 2, 3, 0, 0, 6, 7, 8])
    x, _ = prepare_regressors(features, runs, None, 1.0, temporal_model="none", lag=2)
    np.testing.assert_allclose(x[:, 0], zscore_per_run(delay_per_run(features, runs, 2), runs)[:, 0], atol=1e-6)
    with pytest.raises(ValueError, match="temporal_model"):
        prepare_regressors(features, runs, None, 1.0, temporal_model="gamma")
    with pytest.raises(ValueError, match="lag"):
        prepare_regressors(features, runs, None, 1.0, lag=-1)


def test_settings_name_a_bad_temporal_model():
    from vlm_brain.encoding.settings import EncodingSettings

    with pytest.raises(ValueError, match="encoding.temporal_model = 'gamma'"):
        EncodingSettings.from_params({"temporal_model": "gamma"})
    assert EncodingSettings.from_params({"temporal_model": "none", "lag": 3}).lag == 3


def test_fir_recovers_network_specific_lags_and_beats_a_fixed_hrf():
    """Two 'networks' respond to the same stimulus feature 2 and 6 TRs late (no canonical HRF): FIR finds each
    network's lag (the strongest delay of its BNs' strongest atom) and predicts held-out data better."""
    from vlm_brain.encoding.layer import encode_layer
    from vlm_brain.encoding.simulation import ar1
    from vlm_brain.encoding.temporal import delay_per_run

    rng = np.random.default_rng(4)
    runs = np.repeat(np.arange(4), 150)
    sources = ar1(runs.size, 4, 0.5, rng, runs)
    ans = sources @ rng.standard_normal((4, 40)) + 0.3 * rng.standard_normal((runs.size, 40))
    lags = np.r_[np.full(40, 2), np.full(40, 6)]
    signal = np.column_stack([delay_per_run(sources[:, :1], runs, lag)[:, 0] for lag in lags])
    y = zscore_per_run(signal + 0.7 * rng.standard_normal(signal.shape), runs)
    settings = dict(n_atoms=4, sdl_max_iter=20, n_refit=50, refit_targets=80,
                    alphas=np.array([1.0, 10.0, 100.0, 1000.0]))
    fir = encode_layer(ans, y, runs, None, 1.0, temporal_model="fir", fir_delays=8, **settings)
    hrf = encode_layer(ans, y, runs, None, 1.0, **settings)
    assert fir["atom_t"].shape == (4, 80) and fir["atom_delay"].shape == (4, 80)
    assert np.mean(fir["r"]) > np.mean(hrf["r"]) + 0.1
    assert fir["bn"].mean() > 0.9
    strongest = np.argmax(np.abs(fir["atom_t"]), axis=0)
    recovered = fir["atom_delay"][strongest, np.arange(80)]
    for network, lag in ((slice(0, 40), 2), (slice(40, 80), 6)):
        assert np.mean(np.abs(recovered[network] - lag) <= 1) >= 0.9
