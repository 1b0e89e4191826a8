"""Ablation curves on simulated layers with a known redundancy."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from vlm_brain.analyses.redundancy import ablation_curve, normalized_auc
from vlm_brain.encoding.simulation import simulate_layer
from vlm_brain.encoding.temporal import prepare_regressors

FRACTIONS = (0.0, 0.5, 0.8, 0.95)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def auc(curve, condition="ablation"):
    mean = curve[curve.condition == condition].groupby("fraction").r_mean.mean()
    return normalized_auc(mean.index, mean.to_numpy()), mean


def test_redundant_layer_declines_gracefully_and_control_is_at_chance():
    """600 ANs share 4 atoms: losing most ANs barely changes prediction."""
    sim = simulate_layer(n_runs=3, run_length=120, n_ans=600, n_atoms=4, n_targets=30, snr=2.0, random_state=2)
    x, runs = prepare_regressors(sim.features, sim.runs, sim.keep, sim.tr)
    curve = ablation_curve(x, sim.y, runs, sim.loadings, FRACTIONS, n_repeats=2, seed=0)
    area, mean = auc(curve)
    assert mean[0.0] > 0.5
    assert mean[0.8] > 0.9 * mean[0.0] and area > 0.9
    control = curve[curve.condition == "shuffled control"].r_mean
    assert np.all(np.abs(control) < 0.15)
    assert set(curve.n_ans_kept) == {600, 300, 120, 30}


def test_one_an_per_atom_is_fragile():
    """Each atom carried by one AN: removing ANs removes what they encode."""
    sim = simulate_layer(n_runs=3, run_length=120, n_ans=8, n_atoms=8, n_targets=30, snr=2.0, an_noise=0.05,
                         random_state=4)
    one_to_one = np.eye(8)
    features = sim.atoms @ one_to_one  # AN i is atom i
    x, runs = prepare_regressors(features, sim.runs, sim.keep, sim.tr)
    curve = ablation_curve(x, sim.y, runs, one_to_one, FRACTIONS, n_repeats=3, seed=0)
    area, mean = auc(curve)
    assert mean[0.95] < 0.3 * mean[0.0]  # 95% of 8 ANs: 0 left, no prediction
    assert area < 0.75
