"""encode_layer on a layer simulated from planted atoms; BN polarity by hand."""

import numpy as np
import pytest

from vlm_brain.encoding.layer import encode_layer, layer_polarity
from vlm_brain.encoding.simulation import simulate_layer


def test_encode_layer_recovers_signal_and_finds_the_driven_targets():
    snr = np.r_[np.full(30, 2.0), np.full(30, 1e-6)]  # 30 driven targets, 30 (almost) noise
    sim = simulate_layer(n_runs=4, run_length=120, n_rest=10, n_ans=80, n_atoms=5,
                         n_targets=60, snr=snr, random_state=3)
    out = encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, n_atoms=5,
                       sdl_alpha=0.5, sdl_max_iter=30, n_refit=50, refit_targets=60, seed=0, raw_model=True)
    G = 60
    assert out["r"].shape == out["p"].shape == out["bn"].shape == (G,)
    assert out["atom_t"].shape == (5, G) and out["loadings"].shape == (5, 80)
    # held-out r tracks a perfect model's r on the driven targets
    assert abs(np.mean(out["r"][:30]) - np.mean(sim.signal_r[:30])) < 0.1
    assert out["bn"][:30].mean() > 0.9          # sensitivity
    assert out["bn"][30:].sum() <= 2            # few false discoveries among noise targets
    assert np.mean(out["raw_r"][:30]) > 0.3     # the raw-AN comparison model also works
    # full-refit atom maps only flag driven targets
    assert (out["atom_pos"] | out["atom_neg"])[:, 30:].sum() <= 3


def test_layer_polarity_takes_the_strongest_significant_atom():
    t = np.array([[3.0, -1.0, 5.0, 2.0], [-4.0, 2.5, -1.0, 9.0]])
    pos = np.array([[True, False, True, False], [False, True, False, False]])
    neg = np.array([[False, False, False, False], [True, False, False, False]])
    bn = np.array([True, True, True, False])
    assert layer_polarity(bn, t, pos, neg).tolist() == [-1, 1, 1, 0]


def _noise_layer(seed, n_targets=1500, **kwargs):
    from vlm_brain.encoding.simulation import ar1
    from vlm_brain.encoding.temporal import zscore_per_run

    sim = simulate_layer(n_runs=4, run_length=80, n_ans=60, n_atoms=6, n_targets=10, random_state=seed)
    runs_kept = sim.runs[sim.keep]
    y = zscore_per_run(ar1(len(runs_kept), n_targets, 0.3, np.random.default_rng(100 + seed), runs_kept), runs_kept)
    return encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, n_atoms=6, sdl_max_iter=10,
                        alphas=np.array([1.0, 10.0, 100.0, 1000.0]), seed=seed, **kwargs)


def test_refit_null_is_calibrated_where_prediction_shifts_are_not():
    """Pure noise: p <= 0.01 must happen ~1% of the time (4 x 1,500 tests).

    The spread of r over shifts of each run's predictions alone ignores that each fold
    was fitted on the other runs' data and rejects too often; the refit null does not.
    """
    refit, shift_only, calibration = [], [], []
    for seed in range(4):
        out = _noise_layer(seed)  # the default refit null: 100 draws x 250 grayordinates
        refit.append(out["p"])
        calibration.append(out["null_calibration"])
        shift_only.append(_noise_layer(seed, null_method="shift")["p"])
    refit, shift_only = np.concatenate(refit), np.concatenate(shift_only)
    assert np.mean(refit <= 0.01) <= 0.015 and np.mean(refit <= 0.05) <= 0.065
    assert np.mean(shift_only <= 0.01) > np.mean(refit <= 0.01)
    assert 0.3 < np.mean(refit <= 0.5) < 0.7  # not degenerate
    calibration = np.array(calibration)
    assert np.all(np.isfinite(calibration)) and np.all(calibration[:, 2] > 0)


