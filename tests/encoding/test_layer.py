"""encode_layer on a layer simulated from planted atoms; BN polarity by hand."""

import numpy as np

from vlm_brain.encoding.layer import encode_layer, layer_polarity
from vlm_brain.encoding.simulation import simulate_layer


def test_encode_layer_recovers_signal_and_finds_the_driven_targets():
    snr = np.r_[np.full(30, 2.0), np.full(30, 1e-6)]  # 30 driven targets, 30 (almost) noise
    sim = simulate_layer(n_runs=4, run_length=120, n_rest=10, n_ans=80, n_atoms=5,
                         n_targets=60, snr=snr, random_state=3)
    out = encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, n_atoms=5,
                       sdl_alpha=0.5, sdl_max_iter=30, n_null=200, seed=0, raw_model=True)
    G = 60
    assert out["r"].shape == out["p"].shape == out["bn"].shape == (G,)
    assert out["atom_t"].shape == (5, G) and out["loadings"].shape == (5, 80)
    # held-out r tracks a perfect model's r on the driven targets
    assert abs(np.mean(out["r"][:30]) - np.mean(sim.signal_r[:30])) < 0.1
    assert out["bn"][:30].mean() > 0.9          # sensitivity
    assert out["bn"][30:].sum() <= 2            # few false discoveries among noise targets
    assert np.mean(out["raw_r"][:30]) > 0.3     # the raw-AN comparison model also works
    # full-refit atom maps only flag driven targets
    assert (out["atom_pos"] | out["atom_neg"])[:, 30:].sum() <= 3


def test_layer_polarity_takes_the_strongest_significant_atom():
    t = np.array([[3.0, -1.0, 5.0, 2.0], [-4.0, 2.5, -1.0, 9.0]])
    pos = np.array([[True, False, True, False], [False, True, False, False]])
    neg = np.array([[False, False, False, False], [True, False, False, False]])
    bn = np.array([True, True, True, False])
    assert layer_polarity(bn, t, pos, neg).tolist() == [-1, 1, 1, 0]
