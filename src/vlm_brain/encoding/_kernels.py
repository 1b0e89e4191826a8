"""Compiled inner loops of the encoding engine (numba), each with a plain-numpy twin.

The twins (``*_reference``) state what the kernels compute and are what the tests
compare them with; the kernels exist because these loops are sequential or
bandwidth-bound and numpy would allocate a temporary per step.

Compilation is cached (``cache=True``) but costs its time on a first run (a fresh
clone, or after a change here): helpers are called, not inlined into each kernel
(numba's ``inline="always"`` made the first encode take 30 s instead of 13 s, for
no measurable speed), and the model lag kernel is serial (its batches already run
side by side).
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange


@njit(fastmath=True, cache=True, nogil=True)
def _lags_of(s, max_lag, out, r, g):  # pragma: no cover - compiled
    """out[r, l, g] = sum_t s_t s_{t+l} over the 1-D series s, l < len(s) (larger lags are left as they are).

    Seven lags per pass over s (s_t loaded once for seven products: the 21 lags of
    max_lag 20 in three passes, ~1.5x faster than one lag per pass; 2, 4, 6 or 8 lags
    per pass vectorise badly here), the rest one per pass; loops start at 0 and
    accumulate in the dtype of the series, so that they vectorise.
    """
    n = s.shape[0]
    top = min(max_lag, n - 1)
    lag = 0
    while lag + 6 <= top:
        a0 = s[0] - s[0]  # 0 in the dtype of the series (s[0] * 0 would be float64)
        a1 = a0
        a2 = a0
        a3 = a0
        a4 = a0
        a5 = a0
        a6 = a0
        m = n - lag - 6  # >= 1: the t where all seven products exist
        for t in range(m):
            v = s[t]
            a0 += v * s[t + lag]
            a1 += v * s[t + lag + 1]
            a2 += v * s[t + lag + 2]
            a3 += v * s[t + lag + 3]
            a4 += v * s[t + lag + 4]
            a5 += v * s[t + lag + 5]
            a6 += v * s[t + lag + 6]
        for t in range(m, n - lag):  # the last six t: the products that exist
            v = s[t]
            a0 += v * s[t + lag]
            if t + lag + 1 < n:
                a1 += v * s[t + lag + 1]
            if t + lag + 2 < n:
                a2 += v * s[t + lag + 2]
            if t + lag + 3 < n:
                a3 += v * s[t + lag + 3]
            if t + lag + 4 < n:
                a4 += v * s[t + lag + 4]
            if t + lag + 5 < n:
                a5 += v * s[t + lag + 5]
        out[r, lag, g] = a0
        out[r, lag + 1, g] = a1
        out[r, lag + 2, g] = a2
        out[r, lag + 3, g] = a3
        out[r, lag + 4, g] = a4
        out[r, lag + 5, g] = a5
        out[r, lag + 6, g] = a6
        lag += 7
    while lag <= top:
        acc = s[0] - s[0]
        for t in range(n - lag):
            acc += s[t] * s[t + lag]
        out[r, lag, g] = acc
        lag += 1


@njit(fastmath=True, cache=True, nogil=True)
def _centre_lags(s, mean, max_lag, out, r, g):  # pragma: no cover - compiled
    """Turn out[r, :, g], the lagged products of s, into those of s - mean, in place.

    sum_t (s_t - m)(s_{t+l} - m) = sum_t s_t s_{t+l} - m (head_l + tail_l) + (n - l) m^2,
    with head_l = sum_{t < n-l} s_t and tail_l = sum_{t >= l} s_t: no centred copy.
    """
    n = s.shape[0]
    total = 0.0
    for t in range(n):
        total += s[t]
    head = total
    tail = total
    for lag in range(min(max_lag + 1, n)):
        out[r, lag, g] = out[r, lag, g] - mean * (head + tail) + (n - lag) * mean * mean
        head -= s[n - 1 - lag]
        tail -= s[lag]


@njit(fastmath=True, cache=True, nogil=True)
def _copy_run(data, column, w, a, n, y):  # pragma: no cover - compiled
    """y[j, t] = data[a + t, column + j] for j < w, t < n: one run of w targets, target-major.

    In 8 x 8 blocks (8 rows' 32 bytes in, 8 targets' 32 bytes out: ~2x faster than
    16-row tiles here), then the targets and rows left over.
    """
    whole_t = n - n % 8
    whole_j = w - w % 8
    for t0 in range(0, whole_t, 8):
        for j0 in range(0, whole_j, 8):
            for jj in range(8):
                for tt in range(8):
                    y[j0 + jj, t0 + tt] = data[a + t0 + tt, column + j0 + jj]
        for j in range(whole_j, w):
            for tt in range(8):
                y[j, t0 + tt] = data[a + t0 + tt, column + j]
    for t in range(whole_t, n):
        for j in range(w):
            y[j, t] = data[a + t, column + j]


@njit(fastmath=True, cache=True, nogil=True)
def _run_lags(y, fitted, predicted, offset, n, w, g0, r, max_lag, residual, data_out, residual_out,
              predicted_out):  # pragma: no cover - compiled
    """The lagged products of run r of targets g0..g0+w: y (w, >= n) their data, fitted and
    predicted (w, >= offset + n) their fitted values and predictions from column ``offset``."""
    for j in range(w):
        g = g0 + j
        series = y[j, :n]
        f = fitted[j, offset:offset + n]
        p = predicted[j, offset:offset + n]
        mean_y = 0.0
        mean_p = 0.0
        for t in range(n):
            mean_y += series[t]
            mean_p += p[t]
            residual[t] = series[t] - f[t]
        _lags_of(series, max_lag, data_out, r, g)
        _centre_lags(series, mean_y / n, max_lag, data_out, r, g)
        _lags_of(residual[:n], max_lag, residual_out, r, g)
        _lags_of(p, max_lag, predicted_out, r, g)
        _centre_lags(p, mean_p / n, max_lag, predicted_out, r, g)


_CHUNK = 64  # targets per work item of the lag kernel
# targets per work item of the model lag kernel: its (w, k) x (k, T_r) products run ~25% faster at
# w = 256 than at 64 here (0.31 -> 0.25 s per 8,192 targets on one core); its ~3 MB stay in cache
_MODEL_CHUNK = 256


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _lag_products(data, first, fitted_t, predicted_t, starts, stops, max_lag, data_out, residual_out,
                  predicted_out):  # pragma: no cover - compiled
    n_targets = fitted_t.shape[0]
    longest = np.max(stops - starts)
    for c in prange((n_targets + _CHUNK - 1) // _CHUNK):
        g0 = c * _CHUNK
        w = min(n_targets, g0 + _CHUNK) - g0
        y = np.empty((_CHUNK, longest), dtype=data.dtype)
        residual = np.empty(longest, dtype=data.dtype)
        for r in range(starts.shape[0]):
            a, n = starts[r], stops[r] - starts[r]
            _copy_run(data, first + g0, w, a, n, y)
            _run_lags(y, fitted_t[g0:g0 + w], predicted_t[g0:g0 + w], a, n, w, g0, r, max_lag, residual,
                      data_out, residual_out, predicted_out)


@njit(fastmath=True, cache=True, nogil=True)
def _model_lag_products(data, first, fold_weights, held_out_t, coefficients, full_t, starts, stops, max_lag,
                        data_out, residual_out, predicted_out, predictions, prediction_column,
                        write_predictions):  # pragma: no cover - compiled
    n_targets = coefficients.shape[0]
    longest = held_out_t.shape[2]
    for c in range((n_targets + _MODEL_CHUNK - 1) // _MODEL_CHUNK):
        g0 = c * _MODEL_CHUNK
        w = min(n_targets, g0 + _MODEL_CHUNK) - g0
        y = np.empty((_MODEL_CHUNK, longest), dtype=data.dtype)
        fitted = np.empty((w, longest), dtype=data.dtype)
        predicted = np.empty((w, longest), dtype=data.dtype)
        residual = np.empty(longest, dtype=data.dtype)
        for r in range(starts.shape[0]):
            a, n = starts[r], stops[r] - starts[r]
            np.dot(fold_weights[r, g0:g0 + w], held_out_t[r], predicted)  # (w, k) x (k, longest): BLAS
            np.dot(coefficients[g0:g0 + w], full_t[r], fitted)
            _copy_run(data, first + g0, w, a, n, y)
            _run_lags(y, fitted, predicted, 0, n, w, g0, r, max_lag, residual, data_out, residual_out,
                      predicted_out)
            if write_predictions:
                for t0 in range(0, n, 16):
                    for j in range(w):
                        for t in range(t0, min(n, t0 + 16)):
                            predictions[a + t, prediction_column + g0 + j] = predicted[j, t]


def lag_products(data: np.ndarray, fitted_t: np.ndarray, predicted_t: np.ndarray, starts: np.ndarray,
                 stops: np.ndarray, max_lag: int, first_column: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Within-run lagged products sum_t s_t s_{t+l}, l = 0..max_lag, of three series per target.

    Parameters
    ----------
    data : (T, >= first_column + G) the data y, one target per column, as stored; its
        columns ``first_column`` onwards are the G targets (a batch of a larger array is
        read in place, 64 targets x one run at a time, not copied whole).
    fitted_t, predicted_t : (G, T), one target per row (as the products that form them
        give them): the full refit's fitted values f and the held-out predictions p,
        float32 or float64 like ``data``.
    starts, stops : (n_runs,) bounds of the contiguous runs along T.
    max_lag : largest lag; lags >= a run's length are 0.

    Returns
    -------
    (R, max_lag + 1, G) float64 each: of y centred per run, of the residuals y - f (not
    centred, as the HAC variance uses them) and of p centred per run. Sums run in the
    dtype of the inputs.
    """
    data = np.ascontiguousarray(data)
    dtype = data.dtype
    fitted_t = np.ascontiguousarray(fitted_t, dtype=dtype)
    predicted_t = np.ascontiguousarray(predicted_t, dtype=dtype)
    n_targets, n_samples = fitted_t.shape
    if predicted_t.shape != fitted_t.shape or data.shape[0] != n_samples or data.shape[1] < first_column + n_targets:
        raise ValueError(f"data {data.shape} from column {first_column} (T, G), fitted_t {fitted_t.shape} and "
                         f"predicted_t {predicted_t.shape} (G, T) must cover the same targets")
    shape = (len(starts), max_lag + 1, n_targets)
    outs = [np.zeros(shape, dtype=dtype) for _ in range(3)]
    _lag_products(data, int(first_column), fitted_t, predicted_t, np.asarray(starts, np.int64),
                  np.asarray(stops, np.int64), int(max_lag), *outs)
    return tuple(out.astype(np.float64) for out in outs)


