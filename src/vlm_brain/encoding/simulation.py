"""Synthetic layers with known ground truth, for tests and benchmarks.

Planted temporal atoms (AR(1) time series) are mixed into ANs with known sparse
loadings; the BOLD signal is the HRF-convolved atoms times known weights, plus noise of
known variance (optionally AR(1), like fMRI). Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from vlm_brain.encoding._validation import pearson_r, run_slices
from vlm_brain.encoding.temporal import prepare_regressors, zscore_per_run


def ar1(n_samples: int, n_series: int, phi: float, rng: np.random.Generator,
        runs: np.ndarray | None = None) -> np.ndarray:
    """Stationary unit-variance AR(1) series, restarted in each run.

    Returns
    -------
    x : (n_samples, n_series) float64 with x[t] = phi x[t-1] + sqrt(1 - phi^2) e[t].
    """
    runs = np.zeros(n_samples) if runs is None else np.asarray(runs)
    x = np.empty((n_samples, n_series))
    for rows in run_slices(runs):
        innovations = rng.standard_normal((rows.stop - rows.start, n_series))
        innovations[0] /= np.sqrt(1 - phi**2)  # start in the stationary distribution
        x[rows] = lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], innovations, axis=0)
    return x


@dataclass(frozen=True)
class SimulatedLayer:
    """One simulated layer and its BOLD targets.

    Attributes
    ----------
    features : (T_full, N) float32 AN activations over full run timelines (pre-HRF).
    runs : (T_full,) run labels.
    keep : (T_full,) bool, False for rest TRs.
    tr : repetition time in seconds.
    atoms : (T_full, k) planted temporal atoms (pre-HRF).
    loadings : (k, N) planted sparse loadings (features = atoms @ loadings + noise).
    weights : (k, G) planted encoding weights.
    atoms_bold : (T_kept, k) atoms after `prepare_regressors` (what the BOLD sees).
    signal : (T_kept, G) noiseless BOLD, unit variance per target.
    y : (T_kept, G) float32, signal + noise, z-scored per run.
    runs_kept : (T_kept,) run labels of the kept rows.
    """

    features: np.ndarray
    runs: np.ndarray
    keep: np.ndarray
    tr: float
    atoms: np.ndarray
    loadings: np.ndarray
    weights: np.ndarray
    atoms_bold: np.ndarray
    signal: np.ndarray
    y: np.ndarray
    runs_kept: np.ndarray

    @property
    def signal_r(self) -> np.ndarray:
        """(G,) Pearson r between the true signal and the data: a perfect model's r."""
        return pearson_r(self.signal, self.y)


def simulate_layer(
    n_runs: int = 4,
    run_length: int = 200,
    n_rest: int = 10,
    n_ans: int = 120,
    n_atoms: int = 6,
    n_targets: int = 40,
    snr: float | np.ndarray = 1.0,
    an_noise: float = 0.3,
    atom_ar: float = 0.5,
    noise_ar: float = 0.0,
    tr: float = 1.0,
    random_state: int = 0,
) -> SimulatedLayer:
    """Simulate ANs from planted atoms and BOLD from the atoms.

    Parameters
    ----------
    n_runs, run_length : runs and TRs per run (full timeline).
    n_rest : TRs excluded (rest) at the start of each run.
    n_ans, n_atoms, n_targets : N, k, G.
    snr : signal-to-noise variance ratio of the BOLD, scalar or (G,).
    an_noise : std of independent noise added to each AN (atoms have unit variance).
    atom_ar, noise_ar : AR(1) coefficients of the atoms and of the BOLD noise.

    Each AN loads on one or two atoms with weights of random sign and magnitude in
    [0.5, 1.5]; encoding weights are standard normal.
    """
    rng = np.random.default_rng(random_state)
    runs = np.repeat(np.arange(n_runs), run_length)
    keep = np.tile(np.arange(run_length) >= n_rest, n_runs)
    atoms = ar1(runs.size, n_atoms, atom_ar, rng, runs)

    loadings = np.zeros((n_atoms, n_ans))
    for an in range(n_ans):
        chosen = rng.choice(n_atoms, size=rng.integers(1, 3), replace=False)
        loadings[chosen, an] = rng.choice([-1, 1], chosen.size) * rng.uniform(0.5, 1.5, chosen.size)
    features = atoms @ loadings + an_noise * rng.standard_normal((runs.size, n_ans))

    atoms_bold, runs_kept = prepare_regressors(atoms, runs, keep, tr)
    weights = rng.standard_normal((n_atoms, n_targets))
    signal = atoms_bold.astype(np.float64) @ weights
    signal /= signal.std(axis=0)
    noise = ar1(runs_kept.size, n_targets, noise_ar, rng, runs_kept)
    y = zscore_per_run(signal + noise / np.sqrt(np.broadcast_to(snr, (n_targets,))), runs_kept)
    return SimulatedLayer(
        features=features.astype(np.float32), runs=runs, keep=keep, tr=tr, atoms=atoms,
        loadings=loadings, weights=weights, atoms_bold=atoms_bold, signal=signal,
        y=y, runs_kept=runs_kept,
    )
