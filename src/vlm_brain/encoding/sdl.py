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

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from sklearn.utils.extmath import svd_flip

from vlm_brain.encoding._kernels import code_cross, lasso_codes_gram, update_atoms
from vlm_brain.encoding._lapack import top_eigenvectors
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
    gram: np.ndarray | None = None,
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
    gram : (N, N) X^T X in float64 if already known (e.g. summed from per-run blocks).

    Returns
    -------
    SparseDictionary with atoms (T, k) and loadings (k, N), each atom oriented so that
    its loadings sum to >= 0.

    Notes
    -----
    Solver: the algorithm of scikit-learn's batch ``DictionaryLearning`` (SVD
    initialisation, alternating lasso coding by coordinate descent warm-started from the
    previous code, and block-coordinate dictionary updates projected on the unit ball,
    stopping when the cost decreases by less than ``tol`` relative), run in the
    r <= N dimensional span of the data (:func:`fit_sparse_loadings`) with a compiled
    coding step; its objective matches scikit-learn's to solver tolerance (tested).
    """
    x = check_sdl_input(x, n_atoms).astype(np.float64)
    if len(x) >= x.shape[1]:  # the N x N Gram matrix
        fit = _fit_reduced(n_atoms, alpha, random_state, max_iter, len(x), gram=x.T @ x if gram is None else gram)
    else:
        fit = _fit_reduced(n_atoms, alpha, random_state, max_iter, len(x), spectrum=data_spectrum(x))
    atoms = x @ fit.time_weights
    loadings = fit.code.T
    atoms, loadings = _orient(*_unit_norm_atoms(atoms, loadings))
    residual = np.linalg.norm(x - atoms @ loadings) / np.linalg.norm(x)
    return SparseDictionary(
        atoms=atoms.astype(np.float32),
        loadings=loadings.astype(np.float32),
        alpha=float(alpha),
        reconstruction_error=float(residual),
        n_iter=fit.n_iter,
    )


def fit_layer_dictionary(
    x: np.ndarray, n_atoms: int = 64, alpha: float = 1.0, random_state: int = 0, max_iter: int = 100,
    gram: np.ndarray | None = None,
) -> SparseDictionary:
    """The SDL of one layer's rows, as the encoding fits it everywhere.

    ANs constant over the rows are left out of the fit (they carry nothing and would
    break z-scoring) and get loading 0; otherwise as `fit_sparse_dictionary` (``gram``:
    X^T X of all N ANs, float64, if already known).

    Returns:
        The dictionary, ``loadings`` (k, N) at the layer's full width.
    """
    x = np.asarray(x)
    varying = np.ptp(x, axis=0) > 0
    if not varying.all():
        logger.info("SDL: %d constant ANs left out", int((~varying).sum()))
    gram = None if gram is None else np.asarray(gram, dtype=np.float64)[np.ix_(varying, varying)]
    fitted = fit_sparse_dictionary(x[:, varying], n_atoms, alpha, random_state, max_iter=max_iter, gram=gram)
    loadings = np.zeros((n_atoms, x.shape[1]), dtype=np.float32)
    loadings[:, varying] = fitted.loadings
    return dataclasses.replace(fitted, loadings=loadings)


def data_spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues, eigenvectors) of X^T X for X (T, N), from the smaller of X^T X and X X^T.

    With fewer rows than ANs (short data, many ANs) the T x T problem is solved and the
    AN-space eigenvectors are X^T u / sqrt(lambda); the eigenvalues that are not
    (numerically) zero are the same either way. Returns them in any order.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] >= x.shape[1]:
        return np.linalg.eigh(x.T @ x)
    energy, u = np.linalg.eigh(x @ x.T)
    keep = energy > 1e-12 * max(float(energy.max()), np.finfo(float).tiny)
    energy, u = energy[keep], u[:, keep]
    return energy, (x.T @ u) / np.sqrt(energy)


def fit_sparse_loadings(
    gram: np.ndarray | None, n_atoms: int = 64, alpha: float = 1.0, random_state: int = 0, max_iter: int = 100,
    n_samples: int | None = None, spectrum: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The loadings `fit_sparse_dictionary` learns, from the AN Gram matrix X^T X alone.

    SDL only sees the data through its Gram matrix: with X = U S W^T, every atom stays in
    the span of U (SVD initialisation, dictionary updates, unit-ball projection), so
    the problem is solved exactly on an r x N square root of X^T X instead of the T x N
    data, and a fold's dictionary needs only the sum of its training runs' Gram blocks.
    The square root is the Cholesky factor (with the top k eigenvectors for the
    initialisation: ~60% of a fit's setup with a full eigendecomposition) or, for
    singular X^T X, S W^T (`_start_from_cholesky`, `_start_from_spectrum`).

    Parameters
    ----------
    gram : (N, N) X^T X of the training rows (no constant AN: every diagonal entry > 0).
    n_samples : T of those rows (scales the noise of re-initialised atoms only).
    spectrum : instead of ``gram``, its eigendecomposition (`data_spectrum` of the rows:
        cheaper when there are fewer rows than ANs).

    Returns
    -------
    loadings : (k, N) float32, unit-norm atoms, oriented as in `fit_sparse_dictionary`.
    """
    if spectrum is None:
        gram = np.asarray(gram, dtype=np.float64)
        if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
            raise ValueError(f"gram must be a square (N, N) matrix, got shape {gram.shape}")
        if np.any(np.diag(gram) <= 0):
            raise ValueError(f"gram has {int(np.sum(np.diag(gram) <= 0))} constant (all-zero) ANs; drop them first")
    n_ans = (gram if spectrum is None else spectrum[1]).shape[0]
    if not 1 <= n_atoms <= n_ans:
        raise ValueError(f"n_atoms={n_atoms} must be between 1 and the number of ANs ({n_ans})")
    fit = _fit_reduced(n_atoms, alpha, random_state, max_iter, n_samples, gram=gram if spectrum is None else None,
                       spectrum=spectrum)
    norms = np.linalg.norm(fit.dictionary, axis=1)  # = norms of the time-domain atoms
    loadings = fit.code.T * np.where(norms > 0, norms, 1.0)[:, None]
    return (loadings * _orientation(loadings)[:, None]).astype(np.float32)