def model_lag_products(data: np.ndarray, fold_weights: np.ndarray, held_out_x, coefficients: np.ndarray,
                       full_x: np.ndarray, starts: np.ndarray, stops: np.ndarray, max_lag: int, first_column: int = 0,
                       predictions: np.ndarray | None = None, prediction_column: int = 0,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`lag_products` of a ridge model's own fitted values and held-out predictions, formed as they are used.

    The same three (R, max_lag + 1, G) float64 arrays as ``lag_products(data, (full_x @
    coefficients).T, p, ...)`` with p run r's held-out prediction ``held_out_x[r] @
    fold_weights[r]`` (run r's rows predicted by the model fitted without run r): both
    are formed 256 targets x one run at a time (BLAS) and used from cache, never as
    (G, T) arrays (which made the products ~1.6x slower than the block cross-products
    and their results a round trip through memory).

    Parameters
    ----------
    data : (T, >= first_column + G) the data, read in place from column ``first_column``.
    fold_weights : (R, k, G) ridge weights of each run's held-out model.
    held_out_x : R arrays (T_r, k), run r's rows of the regressors of the model without run r.
    coefficients : (k, G) the full refit's coefficients; full_x : (T, k) its regressors.
    predictions : (T, >= prediction_column + G) float array that receives the held-out
        predictions in columns ``prediction_column`` onwards (None: not kept).
    """
    data = np.ascontiguousarray(data)
    dtype = data.dtype
    n_runs, longest = len(starts), int(np.max(np.asarray(stops) - np.asarray(starts)))
    k, n_targets = np.shape(coefficients)
    held_out_t = np.zeros((n_runs, k, longest), dtype=dtype)  # run r's regressors, transposed, zero-padded
    full_t = np.zeros((n_runs, k, longest), dtype=dtype)
    for r, (a, b) in enumerate(zip(starts, stops, strict=True)):
        held_out_t[r, :, : b - a] = np.asarray(held_out_x[r]).T
        full_t[r, :, : b - a] = np.asarray(full_x)[a:b].T
    weights_t = np.empty((n_runs, n_targets, k), dtype=dtype)
    for r in range(n_runs):
        weights_t[r] = np.asarray(fold_weights[r]).T
    if data.shape[1] < first_column + n_targets or data.shape[0] != stops[-1]:
        raise ValueError(f"data {data.shape} from column {first_column} must hold the {n_targets} targets over "
                         f"{stops[-1]} TRs")
    shape = (n_runs, max_lag + 1, n_targets)
    outs = [np.zeros(shape, dtype=dtype) for _ in range(3)]
    keep = predictions is not None
    _model_lag_products(data, int(first_column), weights_t, held_out_t, np.ascontiguousarray(coefficients.T, dtype),
                        full_t, np.asarray(starts, np.int64), np.asarray(stops, np.int64), int(max_lag), *outs,
                        predictions if keep else np.zeros((1, 1), dtype=np.float32), int(prediction_column), keep)
    return tuple(out.astype(np.float64) for out in outs)


def lag_sums_reference(series_t: np.ndarray, starts, stops, max_lag: int, centre: bool = False) -> np.ndarray:
    """Lagged products of one series per row in plain numpy (float64), as `lag_products` defines them."""
    s = np.asarray(series_t, dtype=np.float64)
    out = np.zeros((len(starts), max_lag + 1, s.shape[0]))
    for r, (a, b) in enumerate(zip(starts, stops, strict=True)):
        block = s[:, a:b]
        if centre:
            block = block - block.mean(axis=1, keepdims=True)
        for lag in range(min(max_lag + 1, b - a)):
            out[r, lag] = (block[:, : b - a - lag] * block[:, lag:]).sum(axis=1)
    return out


@njit(fastmath=True, cache=True, nogil=True)
def _grid_terms(z_and_rz, u, within, terms):  # pragma: no cover - compiled
    k, n_targets = u.shape
    for i in range(k):
        h = within[i]
        for g in range(n_targets):
            z = np.float64(z_and_rz[i, g])
            terms[i, g] = z * (np.float64(z_and_rz[k + i, g]) - np.float64(u[i, g]))
            terms[k + i, g] = z * z * h


def grid_sse(z_and_rz: np.ndarray, u: np.ndarray, within: np.ndarray, inv: np.ndarray, v_sq: np.ndarray) -> np.ndarray:
    """Validation SSE (n_alphas, G) of the ridge grid from the rotated cross-products.

    ``z_and_rz`` (2k, G) = [z; R z] and ``u`` (k, G) = V'c_v (float32 or float64, as the
    products gave them), ``within`` (k,) the diagonal within-cluster weights h_c,
    ``inv`` (k, n_alphas) = 1 / (s_i + a), ``v_sq`` (G,): the validation run's y'y.
    sse = v_sq + sum_i 2 inv z_i ((R z)_i - u_i) + inv^2 z_i^2 h_i in float64
    (`grid_sse_reference`): the 2k terms per target in one compiled pass, their
    weighted sums over i as one product.
    """
    k, n_targets = u.shape
    terms = np.empty((2 * k, n_targets))
    _grid_terms(np.ascontiguousarray(z_and_rz), np.ascontiguousarray(u), np.ascontiguousarray(within, dtype=np.float64),
                terms)
    weights = np.hstack([2.0 * inv.T, inv.T**2])  # (n_alphas, 2k)
    sse = weights @ terms
    sse += np.asarray(v_sq, dtype=np.float64)[None, :]
    return sse


def grid_sse_reference(z_and_rz, u, within, inv, v_sq) -> np.ndarray:
    """`grid_sse` in plain numpy (float64); ``within`` may also be the (k, k) matrix h_c (clustered eigenvalues)."""
    k = u.shape[0]
    z = np.asarray(z_and_rz[:k], dtype=np.float64)
    linear = z * (np.asarray(z_and_rz[k:], dtype=np.float64) - np.asarray(u, dtype=np.float64))
    hz = within[:, None] * z if within.ndim == 1 else within @ z
    return v_sq[None, :] + (2.0 * inv).T @ linear + (inv**2).T @ (z * hz)


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _lasso_cd(gram, cov, alpha, code, q_all, max_iter, tol):  # pragma: no cover - compiled
    n, k = cov.shape  # one sample per row: its correlations, code and G c are contiguous
    for i in prange(n):
        c = code[i]
        q = q_all[i]  # q = G c, kept up to date
        correlations = cov[i]
        for _ in range(max_iter):
            largest_step = 0.0
            largest = 0.0
            for j in range(k):
                d = gram[j, j]
                old = c[j]
                if d <= 0.0:
                    new = 0.0
                else:
                    rho = correlations[j] - q[j] + d * old
                    if rho > alpha:
                        new = (rho - alpha) / d
                    elif rho < -alpha:
                        new = (rho + alpha) / d
                    else:
                        new = 0.0
                step = new - old
                if step != 0.0:
                    c[j] = new
                    row = gram[j]
                    for m in range(k):
                        q[m] += row[m] * step  # gram is symmetric: a contiguous row
                    largest_step = max(largest_step, abs(step))
                largest = max(largest, abs(new))
            if largest_step <= tol * max(largest, 1e-300):
                break


def lasso_codes(dictionary: np.ndarray, samples: np.ndarray, alpha: float, init: np.ndarray | None = None,
                max_iter: int = 1000, tol: float = 1e-4) -> np.ndarray:
    """Lasso codes of many samples on one dictionary, by coordinate descent.

    Solves, for every sample y_n independently, ``min_a 0.5 ||y_n - a D||^2 + alpha ||a||_1``
    (scikit-learn's ``sparse_encode(algorithm="lasso_cd")`` objective) from the Gram
    matrix D D^T and the correlations D y_n; each sample stops when no coordinate moved
    by more than ``tol`` times its largest |code|.

    Parameters
    ----------
    dictionary : (k, F) atoms as rows.
    samples : (n, F) samples as rows.
    alpha : L1 penalty (>= 0).
    init : (n, k) warm start, zeros if None.

    Returns
    -------
    code : (n, k) float64.
    """
    dictionary = np.asarray(dictionary, dtype=np.float64)
    gram = dictionary @ dictionary.T
    cov = dictionary @ np.asarray(samples, dtype=np.float64).T
    return lasso_codes_gram(gram, cov, alpha, init, max_iter, tol)


def lasso_codes_gram(gram: np.ndarray, cov: np.ndarray, alpha: float, init: np.ndarray | None = None,
                     max_iter: int = 1000, tol: float = 1e-4, samples_first: bool = False) -> np.ndarray:
    """`lasso_codes` from gram = D D^T (k, k) and cov = D Y^T (k, n) (``samples_first``: Y D^T (n, k)); (n, k)."""
    gram = np.ascontiguousarray(gram, dtype=np.float64)
    cov_t = np.ascontiguousarray(np.asarray(cov if samples_first else np.asarray(cov).T, dtype=np.float64))  # (n, k)
    code = np.zeros(cov_t.shape) if init is None else np.array(init, dtype=np.float64, order="C")
    _lasso_cd(gram, cov_t, float(alpha), code, code @ gram, int(max_iter), float(tol))
    return code


@njit(cache=True, nogil=True, fastmath=True)
def update_atoms(dictionary, gram, cross, replace):  # pragma: no cover - compiled
    """Block-coordinate pass of SDL's dictionary update, in place.

    dictionary (k, F); gram = C^T C (k, k); cross = (Y^T C)^T (k, F); atom j with
    ``replace[j]`` takes ``cross[j]`` as is (a re-initialisation). Each atom then is
    projected on the unit ball.
    """
    k, f = dictionary.shape
    for j in range(k):
        if replace[j]:
            for t in range(f):
                dictionary[j, t] = cross[j, t]
        else:
            d = gram[j, j]
            acc = cross[j].copy()
            for m in range(k):
                g = gram[j, m]
                for t in range(f):
                    acc[t] -= g * dictionary[m, t]
            for t in range(f):
                dictionary[j, t] += acc[t] / d
        norm = 0.0
        for t in range(f):
            norm += dictionary[j, t] * dictionary[j, t]
        norm = max(np.sqrt(norm), 1.0)
        for t in range(f):
            dictionary[j, t] /= norm


@njit(cache=True, nogil=True, fastmath=True)
def _code_cross(code, samples, lengths, out):  # pragma: no cover - compiled
    n, k = code.shape
    for i in range(n):
        row = samples[i]
        for j in range(k):
            c = code[i, j]
            if c != 0.0:
                target = out[j]
                for t in range(lengths[i]):  # row i's non-zeros: its first lengths[i] entries
                    target[t] += c * row[t]


def code_cross(code: np.ndarray, samples: np.ndarray, lower_triangular: bool = False) -> np.ndarray:
    """C^T Y (k, F) float64 of a sparse code C (n, k) and samples Y (n, F), touching only C's non-zeros.

    The dictionary update's one large product: with a code of density d it costs d times
    the dense product (SDL codes are sparse by design); above 1/4 density the dense
    product (BLAS) is used. It runs in the dtype of ``samples`` (float32: C rounded to
    float32, half the time of float64). ``lower_triangular``: Y is square with zeros
    above the diagonal (a Cholesky factor), which the sparse kernel skips (row i: its
    first i + 1 entries; ~20% faster at 10% density). Equals ``code.T @ samples``
    (`code_cross_reference`).
    """
    dtype = np.float32 if np.asarray(samples).dtype == np.float32 else np.float64
    code = np.ascontiguousarray(code, dtype=dtype)
    samples = np.ascontiguousarray(samples, dtype=dtype)
    if np.count_nonzero(code) > 0.25 * code.size:
        return (code.T @ samples).astype(np.float64, copy=False)
    out = np.zeros((code.shape[1], samples.shape[1]), dtype=dtype)
    lengths = np.arange(1, len(samples) + 1) if lower_triangular else np.full(len(samples), samples.shape[1])
    _code_cross(code, samples, lengths, out)
    return out.astype(np.float64, copy=False)


def code_cross_reference(code: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """`code_cross` in plain numpy."""
    return np.asarray(code, dtype=np.float64).T @ np.asarray(samples, dtype=np.float64)


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _run_sums(data, first, n_targets, starts, stops, sums, squares, threads):  # pragma: no cover - compiled
    # one wide block of columns per thread: long contiguous reads of each row (4096 columns:
    # ~2.5x faster than 256), their sums in cache
    block = max(512, (n_targets + threads - 1) // threads)
    for c in prange((n_targets + block - 1) // block):
        g0 = c * block
        w = min(n_targets, g0 + block) - g0
        acc = np.empty(w)
        acc2 = np.empty(w)
        for r in range(starts.shape[0]):
            acc[:] = 0.0
            acc2[:] = 0.0
            for t in range(starts[r], stops[r]):
                row = data[t, first + g0:first + g0 + w]  # a contiguous slice: the loop vectorises
                for j in range(w):
                    value = np.float64(row[j])
                    acc[j] += value
                    acc2[j] += value * value
            sums[r, g0:g0 + w] = acc
            squares[r, g0:g0 + w] = acc2


def run_sums(data: np.ndarray, starts: np.ndarray, stops: np.ndarray, columns: slice | None = None):
    """Per-run sums and sums of squares (R, G) in float64 of ``data[:, columns]`` (data (T, G_all)).

    One pass over the rows, read in place (a batch of columns is not copied).
    """
    data = np.ascontiguousarray(data)
    columns = columns or slice(0, data.shape[1])
    first, stop = columns.start or 0, data.shape[1] if columns.stop is None else columns.stop
    sums = np.empty((len(starts), stop - first))
    squares = np.empty((len(starts), stop - first))
    _run_sums(data, first, stop - first, np.asarray(starts, np.int64), np.asarray(stops, np.int64), sums, squares,
              get_num_threads())
    return sums, squares


@njit(parallel=True, cache=True, nogil=True)
def _count_non_finite(x):  # pragma: no cover - compiled; no fastmath: it would assume finite values
    total = 0
    for i in prange(x.shape[0]):
        count = 0
        row = x[i]
        for j in range(row.shape[0]):
            count += not (abs(row[j]) < np.inf)
        total += count
    return total


def count_non_finite_rows(x: np.ndarray) -> int:
    """Number of NaN / inf entries of a C-contiguous 2-D float32 or float64 array, one pass on all cores."""
    return int(_count_non_finite(x))


@njit(cache=True, nogil=True)
def _count_exceedances(t, bound, counts):  # pragma: no cover - compiled
    for i in range(t.shape[0]):
        count = 0
        for g in range(t.shape[1]):
            count += abs(t[i, g]) >= bound
        counts[i] = count


@njit(cache=True, nogil=True)
def _fill_exceedances(t, bound, starts, cols, values):  # pragma: no cover - compiled
    for i in range(t.shape[0]):
        at = starts[i]
        for g in range(t.shape[1]):
            value = abs(t[i, g])
            if value >= bound:
                cols[at] = g
                values[at] = value
                at += 1


def row_exceedances(t: np.ndarray, bound: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts (k + 1,), columns, |t|) of the entries of t (k, G) with |t| >= ``bound``, row by row.

    Row i's entries are ``columns[starts[i]:starts[i + 1]]`` in column order (np.nonzero's
    order of ``np.abs(t) >= bound``), in two passes over t and no (k, G) temporaries.
    """
    t = np.ascontiguousarray(t, dtype=np.float64)
    counts = np.empty(t.shape[0], dtype=np.int64)
    _count_exceedances(t, float(bound), counts)
    starts = np.concatenate([[0], np.cumsum(counts)])
    cols, values = np.empty(starts[-1], dtype=np.int64), np.empty(starts[-1])
    _fill_exceedances(t, float(bound), starts, cols, values)
    return starts, cols, values


@njit(cache=True, nogil=True)
def _keep_at_least(starts, counts, cols, values, bounds):  # pragma: no cover - compiled
    for i in range(counts.shape[0]):
        a = starts[i]
        kept = 0
        for j in range(a, a + counts[i]):
            if values[j] >= bounds[i]:
                cols[a + kept] = cols[j]
                values[a + kept] = values[j]
                kept += 1
        counts[i] = kept


def keep_at_least(starts: np.ndarray, counts: np.ndarray, cols: np.ndarray, values: np.ndarray,
                  bounds: np.ndarray) -> None:
    """In place: keep row i's first ``counts[i]`` entries from ``starts[i]`` with value >= ``bounds[i]``, in order."""
    _keep_at_least(starts, counts, cols, values, np.asarray(bounds, dtype=np.float64))
