"""Sparse dictionary learning: recovery of planted atoms, reproducibility, errors."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from scipy.optimize import linear_sum_assignment

from vlm_brain.encoding.sdl import atom_timecourses, fit_sparse_dictionary
from vlm_brain.encoding.simulation import simulate_layer
from vlm_brain.encoding.temporal import prepare_regressors


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small matrices: threaded BLAS only spins on the shared CPUs."""
    with threadpool_limits(limits=1):
        yield


def matched_abs_corr(estimated: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """|corr| of each planted atom (column) with its best one-to-one estimated match."""
    k = planted.shape[1]
    corr = np.abs(np.corrcoef(estimated.T, planted.T)[: estimated.shape[1], estimated.shape[1] :])
    rows, cols = linear_sum_assignment(-corr)
    assert len(cols) == k
    return corr[rows, cols]


@pytest.fixture(scope="module")
def layer():
    sim = simulate_layer(n_runs=4, run_length=150, n_ans=100, n_atoms=5, random_state=3)
    x, runs = prepare_regressors(sim.features, sim.runs, sim.keep, sim.tr)
    return sim, x, runs


def test_recovers_planted_atoms(layer):
    sim, x, _ = layer
    dictionary = fit_sparse_dictionary(x, n_atoms=5, alpha=1.0, random_state=0)
    assert matched_abs_corr(dictionary.atoms, sim.atoms_bold).min() > 0.9
    np.testing.assert_allclose(np.linalg.norm(dictionary.atoms, axis=0), 1.0, atol=1e-5)
    residual = np.linalg.norm(x - dictionary.atoms @ dictionary.loadings) / np.linalg.norm(x)
    assert dictionary.reconstruction_error == pytest.approx(residual, rel=1e-4)
    assert dictionary.sparsity > 0.3  # each AN loads on 1-2 of 5 atoms


def test_same_seed_same_dictionary(layer):
    _, x, _ = layer
    first = fit_sparse_dictionary(x, n_atoms=5, alpha=1.0, random_state=7)
    second = fit_sparse_dictionary(x, n_atoms=5, alpha=1.0, random_state=7)
    np.testing.assert_array_equal(first.atoms, second.atoms)
    np.testing.assert_array_equal(first.loadings, second.loadings)


def test_held_out_timecourses_from_training_loadings(layer):
    sim, x, runs = layer
    train, test = runs != 3, runs == 3
    dictionary = fit_sparse_dictionary(x[train], n_atoms=5, random_state=0)
    # on the training rows the projection reproduces the learned atoms
    fitted = atom_timecourses(x[train], dictionary.loadings)
    assert matched_abs_corr(fitted, dictionary.atoms).min() > 0.99
    # on the held-out run it recovers the planted atoms there
    held_out = atom_timecourses(x[test], dictionary.loadings)
    assert matched_abs_corr(held_out, sim.atoms_bold[test]).min() > 0.9


def test_bad_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 8))
    with pytest.raises(ValueError, match=r"n_atoms=9 .* min\(30, 8\) = 8"):
        fit_sparse_dictionary(x, n_atoms=9)
    constant = x.copy()
    constant[:, [1, 4]] = 0.0
    with pytest.raises(ValueError, match="2 constant AN columns"):
        fit_sparse_dictionary(constant, n_atoms=3)
    broken = x.copy()
    broken[5, 2] = np.nan
    broken[0, 6] = np.inf
    with pytest.raises(ValueError, match="2 AN columns with NaN or inf"):
        fit_sparse_dictionary(broken, n_atoms=3)
    with pytest.raises(ValueError, match="loadings must be"):
        atom_timecourses(x, np.ones((3, 7)))


def test_lasso_codes_match_scikit_learn():
    """The vectorised coordinate descent solves scikit-learn's lasso_cd problem."""
    from sklearn.decomposition import sparse_encode

    from vlm_brain.encoding._kernels import lasso_codes

    rng = np.random.default_rng(3)
    dictionary = rng.standard_normal((12, 80))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    samples = rng.standard_normal((50, 80)) + rng.standard_normal((50, 12)) @ dictionary * 3
    ours = lasso_codes(dictionary, samples, alpha=2.0, tol=1e-10)
    reference = sparse_encode(samples, dictionary, algorithm="lasso_cd", alpha=2.0, max_iter=10_000)
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    assert 0.1 < np.mean(ours == 0) < 0.95  # the penalty is active: a sparse, not empty, code


