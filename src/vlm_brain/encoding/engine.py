"""Leave-one-run-out ridge for many targets and few regressors, from sufficient statistics.

With k regressors, R runs and G targets, everything the encoding needs follows from
per-run blocks: the Gram matrices X_r^T X_r (k x k, per design), the cross-products
X_r^T Y_r (k x G) and each target's per-run sum and sum of squares. For one training
set with Gram A = V diag(s) V^T and cross-product c, the ridge weights are
b(a) = V diag(1 / (s + a)) V^T c, so

* the validation loss of every alpha of the grid, ||y_v - X_v b(a)||^2 =
  y_v'y_v - 2 c_v'b(a) + b(a)' H_v b(a), is a sum of k terms in 1 / (s_i + a) and
  1 / (s_i + a)^2 (partial fractions of the quadratic form, below): one small matrix
  product per inner split scores the whole grid, without forming a prediction;
* the held-out pooled Pearson r needs only b' X_f'y_f, b' H_f b and b' X_f'1;
* the full refit, its HAC t-maps (lagged Gram matrices of X, lagged products of the
  residuals) and the null (below) reuse the same blocks.

Everything that depends on the designs only (eigendecompositions, rotated Gram
matrices) is factorised once per design and reused for every batch of targets.

This computes exactly what himalaya's ``RidgeCV`` with the same splits computes
(``l2_neg_loss`` averaged over the inner splits, 1e-10 log(alpha) tie-break, one alpha
per target), tested against it. Designs differ between outer folds (each fold's SDL
is fitted on its training runs): all designs are stacked and multiplied with the data
once. The other k x T x G products form the full refit's fitted values and the folds'
held-out predictions, whose lagged products (`_kernels.lag_products`) give the HAC
t-maps and the spread of r over circular shifts.

Partial fractions: with z = V'c, h = V'H V, and i, j in different eigenvalue clusters,
1 / ((s_i + a)(s_j + a)) = (1 / (s_i + a) - 1 / (s_j + a)) / (s_j - s_i), hence
b'Hb = sum_i z_i (h_c z)_i / (s_i + a)^2 + 2 z_i (R z)_i / (s_i + a) with
R_ij = h_ij / (s_j - s_i) across clusters and h_c the within-cluster part of h
(eigenvalues closer than 1e-7 relative are treated as equal). The cross-products, and the
two k x k products per inner split that rotate them, run in the data's dtype (float32
data: float32, like the data); everything after them in float64.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vlm_brain.encoding._kernels import grid_sse, grid_sse_reference
from vlm_brain.encoding.significance import bartlett_weights

logger = logging.getLogger(__name__)

#: eigenvalues closer than this (relative) are one cluster in the partial fractions
_CLUSTER_RTOL = 1e-7


# --------------------------------------------------------------------------- statistics
@dataclass
class BlockStats:
    """Per-run sufficient statistics of a batch of targets for a stack of designs.

    Attributes
    ----------
    cross : (R, K, G) X_r^T Y_r of the stacked designs (K = sum of their widths), in the
        data's dtype (float32 or float64).
    y_sum, y_sq : (R, G) per-run sum and sum of squares of the targets.
    n : (R,) rows per run.
    """

    cross: np.ndarray
    y_sum: np.ndarray
    y_sq: np.ndarray
    n: np.ndarray


def run_transposes(stacked: np.ndarray, slices: Sequence[slice], dtype=np.float32) -> list[np.ndarray]:
    """Each run's rows of the stacked designs (T, K) as a C-contiguous (K, T_r) array of ``dtype``."""
    x = np.asarray(stacked)
    return [np.ascontiguousarray(x[rows].T, dtype=dtype) for rows in slices]


