"""Truth planted in stimulus features, not atoms: BN signs read against the feature are the planted ones."""

import numpy as np
import pandas as pd
import pytest

from tests.validation.conftest import SMALL
from vlm_brain.encoding.simulation import simulate_layer
from vlm_brain.pipelines.validation.nodes import summarise_validation
from vlm_brain.validation.run import ValidationSettings, run_feature_condition
from vlm_brain.validation.simulate import simulate_feature_bold


@pytest.fixture(scope="module")
def stimulus():
    """An image and a text layer, each encoding its own latent feature with mixed-sign loadings."""
    image = simulate_layer(n_runs=3, run_length=90, n_rest=6, n_ans=48, n_atoms=4, n_targets=1, random_state=21)
    text = simulate_layer(n_runs=3, run_length=90, n_rest=6, n_ans=40, n_atoms=4, n_targets=1, random_state=22)
    # a negated latent: the ANs carry the feature with whatever sign their loadings have
    features = {"luminance": -image.atoms[:, 0], "n_words": text.atoms[:, 1]}
    return image.features, text.features, features, image.runs, image.keep


def test_feature_plant_sets_and_snr(stimulus):
    _, _, features, runs, keep = stimulus
    plant = simulate_feature_bold(features, runs, keep, 1.0, snr=2.0, n_targets=300, seed=0)
    assert {k: int(v.sum()) for k, v in plant.sets.items()} == {"luminance": 45, "n_words": 45}
    assert not np.any(plant.sets["luminance"] & plant.sets["n_words"])
    assert plant.y.shape == (int(keep.sum()), 300)
    with pytest.raises(ValueError, match="constant"):
        simulate_feature_bold({"flat": np.zeros(len(runs))}, runs, keep, 1.0, snr=1.0)


def test_uniformly_positive_plant_gives_positive_bns_in_every_layer_that_detects_it(stimulus):
    image, text, features, runs, keep = stimulus
    settings = ValidationSettings(**SMALL)
    rows = pd.DataFrame([row for seed in range(3) for row in run_feature_condition(
        image, text, features, runs, keep, 1.0, snr=3.0, n_trs=None, seed=seed, settings=settings)])
    assert len(rows) == 3 * 2 * 2 and set(rows.condition) == {"stimulus"}
    by = rows.groupby(["layer", "feature"]).mean(numeric_only=True)
    assert by.loc[("image", "luminance"), "sensitivity"] >= 0.9  # each layer finds its own feature
    assert by.loc[("text", "n_words"), "sensitivity"] >= 0.9
    detecting = by[by.sensitivity >= 0.2]
    assert (detecting.positive_fraction >= 0.9).all()
    assert rows.fdr.mean() <= settings.q + 0.05
    summary = summarise_validation(rows.assign(n_kept=0), {"q": 0.05, "snrs": [3.0], "n_trs": [90],
                                                           "criteria": {}})
    check = summary["checks"]["stimulus_sign_positive"]
    assert check["passed"] and check["value"] >= 0.9 and len(summary["stimulus_plant"]) == 4
