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
