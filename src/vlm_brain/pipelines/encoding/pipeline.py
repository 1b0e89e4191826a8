"""encoding: AN time series + cleaned fMRI -> per-layer BN maps, network scores.

``encoding.target`` says what is modelled: the group-mean BOLD (``group``: one
``{model}_encoding`` per model), every subject on its own (``subjects``: one task per
subject and layer on Dask, then inference across subjects), or ``both``.
"""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.encoding import nodes
from vlm_brain.pipelines.feature_extraction.pipeline import MODELS


def create_pipeline(**kwargs) -> Pipeline:
    params = "params:encoding"
    ans = [f"{model}_an_timeseries" for model in MODELS]
    encoders = [
        Node(nodes.make_encoder(model), [f"{model}_an_timeseries", "run_timeline", "fmri_group", params],
             f"{model}_encoding", name=f"encode_{model}")
        for model in MODELS
    ]
    return Pipeline(
        [
            *encoders,
            Node(nodes.encode_subjects, ["run_timeline", "fmri_clean", params, "subject_encoding_cache", *ans],
                 "subject_encodings", name="encode_subjects"),
            Node(nodes.infer_across_subjects, ["subject_encodings", "subject_encoding_cache", params],
                 "cohort_encoding", name="infer_across_subjects"),
            Node(nodes.compute_noise_ceiling, "fmri_group", "noise_ceiling", name="compute_noise_ceiling"),
            Node(nodes.score_networks,
                 ["grayordinate_labels", "noise_ceiling", "subject_encodings", "subject_encoding_cache", "fmri_clean",
                  *(f"{m}_encoding" for m in MODELS)],
                 "network_scores", name="score_networks"),
        ],
        tags="encoding",
    )
