"""Compile the encoding engine's kernels into numba's on-disk cache, once.

The compiled loops of `vlm_brain.encoding._kernels` are cached next to their source
(``cache=True``); without a cache, the first layer of a run spends ~20 s compiling
them, in every worker process. ``make install`` runs this module after installing the
project, so that the first ``kedro run`` starts from the cache::

    python -m vlm_brain.encoding.warm_up

It encodes a small simulated layer in float32 (the dtype of the stored fMRI) and in
float64, with missing values (the masked path) and without; a later change to the
kernels' source invalidates their cache and the next run compiles them again.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from vlm_brain.encoding.layer import encode_layer
from vlm_brain.encoding.simulation import simulate_layer

logger = logging.getLogger(__name__)


def compile_kernels() -> float:
    """Encode a small simulated layer in every dtype and path the study uses; returns the seconds taken."""
    started = time.perf_counter()
    sim = simulate_layer(n_runs=4, run_length=40, n_rest=0, n_ans=24, n_atoms=3, n_targets=80, random_state=0)
    settings = dict(n_atoms=3, sdl_max_iter=3, n_refit=40, refit_targets=80, max_lag=4)
    for dtype in (np.float32, np.float64):
        y = sim.y.astype(dtype)
        encode_layer(sim.features.astype(dtype), y, sim.runs, sim.keep, sim.tr, **settings)
        missing = y.copy()
        missing[:5, 0] = np.nan
        encode_layer(sim.features.astype(dtype), missing, sim.runs, sim.keep, sim.tr, **settings)
    return time.perf_counter() - started


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.info("vlm-brain: compiling the encoding kernels into numba's cache (once per install)...")
    logger.info("done in %.0f s", compile_kernels())


if __name__ == "__main__":
    main()
