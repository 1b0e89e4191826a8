"""Cross-validated ridge encoding: accuracy on known SNR, no leakage, closed form, errors."""

import logging

import numpy as np
import pytest
from himalaya.ridge import RidgeCV
from sklearn.model_selection import LeaveOneGroupOut

from vlm_brain.encoding.ridge import (
    cross_validate_encoding,
    fit_full,
    raw_regressors,
    resolve_backend,
    sdl_regressors,
)
from vlm_brain.encoding.simulation import simulate_layer
from vlm_brain.encoding.temporal import prepare_regressors



@pytest.fixture(scope="module")
def layer():
    # snr spans weak to strong targets: signal r from ~0.3 to ~0.9
    sim = simulate_layer(n_runs=4, run_length=160, n_ans=100, n_atoms=6, n_targets=30,
                         snr=np.logspace(-1, 0.7, 30), random_state=1)
    x, runs = prepare_regressors(sim.features, sim.runs, sim.keep, sim.tr)
    return sim, x, runs


def test_cv_r_matches_the_known_signal_correlation(layer):
    """Held-out r of the SDL model ~ r of a perfect model, minus estimation error.

    The ceiling is the realised corr(signal, signal + noise). An estimated model loses
    a little: with k regressors fitted on n samples, OLS theory adds prediction-error
    variance (k / n) * var(noise), so E[r_cv] ~ r / sqrt(1 + (1 - r^2) / r^2 * k / n)
    (0.3 -> 0.284, 0.9 -> 0.899 here). Around this the residual error comes from
    atom-recovery error and fold-to-fold estimation noise. Over 6 seeds in development
    the mean difference was -0.002 to -0.006 and the per-target SD ~0.01 (up to ~0.025
    for the weakest targets, r ~ 0.3, the largest miss 0.06). We allow 0.015 on the
    mean (a bias, e.g. from leakage or a bad projection, shows there) and 0.07 on any
    target (~3 SD of the weakest).
    """
    sim, x, runs = layer
    k = 6
    result = cross_validate_encoding(x, sim.y, runs, sdl_regressors(n_atoms=k, alpha=1.0))
    r_true = sim.signal_r
    n_train = np.mean([np.sum(runs != run) for run in np.unique(runs)])
    expected = r_true / np.sqrt(1 + (1 - r_true**2) / r_true**2 * k / n_train)
    assert abs(np.mean(result.r - expected)) < 0.015
    assert np.max(np.abs(result.r - expected)) < 0.07
    assert result.predictions.shape == sim.y.shape
    assert result.best_alphas.shape == (4, 30)
    np.testing.assert_array_equal(result.held_out_runs, [0, 1, 2, 3])


@pytest.mark.parametrize("factory", [sdl_regressors(n_atoms=6, seed=0), raw_regressors()],
                         ids=["sdl", "raw"])
