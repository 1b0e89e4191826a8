"""Temporal model of the regressors: HRF convolution within runs, exclusion, z-scoring.

Order matters and follows the method: convolve the full run timelines (rest included),
then drop the excluded TRs, then z-score each run. Dropping first would convolve across
the gaps and shift responses in time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from nilearn.glm.first_level import glover_hrf
from scipy.signal import lfilter

from vlm_brain.encoding._validation import check_runs, check_time_series, run_slices

#: ``glover_hrf(t_r, oversampling=1)`` is not the Glover function sampled at the TR:
#: nilearn shifts the gamma densities by one grid step (``loc=dt``, here a whole TR) and
#: its grid ``linspace(0, time_length, n)`` steps by ``time_length / (n - 1)`` (3 % more
#: than the TR for a 32 s kernel). Taking every ``_OVERSAMPLING``-th tap of the
#: oversampled kernel, as nilearn's own design matrices use it, gives the function at
#: multiples of the TR (shift 0.02 TR, step error 0.06 %).
_OVERSAMPLING = 50


def glover_kernel(tr: float, time_length: float = 32.0) -> np.ndarray:
    """Canonical Glover HRF sampled at multiples of the TR, normalised to unit sum.

    Parameters
    ----------
    tr : repetition time in seconds.
    time_length : kernel support in seconds.

    Returns
    -------
    kernel : (n_taps,) float64, ``kernel[i]`` is the response ``i * tr`` seconds after an
        impulse; ``kernel[0] == 0`` (no instantaneous response). Unit sum means unit DC
        gain: a sustained input of 1 gives a steady-state output of 1. The scale does not
        matter downstream because regressors are z-scored per run after convolution.
    """
    if tr <= 0:
        raise ValueError(f"tr must be positive, got {tr}")
    fine = glover_hrf(t_r=tr, oversampling=_OVERSAMPLING, time_length=time_length)
    kernel = fine[::_OVERSAMPLING].astype(np.float64)
    return kernel / kernel.sum()


def convolve_hrf(
    features: np.ndarray, runs: np.ndarray, tr: float, time_length: float = 32.0
) -> np.ndarray:
    """Causal convolution of each run with the Glover HRF, no bleed across runs.

    Parameters
    ----------
    features : (n_samples, n_features) time series at TR resolution, full run timelines.
    runs : (n_samples,) run label per row; rows of a run contiguous and in time order.
    tr : repetition time in seconds.

    Returns
    -------
    convolved : (n_samples, n_features) float32. Each run starts from a zero filter
        state, so row t of a run only depends on rows <= t of the same run.
    """
    features = check_time_series(features, "features")
    runs = check_runs(runs, features.shape[0])
    kernel = glover_kernel(tr, time_length)
    out = np.empty(features.shape, dtype=np.float32)
    for rows in run_slices(runs):
        out[rows] = lfilter(kernel, [1.0], features[rows].astype(np.float64), axis=0)
    return out


def zscore_per_run(x: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """Z-score each column within each run (population std, ddof=0).

    Parameters
    ----------
    x : (n_samples, n_features).
    runs : (n_samples,) contiguous run labels.

    Returns
    -------
    z : (n_samples, n_features) float32. Columns constant within a run are 0 in that run.
    """
    x = check_time_series(x, "x")
    runs = check_runs(runs, x.shape[0])
    out = np.empty(x.shape, dtype=np.float32)
    for rows in run_slices(runs):
        block = x[rows].astype(np.float64)
        block -= block.mean(axis=0)
        std = block.std(axis=0)
        out[rows] = np.divide(block, std, out=np.zeros_like(block), where=std > 0)
    return out


#: what turns features into BOLD-time regressors (`prepare_regressors`)
FEATURE_MODELS = ("glover", "none")
#: the encoding's temporal models: those, or FIR delays of the atoms (`fir_design`)
TEMPORAL_MODELS = (*FEATURE_MODELS, "fir")


def delay_per_run(features: np.ndarray, runs: np.ndarray, lag: int) -> np.ndarray:
    """(n_samples, n_features) features delayed by ``lag`` rows within each run, zeros at each run's start."""
    if lag == 0:
        return features
    out = np.zeros_like(features)
    for label in pd.unique(runs):
        rows = np.flatnonzero(runs == label)
        if len(rows) > lag:
            out[rows[lag:]] = features[rows[:-lag]]
    return out


