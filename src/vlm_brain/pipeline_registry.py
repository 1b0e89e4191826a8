"""Project pipelines."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from vlm_brain.pipelines import (
    analyses,
    encoding,
    feature_extraction,
    fmri_preprocessing,
    reporting,
)

PIPELINES = {
    "feature_extraction": feature_extraction,
    "fmri_preprocessing": fmri_preprocessing,
    "encoding": encoding,
    "analyses": analyses,
    "reporting": reporting,
}


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline by name; ``__default__`` (``kedro run``) runs them all."""
    pipelines = {name: module.create_pipeline() for name, module in PIPELINES.items()}
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
