"""Sparse dictionary learning (SDL) of a layer's artificial-neuron (AN) time series.

A layer's ANs X (T x N, z-scored) are factorised as X ~= D A with D (T x k) unit-norm
temporal atoms and A (k x N) sparse loadings, minimising::

    0.5 * ||X - D A||_F^2 + alpha * ||A||_1,1      subject to ||D[:, j]||_2 <= 1

This is scikit-learn's dictionary learning on X.T (samples = ANs, features = time):
``components_`` (k x T) are the atoms and the code (N x k) is A.T. In the method's
notation ``||X - DA||^2 + lambda ||A||_1``, lambda = 2 * alpha. Atoms that end with a
norm below 1 are rescaled to unit norm with the loadings scaled inversely, so D A is
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging

import numpy as np
from sklearn.utils.extmath import svd_flip

from vlm_brain.encoding._validation import check_time_series

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SparseDictionary:
    """A fitted sparse dictionary of one layer.

    Attributes
    ----------
    atoms : (T, k) float32, unit-norm temporal atoms D (columns) on the fitted samples.
    loadings : (k, N) float32, sparse AN loadings A.
    alpha : L1 penalty (scikit-learn convention, lambda = 2 * alpha).
    reconstruction_error : ||X - D A||_F / ||X||_F on the fitted data.
    n_iter : iterations run by the solver.
    """

    atoms: np.ndarray
    loadings: np.ndarray
    alpha: float
    reconstruction_error: float
    n_iter: int

    @property
    def n_atoms(self) -> int:
        return self.loadings.shape[0]

    @property
    def sparsity(self) -> float:
        """Fraction of zero loadings."""
        return float(np.mean(self.loadings == 0))


def check_sdl_input(x: np.ndarray, n_atoms: int) -> np.ndarray:
    """Validate X (T x N) for SDL; raise ValueError naming the problem and its count."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (n_samples, n_ans), got shape {x.shape}")
    n_non_finite_cols = int(np.count_nonzero(~np.isfinite(x).all(axis=0)))
    if n_non_finite_cols:
        raise ValueError(
            f"x (shape {x.shape}) has {n_non_finite_cols} AN columns with NaN or inf values"
        )
    x = check_time_series(x, "x")
    n_constant = int(np.count_nonzero(np.ptp(x, axis=0) == 0))
    if n_constant:
        raise ValueError(
            f"x (shape {x.shape}) has {n_constant} constant AN columns; drop them before "
            "SDL (a constant AN carries no temporal pattern)"
        )
    n_samples, n_ans = x.shape
    if not 1 <= n_atoms <= min(n_samples, n_ans):
        raise ValueError(
            f"n_atoms={n_atoms} must be between 1 and min(n_samples, n_ans) = "
            f"min({n_samples}, {n_ans}) = {min(n_samples, n_ans)}"
        )
    return x


