"""The sufficient-statistics engine against himalaya's RidgeCV and direct solves."""

import numpy as np
import pytest

from vlm_brain.encoding._kernels import (
    _MODEL_CHUNK,
    grid_sse,
    grid_sse_reference,
    lag_products,
    lag_sums_reference,
    model_lag_products,
    run_sums,
)
from vlm_brain.encoding._validation import pearson_r, run_slices
from vlm_brain.encoding.engine import (
    Design,
    HacFactor,
    block_stats,
    cross_validated_r,
    cross_validated_scores,
    hac_t,
    ridge_weights_eigen,
    select_alphas,
    shift_spread,
)
from vlm_brain.encoding.ridge import cross_validate_encoding, leave_one_run_out, standardize_train
from vlm_brain.encoding.significance import atom_maps, lagged_gram

ALPHAS = np.logspace(-1, 4, 11)


def fold_designs(seed=0, n_runs=4, run_length=45, k=5, n_targets=60, dtype=np.float64):
    """Per-fold designs that differ (as per-fold SDLs do), targets partly driven by them."""
    rng = np.random.default_rng(seed)
    runs = np.repeat(np.arange(n_runs), run_length)
    base = rng.standard_normal((len(runs), k))
    designs = [base + 0.3 * rng.standard_normal(base.shape) for _ in range(n_runs + 1)]
    weights = rng.standard_normal((k, n_targets)) * (rng.random(n_targets) < 0.5)
    scale = np.logspace(-1, 1, n_targets)  # targets from weakly to strongly driven
    y = base @ weights * scale + rng.standard_normal((len(runs), n_targets))
    y[:, 0] = 0.0  # a constant target
    return runs, [d.astype(dtype) for d in designs], y.astype(dtype)


def engine(runs, designs, y):
    """Run slices, stacked designs, one `Design` per fold then the full one, stats of y."""
    slices = run_slices(runs)
    k = designs[0].shape[1]
    stacked = np.hstack(designs)
    built = [Design.from_regressors(d, slices, slice(i * k, (i + 1) * k)) for i, d in enumerate(designs)]
    return slices, stacked, built, block_stats(stacked, y, slices)


def himalaya_loro(runs, designs, y, backend="numpy"):
    """Outer leave-one-run-out, himalaya RidgeCV with inner leave-one-run-out, design per fold."""
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV

    bk = set_backend(backend)
    predictions = np.zeros_like(y)
    chosen = []
    try:
        for f, (train, test) in enumerate(leave_one_run_out(runs)):
            inner = leave_one_run_out(runs[train])
            model = RidgeCV(alphas=ALPHAS, cv=inner, solver_params={"warn": False})
            model.fit(designs[f][train], y[train])
            predictions[test] = bk.to_numpy(model.predict(designs[f][test]))
            chosen.append(bk.to_numpy(model.best_alphas_))
    finally:
        set_backend("numpy")
    return pearson_r(predictions, y), np.array(chosen), predictions


def snap(values):
    return ALPHAS[np.abs(np.log(values)[:, None] - np.log(ALPHAS)).argmin(axis=1)]


@pytest.mark.parametrize("backend,dtype", [("numpy", np.float64), ("torch", np.float64), ("numpy", np.float32)])
def test_same_alphas_and_r_as_himalaya(backend, dtype):
    """float32 data (products and rotations in float32) against himalaya in float64 on the same values."""
    from vlm_brain.encoding.layer import _matmul

    runs, designs, y = fold_designs(dtype=dtype)
    slices, stacked, built, _ = engine(runs, designs, y)
    stats = block_stats(stacked, y, slices, matmul=_matmul(backend))  # products on it
    assert stats.cross.dtype == dtype
    scores = cross_validated_scores(built[:-1], stats, ALPHAS)
    r_ref, alphas_ref, _ = himalaya_loro(runs, [d.astype(np.float64) for d in designs], y.astype(np.float64),
                                         backend)
    assert np.array_equal(ALPHAS[scores.alpha_index], np.stack([snap(a) for a in alphas_ref]))
    np.testing.assert_allclose(scores.r, r_ref, atol=1e-5)
    assert len(np.unique(scores.alpha_index)) >= 3  # the grid matters in this case
    assert scores.r[0] == 0.0


