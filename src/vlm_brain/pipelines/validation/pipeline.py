"""validation: simulate BOLD with a planted truth on real AN features, recover it.

Not part of ``__default__``: run it with ``kedro run --pipelines validation``.
"""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.validation import nodes


def create_pipeline(**kwargs) -> Pipeline:
    params = "params:validation"
    return Pipeline(
        [
            Node(nodes.simulate_and_recover, ["clip_an_timeseries", "run_timeline", params],
                 "validation_metrics", name="simulate_and_recover"),
            Node(nodes.summarise_validation, ["validation_metrics", params], "validation_summary",
                 name="summarise_validation"),
            Node(nodes.plot_validation_power, ["validation_metrics", params], "validation_power",
                 name="plot_validation_power"),
        ],
        tags="validation",
    )