def fit_sparse_dictionary(
    x: np.ndarray,
    n_atoms: int = 64,
    alpha: float = 1.0,
    random_state: int = 0,
    max_iter: int = 100,
) -> SparseDictionary:
    """Learn k temporal atoms and sparse AN loadings from one layer's ANs.

    Parameters
    ----------
    x : (T, N) AN time series, z-scored per run (columns must not be constant).
    n_atoms : k, number of atoms, 1 <= k <= min(T, N).
    alpha : L1 penalty on the loadings (scikit-learn convention, lambda = 2 alpha). By
        the lasso optimality conditions AN n loads on atom j only if
        |<x_n - sum_{i != j} d_i a_in, d_j>| > alpha, with unit-norm d_j and z-scored
        x_n of norm sqrt(T).
    random_state : seed; the same seed on the same data gives the same dictionary.
    max_iter : maximum number of alternating passes (code update, dictionary update).

    Returns
    -------
    SparseDictionary with atoms (T, k) and loadings (k, N), each atom oriented so that
    its loadings sum to >= 0.

    Notes
    -----
    Solver: the algorithm of scikit-learn's batch ``DictionaryLearning`` (SVD
    initialisation, alternating lasso coding by coordinate descent warm-started from the
    previous code, and block-coordinate dictionary updates projected on the unit ball,
    stopping when the cost decreases by less than ``tol`` relative), with the coding step
    vectorised over ANs (:func:`lasso_codes`). scikit-learn solves one lasso per AN in a
    Python-level loop, which made it most of the encoding time; the result agrees with
    scikit-learn's to solver tolerance (tested). ``MiniBatchDictionaryLearning``
    converged more slowly at this size (768 ANs are only a few mini-batches).
    """
    x = check_sdl_input(x, n_atoms).astype(np.float64)
    samples = x.T  # (N, T): one sample per AN, one feature per time point
    u, s, vt = _top_singular_vectors(samples, n_atoms)
    code, dictionary, n_iter = _alternate(samples, u, s[:, None] * vt, alpha, max_iter, random_state)
    atoms, loadings = _orient(*_unit_norm_atoms(dictionary.T, code.T))
    residual = np.linalg.norm(x - atoms @ loadings) / np.linalg.norm(x)
    return SparseDictionary(
        atoms=atoms.astype(np.float32),
        loadings=loadings.astype(np.float32),
        alpha=float(alpha),
        reconstruction_error=float(residual),
        n_iter=n_iter,
    )


def soft_threshold(z: np.ndarray, threshold: float) -> np.ndarray:
    """sign(z) * max(|z| - threshold, 0), elementwise."""
    return np.sign(z) * np.maximum(np.abs(z) - threshold, 0.0)


