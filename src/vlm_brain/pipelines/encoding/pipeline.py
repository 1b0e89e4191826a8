"""encoding: AN time series + cleaned fMRI -> per-layer BN maps, network scores.

``encoding.target`` says what is modelled: the group-mean BOLD (``group``: one
``<model>.encoding`` per model, made in the model's namespace), every subject on its
own (``subjects``: one task per subject and layer on Dask, then inference across
subjects), or ``both``.
"""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.encoding import nodes

#: inputs shared by every model's encoding (not namespaced)
SHARED_INPUTS = {"run_timeline", "fmri_group", "group_encoding_cache", "stimulus_features"}


def model_encoding(model: str) -> Pipeline:
    """One model's group-mean encoding, in namespace ``model``: ``<model>.an_timeseries``
    -> ``<model>.encoding``."""
    template = Pipeline([
        Node(nodes.make_encoder(model),
             ["an_timeseries", "run_timeline", "fmri_group", "params:encoding", "group_encoding_cache",
              "stimulus_features"],
             "encoding", name="encode"),
    ])
    return Pipeline(template, namespace=model, inputs=SHARED_INPUTS, parameters={"params:encoding"})


def create_pipeline(models: list[str] = (), **kwargs) -> Pipeline:
    params = "params:encoding"
    ans = [f"{model}.an_timeseries" for model in models]
    encodings = [f"{model}.encoding" for model in models]
    return Pipeline(
        [
            *(model_encoding(m) for m in models),
            Node(nodes.encode_subjects, ["run_timeline", "fmri_clean", params, "subject_encoding_cache",
                                         "stimulus_features", *ans],
                 "subject_encodings", name="encode_subjects"),
            Node(nodes.infer_across_subjects, ["subject_encodings", "subject_encoding_cache", params],
                 "cohort_encoding", name="infer_across_subjects"),
            Node(nodes.compute_noise_ceiling, ["fmri_group", "fmri_clean", params], "noise_ceiling",
                 name="compute_noise_ceiling"),
            Node(nodes.score_networks,
                 ["grayordinate_labels", "noise_ceiling", "subject_encodings", "subject_encoding_cache", "fmri_clean",
                  *encodings],
                 "network_scores", name="score_networks"),
        ],
        tags="encoding",
    )
