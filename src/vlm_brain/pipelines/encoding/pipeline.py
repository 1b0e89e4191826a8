"""encoding: AN time series + cleaned fMRI -> per-layer BN maps, network scores."""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.encoding import nodes
from vlm_brain.pipelines.feature_extraction.pipeline import MODELS


def create_pipeline(**kwargs) -> Pipeline:
    params = "params:encoding"
    encoders = [
        Node(nodes.make_encoder(model), [f"{model}_an_timeseries", "run_timeline", "fmri_group", params],
             f"{model}_encoding", name=f"encode_{model}")
        for model in MODELS
    ]
    return Pipeline(
        [
            *encoders,
            Node(nodes.compute_noise_ceiling, "fmri_group", "noise_ceiling", name="compute_noise_ceiling"),
            Node(nodes.score_networks,
                 ["grayordinate_labels", "noise_ceiling", *(f"{m}_encoding" for m in MODELS)],
                 "network_scores", name="score_networks"),
        ],
        tags="encoding",
    )
