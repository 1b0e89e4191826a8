"""feature_extraction: stimulus table -> AN time series per model (all streams, layers).

Every model of ``feature_extraction.models`` gets its own namespaced pipeline
(``<model>.extract_ans`` -> ``<model>.an_timeseries``), so a model is added or dropped
in the YAML alone and ``kedro run --namespaces clip`` runs one model.
"""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.feature_extraction import nodes

#: inputs shared by every model's extraction (not namespaced)
SHARED_INPUTS = {"movie_videos", "stimulus_table", "an_cache"}


def model_extraction(model: str) -> Pipeline:
    """One model's extraction, in namespace ``model``: its spec is
    ``params:feature_extraction.models.<model>``."""
    template = Pipeline([
        Node(nodes.make_extractor(model),
             ["movie_videos", "stimulus_table", "params:spec", "params:feature_extraction", "an_cache"],
             "an_timeseries", name="extract_ans"),
    ])
    return Pipeline(template, namespace=model, inputs=SHARED_INPUTS,
                    parameters={"params:spec": f"params:feature_extraction.models.{model}",
                                "params:feature_extraction": "params:feature_extraction"})


def create_pipeline(models: list[str] = (), **kwargs) -> Pipeline:
    stimulus = Node(nodes.build_stimulus_table, ["run_timeline", "movie_captions", "clip_table",
                                                 "params:feature_extraction", "annotation_segments"],
                    "stimulus_table", name="build_stimulus_table")
    features = Node(nodes.extract_stimulus_features, ["movie_videos", "stimulus_table", "params:feature_extraction"],
                    "stimulus_features", name="extract_stimulus_features")
    return Pipeline([stimulus, features, *(model_extraction(m) for m in models)], tags="feature_extraction")
