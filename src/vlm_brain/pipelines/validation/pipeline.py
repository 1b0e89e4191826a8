"""validation: simulate BOLD with a planted truth on real AN features, recover it.

Not part of ``__default__``: run it with ``kedro run --pipelines validation``.
"""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.validation import nodes
from vlm_brain.results import parse_layer_name


def feature_models(parameters: dict) -> list[str]:
    """The models whose ANs carry the planted truth (those of ``validation.image_layer``
    and ``validation.text_layer``)."""
    cfg = parameters.get("validation") or {}
    names = [cfg.get(key) for key in ("image_layer", "text_layer")]
    return sorted({parse_layer_name(n).model for n in names if n})


def create_pipeline(models: list[str] = (), **kwargs) -> Pipeline:
    """``models``: those of :func:`feature_models`."""
    params = "params:validation"
    return Pipeline(
        [
            Node(nodes.simulate_and_recover,
                 ["run_timeline", params, "stimulus_features", *(f"{m}.an_timeseries" for m in models)],
                 "validation_metrics", name="simulate_and_recover"),
            Node(nodes.summarise_validation, ["validation_metrics", params], "validation_summary",
                 name="summarise_validation"),
            Node(nodes.plot_validation_power, ["validation_metrics", params], "validation_power",
                 name="plot_validation_power"),
        ],
        tags="validation",
    )
