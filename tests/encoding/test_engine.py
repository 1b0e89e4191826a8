"""The sufficient-statistics engine against himalaya's RidgeCV and direct solves."""

import dataclasses

import numpy as np
import pytest

from vlm_brain.encoding._kernels import lag_sums, lag_sums_reference
from vlm_brain.encoding._validation import pearson_r, run_slices
from vlm_brain.encoding.engine import (
    Design,
    HacFactor,
    block_stats,
    centred_lagged_grams,
    cross_validated_scores,
    hac_t,
    residual_lag_sums,
    ridge_weights_eigen,
    select_alphas,
)
from vlm_brain.encoding.ridge import leave_one_run_out
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


def engine(runs, designs, y, max_lag=0):
    """Stacked designs; one `Design` per fold (holding out its run), then the full one."""
    slices = run_slices(runs)
    k = designs[0].shape[1]
    stacked = np.hstack(designs)
    built = [Design.from_regressors(d, slices, slice(i * k, (i + 1) * k), held_out=i if i < len(slices) else None,
                                    max_lag=max_lag) for i, d in enumerate(designs)]
    return slices, stacked, built


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


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_same_alphas_and_r_as_himalaya(backend):
    runs, designs, y = fold_designs()
    slices, stacked, built = engine(runs, designs, y)
    scores = cross_validated_scores(built[:-1], block_stats(stacked, y, slices), ALPHAS)
    r_ref, alphas_ref, _ = himalaya_loro(runs, designs, y, backend)
    assert np.array_equal(ALPHAS[scores.alpha_index], np.stack([snap(a) for a in alphas_ref]))
    np.testing.assert_allclose(scores.r, r_ref, atol=1e-5)
    assert len(np.unique(scores.alpha_index)) >= 3  # the grid matters in this case
    assert scores.r[0] == 0.0


def test_full_refit_coefficients_equal_a_direct_solve():
    runs, designs, y = fold_designs(seed=1)
    slices, stacked, built = engine(runs, designs, y)
    stats = block_stats(stacked, y, slices)
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
    slices, stacked, built = engine(runs, designs, y)
    x = designs[-1]
    stats = block_stats(stacked, y, slices)
    index = select_alphas(built[-1], stats, range(4), ALPHAS)
    v, w = ridge_weights_eigen(built[-1], range(4), stats.cross[:, built[-1].columns].sum(axis=0), ALPHAS[index])
    coefficients = v @ w
    lags = residual_lag_sums(y, x, coefficients, slices, max_lag=10)
    t, dof = hac_t(HacFactor(lagged_gram(x, runs, 10), len(runs)), coefficients, ALPHAS[index], lags)
    reference = atom_maps(x, y, runs, coefficients, ALPHAS[index], max_lag=10)
    finite = np.isfinite(reference.t)
    np.testing.assert_allclose(t[finite], reference.t[finite], rtol=1e-8)
    assert finite[:, 1:].all()


def test_lag_kernel_matches_numpy():
    rng = np.random.default_rng(0)
    series = rng.standard_normal((37, 120)).astype(np.float32)
    starts, stops = np.array([0, 50, 90]), np.array([50, 90, 120])
    np.testing.assert_allclose(lag_sums(series, starts, stops, 35), lag_sums_reference(series, starts, stops, 35),
                               rtol=1e-4, atol=1e-3)


def test_shift_spread_matches_the_shift_group():
    """Mean and sd of r over circular shifts of the held-out predictions (every shift of every run)."""
    rng = np.random.default_rng(4)
    n_runs, length, k = 3, 31, 3  # odd: lags 0, +-1 .. +-15 are the whole circle
    runs = np.repeat(np.arange(n_runs), length)
    designs = [np.cumsum(rng.standard_normal((len(runs), k)), axis=0) * 0.2 + rng.standard_normal((len(runs), k))
               for _ in range(n_runs + 1)]
    y = np.cumsum(rng.standard_normal((len(runs), 4)), axis=0) * 0.3 + rng.standard_normal((len(runs), 4))
    slices, stacked, built = engine(runs, designs, y)
    max_lag = (length - 1) // 2  # covers every lag of the circle: the formula is exact
    # circular lag products of centred y and of the held-out regressors: the identity is exact
    lagged = []
    for f, s in enumerate(slices):
        xc = designs[f][s] - designs[f][s].mean(axis=0)
        g = np.stack([xc.T @ np.roll(xc, -lag, axis=0) for lag in range(max_lag + 1)])
        lagged.append(0.5 * (g + g.transpose(0, 2, 1)))
    y_centred = y - np.concatenate([np.repeat(y[s].mean(axis=0, keepdims=True), length, axis=0) for s in slices])
    circ = np.stack([[(y_centred[s] * np.roll(y_centred[s], -lag, axis=0)).sum(axis=0)
                      for lag in range(max_lag + 1)] for s in slices])
    folds = [dataclasses.replace(design, lagged=lags) for design, lags in zip(built[:-1], lagged, strict=True)]
    scores = cross_validated_scores(folds, block_stats(stacked, y, slices), ALPHAS, circ)
    _, _, predictions = himalaya_loro(runs, designs, y)
    every = np.stack(np.meshgrid(*[np.arange(length)] * n_runs, indexing="ij"), -1).reshape(-1, n_runs)
    null = []
    for shift in every:
        shifted = np.concatenate([np.roll(predictions[s], shift[j], axis=0) for j, s in enumerate(slices)])
        null.append(pearson_r(shifted, y))
    null = np.array(null)
    np.testing.assert_allclose(scores.mean, null.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(scores.sd, null.std(axis=0), rtol=1e-6)


def test_centred_lagged_grams_are_symmetric_lag_products():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 3))
    grams = centred_lagged_grams(x, 5)
    xc = x - x.mean(axis=0)
    np.testing.assert_allclose(grams[2], 0.5 * (xc[:-2].T @ xc[2:] + xc[2:].T @ xc[:-2]))
    assert centred_lagged_grams(x[:7], 20).shape[0] == 4  # lags up to (n - 1) // 2