def test_pareto_tail_matches_a_known_null():
    """Tail p-values of a standard normal null sample agree with the exact normal tail."""
    from scipy import stats

    from vlm_brain.encoding.layer import tail_p_values

    null = np.random.default_rng(0).standard_normal(200_000)
    z = np.array([0.0, 1.5, 2.5, 3.0, 3.5, 4.5, 5.5, 9.0])
    p, tail = tail_p_values(z, null)
    exact = stats.norm.sf(z)
    assert tail[0] == pytest.approx(stats.norm.isf(0.01), abs=0.05)
    np.testing.assert_allclose(p[:3], exact[:3], rtol=0.1)  # empirical part
    np.testing.assert_allclose(p[3:5], exact[3:5], rtol=0.5)  # fitted tail, near the data
    assert np.all(p[5:] >= exact[5:])  # far beyond the data: conservative, never below the truth ...
    assert np.all(np.diff(p) < 0) and p[-1] < 0.05 / (10 * 91_282)  # ... but no resolution floor


def test_p_values_resolve_below_the_fdr_threshold_of_a_full_hcp_layer():
    """p is continuous: strongly driven grayordinates reach p < q / (10 m) for m = 91,282."""
    snr = np.r_[np.full(20, 4.0), np.full(20, 1e-6)]
    sim = simulate_layer(n_runs=4, run_length=200, n_rest=10, n_ans=60, n_atoms=5, n_targets=40, snr=snr,
                         random_state=5)
    out = encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, n_atoms=5, sdl_max_iter=20,
                       n_refit=100, refit_targets=40, seed=1)
    resolution = 0.05 / (10 * 91_282)
    assert np.sum(out["p"][:20] < resolution) >= 10
    assert len(np.unique(out["p"][:20])) == 20  # no ties at a resolution floor
    assert out["bn"][:20].all()


def test_encode_layer_rejects_bad_settings():
    import pytest

    sim = simulate_layer(n_runs=4, run_length=40, n_ans=20, n_atoms=3, n_targets=5, random_state=0)
    with pytest.raises(ValueError, match="null_method"):
        encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, n_atoms=3, null_method="bogus")
    with pytest.raises(ValueError, match="alphas"):
        encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, n_atoms=3, alphas=[-1.0])
    with pytest.raises(ValueError, match="q = 5: must be a number in"):
        encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, n_atoms=3, q=5)


def test_bh_candidates_keep_the_bh_discoveries_of_exact_p_values():
    from scipy import stats

    from vlm_brain.encoding.layer import _bh_candidates
    from vlm_brain.encoding.significance import fdr_bh

    rng = np.random.default_rng(2)
    t = rng.standard_normal((6, 3000)) + (rng.random((6, 3000)) < 0.1) * 4
    dof = rng.choice([40.0, 55.0, 300.0], size=3000)
    exact = 2 * stats.t.sf(np.abs(t), dof[None, :])
    fast = np.ones(t.shape)  # the candidates' p, 1 elsewhere
    rows, cols, values = _bh_candidates(t, dof, 0.05)
    np.testing.assert_array_equal(values, np.abs(t[rows, cols]))
    fast[rows, cols] = 2 * stats.t.sf(values, dof[cols])
    np.testing.assert_array_equal(fdr_bh(fast, 0.05, axis=1), fdr_bh(exact, 0.05, axis=1))
    computed = fast < 1
    np.testing.assert_allclose(fast[computed], exact[computed], rtol=1e-10)
    discoveries = fdr_bh(exact, 0.05, axis=1).sum(axis=1)
    assert np.all(exact[~computed] > (0.05 * discoveries / t.shape[1])[:, None].repeat(t.shape[1], 1)[~computed])
    assert computed.mean() < np.mean(exact <= 0.05)  # fewer computed than all p <= q: the BH bound prunes


