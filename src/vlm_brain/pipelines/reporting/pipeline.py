"""reporting: findings.json, figures and the self-contained report.html."""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.reporting import nodes


def create_pipeline(models: list[str] = (), **kwargs) -> Pipeline:
    params = "params:reporting"
    encodings = [f"{model}.encoding" for model in models]
    return Pipeline(
        [
            Node(nodes.collect_findings,
                 ["networks_headline", "redundancy_headline", "ablation_headline", "polarity_headline",
                  "architecture_headline", "ground_truth_headline", "validation_summary", "subjects_headline", "fmri_qc", params,
                  "params:demo", "params:feature_extraction", "params:encoding"],
                 "findings", name="collect_findings"),
            Node(nodes.make_figures,
                 ["network_scores", "redundancy_atom_dice", "ablation_curves", "polarity_layers",
                  "architecture_overlap", "baseline_comparison", "cohort_encoding", "noise_ceiling", params,
                  "params:encoding", "params:analyses", *encodings],
                 ["report_figures@matplotlib", "report_captions"], name="make_figures"),
            Node(nodes.make_surface_viewers, [params, "params:encoding", *encodings], "surface_viewers", name="make_surface_viewers"),
            Node(nodes.render_report,
                 ["findings", "network_findings", "redundancy_layers", "polarity_profiles", "architecture_overlap",
                  "baseline_comparison", "ground_truth_recovery", "report_figures@png", "report_captions", "validation_summary",
                  "fmri_qc", "network_scores", "surface_viewers", params],
                 "report_html", name="render_report"),
        ],
        tags="reporting",
    )
