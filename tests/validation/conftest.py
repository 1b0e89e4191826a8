"""Fixtures of the validation tests: two independent AN-like layers with runs."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from vlm_brain.encoding.settings import EncodingSettings
from vlm_brain.encoding.simulation import simulate_layer


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small matrices: threaded BLAS only spins on the shared CPUs."""
    with threadpool_limits(limits=1):
        yield


def an_like_layers(n_runs: int = 3, run_length: int = 90, n_rest: int = 6, seed: int = 11):
    """An image-like and a text-like layer: ANs mixed from 4 planted AR(1) atoms each,
    independent of each other; rest TRs at the start of every run."""
    image = simulate_layer(n_runs=n_runs, run_length=run_length, n_rest=n_rest, n_ans=48, n_atoms=4,
                           n_targets=1, random_state=seed)
    text = simulate_layer(n_runs=n_runs, run_length=run_length, n_rest=n_rest, n_ans=40, n_atoms=4,
                          n_targets=1, random_state=seed + 1)
    return image.features, text.features, image.runs, image.keep


@pytest.fixture(scope="session")
def layers():
    """(image_ans, text_ans, runs, keep): 3 runs x 90 TRs (6 rest TRs each), TR 1 s."""
    return an_like_layers()


#: small settings of the recovery tests (a condition takes ~0.1 s)
SMALL = {"n_targets": 400, "frac_image": 0.15, "frac_text": 0.15, "overlap": 0.3, "frac_negative": 0.5,
         "n_drivers": 2, "noise_ar": 0.3,
         "encoding": EncodingSettings(n_atoms=4, sdl_alpha=0.5, sdl_max_iter=10, alphas=(1.0, 10.0, 100.0, 1000.0),
                                      n_refit=50, q=0.05, target_batch_size=4096)}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