def test_dominant_an_direction_is_the_first_principal_component_oriented_with_the_mean():
    from sklearn.decomposition import PCA

    from vlm_brain.encoding.layer import dominant_an_direction

    rng = np.random.default_rng(0)
    source = rng.standard_normal(300)
    x = np.outer(source, rng.uniform(0.5, 2.0, 40)) + 0.3 * rng.standard_normal((300, 40))
    x -= x.mean(axis=0)
    direction = dominant_an_direction(x)
    reference = PCA(n_components=1).fit_transform(x)[:, 0]
    assert abs(np.corrcoef(direction, reference)[0, 1]) > 0.9999
    assert np.corrcoef(direction, x.mean(axis=1))[0, 1] > 0.99  # oriented with the mean AN
    assert np.corrcoef(dominant_an_direction(-x), x.mean(axis=1))[0, 1] < -0.99  # follows the data, not a seed
    assert direction.std() == pytest.approx(1.0) and not np.any(dominant_an_direction(np.zeros((5, 3))))


def test_bn_signs_read_against_a_stimulus_feature():
    """Targets driven by +feature and -feature (HRF), ANs mixing the feature with other sources at random signs:
    the sign of each BN's fitted response relative to the feature is the planted one."""
    from vlm_brain.encoding.layer import response_polarity
    from vlm_brain.encoding.simulation import ar1
    from vlm_brain.encoding.temporal import prepare_regressors, zscore_per_run

    rng = np.random.default_rng(1)
    runs = np.repeat(np.arange(4), 150)
    keep = np.ones(runs.size, bool)
    feature = ar1(runs.size, 1, 0.8, rng, runs)[:, 0]
    others = ar1(runs.size, 5, 0.8, rng, runs)
    sources = np.column_stack([feature, others])
    ans = sources @ rng.standard_normal((6, 60)) + 0.5 * rng.standard_normal((runs.size, 60))
    bold_feature, _ = prepare_regressors(feature[:, None], runs, keep, tr=1.0)
    planted = np.r_[np.ones(40), -np.ones(40), np.zeros(40)]
    y = zscore_per_run(0.5 * bold_feature * planted + rng.standard_normal((runs.size, 120)), runs)
    out = encode_layer(ans, y, runs, keep, 1.0, n_atoms=6, sdl_max_iter=20, n_refit=50, refit_targets=120,
                       alphas=np.array([1.0, 10.0, 100.0, 1000.0]), references={"feature": feature})
    assert out["reference_r"].shape == (2, 120) and out["reference_r"].dtype == np.float32
    sign = response_polarity(out["bn"], out["reference_r"][1])
    driven = out["bn"] & (planted != 0)
    assert driven.sum() >= 70
    assert np.mean(sign[driven] == planted[driven]) >= 0.95
    assert np.all(sign[~out["bn"]] == 0)
    # strongly driven targets follow the feature closely
    assert np.median(np.abs(out["reference_r"][1][driven])) > 0.8
    with pytest.raises(ValueError, match="references have"):
        encode_layer(ans, y, runs, keep, 1.0, n_atoms=6, references={"feature": feature[:-1]})


def test_predictions_are_the_held_out_ones_whose_pooled_r_is_r():
    import vlm_brain.encoding as enc

    sim = simulate_layer(n_runs=4, run_length=80, n_ans=40, n_atoms=4, n_targets=60, snr=1.0, random_state=5)
    y = sim.y
    out = enc.encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, n_atoms=4, sdl_max_iter=10, n_refit=50,
                           refit_targets=60, return_predictions=True)
    predictions = out["predictions"]
    assert predictions.shape == y.shape and predictions.dtype == np.float32
    pooled = [np.corrcoef(predictions[:, g], y[:, g])[0, 1] for g in range(y.shape[1])]
    np.testing.assert_allclose(pooled, out["r"], atol=1e-4)
    assert "predictions" not in enc.encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, n_atoms=4,
                                                 sdl_max_iter=10, n_refit=50, refit_targets=60)


