"""Voxel-wise (grayordinate-wise) ridge encoding with himalaya.

Outer loop: leave one run out. Within each training fold, the regressors are built by a
`RegressorFactory` fitted on the training runs only (the SDL dictionary, the scaler),
and himalaya's ``RidgeCV`` picks one alpha per target by an inner cross-validation over
the training runs. Targets are processed in batches so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from vlm_brain.encoding._validation import (
    check_runs,
    check_same_length,
    check_time_series,
    pearson_r,
    run_labels,
    run_slices,
)
from vlm_brain.encoding.sdl import atom_timecourses, fit_layer_dictionary
from vlm_brain.encoding.settings import DEFAULT_ALPHAS, SUPPORTED_BACKENDS

logger = logging.getLogger(__name__)

#: Default ridge grid: half-decade steps from ~OLS (alpha 1 against z-scored regressors
#: with thousands of samples) to ~zero weights (alpha 1e7).

#: make_regressors(x_train, x_test, runs_train) -> (r_train, r_test)
RegressorFactory = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
Split = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- backends
def resolve_backend(name: str) -> str:
    """Check a himalaya backend name and fall back to CPU torch when CUDA is missing.

    Raises
    ------
    ValueError for an unknown backend or one whose library is not installed.
    """
    if name not in SUPPORTED_BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {SUPPORTED_BACKENDS}")
    if name.startswith("torch"):
        if importlib.util.find_spec("torch") is None:
            raise ValueError(f"backend {name!r} needs PyTorch, which is not installed")
        import torch

        if name == "torch_cuda" and not torch.cuda.is_available():
            logger.warning("backend 'torch_cuda' requested but no CUDA GPU: using 'torch' (CPU)")
            return "torch"
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[object]:
    """Set himalaya's global backend for the duration of a block, then restore it."""
    from himalaya.backend import get_backend, set_backend

    previous = get_backend().name
    module = set_backend(resolve_backend(name), on_error="raise")
    try:
        yield module
    finally:
        set_backend(previous, on_error="raise")


# --------------------------------------------------------------------------- splits
def leave_one_run_out(runs: np.ndarray) -> list[Split]:
    """(train_rows, test_rows) index pairs, one per run held out, in run order."""
    slices = run_slices(runs)
    if len(slices) < 2:
        raise ValueError(f"leave-one-run-out needs >= 2 runs, got {len(slices)}")
    all_rows = np.arange(len(runs))
    return [(np.setdiff1d(all_rows, all_rows[s]), all_rows[s]) for s in slices]


def contiguous_blocks(n_samples: int, n_blocks: int) -> list[Split]:
    """K-fold splits over contiguous blocks of samples (no shuffling)."""
    if not 2 <= n_blocks <= n_samples:
        raise ValueError(f"need 2 <= n_blocks <= n_samples ({n_samples}), got {n_blocks}")
    rows = np.arange(n_samples)
    return [(np.setdiff1d(rows, b), b) for b in np.array_split(rows, n_blocks)]


def inner_splits(runs_train: np.ndarray, inner_cv: str | int = "runs") -> list[Split]:
    """Inner CV splits of a training set, indices relative to the training rows.

    ``"runs"``: leave one training run out; with a single training run it falls back to
    3 contiguous blocks (logged). An int n: n contiguous blocks.
    """
    if inner_cv == "runs":
        if len(run_labels(runs_train)) >= 2:
            return leave_one_run_out(runs_train)
        logger.warning("one training run only: inner CV uses 3 contiguous blocks")
        return contiguous_blocks(len(runs_train), 3)
    if isinstance(inner_cv, int | np.integer):
        return contiguous_blocks(len(runs_train), int(inner_cv))
    raise ValueError(f"inner_cv must be 'runs' or an int, got {inner_cv!r}")


