"""Project pipelines."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from vlm_brain.pipelines import (
    analyses,
    encoding,
    feature_extraction,
    fmri_preprocessing,
    reporting,
    validation,
)

PIPELINES = {
    "feature_extraction": feature_extraction,
    "fmri_preprocessing": fmri_preprocessing,
    "encoding": encoding,
    "analyses": analyses,
    "reporting": reporting,
    "validation": validation,
}

#: run on demand only (``kedro run --pipelines validation``), not by a plain ``kedro run``
NOT_IN_DEFAULT = ("validation",)


def register_pipelines() -> dict[str, Pipeline]:
    """Every pipeline by name; ``__default__`` (``kedro run``) runs all but the
    on-demand ones (`NOT_IN_DEFAULT`: the method validation)."""
    pipelines = {name: module.create_pipeline() for name, module in PIPELINES.items()}
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name not in NOT_IN_DEFAULT), Pipeline([])
    )
    # the validation simulates from the features: it brings the nodes that make them, so
    # it also runs on a fresh clone (the AN cache makes them instant once computed)
    validation_inputs = pipelines["validation"].inputs() - {i for i in pipelines["validation"].inputs()
                                                              if i.startswith("params:")}
    pipelines["validation"] = pipelines["__default__"].to_outputs(*validation_inputs) + pipelines["validation"]
    return pipelines
