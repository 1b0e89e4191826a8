"""Per-run cleaning of BOLD time series with nilearn."""

from __future__ import annotations

import numpy as np
from nilearn.signal import clean


def clean_run(
    data: np.ndarray,
    tr: float,
    detrend: bool = True,
    high_pass: float | None = None,
    standardize: bool = True,
) -> np.ndarray:
    """Detrend, optionally high-pass filter and z-score one run.

    Args:
        data: (n_trs, n_grayordinates) BOLD of a single run.
        tr: repetition time in seconds.
        high_pass: cut-off in Hz (e.g. 0.008), or None for no filter.
        standardize: z-score each grayordinate over time (sample std, ddof=1).

    Returns:
        (n_trs, n_grayordinates) float32. Constant grayordinates come out as zeros.
    """
    cleaned = clean(
        np.asarray(data, dtype=np.float64),
        detrend=detrend,
        standardize="zscore_sample" if standardize else False,
        high_pass=high_pass,
        t_r=tr,
        ensure_finite=False,
        filter="butterworth" if high_pass else False,
    )
    constant = np.ptp(data, axis=0) == 0
    cleaned[:, constant] = 0.0
    return cleaned.astype(np.float32)
