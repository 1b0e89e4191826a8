"""Encode one layer end to end: SDL atoms -> CV ridge -> null -> atom maps."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from vlm_brain.encoding.ridge import (standardize_train, cross_validate_encoding, fit_full,
                                      raw_regressors, sdl_regressors)
from vlm_brain.encoding.sdl import atom_timecourses, fit_sparse_dictionary
from vlm_brain.encoding.significance import atom_maps, circular_shift_test, refit_shift_null
from vlm_brain.encoding.temporal import prepare_regressors

logger = logging.getLogger(__name__)


def encode_layer(
    ans: np.ndarray,
    y: np.ndarray,
    runs_full: np.ndarray,
    keep: np.ndarray,
    tr: float,
    n_atoms: int = 64,
    sdl_alpha: float = 1.0,
    sdl_max_iter: int = 100,
    alphas: np.ndarray | None = None,
    n_null: int = 1000,
    q: float = 0.05,
    seed: int = 0,
    backend: str = "numpy",
    target_batch_size: int = 4096,
    raw_model: bool = False,
    null_method: str = "refit",
    n_refit: int = 200,
    refit_targets: int = 2000,
) -> dict[str, np.ndarray]:
    """Everything the study measures for one layer.

    Args:
        ans: (T_full, N) AN time series of all TRs of all runs (timeline order).
        y: (T_kept, G) fMRI of the kept TRs, cleaned and z-scored per run.
        runs_full, keep: (T_full,) run label and kept-for-fitting flag per TR.
        null_method: "refit" (default): p-values against the pooled refit null of
            `refit_shift_null` (``n_refit`` draws on at most ``refit_targets``
            grayordinates), scaled per grayordinate by its prediction-shift null;
            "shift": the prediction-shift null alone (too narrow with leave-one-run-out
            predictions; kept for comparison).

    Returns:
        ``r`` (G,) held-out Pearson r of the atom model (leave-one-run-out, SDL fitted
        on the training runs only); ``p`` (G,) circular-shift p-values; ``bn`` (G,)
        BH-FDR discoveries at q (the layer's BNs); ``alpha`` (G,) median chosen ridge
        alpha over folds; ``atoms`` (T_kept, k) and ``loadings`` (k, N) of the SDL
        refitted on all runs, ``reconstruction_error`` (1,); ``atom_t``, ``atom_pos``,
        ``atom_neg`` (k, G): t maps of the full refit and their significant positive /
        negative grayordinates; with ``raw_model``, ``raw_r`` (G,) of all N ANs as
        regressors.
    """
    x, runs = prepare_regressors(ans, runs_full, keep, tr)
    if len(x) != len(y):
        raise ValueError(f"features have {len(x)} kept TRs but the fMRI has {len(y)}; timelines differ")
    kwargs = {"backend": backend, "target_batch_size": target_batch_size}
    if alphas is not None:
        kwargs["alphas"] = alphas
    if null_method not in ("refit", "shift"):
        raise ValueError(f"null_method must be 'refit' or 'shift', got {null_method!r}")
    cv = cross_validate_encoding(
        x, y, runs, sdl_regressors(n_atoms, sdl_alpha, seed, max_iter=sdl_max_iter),
        keep_regressors=null_method == "refit", **kwargs
    )
    refit = (refit_shift_null(cv.fold_regressors, y, runs, cv.best_alphas, n_refit, refit_targets, seed)
             if null_method == "refit" else None)
    test = circular_shift_test(cv.predictions, y, runs, n_null=n_null, q=q, random_state=seed, refit_null=refit)
    varying = np.ptp(x, axis=0) > 0
    dictionary = fit_sparse_dictionary(x[:, varying], n_atoms, sdl_alpha, seed, max_iter=sdl_max_iter)
    loadings = np.zeros((n_atoms, x.shape[1]), dtype=np.float32)
    loadings[:, varying] = dictionary.loadings
    regressors, _ = standardize_train(atom_timecourses(x, loadings), x[:0, :n_atoms])
    full = fit_full(regressors, y, runs, **kwargs)
    maps = atom_maps(regressors, y, runs, full.coefficients, full.best_alphas, q=q,
                     target_batch_size=target_batch_size)
    out = {
        "r": cv.r, "p": test.p_values, "bn": test.significant,
        "alpha": np.median(cv.best_alphas, axis=0),
        "atoms": dictionary.atoms, "loadings": loadings,
        "reconstruction_error": np.array([dictionary.reconstruction_error]),
        "atom_t": maps.t, "atom_pos": maps.positive, "atom_neg": maps.negative,
    }
    if raw_model:
        out["raw_r"] = cross_validate_encoding(x, y, runs, raw_regressors(), **kwargs).r
    return out


def layer_polarity(bn: np.ndarray, atom_t: np.ndarray, atom_pos: np.ndarray, atom_neg: np.ndarray) -> np.ndarray:
    """Sign of each BN: that of its strongest significant atom (+1, -1; 0 if none or not a BN)."""
    significant = atom_pos | atom_neg
    strength = np.where(significant, np.abs(atom_t), -np.inf)
    best = np.argmax(strength, axis=0)
    has = significant.any(axis=0) & bn
    sign = np.sign(atom_t[best, np.arange(atom_t.shape[1])])
    return np.where(has, sign, 0).astype(np.int8)
