"""Polarity: positively vs negatively responding BNs across layers, and AN loading signs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlm_brain.analyses.stats import correlation_test
from vlm_brain.encoding.layer import layer_polarity


def bn_polarity(bn: np.ndarray, atom_t: np.ndarray, atom_pos: np.ndarray,
                atom_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sign and strength of each BN from its strongest significant atom.

    Returns
    -------
    sign : (G,) int8, +1 / -1 for BNs with a significant atom, 0 otherwise.
    strength : (G,) float, |t| of that atom (0 where sign is 0).

    SDL atoms have no intrinsic sign; ``fit_sparse_dictionary`` orients each atom so
    that its loadings sum to >= 0, so a positive BN rises with the ANs that make up its
    atom.
    """
    sign = layer_polarity(np.asarray(bn, dtype=bool), np.asarray(atom_t), np.asarray(atom_pos, bool),
                          np.asarray(atom_neg, bool))
    significant = np.asarray(atom_pos, bool) | np.asarray(atom_neg, bool)
    strongest = np.where(significant, np.abs(np.asarray(atom_t, dtype=np.float64)), 0.0).max(axis=0)
    strength = np.where(sign != 0, strongest, 0.0)
    return sign, strength


def polarity_by_network(sign: np.ndarray, strength: np.ndarray, labels: pd.Series) -> pd.DataFrame:
    """Per network of `labels` (G,): n_pos, n_neg, t_pos_sum, t_neg_sum (summed |t|), n_grayordinates."""
    frame = pd.DataFrame({"network": np.asarray(labels), "pos": sign > 0, "neg": sign < 0,
                          "t_pos": np.where(sign > 0, strength, 0.0), "t_neg": np.where(sign < 0, strength, 0.0)})
    out = frame.groupby("network", sort=True).agg(
        n_grayordinates=("pos", "size"), n_pos=("pos", "sum"), n_neg=("neg", "sum"),
        t_pos_sum=("t_pos", "sum"), t_neg_sum=("t_neg", "sum")).reset_index()
    return out.astype({"n_pos": int, "n_neg": int})


def mirrored_profiles(table: pd.DataFrame, by: list[str], value_pos: str = "n_pos",
                      value_neg: str = "n_neg") -> pd.DataFrame:
    """Across-layer Pearson r of positive vs negative profiles, per group of `by`.

    `table` has one row per (group, layer). Mirrored trends (one rises where the other
    falls) give r < 0. Columns: *by, r, p, n (layers).
    """
    rows = []
    for key, group in table.sort_values("layer").groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), **correlation_test(group[value_pos], group[value_neg])})
    return pd.DataFrame(rows, columns=[*by, "r", "p", "n"])


def loading_signs(loadings: np.ndarray) -> dict[str, float]:
    """Sign structure of a layer's AN loadings (k, N).

    Returns frac_positive (of non-zero loadings) and frac_bipolar_atoms (atoms with both
    positive and negative loadings, among atoms with any).
    """
    a = np.asarray(loadings)
    nonzero = a[a != 0]
    used = (a != 0).any(axis=1)
    bipolar = (a > 0).any(axis=1) & (a < 0).any(axis=1)
    return {"frac_positive": float(np.mean(nonzero > 0)) if len(nonzero) else float("nan"),
            "frac_bipolar_atoms": float(bipolar[used].mean()) if used.any() else float("nan")}
