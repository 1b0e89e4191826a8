"""Overlap of binary brain maps (BN sets) and of AN supports."""

from __future__ import annotations

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A and B| / (|A| + |B|) of two boolean maps of equal shape.

    Two empty maps have no overlap to measure: NaN.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {a.shape} vs {b.shape}")
    total = int(a.sum()) + int(b.sum())
    return float(2 * np.logical_and(a, b).sum() / total) if total else float("nan")


def pairwise_dice(maps: np.ndarray) -> np.ndarray:
    """(k, k) Dice between the rows of a (k, G) boolean array; NaN where both rows are empty."""
    m = np.asarray(maps, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"maps must be (k, G), got shape {m.shape}")
    f = m.astype(np.float64)
    inter = f @ f.T
    size = f.sum(axis=1)
    total = size[:, None] + size[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * inter / total, np.nan)


def dice_independent_test(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Dice of two boolean maps against maps of the same sizes placed independently (no space).

    The intersection of independently placed maps of sizes n_a, n_b among G is
    hypergeometric: chance Dice = 2 n_a n_b / (G (n_a + n_b)), p = P(intersection >=
    observed). The same keys as `spatial_null.spin_dice_test` (n_perm 0); use it where
    no sphere exists (non-HCP grayordinates): it ignores spatial autocorrelation, so
    its p is too small for smooth maps.
    """
    from scipy import stats  # noqa: PLC0415

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n_a, n_b, size = int(a.sum()), int(b.sum()), a.size
    observed = dice(a, b)
    if n_a + n_b == 0:
        return {"dice": observed, "chance": float("nan"), "null_sd": float("nan"), "p": float("nan"), "n_perm": 0}
    law = stats.hypergeom(size, n_a, n_b)
    return {"dice": observed, "chance": 2 * law.mean() / (n_a + n_b), "null_sd": 2 * law.std() / (n_a + n_b),
            "p": float(law.sf(int(np.sum(a & b)) - 1)), "n_perm": 0}


def network_fraction_independent_test(bn: np.ndarray, labels: np.ndarray) -> "pd.DataFrame":
    """BN fraction of each network against BNs placed independently of space (hypergeometric).

    Chance fraction = the map's overall BN fraction; p = P(X >= n_bn of the network)
    with X hypergeometric (G grayordinates, the map's BNs, the network's size). The
    columns of `spatial_null.network_fraction_test` (n_perm 0).
    """
    import pandas as pd  # noqa: PLC0415
    from scipy import stats  # noqa: PLC0415

    bn = np.asarray(bn, dtype=bool)
    names = np.asarray(labels).astype(str)
    rows = []
    for network in np.unique(names):
        inside = names == network
        n, k = int(inside.sum()), int(bn[inside].sum())
        law = stats.hypergeom(bn.size, int(bn.sum()), n)
        rows.append({"network": network, "n_grayordinates": n, "n_bn": k, "fraction": k / n,
                     "chance_fraction": law.mean() / n, "null_sd": law.std() / n, "p": float(law.sf(k - 1)),
                     "n_perm": 0})
    return pd.DataFrame(rows)
