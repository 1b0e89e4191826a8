"""Tiny demo datasets shared by the tests of vlm_brain.simulate (generated once per session)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from vlm_brain.simulate import generate_demo_dataset

RUNS = {"tfMRI_MOVIE1_7T_AP": 45, "tfMRI_MOVIE2_7T_PA": 45}
TINY_PARAMS = {
    "seed": 7,
    "n_subjects": 2,
    "tr": 1.0,
    "runs": RUNS,
    "video": {"width": 64, "height": 48, "fps": 8},
    "design": {
        "rest_start_s": 4,
        "rest_between_s": 3,
        "rest_end_s": 4,
        "repeat_s": 8,
        "clip_s": [10, 14],
        "scene_s": [2, 4],
    },
    "bold": {"signal_to_noise": 3.0},
}


def tiny_params(**changes) -> dict:
    """A deep copy of TINY_PARAMS with top-level keys replaced."""
    params = copy.deepcopy(TINY_PARAMS)
    params.update(changes)
    return params


@pytest.fixture(scope="session")
def demo_a(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo_a")
    return root, generate_demo_dataset(root, tiny_params())


@pytest.fixture(scope="session")
def demo_b(tmp_path_factory) -> tuple[Path, dict]:
    """Same parameters as demo_a, generated again elsewhere."""
    root = tmp_path_factory.mktemp("demo_b")
    return root, generate_demo_dataset(root, tiny_params())


@pytest.fixture(scope="session")
def demo_other_seed(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo_other_seed")
    return root, generate_demo_dataset(root, tiny_params(seed=8))
