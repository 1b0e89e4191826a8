"""Deterministic demo dataset: procedurally drawn movies, captions and simulated fMRI.

A plain library (no Kedro): :func:`generate_demo_dataset` writes the whole dataset;
see :mod:`vlm_brain.simulate.demo` for the layout.
"""

from vlm_brain.simulate.demo import (
    DEFAULT_DEMO_PARAMS,
    demo_params_hash,
    demo_subjects,
    generate_demo_dataset,
)
from vlm_brain.simulate.params import resolve_demo_params

__all__ = [
    "DEFAULT_DEMO_PARAMS",
    "demo_params_hash",
    "demo_subjects",
    "generate_demo_dataset",
    "resolve_demo_params",
]