@dataclass(frozen=True)
class _ReducedFit:
    code: np.ndarray  # (N, k)
    dictionary: np.ndarray  # (k, r) atoms in the coordinates of the samples Y (any Y with Y Y^T = X^T X)
    time_weights: np.ndarray  # (N, k): the atoms in time are X @ time_weights
    n_iter: int


def _start_from_spectrum(spectrum, n_atoms):
    """Samples, SVD initialisation and time map in the eigenbasis of X^T X: Y = W sqrt(E)."""
    energy, basis = spectrum
    order = np.argsort(energy)[::-1]
    energy = np.clip(energy[order], 0.0, None)
    n_kept = max(n_atoms, int(np.sum(energy > 1e-12 * energy[0])))
    energy, basis = energy[:n_kept], basis[:, order[:n_kept]]
    energy = np.where(energy > 0, energy, np.finfo(float).tiny)
    # scikit-learn's SVD initialisation: code = top-k left singular vectors of the
    # samples, dictionary = singular values x right singular vectors (here unit vectors)
    u, vt = svd_flip(basis[:, :n_atoms].copy(), np.eye(n_kept)[:n_atoms])
    dictionary = np.sqrt(energy[:n_atoms])[:, None] * vt
    return basis * np.sqrt(energy), u, dictionary, lambda d: (basis / np.sqrt(energy)) @ d.T


def _start_from_cholesky(gram, n_atoms):
    """The same start in the coordinates of the Cholesky factor, Y = L (X^T X = L L^T); None if singular.

    With X^T = L M^T (M = X L^-T, orthonormal columns) the right singular vectors of L
    are v_j = L^T w_j / sqrt(e_j) for the eigenpairs (e_j, w_j) of X^T X, so the SVD
    initialisation needs only the top k eigenvectors, and an atom d in these coordinates
    is M d = X L^-T d in time. SDL's iterations are the same in any orthonormal
    coordinates of the data's span. Both factorisations release the GIL (numpy's
    Cholesky; LAPACK's partial eigendecomposition through `_lapack.top_eigenvectors`):
    scipy's wrappers hold it, ~80 ms per fit, stalling the fit beside it.
    """
    try:  # numpy's LAPACK call releases the GIL (scipy's holds it: fits side by side would wait on each other)
        factor = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        return None
    if np.min(np.diag(factor)) ** 2 <= 1e-10 * np.max(np.diag(gram)):  # (nearly) dependent ANs: the eigen route
        return None
    top = top_eigenvectors(gram, n_atoms)  # largest first
    u, _ = svd_flip(top.copy(), np.eye(n_atoms))
    return factor, u, u.T @ factor, lambda d: linalg.solve_triangular(factor, d.T, trans="T", lower=True)


def _fit_reduced(n_atoms, alpha, random_state, max_iter, n_samples=None, gram=None, spectrum=None) -> _ReducedFit:
    """SDL on the r x N square root of X^T X: from ``gram`` (Cholesky, or its spectrum if singular) or ``spectrum``."""
    start = _start_from_cholesky(gram, n_atoms) if gram is not None else None
    triangular = start is not None  # the Cholesky factor: zeros above its diagonal
    if start is None:
        start = _start_from_spectrum(np.linalg.eigh(gram) if spectrum is None else spectrum, n_atoms)
    samples, u, dictionary, to_time = start
    noise_scale = 1.0 / np.sqrt(n_samples or samples.shape[1])
    code, dictionary, n_iter = _alternate(samples, u, dictionary, alpha, max_iter, random_state, noise_scale,
                                          lower_triangular=triangular)
    return _ReducedFit(code=code, dictionary=dictionary, time_weights=to_time(dictionary), n_iter=n_iter)