@pytest.mark.parametrize("density", [0.05, 0.2, 0.6])  # the compiled sparse path, and BLAS above 1/4
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lower_triangular", [False, True])
def test_code_cross_equals_the_dense_product(density, dtype, lower_triangular):
    """C^T Y from the code's non-zeros (or BLAS); with a triangular Y, its zeros above the diagonal skipped."""
    from vlm_brain.encoding._kernels import code_cross, code_cross_reference

    rng = np.random.default_rng(4)
    code = rng.standard_normal((300, 16)) * (rng.random((300, 16)) < density)
    samples = rng.standard_normal((300, 300 if lower_triangular else 70)).astype(dtype)
    if lower_triangular:
        samples = np.tril(samples)
    reference = code_cross_reference(code.astype(dtype), samples)
    assert np.count_nonzero(code) > 0
    cross = code_cross(code.T.copy().T, samples, lower_triangular)  # a Fortran-ordered code, as SDL passes it
    assert cross.dtype == np.float64 and cross.flags.c_contiguous
    tolerance = 1e-12 if dtype == np.float64 else 1e-5  # float32: the code rounded to float32, sums in float32
    np.testing.assert_allclose(cross, reference,
                               rtol=tolerance, atol=tolerance * np.abs(code).max() * np.abs(samples).max() * 30)


def test_dictionary_matches_scikit_learn(layer):
    """Same initialisation and iterations as scikit-learn's DictionaryLearning: same cost."""
    from sklearn.decomposition import DictionaryLearning

    from sklearn.utils.extmath import svd_flip

    x = layer[1][:, :120].astype(np.float64)
    ours = fit_sparse_dictionary(x, n_atoms=6, alpha=1.0, max_iter=10)
    u, s, vt = np.linalg.svd(x.T, full_matrices=False)
    u, vt = svd_flip(u[:, :6], vt[:6])
    s = s[:6]
    model = DictionaryLearning(n_components=6, alpha=1.0, max_iter=10, fit_algorithm="cd",
                               transform_algorithm="lasso_cd", code_init=u, dict_init=s[:, None] * vt,
                               tol=1e-8, random_state=0)
    code = model.fit_transform(x.T)

    def cost(atoms, loadings):
        return 0.5 * np.sum((x - atoms @ loadings) ** 2) + 1.0 * np.abs(loadings).sum()

    ref_atoms = model.components_.T / np.linalg.norm(model.components_.T, axis=0)
    ref_loadings = code.T * np.linalg.norm(model.components_.T, axis=0)[:, None]
    # equal objective to 1e-4 relative (2.6e-5 here: our atoms and loadings are stored in float32)
    assert cost(ours.atoms.astype(float), ours.loadings.astype(float)) <= (1 + 1e-4) * cost(ref_atoms, ref_loadings)
    similarity = np.abs(ours.atoms.T @ ref_atoms)
    assert np.all(similarity.max(axis=1) > 0.99)


def test_atoms_are_oriented_by_their_loadings(layer):
    """The sign convention: loadings of every atom sum to >= 0, whatever the data's sign."""
    x = layer[1]
    a = fit_sparse_dictionary(x, n_atoms=5, alpha=1.0, max_iter=10)
    b = fit_sparse_dictionary(-x, n_atoms=5, alpha=1.0, max_iter=10)
    assert np.all(a.loadings.sum(axis=1) >= 0) and np.all(b.loadings.sum(axis=1) >= 0)
    np.testing.assert_allclose(a.atoms @ a.loadings, -(b.atoms @ b.loadings), atol=1e-3)
    np.testing.assert_allclose(a.atoms, -b.atoms, atol=1e-3)


def test_loadings_from_the_gram_matrix_alone(layer):
    """A fold's SDL from the sum of its training runs' Gram blocks = SDL on its rows."""
    from vlm_brain.encoding.sdl import fit_sparse_loadings

    _, x, runs = layer
    x = x.astype(np.float64)
    train = runs != 0
    direct = fit_sparse_dictionary(x[train], n_atoms=5, alpha=1.0, random_state=2, max_iter=30)
    gram = sum(x[runs == r].T @ x[runs == r] for r in (1, 2, 3))
    loadings = fit_sparse_loadings(gram, n_atoms=5, alpha=1.0, random_state=2, max_iter=30,
                                   n_samples=int(train.sum()))
    np.testing.assert_allclose(loadings, direct.loadings, atol=1e-4)
    with pytest.raises(ValueError, match="constant"):
        fit_sparse_loadings(np.diag([1.0, 0.0, 2.0]), n_atoms=2)


