"""Project pipelines, built for the models of the run's parameters."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from vlm_brain.config import model_names, session_parameters
from vlm_brain.pipelines import (
    analyses,
    encoding,
    feature_extraction,
    fmri_preprocessing,
    reporting,
    validation,
)
from vlm_brain.pipelines.validation.pipeline import feature_models

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
    on-demand ones (`NOT_IN_DEFAULT`: the method validation).

    The models are those of ``feature_extraction.models`` in the run's parameters
    (:func:`vlm_brain.config.model_names`): each has its own namespace (extraction and
    encoding), and the analyses and the report read all of them.
    """
    parameters = session_parameters()
    models = model_names(parameters)
    pipelines = {name: module.create_pipeline(models=models) for name, module in PIPELINES.items()
                 if name != "validation"}
    pipelines["validation"] = validation.create_pipeline(models=feature_models(parameters))
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name not in NOT_IN_DEFAULT), Pipeline([])
    )
    # the validation simulates from the features: it brings the nodes that make them, so
    # it also runs on a fresh clone (the AN cache makes them instant once computed)
    # (the features of a model that is not enabled are read from an earlier run, if any)
    made = pipelines["__default__"].all_outputs()
    validation_inputs = {i for i in pipelines["validation"].inputs() if i in made}
    pipelines["validation"] = pipelines["__default__"].to_outputs(*validation_inputs) + pipelines["validation"]
    return pipelines
