"""Parameter merging, validation and hashing of the demo dataset."""

from __future__ import annotations

import copy
import re

import pytest

from vlm_brain.simulate import (
    DEFAULT_DEMO_PARAMS,
    demo_params_hash,
    generate_demo_dataset,
    resolve_demo_params,
)


def test_defaults_resolve_to_themselves():
    resolved = resolve_demo_params({})
    assert resolved["runs"] == DEFAULT_DEMO_PARAMS["runs"]
    assert resolved["design"]["clip_s"] == [20.0, 35.0]
    assert resolved["bold"]["signal_to_noise"] == 0.6
    assert resolved["video"] == {"width": 160, "height": 120, "fps": 8}


def test_runs_are_replaced_and_sections_merged():
    resolved = resolve_demo_params(
        {"runs": {"tfMRI_MOVIE1_7T_AP": 60}, "bold": {"ar1": 0.2}}
    )
    assert resolved["runs"] == {"tfMRI_MOVIE1_7T_AP": 60}
    assert resolved["bold"]["ar1"] == 0.2
    assert resolved["bold"]["baseline"] == DEFAULT_DEMO_PARAMS["bold"]["baseline"]


def test_defaults_are_not_mutated():
    before = copy.deepcopy(DEFAULT_DEMO_PARAMS)
    resolved = resolve_demo_params({"design": {"clip_s": [10, 12]}})
    resolved["runs"]["extra"] = 1
    assert DEFAULT_DEMO_PARAMS == before


def test_hash_is_stable_and_sensitive():
    base = demo_params_hash({})
    assert base == demo_params_hash(copy.deepcopy(DEFAULT_DEMO_PARAMS))
    assert base == demo_params_hash({"tr": 1, "seed": 20251016})
    assert len(base) == 64 and int(base, 16) >= 0
    assert demo_params_hash({"seed": 1}) != base
    assert demo_params_hash({"bold": {"ar1": 0.5}}) != base


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"design": {"clip_length": 3}}, "design.clip_length"),
        ({"colour": "red"}, "colour"),
        ({"runs": {"tfMRI_MOVIE1_7T_AP": 30}}, "runs.tfMRI_MOVIE1_7T_AP"),
        ({"video": {"width": 63}}, "video.width"),
        ({"bold": {"ar1": 1.0}}, "bold.ar1"),
        ({"design": {"clip_s": [20]}}, "design.clip_s"),
        ({"design": {"scene_s": [5, 3]}}, "design.scene_s[1]"),
        ({"n_subjects": 0}, "n_subjects"),
        ({"tr": -1}, "tr"),
        ({"include_subcortical": "yes"}, "include_subcortical"),
    ],
)
def test_bad_params_raise_value_error_naming_the_parameter(params, name):
    with pytest.raises(ValueError, match=re.escape(f"demo params: {name} ")):
        resolve_demo_params(params)


def test_generation_with_bad_params_writes_nothing(tmp_path):
    root = tmp_path / "demo"
    with pytest.raises(ValueError, match="runs.short"):
        generate_demo_dataset(root, {"runs": {"short": 20}})
    assert not root.exists() or not any(root.iterdir())
