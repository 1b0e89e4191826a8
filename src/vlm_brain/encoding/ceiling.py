"""Noise ceiling from the repeated validation clip.

Model: the response to the clip in repeat i is x_i = s + e_i, with a stimulus-locked
signal s (variance var_s) identical across repeats and noise e_i (variance var_e)
independent across repeats. The reliability of one presentation is
rho_1 = var_s / (var_s + var_e); of the mean of m presentations,
rho_m = m rho_1 / (1 + (m - 1) rho_1) (Spearman-Brown).

The ceiling is the largest expected Pearson r that any model of the stimulus can reach
against data of the kind being predicted (one presentation by default, like the movie
runs the encoding model is scored on): the best possible prediction is s itself, and

    corr(s, s + e_bar_m) = sqrt(var_s / (var_s + var_e / m)) = sqrt(rho_m).

rho_1 is estimated from split-half correlations of the repeats: each half averages
h = n_repeats / 2 repeats, so the half-vs-half correlation estimates rho_h, and
Spearman-Brown with factor 1 / h turns it into rho_1.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from vlm_brain.encoding._validation import pearson_r


def half_splits(n_repeats: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """All distinct splits of the repeats into two equal halves (each split once).

    For 4 repeats: ((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2)).
    """
    if n_repeats < 2 or n_repeats % 2:
        raise ValueError(f"need an even number (>= 2) of repeats, got {n_repeats}")
    everyone = set(range(n_repeats))
    return [
        (half, tuple(sorted(everyone - set(half))))
        for half in combinations(range(n_repeats), n_repeats // 2)
        if 0 in half
    ]


def _check_repeats(repeats: np.ndarray) -> np.ndarray:
    repeats = np.asarray(repeats)
    if repeats.ndim != 3:
        raise ValueError(
            f"repeats must be (n_repeats, n_samples, n_grayordinates), got shape {repeats.shape}"
        )
    if not np.all(np.isfinite(repeats)):
        raise ValueError(f"repeats (shape {repeats.shape}) contain NaN or inf")
    return repeats


def split_half_reliability(repeats: np.ndarray) -> np.ndarray:
    """Mean over the distinct half splits of corr(mean of half A, mean of half B).

    Parameters
    ----------
    repeats : (n_repeats, L, G) cleaned responses to the same clip, n_repeats even.

    Returns
    -------
    r_half : (G,) float64, an estimate of rho_{n_repeats / 2} (uncorrected).
    """
    repeats = _check_repeats(repeats)
    splits = half_splits(repeats.shape[0])
    total = np.zeros(repeats.shape[2])
    for half_a, half_b in splits:
        total += pearson_r(repeats[list(half_a)].mean(axis=0), repeats[list(half_b)].mean(axis=0))
    return total / len(splits)


def spearman_brown(reliability: np.ndarray, factor: float) -> np.ndarray:
    """Reliability of data averaged over `factor` times as many presentations.

    rho' = factor rho / (1 + (factor - 1) rho); factor < 1 steps down (e.g. 1/2).
    """
    reliability = np.asarray(reliability, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return factor * reliability / (1 + (factor - 1) * reliability)


def noise_ceiling(repeats: np.ndarray, n_averaged: int = 1) -> np.ndarray:
    """Per-grayordinate ceiling on Pearson r against data averaged over `n_averaged` presentations.

    Parameters
    ----------
    repeats : (n_repeats, L, G) cleaned responses to the repeated clip (HCP: 4).
    n_averaged : presentations averaged in the data being predicted (1 for movie runs).

    Returns
    -------
    ceiling : (G,) sqrt(rho_m), see the module docstring; 0 where the estimated
        reliability is <= 0 (no measurable stimulus-locked signal).
    """
    repeats = _check_repeats(repeats)
    per_half = repeats.shape[0] // 2
    rho_1 = spearman_brown(split_half_reliability(repeats), 1.0 / per_half)
    rho_m = spearman_brown(rho_1, n_averaged)
    return np.sqrt(np.clip(np.nan_to_num(rho_m, nan=0.0), 0.0, None))


def normalized_r(r: np.ndarray, ceiling: np.ndarray, min_ceiling: float = 0.1) -> np.ndarray:
    """r / ceiling, NaN where the ceiling is below `min_ceiling` or not finite.

    A tiny ceiling makes the ratio explode and a non-positive one is meaningless, so
    those grayordinates get NaN rather than a misleading number. Ratios above 1 are kept
    (estimation noise), not clipped.
    """
    r = np.asarray(r, dtype=np.float64)
    ceiling = np.asarray(ceiling, dtype=np.float64)
    if r.shape != ceiling.shape:
        raise ValueError(f"r {r.shape} and ceiling {ceiling.shape} differ in shape")
    valid = np.isfinite(ceiling) & (ceiling >= min_ceiling)
    return np.divide(r, ceiling, out=np.full(r.shape, np.nan), where=valid)