def lasso_codes(
    dictionary: np.ndarray,
    samples: np.ndarray,
    alpha: float,
    init: np.ndarray | None = None,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> np.ndarray:
    """Lasso codes of many samples on one dictionary, by coordinate descent.

    Solves, for every sample y_n independently, ``min_a 0.5 ||y_n - a D||^2 + alpha ||a||_1``
    (scikit-learn's ``sparse_encode(algorithm="lasso_cd")`` objective), updating
    coordinate j of all samples at once from the Gram matrix D D^T.

    Parameters
    ----------
    dictionary : (k, F) atoms as rows.
    samples : (n, F) samples as rows.
    alpha : L1 penalty (>= 0).
    init : (n, k) warm start, zeros if None.
    max_iter : maximum passes over the k coordinates.
    tol : stop when no code entry changed by more than ``tol`` times the largest |code|.

    Returns
    -------
    code : (n, k) float64.
    """
    gram = dictionary @ dictionary.T  # (k, k)
    cov = dictionary @ samples.T  # (k, n)
    k = gram.shape[0]
    code = np.zeros((k, samples.shape[0])) if init is None else np.array(init, dtype=np.float64).T.copy()
    diag = np.diag(gram).copy()
    for _ in range(max_iter):
        largest_step = 0.0
        for j in range(k):
            if diag[j] <= 0:
                code[j] = 0.0
                continue
            previous = code[j].copy()
            rho = cov[j] - gram[j] @ code + diag[j] * previous
            code[j] = soft_threshold(rho, alpha) / diag[j]
            largest_step = max(largest_step, float(np.max(np.abs(code[j] - previous), initial=0.0)))
        if largest_step <= tol * max(float(np.max(np.abs(code), initial=0.0)), np.finfo(float).tiny):
            break
    return code.T


def _update_dictionary(
    dictionary: np.ndarray, samples: np.ndarray, code: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One block-coordinate pass over the atoms (rows of ``dictionary``, (k, F)).

    Each atom minimises ||Y - code D||^2 with the others fixed, then is projected on the
    unit ball. An atom no AN uses is replaced by a random sample plus 1% noise (as in
    scikit-learn) so that it can be picked up again.
    """
    dictionary = dictionary.copy()
    gram = code.T @ code  # (k, k)
    cross = samples.T @ code  # (F, k)
    for j in range(dictionary.shape[0]):
        if gram[j, j] > 1e-6:
            dictionary[j] += (cross[:, j] - gram[j] @ dictionary) / gram[j, j]
        else:
            sample = samples[rng.integers(len(samples))]
            dictionary[j] = sample + rng.normal(0.0, 0.01 * (sample.std() or 1.0), size=sample.shape)
            code[:, j] = 0.0
        dictionary[j] /= max(np.linalg.norm(dictionary[j]), 1.0)
    return dictionary


def _alternate(
    samples: np.ndarray, code: np.ndarray, dictionary: np.ndarray, alpha: float, max_iter: int,
    random_state: int, tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Alternate lasso coding and dictionary updates; (code (n, k), dictionary (k, F), iterations)."""
    rng = np.random.default_rng(random_state)
    previous_cost = np.inf
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        code = lasso_codes(dictionary, samples, alpha, init=code)
        dictionary = _update_dictionary(dictionary, samples, code, rng)
        cost = 0.5 * np.sum((samples - code @ dictionary) ** 2) + alpha * np.abs(code).sum()
        if previous_cost - cost < tol * cost:
            break
        previous_cost = cost
    return code, dictionary, n_iter


def _top_singular_vectors(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k SVD of a (n, T) matrix from the eigendecomposition of its (T, T) Gram matrix.

    This is scikit-learn's SVD initialisation of DictionaryLearning (same vectors up to
    the sign convention of ``svd_flip``), computed on the small Gram matrix: LAPACK's
    SVD of the ill-conditioned AN matrices of real layers takes seconds on few cores.
    """
    values, vectors = np.linalg.eigh(a.T @ a)
    order = np.argsort(values)[::-1][:k]
    s = np.sqrt(np.clip(values[order], 0, None))
    vt = vectors[:, order].T
    u = (a @ vt.T) / np.where(s > 0, s, 1.0)
    u, vt = svd_flip(u, vt)
    return u, s, vt


def _orient(atoms: np.ndarray, loadings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip atoms (T, k) and their loadings (k, N) so that each atom's loadings sum to >= 0.

    D A is unchanged; the convention gives atoms, and so BN polarity, a reproducible sign:
    an atom rises when the ANs that (mostly) make it up rise.
    """
    flip = np.where(loadings.sum(axis=1) < 0, -1.0, 1.0)
    return atoms * flip, loadings * flip[:, None]


def _unit_norm_atoms(atoms: np.ndarray, loadings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale atoms (T, k) to unit norm and loadings (k, N) inversely; zero atoms stay."""
    norms = np.linalg.norm(atoms, axis=0)
    scale = np.where(norms > 0, norms, 1.0)
    return atoms / scale, loadings * scale[:, None]


def atom_timecourses(x: np.ndarray, loadings: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Atom time courses of (possibly held-out) ANs given fixed loadings.

    Least squares of X on the loadings with a small ridge::

        D = X A^T (A A^T + eps * tr(A A^T) / k * I)^-1

    i.e. the D minimising ||X - D A||_F^2 for the A learned on training runs, so held-out
    runs are described by the training dictionary without refitting (nothing leaks).
    The relative ``eps`` keeps atoms with (near) zero loadings finite (they get ~0).

    Parameters
    ----------
    x : (T, N) AN time series, prepared like the training data.
    loadings : (k, N) sparse loadings A from `fit_sparse_dictionary`.
    eps : ridge relative to the mean eigenvalue of A A^T.

    Returns
    -------
    timecourses : (T, k) float32.
    """
    x = check_time_series(x, "x")
    loadings = np.asarray(loadings, dtype=np.float64)
    if loadings.ndim != 2 or loadings.shape[1] != x.shape[1]:
        raise ValueError(
            f"loadings must be (k, N) with N = {x.shape[1]} ANs of x, got {loadings.shape}"
        )
    gram = loadings @ loadings.T
    ridge = eps * max(np.trace(gram) / gram.shape[0], np.finfo(float).tiny)
    gram[np.diag_indices_from(gram)] += ridge
    projector = np.linalg.solve(gram, loadings).T  # (N, k) = A^T (A A^T + r I)^-1
    return (x.astype(np.float64) @ projector).astype(np.float32)