def block_stats(stacked: np.ndarray, y: np.ndarray, slices: Sequence[slice], matmul=None,
                sums: tuple[np.ndarray, np.ndarray] | None = None, out: np.ndarray | None = None,
                transposed: list[np.ndarray] | None = None) -> BlockStats:
    """`BlockStats` of targets ``y`` (T, G) for designs stacked as columns (T, K).

    ``y`` may be a column batch of a larger array (a view: BLAS reads it in place).
    ``matmul(a, b)`` computes a @ b (a backend's, e.g. on a GPU); numpy's if None.
    Products run, and are kept, in the dtype of ``y`` (float32 data: float32 GEMMs).
    ``sums``: the per-run (sums, sums of squares) (R, G) if already known
    (`_kernels.run_sums`); ``out``: a buffer of that dtype of at least (R, K, G) for the
    cross-products, reused; ``transposed``: `run_transposes` of ``stacked`` in that dtype,
    if already made (batch after batch: made once).
    """
    dtype = np.float64 if y.dtype == np.float64 else np.float32
    y = y if y.dtype == dtype else y.astype(dtype)
    transposed = run_transposes(stacked, slices, dtype) if transposed is None else transposed
    n_targets = y.shape[1]
    cross = (np.empty((len(slices), transposed[0].shape[0], n_targets), dtype=dtype) if out is None
             else out[: len(slices), : transposed[0].shape[0], :n_targets])
    for r, rows in enumerate(slices):
        design = transposed[r]  # (K, T_r): the small side contiguous
        if matmul is None and cross[r].flags.c_contiguous:
            np.matmul(design, y[rows], out=cross[r])
        else:
            cross[r] = np.asarray((matmul or np.matmul)(design, y[rows]))
    if sums is None:
        sums = (np.stack([y[rows].sum(axis=0, dtype=np.float64) for rows in slices]),
                np.stack([np.einsum("tg,tg->g", y[rows], y[rows], dtype=np.float64) for rows in slices]))
    return BlockStats(cross=cross, y_sum=sums[0], y_sq=sums[1], n=np.array([s.stop - s.start for s in slices]))