def test_cross_validated_r_is_himalayas_cross_validate_encoding():
    """Fixed loadings' regressors standardised per fold (as the AN ablation builds them), in batches."""
    runs, designs, y = fold_designs(seed=3)
    base = designs[0]
    slices = run_slices(runs)

    def per_fold(x_train, x_test, runs_train):
        return standardize_train(x_train, x_test)

    expected = cross_validate_encoding(base, y, runs, per_fold, alphas=ALPHAS).r
    regressors = [per_fold(np.delete(base, np.arange(s.start, s.stop), axis=0), base, None)[1] for s in slices]
    r = cross_validated_r(regressors, y, slices, ALPHAS, batch_size=17)
    np.testing.assert_allclose(r, np.nan_to_num(expected), atol=1e-6)
    assert r[0] == 0.0 and np.ptp(r) > 0.5
    with pytest.raises(ValueError, match="one per run"):
        cross_validated_r(regressors[:-1], y, slices, ALPHAS)


def test_full_refit_coefficients_equal_a_direct_solve():
    runs, designs, y = fold_designs(seed=1)
    slices, stacked, built, stats = engine(runs, designs, y)
    full = built[-1]
    index = select_alphas(full, stats, range(4), ALPHAS)
    v, w = ridge_weights_eigen(full, range(4), stats.cross[:, full.columns].sum(axis=0), ALPHAS[index])
    x = designs[-1]
    for g in (1, 7, 33):
        a = ALPHAS[index[g]]
        direct = np.linalg.solve(x.T @ x + a * np.eye(x.shape[1]), x.T @ y[:, g])
        np.testing.assert_allclose(v @ w[:, g], direct, rtol=1e-9, atol=1e-12)
    # the alpha choice of the full refit is himalaya's with inner leave-one-run-out
    from himalaya.ridge import RidgeCV

    model = RidgeCV(alphas=ALPHAS, cv=leave_one_run_out(runs), solver_params={"warn": False}).fit(x, y)
    assert np.array_equal(ALPHAS[index], snap(model.best_alphas_))
    np.testing.assert_allclose(v @ w, model.coef_, atol=1e-8)


def test_hac_t_equals_atom_maps():
    runs, designs, y = fold_designs(seed=2)
    slices, stacked, built, stats = engine(runs, designs, y)
    x = designs[-1]
    index = select_alphas(built[-1], stats, range(4), ALPHAS)
    v, w = ridge_weights_eigen(built[-1], range(4), stats.cross[:, built[-1].columns].sum(axis=0), ALPHAS[index])
    coefficients = v @ w
    starts, stops = [sl.start for sl in slices], [sl.stop for sl in slices]
    _, lags, _ = lag_products(y, (x @ coefficients).T, np.zeros(y.T.shape), starts, stops, 10)
    t, dof = hac_t(HacFactor(lagged_gram(x, runs, 10), len(runs)), coefficients, ALPHAS[index], lags)
    reference = atom_maps(x, y, runs, coefficients, ALPHAS[index], max_lag=10)
    finite = np.isfinite(reference.t)
    np.testing.assert_allclose(t[finite], reference.t[finite], rtol=1e-8)
    assert finite[:, 1:].all()


