"""Scans vs cross-validation folds, and per-target masks of missing TRs (`vlm_brain.encoding.folds`)."""

import numpy as np
import pytest

from vlm_brain.encoding._validation import pearson_r
from vlm_brain.encoding.folds import check_folds, cv_folds, mask_patterns
from vlm_brain.encoding.layer import encode_layer
from vlm_brain.encoding.simulation import ar1, simulate_layer
from vlm_brain.encoding.temporal import convolve_hrf, zscore_per_run

SETTINGS = dict(n_atoms=4, sdl_max_iter=10, n_refit=50, refit_targets=60, alphas=np.array([1.0, 10.0, 100.0, 1000.0]))


def test_folds_split_each_scans_kept_trs_into_contiguous_parts():
    scans = np.repeat(["a", "b"], 6)
    keep = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0], dtype=bool)
    folds = cv_folds(scans, keep, 2)
    # a: kept TRs 1..5 -> 3 + 2 (TR 0, excluded, goes with the first part); b: kept 6..10 -> 3 + 2, TR 11 with the last
    assert list(folds) == ["a/1"] * 4 + ["a/2"] * 2 + ["b/1"] * 3 + ["b/2"] * 3
    assert list(cv_folds(scans, None, 1)) == list(scans)
    with pytest.raises(ValueError, match="spans scans"):
        check_folds(np.repeat([0, 1, 2], 4), scans)
    with pytest.raises(ValueError, match="fewer than folds_per_scan=7"):
        cv_folds(scans, None, 7)


def _two_scans(seed=0, length=240, n_targets=30):
    rng = np.random.default_rng(seed)
    scans = np.repeat(["scan1", "scan2"], length)
    sources = ar1(scans.size, 3, 0.3, rng, scans)
    ans = sources @ rng.standard_normal((3, 30)) + 0.1 * rng.standard_normal((scans.size, 30))
    signal = convolve_hrf(sources[:, :1] * rng.choice([-1, 1], n_targets)[None, :], scans, 1.0)
    y = zscore_per_run(signal + 0.05 * rng.standard_normal(signal.shape), scans)
    return ans, y, scans


def test_folds_inside_a_scan_leave_its_hrf_and_z_scoring_continuous():
    """Two scans, each split in two folds: the held-out predictions right after a fold boundary inside a scan are
    as good as elsewhere (the HRF runs on through it); treating each half as its own scan (HRF restarted, z-scored
    per half) spoils them there."""
    ans, y, scans = _two_scans()
    folds = cv_folds(scans, None, 2)
    kw = dict(SETTINGS, return_predictions=True, null_method="shift")
    split = encode_layer(ans, y, scans, None, 1.0, folds_per_scan=2, **kw)
    np.testing.assert_array_equal(split["r"], encode_layer(ans, y, scans, None, 1.0, folds=folds, **kw)["r"])
    restarted = encode_layer(ans, y, folds, None, 1.0, **kw)  # halves as scans
    after = np.concatenate([np.arange(start, start + 8) for start in (120, 360)])  # first TRs of each second half
    elsewhere = np.setdiff1d(np.arange(480), np.concatenate([after, np.arange(0, 8), np.arange(240, 248)]))

    def error(result, rows):
        return float(np.mean((result["predictions"][rows] - y[rows]) ** 2))

    assert np.mean(split["r"]) > 0.9
    assert error(split, after) < 2 * error(split, elsewhere)
    assert error(restarted, after) > 5 * error(split, after)
    with pytest.raises(ValueError, match="folds_per_scan"):
        encode_layer(ans, y, scans, None, 1.0, **SETTINGS)  # two scans, one fold each: no inner split


def _masked_case():
    sim = simulate_layer(n_runs=4, run_length=80, n_ans=40, n_atoms=4, n_targets=60, snr=1.0, random_state=5)
    present = np.ones(sim.y.shape, dtype=bool)
    present[10:30, :10] = False     # a gap inside the first run
    present[120:160, 10:15] = False  # one across the second and third runs
    present[140:209, 15:18] = False  # all but one TR of the third run (fold 3 drops out for these targets)
    return sim, present