def check_keep(keep: np.ndarray | None, runs: np.ndarray) -> np.ndarray:
    """``keep`` (n_samples,) as a bool array, one flag per row of ``runs`` (None: all True), or ValueError."""
    runs = np.asarray(runs)
    keep = np.ones(runs.shape, dtype=bool) if keep is None else np.asarray(keep)
    if keep.dtype != bool or keep.shape != runs.shape:
        raise ValueError(
            f"keep must be a boolean array of shape {runs.shape}, got {keep.dtype} {keep.shape}"
        )
    return keep


def prepare_regressors(
    features: np.ndarray, runs: np.ndarray, keep: np.ndarray | None, tr: float,
    temporal_model: str = "glover", lag: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Temporal model on full runs (HRF or none, then a lag), drop excluded TRs, z-score per run.

    Parameters
    ----------
    features : (n_samples, n_features) AN time series over the full run timelines.
    runs : (n_samples,) contiguous run labels.
    keep : (n_samples,) bool, True for TRs used in fitting (e.g. movie clips, not rest);
        None: every TR.
    tr : repetition time in seconds.
    temporal_model : ``glover`` (convolve with the Glover HRF, `convolve_hrf`) or
        ``none`` (features already in BOLD time, e.g. lag-shifted annotations). The
        encoding's ``fir`` prepares ANs with ``none`` and delays the atom time courses
        instead (`fir_design`).
    lag : then delay every run by this many TRs (feature at t - lag predicts t; the
        first ``lag`` TRs of each run get 0: nothing crosses a run boundary).

    Returns
    -------
    x_kept : (n_kept, n_features) float32, z-scored within each run.
    runs_kept : (n_kept,) run labels of the kept rows.
    """
    features = check_time_series(features, "features")
    runs = check_runs(runs, features.shape[0])
    keep = check_keep(keep, runs)
    if temporal_model not in FEATURE_MODELS:
        raise ValueError(f"temporal_model must be one of {', '.join(FEATURE_MODELS)}, got {temporal_model!r}")
    if int(lag) != lag or lag < 0:
        raise ValueError(f"lag must be an integer number of TRs >= 0, got {lag!r}")
    convolved = convolve_hrf(features, runs, tr) if temporal_model == "glover" else features.astype(np.float32)
    convolved = delay_per_run(convolved, runs, int(lag))
    runs_kept = runs[keep]
    return zscore_per_run(convolved[keep], runs_kept), runs_kept


def standardized_full(features: np.ndarray, runs: np.ndarray, keep: np.ndarray, lag: int = 0) -> np.ndarray:
    """(n_samples, n_features) every TR of the (lag-delayed) features, standardised per run by its kept TRs.

    The kept rows equal `prepare_regressors` with ``temporal_model="none"``; the
    excluded ones (rest, repeated clips) keep their values on the same scale, so that
    delays (`fir_design`) see the stimulus that was really on screen.
    """
    features = delay_per_run(np.asarray(features, dtype=np.float64), runs, int(lag))
    out = np.zeros_like(features)
    for label in pd.unique(runs):
        rows = runs == label
        kept = features[rows & keep]
        mean, std = kept.mean(axis=0), kept.std(axis=0)
        out[rows] = np.divide(features[rows] - mean, std, out=np.zeros_like(features[rows]), where=std > 0)
    return out


def fir_design(timecourses: np.ndarray, runs: np.ndarray, keep: np.ndarray, delays: int) -> np.ndarray:
    """(n_kept, (delays + 1) k) finite-impulse-response regressors of (n_samples, k) time courses.

    Column d k + j is time course j delayed by d TRs (d = 0 .. delays) within each run
    on the full timeline (nothing crosses a run start; excluded TRs are delayed like the
    others), then the kept rows.
    """
    return np.hstack([delay_per_run(timecourses, runs, d) for d in range(int(delays) + 1)])[np.asarray(keep)]
