"""The Kedro project itself: pipelines registered, both environments load."""

from __future__ import annotations

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from vlm_brain.pipeline_registry import register_pipelines

EXPECTED = {"feature_extraction", "fmri_preprocessing", "encoding", "analyses", "reporting"}


def test_registry_has_the_five_pipelines_and_default_runs_them_all():
    """`kedro run` runs the five study pipelines; `validation` runs on demand only."""
    pipelines = register_pipelines()
    assert set(pipelines) == EXPECTED | {"__default__", "validation"}
    all_nodes = {n.name for name in EXPECTED for n in pipelines[name].nodes}
    assert {n.name for n in pipelines["__default__"].nodes} == all_nodes
    assert "clean_fmri_runs" in all_nodes


def _context(project, env):
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        return session.load_context()


def test_base_environment_is_the_demo(kedro_project):
    context = _context(kedro_project, None)
    assert context.params["demo"]["enabled"] is True
    assert context.params["fmri_preprocessing"]["runs"] == context.params["demo"]["runs"]
    assert "data/01_raw/demo/fmri" in str(context.catalog.get("fmri_runs")._describe()["path"])


def test_hcp_environment_points_at_the_hcp_layout(kedro_project):
    context = _context(kedro_project, "hcp")
    params = context.params
    assert params["demo"]["enabled"] is False
    assert params["fmri_preprocessing"]["runs"] == {
        "tfMRI_MOVIE1_7T_AP": 921, "tfMRI_MOVIE2_7T_PA": 918,
        "tfMRI_MOVIE3_7T_PA": 915, "tfMRI_MOVIE4_7T_AP": 901}
    # soft merge: what conf/hcp does not override comes from base
    assert params["fmri_preprocessing"]["exclude_repeat"] is True
    assert "data/01_raw/hcp/fmri" in str(context.catalog.get("fmri_runs")._describe()["path"])


def test_hcp_environment_uses_pretrained_weights_and_hcp_movie_names(kedro_project):
    context = _context(kedro_project, "hcp")
    models = context.params["feature_extraction"]["models"]
    assert {m["weights"] for m in models.values()} == {"pretrained"}
    assert context.params["feature_extraction"]["pooling"] == "mean"  # merged from base
    videos = context.catalog.load("movie_videos")
    assert videos.path("tfMRI_MOVIE2_7T_PA").name == "7T_MOVIE2_HO1_v2.mp4"