def test_held_out_run_never_reaches_the_fold_model(layer, factory):
    """Poison the held-out run; fold 0's model must equal a model fitted without it."""
    sim, x, runs = layer
    rng = np.random.default_rng(5)
    held_out = runs == 0
    x_poisoned, y_poisoned = x.copy(), sim.y.copy()
    x_poisoned[held_out] = 50 + 100 * rng.standard_normal(x_poisoned[held_out].shape)
    y_poisoned[held_out] = 30 * rng.standard_normal(y_poisoned[held_out].shape)

    clean = cross_validate_encoding(x, sim.y, runs, factory, keep_coefficients=True)
    poisoned = cross_validate_encoding(x_poisoned, y_poisoned, runs, factory,
                                       keep_coefficients=True)
    # the poison is strong: folds that train on run 0 change
    assert not np.allclose(clean.coefficients[1], poisoned.coefficients[1], atol=1e-3)
    # fold 0 (run 0 held out) is untouched, in weights and in chosen alphas
    np.testing.assert_allclose(poisoned.coefficients[0], clean.coefficients[0], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(poisoned.best_alphas[0], clean.best_alphas[0])

    # and equals a model built from the training rows alone
    train = ~held_out
    # the library works in float32 for float32 data
    r_train, r_test = (r.astype(np.float32)
                       for r in factory(x[train], x_poisoned[held_out], runs[train]))
    splits = list(LeaveOneGroupOut().split(r_train, groups=runs[train]))
    reference = RidgeCV(alphas=np.logspace(0, 7, 15).astype(np.float32), cv=splits)
    reference.fit(r_train, sim.y[train])
    np.testing.assert_allclose(poisoned.coefficients[0], reference.coef_, rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(poisoned.predictions[held_out], reference.predict(r_test),
                               rtol=1e-4, atol=1e-4)


def closed_form_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)


def test_matches_closed_form_ridge():
    rng = np.random.default_rng(0)
    runs = np.repeat([0, 1, 2], 40)
    x = rng.standard_normal((120, 8))
    y = x @ rng.standard_normal((8, 5)) + rng.standard_normal((120, 5))
    alpha = 7.0

    result = cross_validate_encoding(x, y, runs, raw_regressors(), alphas=[alpha])
    for run in range(3):
        test, train = runs == run, runs != run
        mean, std = x[train].mean(0), x[train].std(0)
        weights = closed_form_ridge((x[train] - mean) / std, y[train], alpha)
        np.testing.assert_allclose(result.predictions[test], ((x[test] - mean) / std) @ weights,
                                   atol=1e-5)

    full = fit_full(x, y, runs, alphas=[alpha])
    np.testing.assert_allclose(full.coefficients, closed_form_ridge(x, y, alpha), atol=1e-5)
    np.testing.assert_array_equal(full.best_alphas, alpha)


def test_torch_backend_matches_numpy(layer, caplog):
    pytest.importorskip("torch")
    sim, x, runs = layer
    numpy_result = cross_validate_encoding(x, sim.y, runs, raw_regressors())
    backend = "torch_cuda"  # falls back to CPU torch (with a warning) without a GPU
    with caplog.at_level(logging.WARNING):
        torch_result = cross_validate_encoding(x, sim.y, runs, raw_regressors(),
                                               backend=backend)
    if torch_result.backend == "torch":
        assert "no CUDA GPU" in caplog.text
    np.testing.assert_allclose(torch_result.r, numpy_result.r, atol=1e-4)
    assert isinstance(torch_result.predictions, np.ndarray)


def test_backend_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown backend 'cupyy'"):
        resolve_backend("cupyy")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ValueError, match="not installed"):
        resolve_backend("torch")


def test_input_errors():
    rng = np.random.default_rng(0)
    runs = np.repeat([0, 1], 20)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 4))
    with pytest.raises(ValueError, match=r"shape \(40, 3\).*shape \(39, 4\)"):
        cross_validate_encoding(x, y[:39], runs, raw_regressors())
    y_nan = y.copy()
    y_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"y \(shape \(40, 4\)\) contains 1 non-finite"):
        cross_validate_encoding(x, y_nan, runs, raw_regressors())
    x_nan = x.copy()
    x_nan[0] = np.nan
    with pytest.raises(ValueError, match=r"features \(shape \(40, 3\)\) contains 3 non-finite"):
        cross_validate_encoding(x_nan, y, runs, raw_regressors())
    with pytest.raises(ValueError, match="needs >= 2 runs"):
        cross_validate_encoding(x, y, np.zeros(40), raw_regressors())
    with pytest.raises(ValueError, match="n_atoms=5"):
        cross_validate_encoding(x, y, runs, sdl_regressors(n_atoms=5))
    with pytest.raises(ValueError, match="alphas"):
        cross_validate_encoding(x, y, runs, raw_regressors(), alphas=[-1.0])
    with pytest.raises(ValueError, match="unknown backend"):
        cross_validate_encoding(x, y, runs, raw_regressors(), backend="jax")