def test_fewer_rows_than_ans_solve_the_small_side_with_the_same_result():
    """T < N: the spectrum from X X^T gives the Gram route's eigenpairs and the same loadings."""
    from vlm_brain.encoding.sdl import data_spectrum, fit_sparse_loadings

    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 6)) @ rng.standard_normal((6, 120)) + 0.2 * rng.standard_normal((40, 120))
    energy, basis = data_spectrum(x)
    assert basis.shape == (120, 40)
    gram_energy, gram_basis = np.linalg.eigh(x.T @ x)
    np.testing.assert_allclose(np.sort(energy), np.sort(gram_energy)[-40:], rtol=1e-9)
    np.testing.assert_allclose(basis * energy @ basis.T, x.T @ x, atol=1e-8)  # the same Gram matrix
    from_gram = fit_sparse_loadings(x.T @ x, n_atoms=5, alpha=1.0, random_state=3, max_iter=20, n_samples=40)
    from_rows = fit_sparse_loadings(None, n_atoms=5, alpha=1.0, random_state=3, max_iter=20, n_samples=40,
                                    spectrum=(energy, basis))
    np.testing.assert_allclose(from_rows, from_gram, atol=1e-5)


def test_cholesky_coordinates_give_the_eigenbasis_result(layer):
    """SDL from the Gram matrix runs on its Cholesky factor; from the spectrum, on W sqrt(E): same loadings."""
    from vlm_brain.encoding.sdl import _start_from_cholesky, fit_sparse_loadings

    x = layer[1].astype(np.float64)
    gram = x.T @ x
    assert _start_from_cholesky(gram, 5) is not None  # full rank: the Cholesky route is the one taken
    via_cholesky = fit_sparse_loadings(gram, n_atoms=5, alpha=1.0, random_state=1, max_iter=30, n_samples=len(x))
    via_spectrum = fit_sparse_loadings(None, n_atoms=5, alpha=1.0, random_state=1, max_iter=30, n_samples=len(x),
                                       spectrum=np.linalg.eigh(gram))
    # float32 products in both: equal to ~1e-6 relative
    np.testing.assert_allclose(via_cholesky, via_spectrum, rtol=1e-5, atol=1e-5 * np.abs(via_spectrum).max())


def test_dependent_ans_fall_back_to_the_eigenbasis():
    """An AN that is a copy of another makes X^T X singular: no Cholesky factor, the spectrum route instead."""
    from vlm_brain.encoding.sdl import _start_from_cholesky

    rng = np.random.default_rng(6)
    x = rng.standard_normal((200, 30))
    x = np.hstack([x, x[:, :1]])
    assert _start_from_cholesky(x.T @ x, 4) is None
    fit = fit_sparse_dictionary(x, n_atoms=4, alpha=1.0, max_iter=20)
    assert np.all(np.isfinite(fit.atoms)) and fit.reconstruction_error < 1.0
    np.testing.assert_allclose(fit.loadings[:, 0], fit.loadings[:, -1], atol=1e-5)  # the copies load alike


@pytest.mark.parametrize("k", [1, 7, 40])
def test_top_eigenvectors_are_lapacks_partial_decomposition(k, monkeypatch):
    """The GIL-releasing dsyevr call equals scipy's own partial eigh; numpy's full eigh is the fallback."""
    from scipy import linalg

    from vlm_brain.encoding import _lapack

    rng = np.random.default_rng(7)
    a = rng.standard_normal((90, 40))
    gram = a.T @ a
    reference = linalg.eigh(gram, subset_by_index=[40 - k, 39])[1][:, ::-1]
    assert _lapack._dsyevr() is not None  # this build: the 32-bit LAPACK interface
    np.testing.assert_array_equal(_lapack.top_eigenvectors(gram, k), reference)
    monkeypatch.setattr(_lapack, "_dsyevr", lambda: None)
    fallback = _lapack.top_eigenvectors(gram, k)
    np.testing.assert_allclose(np.abs(np.sum(fallback * reference, axis=0)), 1.0, atol=1e-10)  # same, up to sign
    with pytest.raises(ValueError, match="1 <= k <= n"):
        _lapack.top_eigenvectors(gram, 41)
