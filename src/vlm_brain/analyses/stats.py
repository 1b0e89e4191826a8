"""Uncertainty of headline numbers: bootstrap intervals and paired tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (NaNs dropped).

    Returns (NaN, NaN) for fewer than 2 finite values. Resamples are drawn in chunks so
    memory stays below ~64 MB whatever the number of values.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    chunk = max(1, 8_000_000 // len(v))
    means = np.concatenate([
        v[rng.integers(0, len(v), size=(min(chunk, n_boot - start), len(v)))].mean(axis=1)
        for start in range(0, n_boot, chunk)
    ])
    tail = (1 - ci) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_difference(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of a - b over paired units, its bootstrap interval and a Wilcoxon signed-rank test.

    Returns mean_diff, ci_low, ci_high, statistic, p (two-sided) and n (finite pairs).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    low, high = bootstrap_mean_ci(d, n_boot, ci, seed)
    if len(d) >= 2 and np.any(d != 0):
        test = stats.wilcoxon(d)
        statistic, p = float(test.statistic), float(test.pvalue)
    else:
        statistic, p = float("nan"), float("nan")
    return {"mean_diff": float(d.mean()) if len(d) else float("nan"), "ci_low": low, "ci_high": high,
            "statistic": statistic, "p": p, "n": int(len(d))}


def correlation_test(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Pearson r of two profiles with its two-sided p and n; NaN if undefined (n < 3 or constant)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"r": float("nan"), "p": float("nan"), "n": int(len(x))}
    result = stats.pearsonr(x, y)
    return {"r": float(result.statistic), "p": float(result.pvalue), "n": int(len(x))}


def difference_of_means(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Mean of a minus mean of b (independent samples): bootstrap interval and Mann-Whitney p.

    Returns diff, ci_low, ci_high, p (two-sided) and n = [len(a), len(b)]; NaN when
    either sample has fewer than 2 values.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = [int(len(a)), int(len(b))]
    if min(n) < 2:
        return {"diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "p": float("nan"), "n": n}
    rng = np.random.default_rng(seed)
    diffs = (a[rng.integers(0, len(a), (n_boot, len(a)))].mean(axis=1)
             - b[rng.integers(0, len(b), (n_boot, len(b)))].mean(axis=1))
    tail = (1 - ci) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return {"diff": float(a.mean() - b.mean()), "ci_low": float(low), "ci_high": float(high),
            "p": float(stats.mannwhitneyu(a, b).pvalue), "n": n}