def _update_dictionary(
    dictionary: np.ndarray, samples: np.ndarray, code: np.ndarray, rng: np.random.Generator,
    noise_scale: float, samples32: np.ndarray | None = None, lower_triangular: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One block-coordinate pass over the atoms (rows of ``dictionary``, (k, F)); (dictionary, C^T C).

    Each atom minimises ||Y - code D||^2 with the others fixed, then is projected on the
    unit ball. An atom no AN uses is replaced by a random sample plus 1% noise (as in
    scikit-learn) so that it can be picked up again; its code column is zeroed (in place),
    and so is its row and column of the returned C^T C. ``lower_triangular``: the samples
    are square with zeros above the diagonal (`code_cross` skips them).
    """
    dictionary = np.array(dictionary, dtype=np.float64, order="C")
    gram = code.T @ code  # (k, k)
    cross = code_cross(code, samples if samples32 is None else samples32,  # (k, F) = C^T Y, from the code's non-zeros
                       lower_triangular=lower_triangular)
    dead = np.flatnonzero(np.diag(gram) <= 1e-6)
    for j in dead:  # drawn in atom order, before the pass (they do not depend on it)
        sample = samples[rng.integers(len(samples))]
        scale = 0.01 * (np.linalg.norm(sample) * noise_scale or 1.0)
        cross[j] = sample + rng.normal(0.0, scale, size=sample.shape)
        code[:, j] = 0.0
    gram = np.ascontiguousarray(gram)
    update_atoms(dictionary, gram, cross, np.isin(np.arange(len(gram)), dead))
    gram[dead, :] = 0.0
    gram[:, dead] = 0.0
    return dictionary, gram


def _alternate(
    samples: np.ndarray, code: np.ndarray, dictionary: np.ndarray, alpha: float, max_iter: int,
    random_state: int, noise_scale: float, tol: float = 1e-8, lower_triangular: bool = False,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Alternate lasso coding and dictionary updates; (code (n, k), dictionary (k, F), iterations).

    The cost 0.5 ||Y - C D||^2 + alpha |C|_1 is evaluated from Gram matrices, and the
    correlations Y D^T and D D^T it needs are the next coding step's input (each
    computed once per iteration). The two large products, that n x F x k one and the
    dictionary update's C^T Y (`code_cross`), run in float32 (half the time of float64;
    on the benchmark layer the final objective moves by 2e-7 and 3e-8 relative, one fit
    1.29 -> 1.07 s on one core); everything else stays float64 (a float32 lasso descent,
    17% faster, moved the dictionaries enough to flip a borderline BN of the ROI example).
    With ``lower_triangular`` samples (the Cholesky factor of X^T X) the sparse C^T Y
    skips the zeros above the diagonal (BLAS ``trmm`` would halve the dense products too,
    but scipy's wrapper holds the GIL: two fits side by side ran 1.5x slower).
    """
    rng = np.random.default_rng(random_state)
    samples = np.ascontiguousarray(samples)
    sq_norm = float(np.sum(samples**2))
    previous_cost = np.inf
    n_iter = 0
    samples32 = samples.astype(np.float32)
    cov_t = samples @ dictionary.T  # (n, k)
    atom_gram = dictionary @ dictionary.T
    for n_iter in range(1, max_iter + 1):
        code = lasso_codes_gram(atom_gram, cov_t, alpha, init=code, samples_first=True)
        dictionary, code_gram = _update_dictionary(dictionary, samples, code, rng, noise_scale, samples32,
                                                   lower_triangular)
        cov_t = (samples32 @ dictionary.T.astype(np.float32)).astype(np.float64)  # (n, k), float32 product
        atom_gram = dictionary @ dictionary.T
        fit = sq_norm - 2.0 * np.vdot(cov_t, code) + np.vdot(code_gram, atom_gram)
        cost = 0.5 * max(fit, 0.0) + alpha * np.abs(code).sum()
        if previous_cost - cost < tol * cost:
            break
        previous_cost = cost
    return code, dictionary, n_iter


def sdl_objective(x: np.ndarray, atoms: np.ndarray, loadings: np.ndarray, alpha: float) -> float:
    """0.5 ||X - D A||_F^2 + alpha ||A||_1 with unit-norm atoms D (T, k), loadings A (k, N)."""
    return float(0.5 * np.sum((x - atoms @ loadings) ** 2) + alpha * np.abs(loadings).sum())


def _orient(atoms: np.ndarray, loadings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip atoms (T, k) and their loadings (k, N) so that each atom's loadings sum to >= 0.

    D A is unchanged; the convention gives atoms, and so BN polarity, a reproducible sign:
    an atom rises when the ANs that (mostly) make it up rise.
    """
    flip = _orientation(loadings)
    return atoms * flip, loadings * flip[:, None]


def _orientation(loadings: np.ndarray) -> np.ndarray:
    """(k,) +1 or -1 per atom: the sign that makes its loadings (k, N) sum to >= 0."""
    return np.where(loadings.sum(axis=1) < 0, -1.0, 1.0)


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
    return (np.asarray(x, dtype=np.float64) @ projector).astype(np.float32)
