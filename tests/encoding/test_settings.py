"""One typed encoding configuration: read from the parameters, every problem at once."""

import numpy as np
import pytest

from vlm_brain.encoding.layer import encode_layer
from vlm_brain.encoding.settings import DEFAULT_ALPHAS, EncodingSettings
from vlm_brain.encoding.simulation import simulate_layer
from vlm_brain.encoding.temporal import prepare_regressors
from vlm_brain.validation.run import ValidationSettings
from vlm_brain.validation.simulate import layer_atoms


def test_from_params_reads_the_yaml_shape_and_keeps_defaults_for_the_rest():
    params = {"tr": 1.0, "target": "group", "sdl": {"n_atoms": 8, "alpha": 0.5, "max_iter": 3},
              "alphas": [1, 10], "q": 0.01, "raw_an_model": True, "cluster": {"n_workers": 2}}
    settings = EncodingSettings.from_params(params)
    assert (settings.n_atoms, settings.sdl_alpha, settings.sdl_max_iter) == (8, 0.5, 3)
    assert settings.alphas == (1.0, 10.0) and settings.q == 0.01 and settings.raw_model
    assert settings.null_method == "refit" and settings.max_lag == 20  # defaults
    assert EncodingSettings.from_params({}).alphas == DEFAULT_ALPHAS
    assert settings.as_dict()["alphas"] == [1.0, 10.0]


def test_every_problem_is_reported_at_once_with_its_parameter_name():
    bad = {"sdl": {"n_atoms": 0, "alpha": -1.0}, "alphas": [], "q": 5, "backend": "jax",
           "null_method": "bogus", "max_lag": -1, "raw_an_model": "yes"}
    with pytest.raises(ValueError) as caught:
        EncodingSettings.from_params(bad, where="validation")
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid validation parameters:"
    for expected in ("validation.sdl.n_atoms = 0: must be an integer >= 1",
                     "validation.sdl.alpha = -1.0: must be a number > 0",
                     "validation.alphas = []: must be a non-empty list of positive numbers",
                     "validation.q = 5: must be a number in (0, 1)",
                     "validation.backend = 'jax': must be one of numpy, torch, torch_cuda",
                     "validation.null_method = 'bogus': must be one of refit, shift",
                     "validation.max_lag = -1: must be an integer >= 0",
                     "validation.raw_an_model = 'yes': must be true or false"):
        assert any(line.startswith(f"- {expected}") for line in lines), expected
    assert len(lines) == 9


def test_replace_validates_and_rejects_unknown_fields():
    settings = EncodingSettings(n_atoms=4)
    assert settings.replace(q=0.1).q == 0.1 and settings.replace(q=0.1).n_atoms == 4
    with pytest.raises(ValueError, match="n_refit = 0"):
        settings.replace(n_refit=0)
    with pytest.raises(TypeError, match="unknown encoding setting"):
        settings.replace(n_atom=3)


def test_validation_reads_the_same_settings_and_plants_in_encode_layers_dictionary():
    """The validation's encoding keys are the encoding's; its planted dictionary is the very
    dictionary encode_layer refits (one fitting function), so the truth is planted where the
    method looks."""
    params = {"sdl": {"n_atoms": 3, "max_iter": 4}, "alphas": [1.0, 100.0], "n_refit": 20, "n_targets": 50}
    settings = ValidationSettings.from_params(params)
    assert settings.n_targets == 50 and settings.encoding.n_atoms == 3 and settings.encoding.sdl_max_iter == 4
    assert settings.encoding.sdl_alpha == 1.0 and settings.encoding.alphas == (1.0, 100.0)
    with pytest.raises(ValueError, match="validation.n_refit = 0"):
        ValidationSettings.from_params({**params, "n_refit": 0})

    sim = simulate_layer(n_runs=3, run_length=40, n_ans=12, n_atoms=3, n_targets=4, random_state=2)
    x, runs = prepare_regressors(sim.features, sim.runs, sim.keep, sim.tr)
    planted = layer_atoms(x, 3, 1.0, 4, seed=0, runs=runs)
    encoded = encode_layer(sim.features, sim.y, sim.runs, sim.keep, sim.tr, settings.encoding,
                           null_method="shift")
    np.testing.assert_array_equal(encoded["loadings"], planted.loadings)
