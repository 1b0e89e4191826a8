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


def test_user_layer_overrides_the_hcp_environment_without_editing_tracked_files(kedro_project):
    """conf/hcp-local/ (git-ignored) is read on top of conf/hcp: run lengths, weights, encoding."""
    import hashlib

    tracked = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (kedro_project / "conf").rglob("*.yml")}
    layer = kedro_project / "conf" / "hcp-local"
    layer.mkdir()
    (layer / "globals.yml").write_text("runs:\n  tfMRI_MOVIE1_7T_AP: 120\n  tfMRI_MOVIE2_7T_PA: 110\n"
                                       "raw_root: /data/my_hcp\n")
    (layer / "parameters.yml").write_text("feature_extraction:\n  models:\n    clip: {weights: random}\n"
                                          "encoding:\n  target: both\n")
    context = _context(kedro_project, "hcp")
    assert context.params["fmri_preprocessing"]["runs"] == {"tfMRI_MOVIE1_7T_AP": 120, "tfMRI_MOVIE2_7T_PA": 110}
    clip = context.params["feature_extraction"]["models"]["clip"]
    assert clip["weights"] == "random" and clip["architecture"] == "ViT-B-32"  # merged, not replaced
    assert context.params["encoding"]["target"] == "both"
    assert context.params["encoding"]["sdl"]["n_atoms"] == 64  # conf/hcp still applies beneath
    meter = context.params["feature_extraction"]["models"]["meter"]
    assert meter["checkpoint"] == "/data/my_hcp/weights/meter_clip16_288_roberta_pretrain.ckpt"  # follows raw_root
    assert "/data/my_hcp/fmri" in str(context.catalog.get("fmri_runs")._describe()["path"])
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in tracked} == tracked
    # the demo (base + local) does not see the hcp user layer
    assert _context(kedro_project, None).params["encoding"]["target"] == "group"