def test_a_batch_read_in_place_equals_a_copied_one():
    """C-contiguous float32 data are read in place, batch by batch; another layout is copied per batch."""
    sim = simulate_layer(n_runs=4, run_length=80, n_ans=40, n_atoms=4, n_targets=90, snr=1.0, random_state=6)
    y = np.ascontiguousarray(sim.y, dtype=np.float32)
    settings = dict(n_atoms=4, sdl_max_iter=10, n_refit=50, refit_targets=60, target_batch_size=32,
                    return_predictions=True)
    in_place = encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, **settings)
    copied = encode_layer(sim.features, np.asfortranarray(y), sim.runs, sim.keep, sim.tr, **settings)
    for name in ("r", "p", "alpha", "atom_t", "predictions", "reference_r"):
        np.testing.assert_array_equal(in_place[name], copied[name], err_msg=name)


def test_batches_side_by_side_equal_one_batch_on_one_thread():
    """Batches of targets (and chunks of null draws) run in parallel threads: the same numbers as serially."""
    import numba

    sim = simulate_layer(n_runs=4, run_length=80, n_ans=40, n_atoms=4, n_targets=90, snr=1.0, random_state=7)
    y = np.ascontiguousarray(sim.y, dtype=np.float32)
    settings = dict(n_atoms=4, sdl_max_iter=10, n_refit=50, refit_targets=60, return_predictions=True)
    threads = numba.get_num_threads()
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("the parallel path needs >= 2 numba threads")
    try:
        numba.set_num_threads(2)
        side_by_side = encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, target_batch_size=16, **settings)
        numba.set_num_threads(1)
        serial = encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, target_batch_size=16, **settings)
    finally:
        numba.set_num_threads(threads)
    one_batch = encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, target_batch_size=4096, **settings)
    for name in ("r", "p", "alpha", "atom_t", "predictions", "reference_r", "null_calibration"):
        np.testing.assert_allclose(side_by_side[name], serial[name], rtol=1e-6, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(side_by_side[name], one_batch[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(side_by_side["bn"], one_batch["bn"])


def test_every_tr_kept_when_keep_is_none():
    from vlm_brain.encoding import prepare_regressors

    rng = np.random.default_rng(0)
    features, runs = rng.standard_normal((60, 3)), np.repeat([0, 1, 2], 20)
    x_none, runs_none = prepare_regressors(features, runs, None, 1.0)
    x_all, runs_all = prepare_regressors(features, runs, np.ones(60, bool), 1.0)
    np.testing.assert_array_equal(x_none, x_all)
    np.testing.assert_array_equal(runs_none, runs_all)


def test_the_package_exports_what_a_notebook_needs():
    import vlm_brain.encoding as enc

    for name in ("encode_layer", "refit_null", "standardize_train", "tail_p_values", "response_polarity",
                 "dominant_an_direction", "prepare_regressors", "EncodingSettings", "fdr_bh"):
        assert name in enc.__all__ and callable(getattr(enc, name))


def test_the_raw_an_model_gets_p_values_small_where_driven_and_calibrated_elsewhere():
    from vlm_brain.encoding.layer import encode_layer
    from vlm_brain.encoding.simulation import simulate_layer

    sim = simulate_layer(n_runs=4, run_length=80, n_ans=30, n_atoms=4, n_targets=120, snr=1.0, random_state=3)
    rng = np.random.default_rng(0)
    y = sim.y.copy()
    null = np.arange(60, 120)
    y[:, null] = rng.standard_normal((len(y), len(null))).astype(np.float32)  # half the targets: pure noise
    out = encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, raw_model=True, n_atoms=4, sdl_max_iter=10,
                       n_refit=50, refit_targets=60, alphas=np.array([1.0, 10.0, 100.0, 1000.0]))
    assert out["raw_p"].shape == (120,) and np.all((out["raw_p"] > 0) & (out["raw_p"] <= 1))
    driven = np.setdiff1d(np.flatnonzero(np.abs(sim.weights).sum(axis=0) > 0), null)
    assert len(driven) > 20
    assert np.median(out["raw_p"][driven]) < 0.01
    assert np.mean(out["raw_p"][null] < 0.05) <= 0.15 and np.median(out["raw_p"][null]) > 0.2


def test_null_targets_are_a_seeded_subset_of_the_varying_columns():
    from vlm_brain.encoding.layer import null_targets

    y = np.random.default_rng(0).standard_normal((30, 400))
    y[:, ::3] = 1.0  # constant columns never enter the null
    present = np.ones(y.shape, dtype=bool)
    present[:, 1::3] = False
    present[:2, 1::3] = True  # ... nor columns whose only present TRs are equal
    y[:2, 1::3] = 2.0
    chosen = null_targets(y, 50, seed=4, present=present)
    assert len(chosen) == 50 and np.all(np.diff(chosen) > 0) and np.all(chosen % 3 == 2)
    assert np.array_equal(chosen, null_targets(y, 50, seed=4, present=present))
    assert not np.array_equal(chosen, null_targets(y, 50, seed=5, present=present))
    assert len(null_targets(y, 1000, seed=4)) == 266  # all 266 varying columns when fewer than asked
    with pytest.raises(ValueError, match="non-constant"):
        null_targets(np.ones((5, 4)), 3, seed=0)


def test_null_draws_beside_the_full_refit_equal_the_null_after_it():
    """The refit null's draws need only the folds' designs: run beside the last SDL, the same values."""
    from vlm_brain.encoding._validation import run_slices
    from vlm_brain.encoding.layer import (
        LayerDesigns,
        _fit_targets,
        fit_layer_designs,
        null_draw_jobs,
        null_targets,
        refit_null,
        standardized_null,
    )
    from vlm_brain.encoding.temporal import prepare_regressors

    sim = simulate_layer(n_runs=4, run_length=60, n_ans=40, n_atoms=4, n_targets=30, random_state=1)
    x, _ = prepare_regressors(sim.features, sim.runs, sim.keep, sim.tr)
    slices = run_slices(sim.runs[sim.keep])
    alphas = np.array([1.0, 10.0, 100.0])
    targets = null_targets(sim.y, 12, seed=0)
    args = (x, slices, 4, 0.5, 10, 0, 5)
    layer, (null_r,) = fit_layer_designs(*args, alongside=lambda folds: [
        lambda: np.concatenate([job() for job in null_draw_jobs(folds, sim.y, slices, alphas, targets, 7, 0, 64,
                                                                None)])])
    sequential = LayerDesigns.fit(*args)
    np.testing.assert_array_equal(layer.stacked, sequential.stacked)
    fit = _fit_targets(layer, sim.y.astype(np.float32), slices, alphas, 5, 64, None,
                       np.zeros((len(sim.y), 0)))
    after = refit_null(sequential, sim.y, slices, alphas, fit, 7, 12, 0, 64, None, targets=targets)
    assert null_r.shape == (7, 12)
    np.testing.assert_array_equal(standardized_null(null_r, fit.part(targets)), after)


def test_a_null_draw_is_the_cross_validation_on_data_shifted_in_every_run():
    """The draws roll the designs, not the data: each equals the whole CV on explicitly rolled runs."""
    from vlm_brain.encoding._validation import run_slices
    from vlm_brain.encoding.engine import block_stats, cross_validated_scores
    from vlm_brain.encoding.layer import LayerDesigns, null_draw_jobs, null_targets
    from vlm_brain.encoding.temporal import prepare_regressors

    sim = simulate_layer(n_runs=4, run_length=50, n_ans=30, n_atoms=3, n_targets=20, random_state=5)
    x, _ = prepare_regressors(sim.features, sim.runs, sim.keep, sim.tr)
    slices = run_slices(sim.runs[sim.keep])
    alphas = np.array([0.1, 10.0, 1000.0])
    y = sim.y.astype(np.float64)
    layer = LayerDesigns.fit(x, slices, 3, 0.5, 10, 0, 4)
    targets = null_targets(y, 9, seed=2)
    jobs = null_draw_jobs(layer, y, slices, alphas, targets, 5, 2, batch_size=18, matmul=None)
    assert len(jobs) > 1  # several chunks
    null = np.concatenate([job() for job in jobs])
    lengths = np.array([s.stop - s.start for s in slices])
    offsets = np.random.default_rng(3).integers(0, lengths, size=(5, len(slices)))  # the draws' shifts (seed + 1)
    for draw, shift in enumerate(offsets):
        rolled = np.vstack([np.roll(y[s][:, targets], -int(shift[j]), axis=0) for j, s in enumerate(slices)])
        expected = cross_validated_scores(layer.folds, block_stats(layer.fold_stacked, rolled, slices), alphas).r
        np.testing.assert_allclose(null[draw], expected, rtol=1e-10, atol=1e-12)
    assert np.ptp(null) > 0.05


def test_even_batches_fill_whole_rounds_of_workers():
    from vlm_brain.encoding.ridge import _target_batches

    batches = _target_batches(91_282, 4096, 2)
    sizes = [b.stop - b.start for b in batches]
    assert len(batches) == 24 and max(sizes) <= 4096 and max(sizes) - min(sizes) <= 1
    assert batches[0].start == 0 and batches[-1].stop == 91_282
    assert all(a.stop == b.start for a, b in zip(batches[:-1], batches[1:]))
    assert _target_batches(100, 4096, 2) == [slice(0, 100)]  # one batch: no split
    assert len(_target_batches(3, 1, 2)) == 3
    with pytest.raises(ValueError, match="target_batch_size"):
        _target_batches(10, 0, 2)


@pytest.mark.parametrize("n_tests", [1, 3])
def test_atom_discoveries_equal_bh_on_every_p_value(n_tests):
    from scipy import stats

    from vlm_brain.encoding.layer import atom_discoveries
    from vlm_brain.encoding.significance import fdr_bh

    rng = np.random.default_rng(7)
    t = rng.standard_normal((5, 4000)) + (rng.random((5, 4000)) < 0.08) * rng.choice([-4.0, 4.0], (5, 4000))
    t[3] = rng.standard_normal(4000)  # a row with (almost surely) no discovery
    t[4, :5] = 30.0  # ties at the top
    dof = rng.choice([30.0, 80.0, 900.0], size=4000)
    exact = np.minimum(2 * stats.t.sf(np.abs(t), dof[None, :]) * n_tests, 1.0)
    expected = fdr_bh(exact, 0.05, axis=1)
    found = atom_discoveries(t, dof, 0.05, n_tests)
    np.testing.assert_array_equal(found, expected)
    assert expected[[0, 1, 2, 4]].sum(axis=1).min() > 50
    # dofs as the engine gives them (T - df(alpha)): most candidates decided without their p
    dof = 3600.0 - 20 * rng.random(4000)
    exact = np.minimum(2 * stats.t.sf(np.abs(t), dof[None, :]) * n_tests, 1.0)
    np.testing.assert_array_equal(atom_discoveries(t, dof, 0.05, n_tests), fdr_bh(exact, 0.05, axis=1))


def test_a_refit_null_too_small_for_its_tail_is_refused_before_any_fit(monkeypatch):
    import vlm_brain.encoding.layer as layer

    sim = simulate_layer(n_runs=4, run_length=60, n_rest=0, n_ans=20, n_atoms=3, n_targets=40, random_state=1)

    def no_fit(*args, **kwargs):
        raise AssertionError("the SDL started")

    monkeypatch.setattr(layer, "fit_layer_designs", no_fit)
    with pytest.raises(ValueError, match=r"at most 50 draws x 40 grayordinates.*needs >= 2500"):
        encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, n_atoms=3, n_refit=50, refit_targets=100)
