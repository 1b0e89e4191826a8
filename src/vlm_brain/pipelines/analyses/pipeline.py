"""analyses: encoding results -> the four findings (tables + headline statistics)."""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.analyses import nodes


def create_pipeline(models: list[str] = (), **kwargs) -> Pipeline:
    """The analyses read every model's encoding; streams are discovered from the results."""
    params = "params:analyses"
    encodings = [f"{model}.encoding" for model in models]
    ans = [f"{model}.an_timeseries" for model in models]
    return Pipeline(
        [
            Node(nodes.analyse_networks, ["network_scores", "grayordinate_labels", params, *encodings],
                 ["network_findings", "networks_headline"], name="analyse_networks"),
            Node(nodes.analyse_redundancy, [params, *encodings],
                 ["redundancy_layers", "redundancy_atom_dice", "redundancy_headline"], name="analyse_redundancy"),
            Node(nodes.ablate_layers, ["run_timeline", "fmri_group", params, "params:encoding", *ans, *encodings],
                 ["ablation_curves", "ablation_headline"], name="ablate_ans"),
            Node(nodes.analyse_polarity, ["grayordinate_labels", params, "params:encoding", *encodings],
                 ["polarity_layers", "polarity_profiles", "polarity_headline"], name="analyse_polarity"),
            Node(nodes.analyse_architecture, ["grayordinate_labels", params, *encodings],
                 ["architecture_overlap", "baseline_comparison", "architecture_headline"],
                 name="analyse_architecture"),
            Node(nodes.analyse_subjects,
                 ["subject_encodings", "subject_encoding_cache", "cohort_encoding", "network_scores",
                  "grayordinate_labels", params, "params:encoding"],
                 "subjects_headline", name="analyse_subjects"),
            Node(nodes.compare_with_ground_truth, ["demo_ground_truth", "network_scores", params, *encodings],
                 ["ground_truth_recovery", "ground_truth_headline"], name="compare_with_ground_truth"),
        ],
        tags="analyses",
    )
