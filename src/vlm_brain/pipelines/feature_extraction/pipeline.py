"""feature_extraction: stimulus table -> AN time series per model (all streams, layers)."""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.feature_extraction import nodes

MODELS = ("clip", "vit", "roberta", "meter")


def create_pipeline(**kwargs) -> Pipeline:
    params = "params:feature_extraction"
    extractors = [
        Node(nodes.make_extractor(model),
             ["movie_videos", "stimulus_table", f"params:feature_extraction.models.{model}", params,
              "an_cache"],
             f"{model}_an_timeseries", name=f"extract_{model}_ans")
        for model in MODELS
    ]
    return Pipeline(
        [Node(nodes.build_stimulus_table, ["run_timeline", "movie_captions", "clip_table", params],
              "stimulus_table", name="build_stimulus_table"), *extractors],
        tags="feature_extraction",
    )
