"""Scans, cross-validation folds and missing TRs of an encoding.

A *scan* is one continuous acquisition: the HRF, the FIR delays, the lag and the
z-scoring of the regressors run within it. A *fold* is the unit the cross-validation
holds out: a whole scan (the default) or a contiguous part of one. Lag windows (the
HAC t-maps, the shift spread of r) and the circular shifts of the null run within each
fold's segment, which keeps every statistic a sum over per-fold blocks.

Missing TRs are per target: a (T, G) mask of present values (NaN in the data is
missing). Targets that share a mask pattern are fitted together on their present rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlm_brain.encoding._validation import check_runs


def cv_folds(scans: np.ndarray, keep: np.ndarray | None, per_scan: int = 1) -> np.ndarray:
    """(T,) fold label of each TR: every scan's kept TRs split into ``per_scan`` contiguous parts.

    Parts have equal numbers of kept TRs (the first ones one more when they do not
    divide); excluded TRs take the label of the part they fall in. Labels read
    ``"<scan>"`` with one part per scan, else ``"<scan>/<part>"`` (1-based).
    """
    scans = check_runs(np.asarray(scans), len(scans))
    keep = np.ones(len(scans), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    if int(per_scan) != per_scan or per_scan < 1:
        raise ValueError(f"folds per scan must be an integer >= 1, got {per_scan!r}")
    labels = scans.astype(str).astype(object)
    if per_scan == 1:
        return labels
    for scan in pd.unique(scans):
        rows = np.flatnonzero(scans == scan)
        kept = np.flatnonzero(keep[rows])
        if len(kept) < per_scan:
            raise ValueError(f"scan {scan} has {len(kept)} kept TRs, fewer than folds_per_scan={per_scan}")
        part = np.zeros(len(rows), dtype=int)
        first_rows = [kept[chunk[0]] for chunk in np.array_split(np.arange(len(kept)), per_scan)]
        for p, start in enumerate(first_rows[1:], start=1):
            part[start:] = p
        labels[rows] = [f"{scan}/{p + 1}" for p in part]
    return labels


def check_folds(folds: np.ndarray, scans: np.ndarray) -> np.ndarray:
    """``folds`` (T,) as given, checked: each fold one contiguous block inside one scan."""
    folds = check_runs(np.asarray(folds), len(scans))
    for fold in pd.unique(folds):
        inside = pd.unique(np.asarray(scans)[folds == fold])
        if len(inside) > 1:
            raise ValueError(f"fold {fold} spans scans {list(inside)}; a fold is a scan or a contiguous part of one")
    return folds


def present_mask(y: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | None:
    """(T, G) bool of the values to use: ``mask`` (True = present) and not NaN; None when all are."""
    finite = np.isfinite(y)
    present = finite if mask is None else finite & _checked_mask(mask, y.shape)
    return None if present.all() else present


def _checked_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != shape:
        raise ValueError(f"mask must be a boolean array of the data's shape {shape} (True = present), "
                         f"got {mask.dtype} {mask.shape}")
    return mask


def mask_patterns(present: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The distinct columns of ``present`` (T, G): [(rows (T,) bool, targets (n,) int)], all-present first."""
    _, inverse = np.unique(np.packbits(present, axis=0), axis=1, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    order = np.argsort(inverse, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1)
    return sorted(((present[:, targets[0]], targets) for targets in groups), key=lambda group: not group[0].all())