# --------------------------------------------------------------------------- regressors
def standardize_train(r_train: np.ndarray, r_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score columns with the training mean and std (constant columns -> 0)."""
    mean = r_train.mean(axis=0, dtype=np.float64)
    std = r_train.std(axis=0, dtype=np.float64)
    std[std == 0] = np.inf
    return (r_train - mean) / std, (r_test - mean) / std


def raw_regressors() -> RegressorFactory:
    """Factory for the comparison model: all N ANs, standardised with training stats."""

    def make(x_train: np.ndarray, x_test: np.ndarray, runs_train: np.ndarray):
        return standardize_train(np.asarray(x_train), np.asarray(x_test))

    return make


def sdl_regressors(
    n_atoms: int = 64, alpha: float = 1.0, seed: int = 0, **sdl_kwargs
) -> RegressorFactory:
    """Factory for the atom model: SDL fitted on the training runs only.

    The loadings A are learned on the training ANs; both training and held-out atom
    time courses are the least-squares projections ``X A^T (A A^T + eps I)^-1``
    (`atom_timecourses`), so train and test go through the same linear map, then they
    are standardised with training statistics. ANs constant over the training rows are
    left out of the SDL (loading 0).
    """

    def make(x_train: np.ndarray, x_test: np.ndarray, runs_train: np.ndarray):
        x_train = np.asarray(x_train)
        loadings = fit_layer_dictionary(x_train, n_atoms, alpha, seed, **sdl_kwargs).loadings
        return standardize_train(
            atom_timecourses(x_train, loadings), atom_timecourses(np.asarray(x_test), loadings)
        )

    return make


# --------------------------------------------------------------------------- ridge
def _target_batches(n_targets: int, batch_size: int, workers: int = 1) -> list[slice]:
    """Contiguous batches of <= ``batch_size`` targets, as even as can be, in whole rounds of ``workers``.

    E.g. 91,282 targets at 4,096 on 2 cores: 24 batches of ~3,803 instead of 22 full ones
    and a 23rd of 1,170 that would run alone with one core idle.
    """
    if batch_size < 1:
        raise ValueError(f"target_batch_size must be >= 1, got {batch_size}")
    n = -(-n_targets // batch_size)
    if n > 1:
        n = min(n_targets, -(-n // workers) * workers)
    bounds = np.linspace(0, n_targets, n + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _fit_ridge_cv(
    r_train: np.ndarray, y_train: np.ndarray, alphas: np.ndarray, splits: list[Split]
) -> object:
    """One himalaya RidgeCV fit (alpha per target, inner CV `splits`); the fitted model."""
    from himalaya.ridge import RidgeCV

    model = RidgeCV(alphas=np.asarray(alphas, dtype=r_train.dtype), cv=splits,
                    solver_params={"warn": False})
    model.fit(r_train, y_train)
    return model


def _snap_to_grid(chosen: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Grid values nearest (in log) to himalaya's alphas, which come back as exp(-log)."""
    nearest = np.abs(np.log(np.asarray(chosen, dtype=np.float64))[:, None] - np.log(alphas))
    return alphas[nearest.argmin(axis=1)]


def _check_alphas(alphas: Sequence[float]) -> np.ndarray:
    alphas = np.sort(np.asarray(alphas, dtype=np.float64).ravel())
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or alphas[0] <= 0:
        raise ValueError(f"alphas must be a non-empty grid of positive numbers, got {alphas}")
    return alphas


@dataclass
class EncodingResult:
    """Cross-validated encoding of one feature set.

    Attributes
    ----------
    predictions : (T, G) held-out predictions, each row from the fold that held out its run.
    r : (G,) Pearson r between pooled held-out predictions and data.
    best_alphas : (n_folds, G) alpha chosen per target by the inner CV of each fold.
    held_out_runs : (n_folds,) run label held out by each fold.
    coefficients : per fold (n_regressors, G) ridge weights, only if requested.
    backend : himalaya backend actually used.
    fold_regressors : per fold (r_train, r_test), the regressors the factory built for
        the training rows (runs in order) and the held-out run, only if requested (for
        `vlm_brain.encoding.significance.refit_shift_null`).
    """

    predictions: np.ndarray
    r: np.ndarray
    best_alphas: np.ndarray
    held_out_runs: np.ndarray
    coefficients: list[np.ndarray] | None
    backend: str
    fold_regressors: list[tuple[np.ndarray, np.ndarray]] | None = None


def cross_validate_encoding(
    features: np.ndarray,
    y: np.ndarray,
    runs: np.ndarray,
    make_regressors: RegressorFactory,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    backend: str = "numpy",
    target_batch_size: int = 4096,
    inner_cv: str | int = "runs",
    keep_coefficients: bool = False,
    keep_regressors: bool = False,
) -> EncodingResult:
    """Leave-one-run-out ridge encoding with per-target alpha.

    Parameters
    ----------
    features : (T, N) prepared features (e.g. `prepare_regressors` output), kept TRs.
    y : (T, G) fMRI, cleaned and z-scored per run, same rows as `features`.
    runs : (T,) contiguous run labels, >= 2 runs.
    make_regressors : ``f(x_train, x_test, runs_train) -> (r_train, r_test)`` fitted on
        the training rows only, e.g. `sdl_regressors(...)` or `raw_regressors()`.
    alphas : ridge grid; the penalty is ``alpha * ||b||^2`` (himalaya convention).
    backend : "numpy", "torch" or "torch_cuda" (falls back to CPU torch without a GPU).
    target_batch_size : targets per RidgeCV fit; himalaya's inner CV holds
        ``n_alphas * n_val * batch`` predictions in memory at a time.
    inner_cv : "runs" (leave one training run out) or an int (contiguous blocks).
    keep_coefficients : also return each fold's (n_regressors, G) weights.
    keep_regressors : also return each fold's (r_train, r_test) regressors.

    Returns
    -------
    EncodingResult. Computed in float64 if `y` is float64, else float32.
    """
    features = check_time_series(features, "features")
    y = check_time_series(y, "y")
    check_same_length(features, y, "features", "y")
    runs = check_runs(runs, y.shape[0])
    alphas = _check_alphas(alphas)
    backend = resolve_backend(backend)
    dtype = np.float64 if y.dtype == np.float64 else np.float32
    n_samples, n_targets = y.shape
    folds = leave_one_run_out(runs)
    batches = _target_batches(n_targets, target_batch_size)

    predictions = np.zeros((n_samples, n_targets), dtype=dtype)
    best_alphas = np.empty((len(folds), n_targets), dtype=np.float64)
    coefficients = [] if keep_coefficients else None
    fold_regressors = [] if keep_regressors else None
    with use_backend(backend) as bk:
        for fold, (train, test) in enumerate(folds):
            r_train, r_test = make_regressors(features[train], features[test], runs[train])
            r_train, r_test = _check_fold_regressors(r_train, r_test, train, test, dtype)
            if keep_regressors:
                fold_regressors.append((r_train, r_test))
            splits = inner_splits(runs[train], inner_cv)
            if keep_coefficients:
                fold_coef = np.empty((r_train.shape[1], n_targets), dtype=dtype)
            for cols in batches:
                y_train = y[train, cols].astype(dtype, copy=False)
                model = _fit_ridge_cv(r_train, y_train, alphas, splits)
                predictions[test, cols] = bk.to_numpy(model.predict(r_test))
                best_alphas[fold, cols] = _snap_to_grid(bk.to_numpy(model.best_alphas_), alphas)
                if keep_coefficients:
                    fold_coef[:, cols] = bk.to_numpy(model.coef_)
            if keep_coefficients:
                coefficients.append(fold_coef)
            logger.debug("fold %d/%d done (held out run %s)", fold + 1, len(folds), runs[test[0]])
    return EncodingResult(
        predictions=predictions,
        r=pearson_r(predictions, y),
        best_alphas=best_alphas,
        held_out_runs=np.array([runs[test[0]] for _, test in folds]),
        coefficients=coefficients,
        backend=backend,
        fold_regressors=fold_regressors,
    )


def _check_fold_regressors(
    r_train: np.ndarray, r_test: np.ndarray, train: np.ndarray, test: np.ndarray, dtype: type
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a factory's output for one fold and cast it to the working dtype."""
    r_train = check_time_series(np.asarray(r_train), "r_train").astype(dtype, copy=False)
    r_test = check_time_series(np.asarray(r_test), "r_test").astype(dtype, copy=False)
    if r_train.shape[0] != len(train) or r_test.shape[0] != len(test):
        raise ValueError(
            f"make_regressors returned {r_train.shape[0]} / {r_test.shape[0]} rows for "
            f"{len(train)} training / {len(test)} test samples"
        )
    if r_train.shape[1] != r_test.shape[1]:
        raise ValueError(
            f"train and test regressors differ in width: {r_train.shape} vs {r_test.shape}"
        )
    return r_train, r_test


@dataclass
class FullFit:
    """Ridge refit on all runs (for atom maps).

    Attributes
    ----------
    coefficients : (k, G) weights of each regressor for each target.
    best_alphas : (G,) alpha chosen per target by leave-one-run-out CV on all runs.
    """

    coefficients: np.ndarray
    best_alphas: np.ndarray


def fit_full(
    regressors: np.ndarray,
    y: np.ndarray,
    runs: np.ndarray,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    backend: str = "numpy",
    target_batch_size: int = 4096,
    inner_cv: str | int = "runs",
) -> FullFit:
    """Refit ridge on all data, alpha per target chosen by CV over the runs.

    Parameters
    ----------
    regressors : (T, k) zero-mean regressors; no intercept is fitted. For atom maps,
        the atoms of an SDL fitted on all runs, built like the CV regressors:
        ``regressors, _ = sdl_regressors(k, alpha, seed)(x, x[:0], runs)``.
    y : (T, G) fMRI, z-scored per run.
    runs : (T,) contiguous run labels (inner CV leaves one run out).

    Returns
    -------
    FullFit with coefficients (k, G) and best_alphas (G,).
    """
    regressors = check_time_series(regressors, "regressors")
    y = check_time_series(y, "y")
    check_same_length(regressors, y, "regressors", "y")
    runs = check_runs(runs, y.shape[0])
    alphas = _check_alphas(alphas)
    dtype = np.float64 if y.dtype == np.float64 else np.float32
    regressors = regressors.astype(dtype, copy=False)
    splits = inner_splits(runs, inner_cv)
    coefficients = np.empty((regressors.shape[1], y.shape[1]), dtype=dtype)
    best_alphas = np.empty(y.shape[1])
    with use_backend(backend) as bk:
        for cols in _target_batches(y.shape[1], target_batch_size):
            y_batch = y[:, cols].astype(dtype, copy=False)
            model = _fit_ridge_cv(regressors, y_batch, alphas, splits)
            coefficients[:, cols] = bk.to_numpy(model.coef_)
            best_alphas[cols] = _snap_to_grid(bk.to_numpy(model.best_alphas_), alphas)
    return FullFit(coefficients=coefficients, best_alphas=best_alphas)