@dataclass
class Design:
    """One design (the regressors of one outer fold, or of the full refit) per run.

    Attributes
    ----------
    grams : (R, k, k) X_r^T X_r.
    sums : (R, k) X_r^T 1.
    columns : slice of this design in the stacked designs (rows of `BlockStats.cross`).
    """

    grams: np.ndarray
    sums: np.ndarray
    columns: slice
    _factors: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def eigen(self, runs: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(s, V) of the Gram matrix summed over ``runs``, computed once."""
        key = ("eigen", tuple(runs))
        if key not in self._factors:
            self._factors[key] = _eigh(self.grams[list(runs)].sum(axis=0))
        return self._factors[key]

    def validation_factor(self, train: Sequence[int], val: int) -> tuple:
        """(s, P, V', h_c) for training on ``train`` and validating on run ``val``, computed once.

        P = [V'; R V'] (2k, k) turns a training X'Y into z and R z in one product; h_c is
        the within-cluster part of h = V'H_v V: its diagonal (k,) when no eigenvalues
        cluster (the usual case: no product needed), else the (k, k) matrix
        (`grid_validation_loss`).
        """
        key = ("validation", tuple(train), val)
        if key not in self._factors:
            s, v = self.eigen(train)
            h = v.T @ self.grams[val] @ v
            within, across = _fraction_weights(s, h)
            if np.count_nonzero(within - np.diag(np.diag(within))) == 0:
                within = np.diag(within).copy()
            self._factors[key] = (s, np.vstack([v.T, across @ v.T]), v.T, within)
        return self._factors[key]

    def held_out_factor(self, train: Sequence[int], held_out: int) -> tuple[np.ndarray, np.ndarray]:
        """(h, V'X_f'1) of fitting on ``train`` and predicting run ``held_out``, computed once; h = V'X_f'X_f V."""
        key = ("held_out", tuple(train), held_out)
        if key not in self._factors:
            _, v = self.eigen(train)
            self._factors[key] = (v.T @ self.grams[held_out] @ v, self.sums[held_out] @ v)
        return self._factors[key]

    @classmethod
    def from_regressors(cls, x: np.ndarray, slices: Sequence[slice], columns: slice) -> Design:
        """Per-run blocks of regressors ``x`` (T, k)."""
        x = np.asarray(x, dtype=np.float64)
        return cls(grams=np.stack([x[s].T @ x[s] for s in slices]),
                   sums=np.stack([x[s].sum(axis=0) for s in slices]), columns=columns)

    @property
    def width(self) -> int:
        return self.grams.shape[1]


# --------------------------------------------------------------------------- k-space algebra
def _eigh(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, v = np.linalg.eigh(gram)
    return np.clip(s, 0.0, None), v


def _fraction_weights(s: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h_c, R) of the partial fractions of z' D_a h D_a z (module docstring), each (k, k)."""
    gap = s[None, :] - s[:, None]  # s_j - s_i
    scale = 0.5 * (np.abs(s)[None, :] + np.abs(s)[:, None])
    same = np.abs(gap) <= _CLUSTER_RTOL * scale + np.finfo(float).tiny
    return np.where(same, h, 0.0), np.where(same, 0.0, h / np.where(same, 1.0, gap))


def grid_validation_loss(factor, a_cross, v_cross, v_sq, alphas) -> np.ndarray:
    """Validation sum of squared errors of ridge fits for every alpha of a grid.

    Parameters
    ----------
    factor : `Design.validation_factor` of the training and validation runs.
    a_cross (k, G): training X'Y; v_cross (k, G), v_sq (G,): the validation run's X'Y and Y'Y
        (float32 cross-products: the two k x k rotations in float32, the rest in float64).
    alphas : (n_alphas,) penalties.

    Returns
    -------
    sse : (n_alphas, G) ||y_v - X_v b(a)||^2.
    """
    s, projection, vt, within = factor
    dtype = np.float32 if a_cross.dtype == np.float32 else np.float64  # the rotations in the data's precision
    z_and_rz = projection.astype(dtype) @ a_cross  # [z; R z]
    u = vt.astype(dtype) @ v_cross  # V'c_v
    inv = 1.0 / (s[:, None] + np.asarray(alphas, dtype=np.float64)[None, :])  # (k, n_alphas)
    # -2 c_v'b(a) + b(a)'H_v b(a) = sum_i 2 z_i ((R z)_i - u_i) / (s_i + a) + z_i (h_c z)_i / (s_i + a)^2
    if within.ndim == 1:  # no clustered eigenvalues: h_c z = h z elementwise, one compiled pass
        return grid_sse(z_and_rz, u, within, inv, v_sq)
    return grid_sse_reference(z_and_rz, u, within, inv, v_sq)  # clustered: h_c z is a k x k product


def select_alphas(design: Design, stats: BlockStats, train_runs: Sequence[int], alphas: np.ndarray,
                  cross_total: np.ndarray | None = None) -> np.ndarray:
    """Index in ``alphas`` of the alpha chosen per target by leave-one-run-out over ``train_runs``.

    The score is himalaya's: mean over inner splits of -SSE / n_val, plus 1e-10 log(alpha)
    so that ties go to the larger alpha. With a single training run there is no inner
    split and the largest alpha is chosen. ``cross_total`` (k, G): the design's X'Y summed
    over ``train_runs``, if already known.
    """
    cross = stats.cross[:, design.columns]
    train_runs = list(train_runs)
    if len(train_runs) < 2:
        return np.full(stats.cross.shape[2], len(alphas) - 1)
    cross_total = sum_over_runs(cross, train_runs) if cross_total is None else cross_total
    score = np.zeros((len(alphas), cross.shape[2]))
    inner_cross = np.empty_like(cross_total)
    for val in train_runs:
        inner = [r for r in train_runs if r != val]
        np.subtract(cross_total, cross[val], out=inner_cross)
        sse = grid_validation_loss(design.validation_factor(inner, val), inner_cross,
                                   cross[val], stats.y_sq[val], alphas)
        score -= sse / stats.n[val]
    score /= len(train_runs)
    score += (np.log(alphas) * 1e-10)[:, None]
    return np.argmax(score, axis=0)


def sum_over_runs(cross: np.ndarray, runs: Sequence[int]) -> np.ndarray:
    """(k, G) sum of ``cross[r]`` (R, k, G) over ``runs`` in its dtype, without a fancy-indexed copy."""
    total = np.array(cross[runs[0]])
    for r in runs[1:]:
        total += cross[r]
    return total


def ridge_weights_eigen(design: Design, runs: Sequence[int], cross: np.ndarray,
                        alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ridge weights of ``design`` fitted on ``runs``, in its Gram eigenbasis.

    ``cross`` (k, G) is X'Y summed over ``runs``, ``alpha`` (G,) the per-target penalty.
    Returns (V, W) with b = V @ W.
    """
    s, v = design.eigen(runs)
    return v, (v.T @ cross) / (s[:, None] + alpha[None, :])


# --------------------------------------------------------------------------- cross-validation
@dataclass
class FoldScores:
    """Pooled leave-one-run-out accuracy of a batch of targets.

    Attributes
    ----------
    r : (G,) pooled held-out Pearson r.
    alpha_index : (n_folds, G) chosen alpha per fold (index into the grid).
    mean : (G,) mean of r over the group of circular shifts of each run's predictions.
    denom : (G,) ||p - pbar|| ||y - ybar|| of the pooled r (0 for a constant target).
    weights : per fold (k, G) ridge weights, if requested.
    """

    r: np.ndarray
    alpha_index: np.ndarray
    mean: np.ndarray
    denom: np.ndarray
    weights: list[np.ndarray] | None = None


def cross_validated_scores(folds: Sequence[Design], stats: BlockStats, alphas: np.ndarray,
                           keep_weights: bool = False) -> FoldScores:
    """Leave-one-run-out ridge (fold f holds out run f), alpha per target and fold.

    Parameters
    ----------
    folds : one `Design` per run, fold f's regressors for every run.
    stats : `block_stats` of the stacked designs.
    alphas : the grid, sorted.
    keep_weights : also return each fold's weights (to form its held-out predictions).
    """
    n_runs, _, n_targets = stats.cross.shape
    alpha_index = np.empty((n_runs, n_targets), dtype=np.int64)
    num = np.zeros(n_targets)
    p_sq = np.zeros(n_targets)
    p_run_sums = np.zeros((n_runs, n_targets))
    weights = [] if keep_weights else None
    for f, design in enumerate(folds):
        train = [r for r in range(n_runs) if r != f]
        cross = stats.cross[:, design.columns]
        cross_train = sum_over_runs(cross, train)
        alpha_index[f] = select_alphas(design, stats, train, alphas, cross_total=cross_train)
        v, w = ridge_weights_eigen(design, train, cross_train, alphas[alpha_index[f]])
        h, sums = design.held_out_factor(train, f)
        b = v @ w  # the weights; c_f'b, unlike (V'c_f)'w, needs no float64 copy of c_f (~2.5x faster)
        num += np.einsum("kg,kg->g", cross[f], b)
        if keep_weights:
            weights.append(b)
        p_run_sums[f] = sums @ w
        p_sq += np.einsum("kg,kg->g", h @ w, w)
    p_sum = p_run_sums.sum(axis=0)
    total = stats.n.sum()
    y_sum = stats.y_sum.sum(axis=0)
    p_norm2 = np.maximum(p_sq - p_sum**2 / total, 0.0)
    y_norm2 = np.maximum(stats.y_sq.sum(axis=0) - y_sum**2 / total, 0.0)
    denom = np.sqrt(p_norm2 * y_norm2)
    ok = denom > 0
    r = np.where(ok, (num - p_sum * y_sum / total) / np.where(ok, denom, 1.0), 0.0)
    # shifts within runs keep each run's means: E_s[r] = sum_r n_r (pbar_r - pbar)(ybar_r - ybar) / denom
    n = stats.n[:, None]
    offsets = n * (p_run_sums / n - p_sum / total) * (stats.y_sum / n - y_sum / total)
    mean = np.where(ok, offsets.sum(axis=0) / np.where(ok, denom, 1.0), 0.0)
    return FoldScores(r=r, alpha_index=alpha_index, mean=mean, denom=np.where(ok, denom, 0.0), weights=weights)


def cross_validated_r(fold_regressors: Sequence[np.ndarray], y: np.ndarray, slices: Sequence[slice],
                      alphas: np.ndarray, matmul=None, batch_size: int = 4096) -> np.ndarray:
    """(G,) pooled leave-one-run-out r of ridge with alpha per target and fold, from sufficient statistics.

    What ``ridge.cross_validate_encoding(...).r`` computes with himalaya (inner CV leaving
    one training run out), for regressors that are built per fold but defined on every
    row (e.g. fixed loadings' atom time courses standardised with each fold's training
    statistics), in ~one pass over the data.

    Parameters
    ----------
    fold_regressors : R arrays (T, k): fold f's regressors (fold f holds out run f) on all rows.
    y : (T, G) targets; float32 data: float32 cross-products.
    slices : the R runs' rows; alphas : the ridge grid, sorted ascending.
    matmul : a backend's a @ b (None: numpy).

    Returns
    -------
    r : (G,) float64; 0 where the pooled prediction is constant.
    """
    from vlm_brain.encoding.ridge import _target_batches  # noqa: PLC0415 - ridge is the batching's one home

    if len(fold_regressors) != len(slices):
        raise ValueError(f"{len(fold_regressors)} fold regressors for {len(slices)} runs: one per run")
    width = np.shape(fold_regressors[0])[1]
    stacked = np.hstack([np.asarray(x, dtype=np.float64) for x in fold_regressors])
    folds = [Design.from_regressors(stacked[:, f * width:(f + 1) * width], slices, slice(f * width, (f + 1) * width))
             for f in range(len(slices))]
    dtype = np.float64 if y.dtype == np.float64 else np.float32
    transposed = run_transposes(stacked, slices, dtype)
    r = np.empty(y.shape[1])
    for cols in _target_batches(y.shape[1], batch_size):
        stats = block_stats(stacked, y[:, cols], slices, matmul, transposed=transposed)
        r[cols] = cross_validated_scores(folds, stats, np.asarray(alphas, dtype=np.float64)).r
    return r


def shift_spread(denom: np.ndarray, predicted_lags: np.ndarray, data_lags: np.ndarray, n: np.ndarray) -> np.ndarray:
    """sd of the pooled r over independent circular shifts of each run's predictions.

    For one run of length n, Var_s sum_t p(t - s) y(t) = (1/n) sum_l gamma_p(l) gamma_y(l)
    over all n circular lags (Wiener-Khinchin), with gamma the lagged products of the
    per-run-centred series; runs are shifted independently, so their variances add.
    The lags used are 0 and +-1 .. +-L, L = min(max_lag, (n - 1) // 2): exact when they
    cover the circle, a lag window otherwise.

    Parameters
    ----------
    denom : (G,) `FoldScores.denom`.
    predicted_lags, data_lags : (R, max_lag + 1, G) lagged products of the centred
        held-out predictions and data (`lag_products`).
    n : (R,) run lengths.
    """
    variance = np.zeros(denom.shape)
    for r, length in enumerate(n):
        n_lags = min(predicted_lags.shape[1] - 1, (int(length) - 1) // 2) + 1
        weights = np.r_[1.0, 2.0 * np.ones(n_lags - 1)]
        variance += np.einsum("l,lg,lg->g", weights, predicted_lags[r, :n_lags], data_lags[r, :n_lags]) / length
    ok = denom > 0
    return np.where(ok, np.sqrt(np.maximum(variance, 0.0)) / np.where(ok, denom, 1.0), 0.0)


def fitted_values_t(weights: np.ndarray, x: np.ndarray, matmul=None, dtype=np.float32,
                    out: np.ndarray | None = None) -> np.ndarray:
    """(G, T) fitted values (x @ weights).T of weights (k, G) on regressors x (T, k), into ``out`` if given."""
    a, b = np.ascontiguousarray(weights.T, dtype=dtype), np.ascontiguousarray(x.T, dtype=dtype)
    if matmul is None:
        return np.matmul(a, b, out=out)
    if out is None:
        return np.asarray(matmul(a, b))
    out[...] = matmul(a, b)
    return out


class HacFactor:
    """What the HAC t of one design needs from the design alone, per alpha computed once.

    ``grams`` (L + 1, k, k) are the within-run lagged Gram matrices
    (`significance.lagged_gram`) of the fitted regressors, over ``n_samples`` rows.
    """

    def __init__(self, grams: np.ndarray, n_samples: int):
        self.grams, self.n_samples = grams, n_samples
        self.s, self.v = _eigh(grams[0])
        self._by_alpha: dict[float, tuple[np.ndarray, float]] = {}

    def __call__(self, alpha: float) -> tuple[np.ndarray, float]:
        """(diag(M S_l M) per lag (L + 1, k), df) with M = (S_0 + alpha I)^-1."""
        if alpha not in self._by_alpha:
            m = (self.v / (self.s + alpha)) @ self.v.T
            # diag(M S_l M)_i = sum_j M_ij (S_l M)_ji: L + 1 products (~20x faster than one 4-index einsum)
            self._by_alpha[alpha] = (np.einsum("ij,lji->li", m, np.matmul(self.grams, m)),
                                     float(np.sum(self.s / (self.s + alpha))))
        return self._by_alpha[alpha]


def hac_t(factor: HacFactor, coefficients: np.ndarray, alphas: np.ndarray,
          residual_lags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HAC (Newey-West) t of ridge coefficients, as `significance.atom_maps` defines it.

    Parameters
    ----------
    factor : `HacFactor` of the fitted design; coefficients (k, G); alphas (G,) per target.
    residual_lags : (R, L + 1, G) within-run lagged products of the residuals.

    Returns
    -------
    t : (k, G) float64; dof : (G,) residual degrees of freedom T - df(alpha).
    """
    max_lag = factor.grams.shape[0] - 1
    n_samples = factor.n_samples
    lag_factor = np.r_[1.0, 2.0 * np.ones(max_lag)] * bartlett_weights(max_lag)
    gamma = residual_lags.sum(axis=0) / n_samples * lag_factor[:, None]  # (L + 1, G)
    t = np.empty(coefficients.shape)
    dof = np.empty(coefficients.shape[1])
    for alpha in np.unique(alphas):
        targets = np.flatnonzero(alphas == alpha)
        q_lags, df = factor(float(alpha))
        variance = q_lags.T @ gamma[:, targets] * n_samples / (n_samples - df)
        with np.errstate(divide="ignore", invalid="ignore"):
            t[:, targets] = coefficients[:, targets] / np.sqrt(variance)
        dof[targets] = n_samples - df
    return np.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0), dof
