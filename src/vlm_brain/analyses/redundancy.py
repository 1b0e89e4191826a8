"""Functional redundancy: overlapping atom BN maps, shared ANs, and AN ablation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vlm_brain.analyses.overlap import pairwise_dice
from vlm_brain.encoding._validation import check_runs, run_slices
from vlm_brain.encoding.engine import cross_validated_r
from vlm_brain.encoding.ridge import _check_alphas, standardize_train
from vlm_brain.encoding.sdl import atom_timecourses


def atom_bn_maps(atom_pos: np.ndarray, atom_neg: np.ndarray) -> np.ndarray:
    """(k, G) boolean: grayordinates significant for each atom, either sign."""
    return np.asarray(atom_pos, dtype=bool) | np.asarray(atom_neg, dtype=bool)


def multi_atom_fraction(maps: np.ndarray, bn: np.ndarray) -> float:
    """Among BNs significant for at least one atom, the fraction significant for >= 2 atoms.

    NaN when no BN has a significant atom.
    """
    counts = np.asarray(maps, dtype=bool).sum(axis=0)[np.asarray(bn, dtype=bool)]
    driven = counts >= 1
    return float(np.mean(counts[driven] >= 2)) if driven.any() else float("nan")


def multi_atom_chance(maps: np.ndarray, bn: np.ndarray) -> float:
    """`multi_atom_fraction` expected if each atom's map fell on the BNs independently of the others.

    Atom j keeps its number m_j of significant BNs and covers each BN with probability
    p_j = m_j / n_BN, independently of the other atoms; the number of atoms of a BN is
    then Poisson-binomial, and the chance level is P(>= 2 atoms) / P(>= 1 atom). Large
    atom maps overlap by chance: with p_j = 0.5 for 4 atoms it is 0.73. Spatial
    autocorrelation leaves this expectation as it is and only widens its spread. NaN
    when no BN has a significant atom.
    """
    bn = np.asarray(bn, dtype=bool)
    m = np.asarray(maps, dtype=bool)[:, bn].sum(axis=1)
    if not bn.any() or m.sum() == 0:
        return float("nan")
    p = m / bn.sum()
    none = np.prod(1.0 - p)
    exactly_one = sum(p[j] * np.prod(np.delete(1.0 - p, j)) for j in np.flatnonzero(p))
    at_least_one = 1.0 - none
    return float((at_least_one - exactly_one) / at_least_one)


def pairwise_dice_chance(maps: np.ndarray) -> np.ndarray:
    """(k, k) Dice of two atoms' maps (k, G) expected if they were placed independently.

    With sizes m_i, m_j over G grayordinates the expected intersection is m_i m_j / G,
    so the chance Dice is 2 m_i m_j / (G (m_i + m_j)); NaN where both maps are empty.
    """
    m = np.asarray(maps, dtype=bool)
    size = m.sum(axis=1).astype(np.float64)
    total = size[:, None] + size[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * np.outer(size, size) / m.shape[1] / total, np.nan)


def an_support(loadings: np.ndarray) -> np.ndarray:
    """(k,) number of ANs with a non-zero loading on each atom."""
    return np.count_nonzero(np.asarray(loadings), axis=1)


def mean_offdiagonal(matrix: np.ndarray) -> float:
    """Mean of the finite off-diagonal entries of a square matrix (NaN if none)."""
    m = np.asarray(matrix, dtype=np.float64)
    values = m[~np.eye(len(m), dtype=bool)]
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def layer_redundancy(bn: np.ndarray, atom_pos: np.ndarray, atom_neg: np.ndarray,
                     loadings: np.ndarray) -> dict[str, float]:
    """Redundancy statistics of one layer.

    Returns n_bn; n_atoms_with_bn; atom_dice_mean (mean pairwise Dice of the atoms' BN
    maps, over pairs where at least one map is non-empty) and atom_dice_chance (the same
    for independently placed maps of the same sizes, `pairwise_dice_chance`);
    multi_atom_fraction and multi_atom_chance (`multi_atom_chance`);
    an_support_mean (ANs per atom); an_multi_atom_fraction (ANs, among those loading on
    any atom, that load on >= 2); loading_dice_mean (mean pairwise Dice of the atoms' AN
    supports).
    """
    maps = atom_bn_maps(atom_pos, atom_neg)
    support = np.asarray(loadings) != 0
    per_an = support.sum(axis=0)
    return {
        "n_bn": int(np.sum(bn)),
        "n_atoms_with_bn": int(maps.any(axis=1).sum()),
        "atom_dice_mean": mean_offdiagonal(pairwise_dice(maps)),
        "atom_dice_chance": mean_offdiagonal(pairwise_dice_chance(maps)),
        "multi_atom_fraction": multi_atom_fraction(maps, bn),
        "multi_atom_chance": multi_atom_chance(maps, bn),
        "an_support_mean": float(an_support(loadings).mean()),
        "an_multi_atom_fraction": float(np.mean(per_an[per_an >= 1] >= 2)) if (per_an >= 1).any() else float("nan"),
        "loading_dice_mean": mean_offdiagonal(pairwise_dice(support)),
    }


def normalized_auc(fractions: Sequence[float], r: Sequence[float]) -> float:
    """Area under r(fraction removed) / r(0), over fractions 0..max, divided by max.

    1 = prediction untouched by ablation (full redundancy); 0.5 = linear decline to
    zero; lower = fragile. NaN if r(0) <= 0.
    """
    f, r = np.asarray(fractions, dtype=np.float64), np.asarray(r, dtype=np.float64)
    order = np.argsort(f)
    f, r = f[order], r[order]
    if f[0] != 0 or r[0] <= 0:
        return float("nan")
    y = r / r[0]
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(f)) / (f[-1] - f[0]))


def circular_half_shift(y: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """Shift each run of y (T, G) circularly by half its length: same data, no alignment."""
    out = np.empty_like(y)
    for label in pd.unique(runs):
        rows = np.flatnonzero(runs == label)
        out[rows] = np.roll(y[rows], len(rows) // 2, axis=0)
    return out


def ablation_curve(
    x: np.ndarray,
    y: np.ndarray,
    runs: np.ndarray,
    loadings: np.ndarray,
    fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95),
    n_repeats: int = 3,
    alphas: Sequence[float] = (10.0, 100.0, 1000.0, 10000.0),
    seed: int = 0,
    backend: str = "numpy",
) -> pd.DataFrame:
    """Held-out prediction as a growing random fraction of a layer's ANs is removed.

    The layer's dictionary (loadings A, (k, N)) stays fixed; ablated ANs are dropped
    from X and the atom time courses are re-estimated from the surviving ANs alone
    (least squares on A restricted to them), then the leave-one-run-out ridge is refitted
    and scored (`engine.cross_validated_r`: what himalaya's RidgeCV would give, from
    sufficient statistics). The same is done with y circularly shifted by half of each run
    ("shuffled control"): what remains of r without stimulus alignment.

    Parameters
    ----------
    x : (T, N) prepared ANs (HRF-convolved, kept TRs, z-scored per run).
    y : (T, G) targets, usually the layer's BNs.
    runs : (T,) run labels.
    loadings : (k, N) SDL loadings of the layer.

    Returns
    -------
    Tidy table: condition, fraction, repeat, n_ans_kept, r_mean (mean held-out r over
    targets; a constant prediction, e.g. when no loaded AN survives, counts as r = 0).
    """
    x = np.asarray(x, dtype=np.float64)
    loadings = np.asarray(loadings, dtype=np.float64)
    n_ans = x.shape[1]
    y = np.asarray(y)
    slices = run_slices(check_runs(runs, len(y)))
    alphas = _check_alphas(alphas)
    matmul = _backend_matmul(backend)
    rng = np.random.default_rng(seed)
    both = np.hstack([y, circular_half_shift(y, runs)])  # the ablation's targets, then the shuffled control's
    rows = []
    for fraction in fractions:
        for repeat in range(n_repeats if fraction > 0 else 1):
            n_removed = int(round(fraction * n_ans))
            removed = rng.choice(n_ans, size=n_removed, replace=False)
            kept = np.setdiff1d(np.arange(n_ans), removed)
            timecourses = atom_timecourses(x[:, kept], loadings[:, kept])  # the same linear map on every row
            regressors = [standardize_train(np.delete(timecourses, rows_f, axis=0), timecourses)[1]
                          for rows_f in (np.arange(s.start, s.stop) for s in slices)]  # fold f: train stats
            r = cross_validated_r(regressors, both, slices, alphas, matmul)
            for condition, part in (("ablation", r[: y.shape[1]]), ("shuffled control", r[y.shape[1]:])):
                rows.append({"condition": condition, "fraction": float(fraction), "repeat": repeat,
                             "n_ans_kept": int(len(kept)), "r_mean": float(np.mean(np.nan_to_num(part, nan=0.0)))})
    return pd.DataFrame(rows)


def _backend_matmul(backend: str):
    from vlm_brain.encoding.layer import _matmul  # noqa: PLC0415 - the backends' one home
    from vlm_brain.encoding.ridge import resolve_backend  # noqa: PLC0415

    return _matmul(resolve_backend(backend))