def test_masked_trs_change_neither_fit_nor_score_nor_null():
    sim, present = _masked_case()
    nan_y = np.where(present, sim.y, np.nan).astype(np.float32)
    garbage = np.where(present, sim.y, 1e3 * np.random.default_rng(0).standard_normal(sim.y.shape)).astype(np.float32)
    kw = dict(SETTINGS, return_predictions=True)
    with_nan = encode_layer(sim.features, nan_y, sim.runs, sim.keep, sim.tr, **kw)
    with_mask = encode_layer(sim.features, garbage, sim.runs, sim.keep, sim.tr, mask=present, **kw)
    for key in ("r", "p", "alpha", "atom_t", "reference_r", "null_calibration"):
        np.testing.assert_array_equal(with_nan[key], with_mask[key], err_msg=key)
    predictions = with_nan["predictions"]
    used = present.copy()
    used[209, 15:18] = False  # the lone TR left of a fold that dropped out is not used either
    assert np.isnan(predictions[~used]).all() and np.isfinite(predictions[used]).all()
    # r is the pooled held-out r over the present TRs
    for g in (0, 12, 16, 40):
        rows = used[:, g]
        assert with_nan["r"][g] == pytest.approx(pearson_r(predictions[rows, g:g + 1], sim.y[rows, g:g + 1])[0],
                                                 abs=1e-5)
    # targets without missing TRs get what they get without any mask; the masked ones do change
    full = encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, **kw)
    clean = present.all(axis=0)
    for key in ("r", "alpha", "atom_t"):
        np.testing.assert_allclose(with_nan[key][..., clean], full[key][..., clean], rtol=1e-5, atol=1e-6,
                                   err_msg=key)
    assert np.all(np.abs(with_nan["r"][~clean] - full["r"][~clean]) > 1e-7)
    assert with_nan["bn"].sum() > 30  # the planted signal is still found


def test_mask_patterns_and_bad_masks():
    present = np.ones((6, 4), dtype=bool)
    present[:2, [1, 3]] = False
    groups = mask_patterns(present)
    assert groups[0][0].all() and list(groups[0][1]) == [0, 2] and list(groups[1][1]) == [1, 3]
    sim, _ = _masked_case()
    y = sim.y.copy()
    y[:, 3] = np.nan
    with pytest.raises(ValueError, match="no present TR"):
        encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, **SETTINGS)
    y = sim.y.copy()
    y[:200, 3] = np.nan  # only the last run and a TR of the third left
    with pytest.raises(ValueError, match="keep 2 folds"):
        encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, **SETTINGS)
    y[:200, 3] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        encode_layer(sim.features, y, sim.runs, sim.keep, sim.tr, **SETTINGS)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_over_the_data_finds_missing_values(dtype):
    """The per-fold sums of y (what the fit reuses) reveal any NaN / inf; non-finite sums of finite data fall
    back to counting the values, so only real NaN / inf make a mask."""
    from vlm_brain.encoding.layer import _present, fold_sums

    rng = np.random.default_rng(2)
    y = rng.standard_normal((30, 7)).astype(dtype)
    slices = [slice(0, 10), slice(10, 22), slice(22, 30)]
    sums = fold_sums(y, slices)
    for f, rows in enumerate(slices):
        np.testing.assert_allclose(sums[0][f], y[rows].sum(axis=0, dtype=np.float64), rtol=1e-12)
        np.testing.assert_allclose(sums[1][f], (y[rows].astype(np.float64) ** 2).sum(axis=0), rtol=1e-12)
    assert _present(y, None, sums) is None
    y[12, 4] = np.nan
    present = _present(y, None, fold_sums(y, slices))
    assert present is not None and np.flatnonzero(~present).tolist() == [12 * 7 + 4]
    assert fold_sums(np.asfortranarray(y), slices) is None  # not read in place: no sums, the values are counted
    assert _present(np.asfortranarray(y), None, None)[12, 4] == np.False_
    if dtype == np.float64:
        y[12, 4] = 1e200  # finite, but its square is not
        huge = fold_sums(y, slices)
        assert not np.isfinite(huge[1]).all() and _present(y, None, huge) is None
