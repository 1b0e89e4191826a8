"""Input checks and small array helpers shared by the encoding modules."""

from __future__ import annotations

import numpy as np


def check_time_series(x: np.ndarray, name: str, allow_nan: bool = False) -> np.ndarray:
    """Return `x` as a 2-D float array (n_samples, n_features), or raise ValueError.

    Finiteness is checked column block by column block so that the check does not
    allocate a full boolean copy of a large array.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if not allow_nan:
        n_bad = count_non_finite(x)
        if n_bad:
            raise ValueError(
                f"{name} (shape {x.shape}) contains {n_bad} non-finite values (NaN or inf)"
            )
    return x


def count_non_finite(x: np.ndarray, block_bytes: int = 1 << 24) -> int:
    """Number of NaN/inf entries of a 2-D array, without a boolean copy of it.

    A C-ordered float32 / float64 array is counted by a compiled pass over its rows (2.5x
    numpy's speed on a full HCP layer); others in numpy blocks of ~16 MB, rows of a
    C-ordered array (contiguous reads) and columns otherwise.
    """
    if x.flags.c_contiguous and x.ndim == 2 and x.dtype in (np.float32, np.float64):
        from vlm_brain.encoding._kernels import count_non_finite_rows

        return count_non_finite_rows(x)
    if x.flags.c_contiguous:
        step = max(1, block_bytes // max(1, x.shape[1] * x.itemsize))
        return int(sum(np.count_nonzero(~np.isfinite(x[start:start + step])) for start in range(0, x.shape[0], step)))
    step = max(1, block_bytes // max(1, x.shape[0] * x.itemsize))
    return int(sum(np.count_nonzero(~np.isfinite(x[:, start:start + step])) for start in range(0, x.shape[1], step)))


def check_runs(runs: np.ndarray, n_samples: int) -> np.ndarray:
    """Validate per-row run labels: 1-D, one per sample, each run one contiguous block."""
    runs = np.asarray(runs)
    if runs.ndim != 1 or runs.shape[0] != n_samples:
        raise ValueError(
            f"runs must be 1-D with one label per sample ({n_samples}), got shape {runs.shape}"
        )
    labels = run_labels(runs)
    n_blocks = 1 + int(np.count_nonzero(runs[1:] != runs[:-1])) if n_samples else 0
    if n_blocks != len(labels):
        raise ValueError(
            f"rows of each run must be contiguous: {len(labels)} run labels form "
            f"{n_blocks} blocks"
        )
    return runs


def run_labels(runs: np.ndarray) -> np.ndarray:
    """Unique run labels in order of first appearance."""
    _, first = np.unique(runs, return_index=True)
    return runs[np.sort(first)]


def run_slices(runs: np.ndarray) -> list[slice]:
    """Row slices of the contiguous runs, in order of appearance."""
    runs = np.asarray(runs)
    if runs.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    stops = np.r_[starts[1:], runs.size]
    return [slice(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ValueError when two time series do not have the same number of rows."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of samples (rows): "
            f"{name_a} has shape {a.shape}, {name_b} has shape {b.shape}"
        )


def pearson_r(a: np.ndarray, b: np.ndarray, block: int = 8192) -> np.ndarray:
    """Column-wise Pearson correlation of two (n_samples, n_columns) arrays.

    Returns
    -------
    r : (n_columns,) float64. Columns where either input is constant get r = 0 (no
        linear relation can be measured), never NaN.
    """
    check_same_length(a, b, "a", "b")
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    r = np.zeros(a.shape[1])
    for start in range(0, a.shape[1], block):
        cols = slice(start, start + block)
        ac = a[:, cols].astype(np.float64)
        bc = b[:, cols].astype(np.float64)
        ac -= ac.mean(axis=0)
        bc -= bc.mean(axis=0)
        denom = np.sqrt((ac * ac).sum(axis=0) * (bc * bc).sum(axis=0))
        num = (ac * bc).sum(axis=0)
        r[cols] = np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)
    return r
