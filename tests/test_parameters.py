"""Every pipeline's parameters are checked when a run starts: one line per problem, before any data."""

from __future__ import annotations

import pytest

from tests.conftest import run_kedro
from vlm_brain.config import LayeredConfigLoader
from vlm_brain.parameters import ParameterError, parameter_problems

RUNS = {"r1": 100, "r2": 100, "r3": 90}


def _problems(**groups) -> list[str]:
    return parameter_problems(groups)


@pytest.mark.parametrize("env", [None, "hcp", "roi"])
def test_the_shipped_configurations_have_no_problem(env):
    loader = LayeredConfigLoader("conf", env=env, remember=False, base_env="base", default_run_env="local",
                                 merge_strategy={"parameters": "soft"})
    assert parameter_problems(loader["parameters"]) == []


@pytest.mark.parametrize(("encoding", "line"), [
    ({"alphas": []}, "encoding.alphas = []: must be a non-empty list of positive numbers"),
    ({"noise_ceiling": "split"}, "encoding.noise_ceiling = 'split': must be one of auto, repeat, loso"),
    ({"folds_per_scan": 0}, "encoding.folds_per_scan = 0: must be an integer >= 1"),
    ({"alphas": [10.0, -1.0]}, "encoding.alphas = [10.0, -1.0]: must be a non-empty list of positive numbers"),
    ({"backend": "jax"}, "encoding.backend = 'jax': must be one of numpy, torch, torch_cuda"),
    ({"q": 5}, "encoding.q = 5: must be a number in (0, 1)"),
    ({"sdl": {"n_atoms": 191}}, "encoding.sdl.n_atoms = 191: must be at most the TRs a leave-one-run-out fold"
                                " trains on (190 with runs"),
    ({"target": "everyone"}, "encoding.target = 'everyone': must be one of group, subjects, both"),
    ({"cohort": {"test": "wilcoxon"}}, "encoding.cohort.test = 'wilcoxon': must be one of t, sign_flip"),
    ({"cluster": {"retries": -1}}, "encoding.cluster.retries = -1: must be an integer >= 0"),
])
def test_encoding_parameters(encoding, line):
    problems = _problems(encoding=encoding, feature_extraction={"runs": RUNS})
    assert len(problems) == 1 and problems[0].startswith(line), problems
    assert _problems(encoding={"sdl": {"n_atoms": 190}}, feature_extraction={"runs": RUNS}) == []


@pytest.mark.parametrize(("features", "line"), [
    ({"frames_per_tr": 0}, "feature_extraction.frames_per_tr = 0: must be an integer >= 1"),
    ({"pooling": "max"}, "feature_extraction.pooling = 'max': must be one of mean, cls"),
    ({"precision": "int8"}, "feature_extraction.precision = 'int8': must be one of fp32, bf16, fp16"),
    ({"runs": {"r1": 0}}, "feature_extraction.runs.r1 = 0: must be an integer >= 1"),
    ({"models": {"x": {"family": "keras"}}}, "feature_extraction.models.x.family = 'keras': must be one of meter"),
    ({"models": {"x": {"family": "transformers"}}}, "feature_extraction.models.x: family transformers needs `source`"),
    ({"models": {"x": {"family": "two_tower", "weights": "imagenet"}}}, "feature_extraction.models.x.weights"
                                                                        " = 'imagenet': must be random or pretrained"),
    ({"models": {"x": {"family": "open_clip", "weights": "pretrained"}}}, "feature_extraction.models.x: weights"
                                                                          " pretrained needs `pretrained`"),
    ({"models": {"x": {"weights": "random"}}}, "feature_extraction.models.x: expected a mapping with a `family`"),
])
def test_feature_extraction_parameters(features, line):
    problems = _problems(feature_extraction=features)
    assert problems and problems[0].startswith(line), problems


@pytest.mark.parametrize(("group", "params", "line"), [
    ("fmri_preprocessing", {"incomplete_subjects": "ignore"}, "fmri_preprocessing.incomplete_subjects = 'ignore'"),
    ("fmri_preprocessing", {"high_pass": -0.01}, "fmri_preprocessing.high_pass = -0.01: must be null or a frequency"),
    ("analyses", {"stats": {"ci": 95}}, "analyses.stats.ci = 95: must be a level in (0, 1)"),
    ("analyses", {"architecture": {"pairs": {"A": ["clip.image"]}}}, "analyses.architecture.pairs.A = ['clip.image']"),
    ("analyses", {"architecture": {"pairs": {"A": ["a.b", "c.d"]}, "contrast": ["A", "B"]}},
     "analyses.architecture.contrast = ['A', 'B']: must be two pair names of architecture.pairs (A)"),
    ("reporting", {"surface_streams": ["clip"]}, "reporting.surface_streams = ['clip']: must be a list of streams"),
    ("validation", {"image_layer": "clip.image"}, "validation.image_layer = 'clip.image': must be a layer name"),
    ("validation", {"sdl": {"n_atoms": 0}}, "validation.sdl.n_atoms = 0: must be an integer >= 1"),
    ("validation", {"snrs": []}, "validation.snrs = []: must be a non-empty list of numbers > 0"),
    ("demo", {"enabled": True, "n_subjects": 0}, "demo.n_subjects must be >= 1, got 0"),
])
def test_other_groups(group, params, line):
    problems = _problems(**{group: params})
    assert len(problems) == 1 and problems[0].startswith(line), problems


@pytest.mark.slow
def test_a_run_with_bad_parameters_stops_before_reading_any_data(kedro_project):
    bad = {"encoding": {"alphas": [], "q": 5, "sdl": {"n_atoms": 1000}}, "feature_extraction": {"frames_per_tr": 0}}
    with pytest.raises(ParameterError) as caught:
        run_kedro(kedro_project, "__default__", params=bad)
    message = str(caught.value)
    assert message.startswith("4 invalid parameter(s)")
    for line in ("- encoding.alphas = []", "- encoding.q = 5", "- encoding.sdl.n_atoms = 1000",
                 "- feature_extraction.frames_per_tr = 0"):
        assert line in message
    assert not (kedro_project / "data/01_raw/demo").exists()  # the demo was not even generated
    assert not (kedro_project / "data/02_intermediate").exists()
