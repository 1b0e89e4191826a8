"""The simulation plants what it is asked to: lengths, sets, overlap, signs, SNR."""

import numpy as np
import pytest

from vlm_brain.encoding.temporal import prepare_regressors, zscore_per_run
from vlm_brain.validation.simulate import (
    LayerAtoms,
    crop_runs,
    layer_atoms,
    plant_truth,
    select_drivers,
    simulate_bold,
)

# three runs of 20, 22 and 24 TRs, the first 2 of each at rest
LENGTHS = [20, 22, 24]
RUNS = np.repeat([0, 1, 2], LENGTHS)
KEEP = np.concatenate([np.arange(n) >= 2 for n in LENGTHS])
STARTS = [0, 20, 42]


def test_crop_takes_the_first_trs_of_every_run():
    rows, runs, keep = crop_runs(RUNS, KEEP, 15)
    assert rows.tolist() == [s + i for s in STARTS for i in range(15)]
    assert runs.tolist() == [0] * 15 + [1] * 15 + [2] * 15
    assert keep.tolist() == KEEP[rows].tolist() and keep.sum() == 3 * 13


def test_crop_refuses_lengths_beyond_the_runs_and_names_the_parameter():
    with pytest.raises(ValueError, match=r"n_trs=21 \(validation.n_trs\).*shortest run.*20 TRs"):
        crop_runs(RUNS, KEEP, 21)
    with pytest.raises(ValueError, match=r"validation.n_trs.*leaves 8 kept TRs"):
        crop_runs(RUNS, KEEP, 10)  # 8 kept TRs per run are too few


def test_crop_extends_runs_into_the_following_ones():
    rows, runs, keep = crop_runs(RUNS, KEEP, 70, extend=True)
    assert np.bincount(runs).tolist() == [70, 70, 70]
    assert rows[:70].tolist() == list(range(66)) + [0, 1, 2, 3]  # runs 0, 1, 2, then again from the start
    third = rows[140:]
    assert third[:24].tolist() == list(range(42, 66)) and third[24:44].tolist() == list(range(20))
    assert keep.tolist() == KEEP[rows].tolist()


def test_planted_sets_have_the_requested_sizes_overlap_and_signs(rng):
    truth = plant_truth(1000, frac_image=0.2, frac_text=0.1, overlap=0.5, frac_negative=0.3, n_drivers=3, rng=rng)
    assert truth.image.sum() == 200 and truth.text.sum() == 100 and truth.shared.sum() == 50
    assert truth.image_only.sum() == 150 and truth.text_only.sum() == 50 and truth.driven.sum() == 250
    assert truth.overlap == pytest.approx(2 * 50 / 300)
    assert (truth.sign[truth.driven] == -1).sum() == 75 and (truth.sign[truth.driven] == 1).sum() == 175
    assert np.all(truth.sign[~truth.driven] == 0)
    assert np.bincount(truth.image_driver[truth.image]).tolist() == [67, 67, 66]
    assert np.all(truth.image_driver[~truth.image] == -1) and np.all(truth.text_driver[~truth.text] == -1)
    labels = truth.labels()
    assert (labels == "shared").sum() == 50 and (labels == "none").sum() == 750
    with pytest.raises(ValueError, match="do not fit in n_targets=100"):
        plant_truth(100, 0.6, 0.6, 0.1, 0.5, 2, rng)


def test_bold_realises_the_snr_signs_and_drivers(layers):
    image, text, runs, keep = layers
    sim = simulate_bold(image, text, runs, keep, 1.0, snr=0.5, n_targets=300, n_drivers=2, n_atoms=4,
                        sdl_alpha=0.5, sdl_max_iter=10, seed=3)
    truth = sim.truth
    assert sim.y.shape == (keep.sum(), 300) and sim.y.dtype == np.float32
    assert np.allclose(sim.realised_snr[truth.driven], 0.5, rtol=1e-6)
    assert np.all(sim.signal[:, ~truth.driven] == 0)
    # z-scored per run like cleaned fMRI
    first = sim.runs_kept == sim.runs_kept[0]
    assert np.allclose(sim.y[first].mean(axis=0), 0, atol=1e-5) and np.allclose(sim.y[first].std(axis=0), 1, atol=1e-4)
    # an image-only grayordinate is its driving atom (as encode_layer refits it) times its sign
    x, _ = prepare_regressors(image, runs, keep, 1.0)
    atoms = layer_atoms(x, 4, 0.5, 10, 3, runs=sim.runs_kept)
    for g in np.flatnonzero(truth.image_only)[:20]:
        driver = atoms.regressors[:, sim.image_atoms[truth.image_driver[g]]]
        assert np.corrcoef(driver, sim.signal[:, g])[0, 1] == pytest.approx(truth.sign[g], abs=1e-6)
    # shared grayordinates correlate with both drivers, with their sign
    g = np.flatnonzero(truth.shared)[0]
    text_atoms = layer_atoms(prepare_regressors(text, runs, keep, 1.0)[0], 4, 0.5, 10, 3, runs=sim.runs_kept)
    t_driver = text_atoms.regressors[:, sim.text_atoms[truth.text_driver[g]]]
    assert truth.sign[g] * np.corrcoef(t_driver, sim.signal[:, g])[0, 1] > 0.4
    assert sim.cross_r2 < 0.2  # independent layers: the drivers are separable


def test_noise_only_condition_has_no_signal(layers):
    image, text, runs, keep = layers
    sim = simulate_bold(image, text, runs, keep, 1.0, snr=0.0, n_targets=200, null=True, seed=1)
    assert not sim.truth.driven.any() and np.all(sim.signal == 0) and sim.snr == 0
    assert np.all(sim.truth.sign == 0)
    # the data are the noise, z-scored per run, whatever the features
    assert np.allclose(sim.y, zscore_per_run(sim.noise, sim.runs_kept), atol=1e-6)
    other = simulate_bold(image[::-1].copy(), text[::-1].copy(), runs, keep, 1.0, snr=0.0, n_targets=200,
                          null=True, seed=1)
    assert np.array_equal(other.y, sim.y)
    with pytest.raises(ValueError, match="snr must be > 0"):
        simulate_bold(image, text, runs, keep, 1.0, snr=0.0, n_targets=10)


def test_drivers_are_the_strongest_atoms_present_in_every_run():
    share = np.array([[0.25, 0.25, 0.25, 0.25], [0.05, 0.45, 0.45, 0.05], [0.1, 0.3, 0.3, 0.3],
                      [0.2, 0.3, 0.2, 0.3], [0.02, 0.02, 0.48, 0.48]])
    atoms = LayerAtoms(regressors=np.zeros((4, 5)), loadings=np.zeros((5, 3)),
                       energy=np.array([9.0, 8.0, 7.0, 1.0, 0.5]), run_share=share)
    assert select_drivers(atoms, 2).tolist() == [0, 2]          # atom 1 is (almost) absent from runs 1 and 4
    assert select_drivers(atoms, 3).tolist() == [0, 2, 3]
    assert select_drivers(atoms, 2, min_run_share=0.0).tolist() == [0, 1]
    assert select_drivers(atoms, 5).tolist() == [0, 1, 2, 3, 4]  # completed by the most even of the rest
    with pytest.raises(ValueError, match="n_drivers"):
        select_drivers(atoms, 6)
