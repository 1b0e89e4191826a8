"""fmri_preprocessing: timeline -> inventory -> cleaned runs -> group mean, labels, QC."""

from kedro.pipeline import Node, Pipeline

from vlm_brain.pipelines.fmri_preprocessing import nodes


def create_pipeline(**kwargs) -> Pipeline:
    params = "params:fmri_preprocessing"
    return Pipeline(
        [
            Node(nodes.build_run_timeline, ["clip_table", params], "run_timeline",
                 name="build_run_timeline"),
            Node(nodes.inventory_runs, ["fmri_runs", params], "fmri_inventory",
                 name="inventory_fmri_runs"),
            Node(nodes.label_networks, ["fmri_runs", "fmri_inventory"], "grayordinate_labels",
                 name="label_grayordinate_networks"),
            Node(nodes.clean_runs, ["fmri_runs", "fmri_inventory", "run_timeline", params],
                 "fmri_clean", name="clean_fmri_runs"),
            Node(nodes.average_subjects, "fmri_clean", "fmri_group", name="average_subjects"),
            Node(nodes.summarise_quality, ["fmri_clean", "fmri_inventory", "run_timeline"], "fmri_qc",
                 name="summarise_fmri_quality"),
        ],
        tags="fmri_preprocessing",
    )
