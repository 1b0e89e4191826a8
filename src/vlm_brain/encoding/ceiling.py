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

Without a repeated clip, :func:`loso_noise_ceiling` estimates rho_1 across subjects
instead (leave-one-subject-out correlations; derivation in its docstring).
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


# --------------------------------------------------------------------------- across subjects
#: fewest TRs a subject and the mean of the others must share to correlate them
MIN_SHARED_TRS = 3


def loso_noise_ceiling(subjects_bold: np.ndarray, n_averaged: int | None = None) -> np.ndarray:
    """Ceiling on the r of a model predicting the group-mean BOLD, from leave-one-subject-out r.

    For data without a repeated clip: the subjects watched the same movie, so the
    stimulus-locked signal s is shared and each subject's noise is independent. Model
    (per target): x_i = s + e_i for subjects i = 1..S, var(s) = var_s, var(e_i) = var_e,
    snr = var_s / var_e. With rho_1 = var_s / (var_s + var_e) the reliability of one
    subject, the mean of k subjects has reliability rho_k = k rho_1 / (1 + (k - 1) rho_1)
    (Spearman-Brown), and

    - leave-one-out: r_loo = corr(x_i, mean of the other S - 1)
      = var_s / sqrt((var_s + var_e) (var_s + var_e / (S - 1))) = sqrt(rho_1 rho_{S-1});
    - solving r_loo^2 = rho_1 rho_{S-1} for rho_1, with k = S - 1:
      k rho_1^2 - (k - 1) r^2 rho_1 - r^2 = 0, so
      rho_1 = ((k - 1) r^2 + sqrt((k - 1)^2 r^4 + 4 k r^2)) / (2 k)   (S = 2: rho_1 = r);
    - ceiling: the best model predicts s, and corr(s, mean of n subjects) = sqrt(rho_n)
      = sqrt(n snr / (n snr + 1)), with n = S (the group mean) by default.

    The S leave-one-out r are averaged in Fisher z (tanh of the mean arctanh) before
    solving. Missing TRs (NaN): the mean of the others averages the subjects present at
    each TR, and each r uses the TRs where the subject and that mean are both present
    (pairwise); TRs with fewer others present make the estimate slightly low.

    Parameters
    ----------
    subjects_bold : (S, T, G) cleaned BOLD of S >= 2 subjects on the same T TRs; NaN
        marks a missing TR.
    n_averaged : subjects averaged in the data being predicted; default S.

    Returns
    -------
    ceiling : (G,) float64 in [0, 1]; 0 where the mean r is <= 0, NaN where no
        subject shares >= 3 TRs with the others or the data are constant.
    """
    bold = _check_subjects(subjects_bold)
    n_subjects = bold.shape[0]
    n_averaged = n_subjects if n_averaged is None else int(n_averaged)
    if n_averaged < 1:
        raise ValueError(f"n_averaged must be >= 1, got {n_averaged}")
    r_loo = np.stack([_pairwise_r(bold[i], _mean_of_others(bold, i)) for i in range(n_subjects)])
    with np.errstate(invalid="ignore"):
        z = np.arctanh(np.clip(r_loo, -1 + 1e-12, 1 - 1e-12))
    present = np.isfinite(z)
    count = present.sum(axis=0)
    mean_r = np.tanh(np.divide(np.where(present, z, 0.0).sum(axis=0), count,
                               out=np.full(count.shape, np.nan), where=count > 0))
    rho_1 = loso_reliability(mean_r, n_subjects)
    return np.sqrt(spearman_brown(rho_1, n_averaged))


def loso_reliability(r_loo: np.ndarray, n_subjects: int) -> np.ndarray:
    """Single-subject reliability rho_1 from the leave-one-out r (see :func:`loso_noise_ceiling`).

    0 where r <= 0; NaN stays NaN.
    """
    if n_subjects < 2:
        raise ValueError(f"need >= 2 subjects, got {n_subjects}")
    r2 = np.square(np.clip(np.asarray(r_loo, dtype=np.float64), 0.0, 1.0))
    k = n_subjects - 1
    return ((k - 1) * r2 + np.sqrt((k - 1) ** 2 * r2**2 + 4 * k * r2)) / (2 * k)


def _check_subjects(subjects_bold: np.ndarray) -> np.ndarray:
    bold = np.asarray(subjects_bold, dtype=np.float64)
    if bold.ndim != 3:
        raise ValueError(f"subjects_bold must be (n_subjects, n_trs, n_targets), got shape {bold.shape}")
    if bold.shape[0] < 2:
        raise ValueError(f"the leave-one-subject-out ceiling needs >= 2 subjects, got {bold.shape[0]}")
    if np.isinf(bold).any():
        raise ValueError("subjects_bold contains infinite values; use NaN for missing TRs")
    return bold


def _mean_of_others(bold: np.ndarray, left_out: int) -> np.ndarray:
    """(T, G) mean over the subjects other than ``left_out`` present at each TR (NaN where none is)."""
    others = np.delete(bold, left_out, axis=0)
    present = np.isfinite(others)
    count = present.sum(axis=0)
    total = np.where(present, others, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)


def _pairwise_r(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-column Pearson r of (T, G) arrays on the rows where both are finite; NaN if < 3 rows or constant."""
    both = np.isfinite(a) & np.isfinite(b)
    n = both.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = np.where(both, a - np.where(both, a, 0.0).sum(axis=0) / n, 0.0)
        db = np.where(both, b - np.where(both, b, 0.0).sum(axis=0) / n, 0.0)
        denominator = np.sqrt((da**2).sum(axis=0) * (db**2).sum(axis=0))
        r = (da * db).sum(axis=0) / denominator
    r[(n < MIN_SHARED_TRS) | ~(denominator > 0)] = np.nan
    return r
