"""Significance of encoding scores and atom maps, with autocorrelated time series.

Encoding scores: a circular-shift null. The held-out predictions are shifted circularly
within each run by random offsets (the same offsets for all grayordinates, so spatial
dependence is kept) and Pearson r with the data is recomputed. A circular shift keeps
each series' autocorrelation and, per run, its mean and variance, so the null r has the
right spread; a shuffle of time points would destroy the autocorrelation and give a
null that is too narrow (anti-conservative). Shifts are drawn from the whole group of
per-run shifts, which makes the test exact for data that are circularly stationary
within runs and approximate otherwise (edge effects of order correlation length / run
length). The pooled r of a shifted prediction is
a sum over runs of per-run circular cross-correlations, computed for all lags at once
with FFTs, so thousands of nulls cost about as much as one pass over the data.

With leave-one-run-out predictions that null alone is too narrow: each run's
prediction comes from a model fitted on the other runs' data, so the per-run terms of
the pooled r are positively correlated under the null, and shifting the predictions of
each run independently loses that correlation (on pure noise, 1.6-2.2x too many
p <= 0.01). `refit_shift_null` therefore shifts the stimulus instead, in every run, and
refits every fold, for a subset of grayordinates and a few hundred draws; with
``refit_null`` given, `circular_shift_test` scales each grayordinate's r by the spread
of its own prediction-shift null and compares it with the pooled, equally scaled refit
null (calibrated on pure noise: 0.9% of p <= 0.01).

Atom maps: a ridge t statistic with a heteroscedasticity-and-autocorrelation
consistent (HAC, Newey-West/Bartlett) variance, see `atom_maps`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import stats

from vlm_brain.encoding._validation import (
    check_runs,
    check_same_length,
    check_time_series,
    run_slices,
)


# --------------------------------------------------------------------------- FDR
def fdr_bh(p_values: np.ndarray, q: float = 0.05) -> np.ndarray:
    """Benjamini-Hochberg discoveries at false discovery rate q.

    Parameters
    ----------
    p_values : array of any shape; NaN entries are never discoveries and do not count
        as tests.
    q : target FDR.

    Returns
    -------
    mask : bool array of the same shape, True where the BH-adjusted p <= q.
    """
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q}")
    p_values = np.asarray(p_values, dtype=np.float64)
    mask = np.zeros(p_values.shape, dtype=bool)
    tested = np.isfinite(p_values)
    if tested.any():
        adjusted = stats.false_discovery_control(p_values[tested], method="bh")
        mask[tested] = adjusted <= q
    return mask


# --------------------------------------------------------------------------- circular shifts
def circular_shift_offsets(
    runs: np.ndarray, n_null: int = 1000, random_state: int = 0
) -> np.ndarray:
    """Independent uniform circular shifts per run, 0 <= offset < run length.

    Shifts are drawn from the whole group of circular shifts (the identity included):
    if the data are (circularly) stationary within runs, the observed statistic is then
    exchangeable with the null draws and (1 + #(null >= r)) / (1 + n_null) is a valid
    p-value. Leaving out small shifts, as is sometimes done, removes exactly the draws
    that resemble the observed statistic and makes the test anti-conservative (with
    four 60-sample runs, 1.7x too many p <= 0.001 on white noise).

    Returns
    -------
    offsets : (n_null, n_runs) int64, in run order of appearance.
    """
    if n_null < 1:
        raise ValueError(f"n_null must be >= 1, got {n_null}")
    rng = np.random.default_rng(random_state)
    lengths = np.array([s.stop - s.start for s in run_slices(runs)])
    return rng.integers(0, lengths, size=(n_null, len(lengths)), dtype=np.int64)


def shifted_correlations(
    predictions: np.ndarray, y: np.ndarray, runs: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """Pooled Pearson r after shifting each run of `predictions` circularly.

    For null draw b, run j's prediction is ``np.roll(pred_j, offsets[b, j], axis=0)``;
    r is computed over all runs pooled, as the encoding score is.

    Parameters
    ----------
    predictions, y : (T, G) arrays (one batch of grayordinates).
    runs : (T,) contiguous run labels.
    offsets : (n_null, n_runs) shifts. All-zero offsets give the unshifted r.

    Returns
    -------
    null_r : (n_null, G) float64; 0 for constant columns.
    """
    p = predictions.astype(np.float64)
    d = y.astype(np.float64)
    p -= p.mean(axis=0)  # pooled centring: a shift within runs keeps the pooled mean
    d -= d.mean(axis=0)
    denom = np.sqrt((p * p).sum(axis=0) * (d * d).sum(axis=0))
    cross = np.zeros((offsets.shape[0], p.shape[1]))
    for j, rows in enumerate(run_slices(runs)):
        n = rows.stop - rows.start
        # c[s] = sum_t p[t - s] d[t]: circular cross-correlation at every lag s
        lagged = scipy.fft.irfft(
            np.conj(scipy.fft.rfft(p[rows], axis=0)) * scipy.fft.rfft(d[rows], axis=0),
            n=n,
            axis=0,
        )
        cross += lagged[offsets[:, j] % n]
    return np.divide(cross, denom, out=np.zeros_like(cross), where=denom > 0)


@dataclass
class RefitNull:
    """Null pooled r of the whole cross-validated model, for a subset of grayordinates.

    Attributes
    ----------
    targets : (n,) grayordinate indices.
    null_r : (n_draws, n) pooled held-out r after shifting the regressors of every run.
    """

    targets: np.ndarray
    null_r: np.ndarray


def refit_shift_null(
    fold_regressors: list[tuple[np.ndarray, np.ndarray]],
    y: np.ndarray,
    runs: np.ndarray,
    best_alphas: np.ndarray,
    n_draws: int = 200,
    max_targets: int = 2000,
    random_state: int = 0,
) -> RefitNull:
    """Null of leave-one-run-out prediction accuracy, refitting the model on shifted stimuli.

    For each draw, the regressors of every run (the stimulus time line) are shifted
    circularly within the run by one random offset per run, in every fold, both where the
    run is used for training and where it is held out; each fold's ridge is refitted
    with the alpha chosen for each grayordinate in that fold and the pooled held-out r is
    recomputed. A shift permutes rows within runs, so each fold's Gram matrix is
    unchanged and only X'y changes. Kept fixed: each fold's SDL dictionary (the SDL is
    equivariant under row permutations) and alpha choice.

    Parameters
    ----------
    fold_regressors : per fold, in run order (leave-one-run-out), (r_train, r_test)
        with r_train the training runs' rows in timeline order (`EncodingResult`).
    y : (T, G) data; runs : (T,) contiguous run labels.
    best_alphas : (n_folds, G) alpha per fold and grayordinate.
    n_draws : null draws; max_targets : grayordinates used (a random subset if G is larger).

    Returns
    -------
    RefitNull with the subset's indices and (n_draws, n) null r.
    """
    y = check_time_series(y, "y")
    runs = check_runs(runs, y.shape[0])
    slices = run_slices(runs)
    if len(fold_regressors) != len(slices) or np.shape(best_alphas)[0] != len(slices):
        raise ValueError(f"{len(fold_regressors)} folds of regressors / {np.shape(best_alphas)[0]} of alphas "
                         f"for {len(slices)} runs: expected one leave-one-run-out fold per run")
    rng = np.random.default_rng(random_state)
    n_targets = y.shape[1]
    targets = (np.sort(rng.choice(n_targets, size=max_targets, replace=False))
               if n_targets > max_targets else np.arange(n_targets))
    ys = y[:, targets].astype(np.float64)
    blocks = [ys[sl] for sl in slices]
    lengths = [sl.stop - sl.start for sl in slices]
    folds = []
    for held_out, (r_train, r_test) in enumerate(fold_regressors):
        r_train = np.asarray(r_train, dtype=np.float64)
        train_runs = [j for j in range(len(slices)) if j != held_out]
        bounds = np.cumsum([0] + [lengths[j] for j in train_runs])
        parts = {j: r_train[bounds[i]:bounds[i + 1]] for i, j in enumerate(train_runs)}
        gram = r_train.T @ r_train
        alphas = np.asarray(best_alphas[held_out])[targets]
        groups = [(np.flatnonzero(alphas == a), np.linalg.inv(gram + a * np.eye(len(gram))))
                  for a in np.unique(alphas)]
        folds.append((parts, np.asarray(r_test, dtype=np.float64), groups))
    offsets = circular_shift_offsets(runs, n_draws, random_state + 1)
    null_r = np.empty((n_draws, len(targets)))
    prediction = np.empty_like(ys)
    centred = ys - ys.mean(axis=0)
    y_norm = np.sqrt((centred**2).sum(axis=0))
    for b, shift in enumerate(offsets):
        for held_out, (parts, r_test, groups) in enumerate(folds):
            cross = sum(np.roll(part, shift[j], axis=0).T @ blocks[j] for j, part in parts.items())
            test = np.roll(r_test, shift[held_out], axis=0)
            rows = slices[held_out]
            for cols, inverse in groups:
                prediction[rows, cols] = test @ (inverse @ cross[:, cols])
        # pooled Pearson r: sum(p * (y - mean y)) / (||p - mean p|| ||y - mean y||)
        p_norm = np.sqrt(np.maximum((prediction**2).sum(axis=0) - prediction.sum(axis=0) ** 2 / len(ys), 0))
        with np.errstate(invalid="ignore", divide="ignore"):
            null_r[b] = np.where(p_norm * y_norm > 0, (prediction * centred).sum(axis=0) / (p_norm * y_norm), 0.0)
    return RefitNull(targets=targets, null_r=null_r)


@dataclass
class ShiftTestResult:
    """Circular-shift test of encoding scores.

    Attributes
    ----------
    r : (G,) observed pooled Pearson r.
    p_values : (G,) one-sided p = (1 + #(null >= r)) / (1 + n_null).
    significant : (G,) BH discoveries at q (the layer's BNs).
    q : FDR level used.
    null_r : (n_null, G) float32 null correlations, only if requested.
    """

    r: np.ndarray
    p_values: np.ndarray
    significant: np.ndarray
    q: float
    null_r: np.ndarray | None = None


def circular_shift_test(
    predictions: np.ndarray,
    y: np.ndarray,
    runs: np.ndarray,
    n_null: int = 1000,
    q: float = 0.05,
    random_state: int = 0,
    target_batch_size: int = 4096,
    return_null: bool = False,
    refit_null: RefitNull | None = None,
) -> ShiftTestResult:
    """Per-grayordinate p-values of held-out prediction accuracy, BH-corrected.

    Without ``refit_null``: p = (1 + #(null >= r)) / (1 + n_null) against the circular
    shifts of the predictions. With it: r / sd(prediction-shift null of that
    grayordinate) against the pooled refit null, each draw scaled by the spread of its
    own grayordinate's prediction-shift null (see the module docstring).

    Parameters
    ----------
    predictions : (T, G) held-out predictions (e.g. `EncodingResult.predictions`).
    y : (T, G) data they predict.
    runs : (T,) contiguous run labels; shifts stay within runs.
    n_null : number of null draws (offsets shared by all grayordinates).
    q : BH false discovery rate.
    target_batch_size : grayordinates per batch; memory ~ (T + n_null) * batch * 16 B.
    return_null : keep the (n_null, G) null correlations (float32).
    refit_null : `refit_shift_null` output for this model and data.
    """
    predictions = check_time_series(predictions, "predictions")
    y = check_time_series(y, "y")
    check_same_length(predictions, y, "predictions", "y")
    if predictions.shape != y.shape:
        raise ValueError(f"predictions {predictions.shape} and y {y.shape} differ in shape")
    runs = check_runs(runs, y.shape[0])
    offsets = circular_shift_offsets(runs, n_null, random_state)
    observed = np.zeros((1, offsets.shape[1]), dtype=np.int64)
    n_targets = y.shape[1]
    r = np.empty(n_targets)
    n_exceed = np.empty(n_targets)
    spread = np.empty(n_targets)
    null_r = np.empty((n_null, n_targets), dtype=np.float32) if return_null else None
    for start in range(0, n_targets, target_batch_size):
        cols = slice(start, start + target_batch_size)
        both = shifted_correlations(
            predictions[:, cols], y[:, cols], runs, np.concatenate([observed, offsets])
        )
        r[cols] = both[0]
        n_exceed[cols] = (both[1:] >= both[0] - 1e-12).sum(axis=0)
        spread[cols] = both[1:].std(axis=0)
        if return_null:
            null_r[:, cols] = both[1:]
    p_values = (1 + n_exceed) / (1 + n_null)
    if refit_null is not None:
        p_values = pooled_refit_p_values(r, spread, refit_null)
    return ShiftTestResult(r=r, p_values=p_values, significant=fdr_bh(p_values, q), q=q,
                           null_r=null_r)


def pooled_refit_p_values(r: np.ndarray, spread: np.ndarray, refit_null: RefitNull) -> np.ndarray:
    """p = (1 + #(z_null >= z)) / (1 + n): z = r / spread, z_null the refit null over spread.

    ``spread`` (G,) is each grayordinate's prediction-shift null standard deviation; it
    carries what differs between grayordinates (autocorrelation, alpha), the pooled refit
    null carries the dependence across folds. Constant grayordinates (spread 0) get p = 1.
    """
    scale = spread[refit_null.targets]
    ok = scale > 0
    z_null = np.sort((refit_null.null_r[:, ok] / scale[ok]).ravel())
    if z_null.size == 0:
        raise ValueError("the refit null has no grayordinate with a non-constant null")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(spread > 0, r / spread, -np.inf)
    n_exceed = z_null.size - np.searchsorted(z_null, z - 1e-12, side="left")
    return (1 + n_exceed) / (1 + z_null.size)


# --------------------------------------------------------------------------- atom maps
@dataclass
class AtomMaps:
    """Per-atom significance maps of a full-data ridge fit.

    Attributes
    ----------
    t : (k, G) coefficient / HAC standard error.
    p_values : (k, G) two-sided p from Student's t with n - df(alpha) dof.
    positive : (k, G) bool, significant (BH at q) and t > 0: positive BNs per atom.
    negative : (k, G) bool, significant and t < 0: negative BNs per atom.
    """

    t: np.ndarray
    p_values: np.ndarray
    positive: np.ndarray
    negative: np.ndarray


def bartlett_weights(max_lag: int) -> np.ndarray:
    """Newey-West weights 1 - l / (max_lag + 1) for lags 0..max_lag."""
    return 1.0 - np.arange(max_lag + 1) / (max_lag + 1)


def lagged_gram(x: np.ndarray, runs: np.ndarray, max_lag: int) -> np.ndarray:
    """Within-run lagged cross-products S_l = sum_t x_t x_{t+l}^T, l = 0..max_lag.

    Returns
    -------
    grams : (max_lag + 1, k, k) float64.
    """
    x = x.astype(np.float64)
    grams = np.zeros((max_lag + 1, x.shape[1], x.shape[1]))
    for rows in run_slices(runs):
        xr = x[rows]
        for lag in range(min(max_lag + 1, len(xr))):
            grams[lag] += xr[: len(xr) - lag].T @ xr[lag:]
    return grams


def residual_autocovariance(residuals: np.ndarray, runs: np.ndarray, max_lag: int) -> np.ndarray:
    """Within-run autocovariance sum_t e_t e_{t+l} / T of each column, l = 0..max_lag.

    Returns
    -------
    gamma : (max_lag + 1, G) float64.
    """
    e = residuals.astype(np.float64)
    gamma = np.zeros((max_lag + 1, e.shape[1]))
    for rows in run_slices(runs):
        er = e[rows]
        for lag in range(min(max_lag + 1, len(er))):
            gamma[lag] += np.einsum("tg,tg->g", er[: len(er) - lag], er[lag:])
    return gamma / e.shape[0]


def atom_maps(
    regressors: np.ndarray,
    y: np.ndarray,
    runs: np.ndarray,
    coefficients: np.ndarray,
    alphas: np.ndarray,
    q: float = 0.05,
    max_lag: int = 20,
    fdr_scope: str = "atom",
    target_batch_size: int = 4096,
) -> AtomMaps:
    """t maps of ridge coefficients with an autocorrelation-robust (HAC) variance.

    For a target with penalty alpha, b = M X^T y with M = (X^T X + alpha I)^-1. If the
    noise e is stationary within runs with autocovariance gamma(l) and independent
    across runs,

        Var(b) = M X^T Cov(e) X M = M [gamma(0) S_0 + sum_{l>=1} gamma(l) (S_l + S_l^T)] M

    with S_l the within-run lagged Gram matrices of X. gamma is estimated from the
    residuals of the fit (divided by T, scaled by T / (T - df), df = tr of the hat
    matrix) and tapered with Bartlett weights up to `max_lag` (Newey-West), which keeps
    the variance non-negative. t = b / sqrt(Var(b)_jj) tests each atom given the others;
    p is two-sided from Student's t with T - df dof. With gamma(l>0) = 0 this reduces to
    the usual ridge standard error, which is anti-conservative for autocorrelated BOLD
    (max_lag=0: 17 % false positives at p < 0.05 for AR(1) phi = 0.6 data and
    regressors, against 6 % with max_lag=20). Ridge shrinks b towards 0, which makes
    the test conservative for real effects; with strongly correlated atoms it can also
    lend a little weight to an atom without an effect.

    Parameters
    ----------
    regressors : (T, k) regressors used in the fit (e.g. atom time courses).
    y : (T, G) data.
    runs : (T,) contiguous run labels.
    coefficients : (k, G) ridge weights (`FullFit.coefficients`).
    alphas : (G,) penalty of each target (`FullFit.best_alphas`).
    q : BH level.
    max_lag : HAC truncation in samples; should cover the BOLD autocorrelation.
    fdr_scope : "atom" (BH within each atom's map) or "layer" (over all k * G tests).
    target_batch_size : targets per batch (residuals are (T, batch) float64).

    Returns
    -------
    AtomMaps with t, p_values, positive and negative, each (k, G).
    """
    x = check_time_series(regressors, "regressors").astype(np.float64)
    y = check_time_series(y, "y")
    check_same_length(x, y, "regressors", "y")
    runs = check_runs(runs, y.shape[0])
    coefficients = np.asarray(coefficients, dtype=np.float64)
    alphas = np.asarray(alphas, dtype=np.float64)
    n_samples, n_atoms = x.shape
    if coefficients.shape != (n_atoms, y.shape[1]) or alphas.shape != (y.shape[1],):
        raise ValueError(
            f"coefficients {coefficients.shape} / alphas {alphas.shape} do not match "
            f"{n_atoms} regressors and {y.shape[1]} targets"
        )
    if fdr_scope not in ("atom", "layer"):
        raise ValueError(f"fdr_scope must be 'atom' or 'layer', got {fdr_scope!r}")

    grams = lagged_gram(x, runs, max_lag)
    lag_factor = np.r_[1.0, 2.0 * np.ones(max_lag)] * bartlett_weights(max_lag)
    eigenvalues = np.linalg.eigvalsh(grams[0])
    t = np.empty(coefficients.shape)
    dof = np.empty(y.shape[1])
    for start in range(0, y.shape[1], target_batch_size):
        cols = slice(start, start + target_batch_size)
        residuals = y[:, cols].astype(np.float64) - x @ coefficients[:, cols]
        gamma = residual_autocovariance(residuals, runs, max_lag) * lag_factor[:, None]
        for alpha in np.unique(alphas[cols]):
            targets = np.flatnonzero(alphas[cols] == alpha) + start
            m = np.linalg.inv(grams[0] + alpha * np.eye(n_atoms))
            # diag(M S_l M) per lag: (max_lag + 1, k); S_l^T has the same diagonal
            q_lags = np.einsum("ij,ljk,ki->li", m, grams, m)
            df = np.sum(eigenvalues / (eigenvalues + alpha))
            variance = q_lags.T @ gamma[:, targets - start] * n_samples / (n_samples - df)
            with np.errstate(divide="ignore", invalid="ignore"):
                t[:, targets] = coefficients[:, targets] / np.sqrt(variance)
            dof[targets] = n_samples - df
    p_values = 2 * stats.t.sf(np.abs(t), df=dof[None, :])
    if fdr_scope == "atom":
        significant = np.stack([fdr_bh(p, q) for p in p_values])
    else:
        significant = fdr_bh(p_values, q)
    return AtomMaps(t=t, p_values=p_values, positive=significant & (t > 0),
                    negative=significant & (t < 0))
