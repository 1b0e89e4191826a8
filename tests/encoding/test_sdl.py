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