@pytest.mark.parametrize("first_column", [0, 5])
def test_lag_kernel_matches_numpy(first_column):
    """70 targets (two blocks of 64, one partial); the data read from a column offset of a wider array."""
    rng = np.random.default_rng(0)
    data, fitted, predicted = (rng.standard_normal((70, 120)).astype(np.float32) + 0.5 for _ in range(3))
    starts, stops = np.array([0, 50, 90]), np.array([50, 90, 120])
    wider = np.hstack([np.full((120, first_column), 9.0, np.float32), data.T, np.ones((120, 3), np.float32)])
    data_lags, residual_lags, predicted_lags = lag_products(wider, fitted, predicted, starts, stops, 35,
                                                            first_column=first_column)
    np.testing.assert_allclose(data_lags, lag_sums_reference(data, starts, stops, 35, centre=True),
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(residual_lags, lag_sums_reference(data - fitted, starts, stops, 35),
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(predicted_lags, lag_sums_reference(predicted, starts, stops, 35, centre=True),
                               rtol=1e-4, atol=1e-3)
    assert np.all(data_lags[2, 30:] == 0)  # lags beyond a 30-TR run


@pytest.mark.parametrize("max_lag", range(8))
def test_lag_kernel_for_every_lag_count_and_runs_shorter_than_the_window(max_lag):
    """Lags come three per pass: every remainder of max_lag + 1, and runs of 1 to 6 TRs (lags >= n are 0)."""
    rng = np.random.default_rng(max_lag)
    lengths = np.array([1, 2, 3, 4, 5, 6, 40])
    stops = np.cumsum(lengths)
    starts = stops - lengths
    data, fitted, predicted = (rng.standard_normal((3, stops[-1])) for _ in range(3))
    data_lags, residual_lags, predicted_lags = lag_products(data.T, fitted, predicted, starts, stops, max_lag)
    np.testing.assert_allclose(data_lags, lag_sums_reference(data, starts, stops, max_lag, centre=True),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(residual_lags, lag_sums_reference(data - fitted, starts, stops, max_lag),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(predicted_lags, lag_sums_reference(predicted, starts, stops, max_lag, centre=True),
                               rtol=1e-10, atol=1e-12)
    for r, n in enumerate(lengths):
        assert np.all(residual_lags[r, n:] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_model_lag_kernel_forms_the_fitted_values_and_predictions_it_needs(dtype):
    """The fused kernel = `lag_products` of the explicit (x @ b).T and held-out predictions; it writes the predictions."""
    rng = np.random.default_rng(3)
    starts, stops = np.array([0, 50, 90]), np.array([50, 90, 121])  # runs of 50, 40 and 31 TRs
    n_samples, k, first = 121, 4, 5
    n_targets = _MODEL_CHUNK + 6  # one whole chunk of targets and a partial one
    data = rng.standard_normal((n_samples, first + n_targets + 2)).astype(dtype)
    held_out_designs = [rng.standard_normal((n_samples, k)) for _ in starts]  # run r predicted by design r
    full_x = rng.standard_normal((n_samples, k))
    fold_weights = rng.standard_normal((len(starts), k, n_targets))
    coefficients = rng.standard_normal((k, n_targets))
    held_out_x = [design[a:b] for design, a, b in zip(held_out_designs, starts, stops, strict=True)]
    predicted = np.vstack([x_r @ w for x_r, w in zip(held_out_x, fold_weights, strict=True)])  # (T, G)
    predictions = np.full((n_samples, n_targets + 3), np.nan, dtype=np.float32)
    fused = model_lag_products(data, fold_weights, held_out_x, coefficients, full_x, starts, stops, 12,
                               first_column=first, predictions=predictions, prediction_column=2)
    explicit = lag_products(data, (full_x @ coefficients).T.astype(dtype), predicted.T.astype(dtype), starts, stops,
                            12, first_column=first)
    tolerance = 1e-12 if dtype == np.float64 else 1e-4
    for ours, reference in zip(fused, explicit, strict=True):
        np.testing.assert_allclose(ours, reference, rtol=tolerance, atol=tolerance * np.abs(reference).max())
    np.testing.assert_allclose(predictions[:, 2:2 + n_targets], predicted, rtol=1e-5, atol=1e-5)
    assert np.isnan(predictions[:, :2]).all() and np.isnan(predictions[:, 2 + n_targets:]).all()


def test_lag_kernel_centres_exactly_in_float64():
    """The per-run mean comes out analytically (no centred copy): exact for means far from 0."""
    rng = np.random.default_rng(1)
    data, predicted = (rng.standard_normal((9, 80)) * 0.1 + 3.0 for _ in range(2))
    starts, stops = np.array([0, 33]), np.array([33, 80])
    data_lags, _, predicted_lags = lag_products(data.T, np.zeros_like(data), predicted, starts, stops, 12)
    for lags, series in ((data_lags, data), (predicted_lags, predicted)):
        np.testing.assert_allclose(lags, lag_sums_reference(series, starts, stops, 12, centre=True),
                                   rtol=1e-9, atol=1e-12)


def test_shift_spread_matches_the_shift_group():
    """Mean and sd of r over every circular shift of every run of the held-out predictions."""
    rng = np.random.default_rng(4)
    n_runs, length, k = 3, 31, 3  # odd: lags 0, +-1 .. +-15 are the whole circle, the formula is exact
    runs = np.repeat(np.arange(n_runs), length)
    designs = [np.cumsum(rng.standard_normal((len(runs), k)), axis=0) * 0.2 + rng.standard_normal((len(runs), k))
               for _ in range(n_runs + 1)]
    y = np.cumsum(rng.standard_normal((len(runs), 4)), axis=0) * 0.3 + rng.standard_normal((len(runs), 4))
    slices, _, built, stats = engine(runs, designs, y)
    scores = cross_validated_scores(built[:-1], stats, ALPHAS, keep_weights=True)
    predictions = np.concatenate([designs[f][s] @ scores.weights[f] for f, s in enumerate(slices)])
    _, _, reference = himalaya_loro(runs, designs, y)
    np.testing.assert_allclose(predictions, reference, atol=1e-8)

    def circular_lags(series):
        centred = [series[s] - series[s].mean(axis=0) for s in slices]
        return np.stack([[(c * np.roll(c, -lag, axis=0)).sum(axis=0) for lag in range(16)] for c in centred])

    sd = shift_spread(scores.denom, circular_lags(predictions), circular_lags(y), stats.n)
    every = np.stack(np.meshgrid(*[np.arange(length)] * n_runs, indexing="ij"), -1).reshape(-1, n_runs)
    null = np.array([pearson_r(np.concatenate([np.roll(predictions[s], shift[j], axis=0)
                                               for j, s in enumerate(slices)]), y) for shift in every])
    np.testing.assert_allclose(scores.mean, null.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(sd, null.std(axis=0), rtol=1e-6)


def test_degenerate_training_gram_matches_himalaya():
    """Runs with orthonormal regressors make some inner training Grams multiples of I: one
    eigenvalue cluster, the within-cluster branch of the partial fractions."""
    rng = np.random.default_rng(7)
    runs = np.repeat(np.arange(4), 40)
    k = 5

    def design():
        blocks = [np.linalg.qr(rng.standard_normal((40, k)))[0] * 3.0 if r < 2 else rng.standard_normal((40, k))
                  for r in range(4)]
        return np.concatenate(blocks)

    designs = [design() for _ in range(5)]
    y = designs[0] @ rng.standard_normal((k, 30)) + 2 * rng.standard_normal((160, 30))
    slices, stacked, built, stats = engine(runs, designs, y)
    factor = built[3].validation_factor([0, 1], 2)
    assert factor[3].ndim == 2  # the cluster branch is the one exercised
    scores = cross_validated_scores(built[:-1], stats, ALPHAS)
    r_ref, alphas_ref, _ = himalaya_loro(runs, designs, y)
    assert np.array_equal(ALPHAS[scores.alpha_index], np.stack([snap(a) for a in alphas_ref]))
    np.testing.assert_allclose(scores.r, r_ref, atol=1e-5)



def test_run_sums_of_a_column_batch():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((50, 1300)).astype(np.float32) + 2.0
    starts, stops = np.array([0, 20]), np.array([20, 50])
    sums, squares = run_sums(data, starts, stops, slice(7, 1290))  # a block per thread (>= 512 targets), one partial
    block = data[:, 7:1290].astype(np.float64)
    np.testing.assert_allclose(sums, [block[:20].sum(0), block[20:].sum(0)], rtol=1e-12)
    np.testing.assert_allclose(squares, [(block[:20] ** 2).sum(0), (block[20:] ** 2).sum(0)], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grid_kernel_matches_numpy(dtype):
    rng = np.random.default_rng(4)
    k, n_targets, alphas = 6, 301, np.logspace(-2, 3, 7)
    z_and_rz, u = rng.standard_normal((2 * k, n_targets)).astype(dtype), rng.standard_normal((k, n_targets)).astype(dtype)
    within, v_sq = rng.random(k), rng.random(n_targets) * 50
    inv = 1.0 / (rng.random(k)[:, None] * 10 + alphas[None, :])
    sse = grid_sse(z_and_rz, u, within, inv, v_sq)
    assert sse.shape == (len(alphas), n_targets) and sse.dtype == np.float64
    np.testing.assert_allclose(sse, grid_sse_reference(z_and_rz, u, within, inv, v_sq), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_count_of_every_layout(dtype):
    from vlm_brain.encoding._validation import count_non_finite

    rng = np.random.default_rng(5)
    x = rng.standard_normal((37, 53)).astype(dtype)
    x[3, 4], x[10, 0], x[36, 52], x[0, 1] = np.nan, np.inf, -np.inf, np.finfo(dtype).max  # max is finite
    expected = int((~np.isfinite(x)).sum())
    assert expected == 3
    for layout in (x, np.asfortranarray(x), x[:, ::2], x.astype(np.float16)):
        assert count_non_finite(layout) == int((~np.isfinite(layout)).sum())
    assert count_non_finite(x) == expected
