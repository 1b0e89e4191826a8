"""Done-when of issue 7 on small settings: the real encode_layer recovers a planted truth.

Stated tolerances (also in conf/base/parameters_validation.yml, validation.criteria):
sensitivity >= 0.9 and sign accuracy >= 0.95 at high SNR; under pure noise the mean
observed FDR over seeds <= q + 0.05; the recovered image/text overlap within 0.1 of
the planted one at high SNR.
"""

import numpy as np
import pandas as pd
import pytest

from tests.validation.conftest import SMALL
from vlm_brain.validation.run import ValidationSettings, run_condition, run_grid

SENSITIVITY_MIN, SIGN_ACCURACY_MIN, FDR_TOLERANCE, OVERLAP_TOLERANCE = 0.9, 0.95, 0.05, 0.1
HIGH_SNR = 5.0


@pytest.fixture(scope="module")
def settings():
    return ValidationSettings(**SMALL)


@pytest.fixture(scope="module")
def high_snr(layers, settings):
    image, text, runs, keep = layers
    return pd.DataFrame([run_condition(image, text, runs, keep, 1.0, snr=HIGH_SNR, n_trs=None, seed=seed,
                                       settings=settings) for seed in range(3)])


def test_high_snr_sensitivity_and_sign_accuracy(high_snr):
    assert high_snr.sensitivity.min() >= SENSITIVITY_MIN
    assert high_snr.sign_accuracy.min() >= SIGN_ACCURACY_MIN
    assert high_snr.specificity.min() >= 0.95 and high_snr.separation.min() >= 0.9
    assert high_snr.realised_snr.tolist() == pytest.approx([HIGH_SNR] * 3)


def test_recovered_overlap_is_the_planted_one(high_snr):
    assert high_snr.overlap_planted.iloc[0] == pytest.approx(0.3)
    assert abs(high_snr.overlap_recovered.mean() - 0.3) <= OVERLAP_TOLERANCE


def test_pure_noise_fdr_stays_below_q_over_seeds(layers, settings):
    image, text, runs, keep = layers
    rows = pd.DataFrame([run_condition(image, text, runs, keep, 1.0, snr=0.0, n_trs=None, seed=seed,
                                       null=True, settings=settings) for seed in range(12)])
    assert (rows.condition == "null").all() and (rows.n_planted == 0).all()
    assert rows.fdr.mean() <= settings.q + FDR_TOLERANCE
    assert rows.p_below_q.mean() <= settings.q + 0.03   # uncorrected false-positive rate near alpha


def test_grid_power_grows_with_snr(layers, settings):
    image, text, runs, keep = layers
    table = run_grid(image, text, runs, keep, 1.0, snrs=[0.05, HIGH_SNR], n_trs=[45, 90], seeds=[0],
                     settings=settings)
    assert len(table) == 2 * 2 + 2 and set(table.condition) == {"signal", "null"}
    assert sorted(table.n_trs.unique()) == [45, 90]
    signal = table[table.condition == "signal"].set_index(["snr", "n_trs"])
    for n in (45, 90):
        assert signal.loc[(0.05, n), "sensitivity"] < signal.loc[(HIGH_SNR, n), "sensitivity"]
    assert signal.loc[(HIGH_SNR, 90), "n_kept"] == 3 * 84 and signal.loc[(HIGH_SNR, 45), "n_kept"] == 3 * 39
    assert np.isfinite(table.seconds).all()


def test_single_driver_plant_shows_no_redundancy_beyond_chance(high_snr):
    """One driving atom per grayordinate and layer: few BNs have >= 2 significant atoms, far below the chance
    level of the same atom maps placed independently."""
    for layer in ("image", "text"):
        observed, chance = high_snr[f"multi_atom_{layer}"], high_snr[f"multi_atom_chance_{layer}"]
        assert (observed <= 0.1).all() and (chance >= 0.1).all() and (observed < chance).all()
