"""encoding: network scores by hand, and a Kedro run with MLflow on planted features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import Version

from tests.conftest import edit_yaml, run_kedro, shrink_demo
from vlm_brain.datasets import NpyDictDataset
from vlm_brain.encoding.scores import network_rows
from vlm_brain.tracking import network_metrics, run_parameters


def test_score_networks_by_hand():
    labels = pd.DataFrame({"ca_network": ["Visual1", "Visual1", "Language", "none"],
                           "yeo7": ["Visual", "Visual", "Default", "none"]})
    t = np.array([[4.0, -5.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0]])
    layer = {"r": np.array([0.4, 0.2, -0.1, 0.0]), "bn": np.array([True, True, False, False]),
             "atom_t": t, "atom_pos": t > 3, "atom_neg": t < -3}
    ceiling = {"ceiling": np.array([0.8, 0.4, 0.05, 0.5])}
    table = network_rows(labels, ceiling["ceiling"], {"clip.image.L03": layer}, "group")
    v1 = table[(table.atlas == "ca_network") & (table.network == "Visual1")].iloc[0]
    assert (v1.model, v1.stream, v1.layer, v1.n_grayordinates) == ("clip", "image", 3, 2)
    assert v1.r_mean == pytest.approx(0.3) and v1.frac_bn == 1.0
    assert (v1.n_bn_pos, v1.n_bn_neg) == (1, 1)
    assert v1.r_norm_mean == pytest.approx((0.4 / 0.8 + 0.2 / 0.4) / 2)
    lang = table[(table.atlas == "ca_network") & (table.network == "Language")].iloc[0]
    assert lang.frac_bn == 0 and np.isnan(lang.r_norm_mean)  # ceiling 0.05 < 0.1
    assert set(table.network) == {"Visual1", "Language", "Visual", "Default"}  # "none" dropped
    metrics = network_metrics(table)  # per stream, per layer index (the MLflow step)
    assert list(metrics) == ["clip.image"] and list(metrics["clip.image"]) == [3]
    assert metrics["clip.image"][3]["Visual1/r_mean"] == pytest.approx(0.3)
    assert metrics["clip.image"][3]["yeo7.Default/frac_bn"] == 0.0


def test_run_parameters_say_which_weights():
    params = {"demo": {"enabled": True}, "fmri_preprocessing": {"runs": {"A": 3}},
              "feature_extraction": {"models": {"clip": {"family": "open_clip", "architecture": "ViT-B-32", "weights": "random", "seed": 4}}},
              "encoding": {"sdl": {"n_atoms": 8, "alpha": 1.0}, "n_refit": 50, "q": 0.05}}
    out = run_parameters(params, None)
    assert out["data"] == "demo" and out["weights.clip"] == "random(seed=4)" and out["sdl.k"] == "8"


RUNS = {"tfMRI_MOVIE1_7T_AP": 70, "tfMRI_MOVIE2_7T_PA": 70, "tfMRI_MOVIE3_7T_PA": 70}


def _configure(project):
    shrink_demo(project, RUNS, signal_to_noise=2.0)
    edit_yaml(project / "conf/base/parameters_encoding.yml", lambda c: c["encoding"].update(
        {"sdl": {"n_atoms": 4, "alpha": 0.5, "max_iter": 5}, "n_refit": 50, "alphas": [1.0, 100.0, 10000.0]}))


def _planted_features(project, rng):
    """ANs made from the demo's planted stimulus attributes (2 layers per stream)."""
    attrs = pd.read_parquet(project / "data/01_raw/demo/stimuli/attributes.parquet")
    visual = attrs.filter(like="visual_").to_numpy(float)
    text = attrs.filter(like="text_").to_numpy(float)
    version = Version(None, "2026-01-01T00.00.00.000Z")
    both = np.hstack([visual, text])
    streams = {"clip": (("image", visual), ("text", text)), "vit": (("image", visual),),
               "roberta": (("text", text),), "meter": (("fusion_image_cross", both), ("fusion_text_cross", both))}
    for model, sources in streams.items():
        layers = {}
        for stream, source in sources:
            for i in range(2):
                mixing = rng.standard_normal((source.shape[1], 32))
                layers[f"{model}.{stream}.L{i:02d}"] = source @ mixing + 0.1 * rng.standard_normal((len(source), 32))
        NpyDictDataset(f"data/04_feature/{model}_an_timeseries", version=version).save(layers)


@pytest.mark.slow
def test_encoding_to_report_tracks_mlflow_and_recovers_planted_networks(kedro_project):
    """Encoding of the group mean and of each subject (Dask), then analyses and reporting, on features
    with a known answer."""
    import mlflow

    _configure(kedro_project)
    run_kedro(kedro_project, "fmri_preprocessing")
    _planted_features(kedro_project, np.random.default_rng(0))
    both = {"encoding": {"target": "both", "cluster": {"n_workers": 2}}}  # as --params encoding.target=both
    run_kedro(kedro_project, "encoding", params=both)

    scores_dir = kedro_project / "data/08_reporting/network_scores.parquet"
    version = sorted(scores_dir.iterdir())[-1]
    scores = pd.read_parquet(version / "network_scores.parquet")
    assert set(scores.subject) == {"group", "demo01", "demo02"}
    per_subject = scores[scores.subject != "group"]
    assert len(per_subject) == 2 * (scores.subject == "group").sum()
    subject_ca = per_subject[per_subject.atlas == "ca_network"].groupby(["subject", "network"]).r_mean.max()
    for subject in ("demo01", "demo02"):  # each subject alone recovers the planted Visual1 > Somatomotor
        assert subject_ca[subject, "Visual1"] > subject_ca[subject, "Somatomotor"]
    scores = scores[scores.subject == "group"]
    assert set(scores.layer_name) == {f"{s}.L0{i}" for i in range(2) for s in (
        "clip.image", "clip.text", "vit.image", "roberta.text", "meter.fusion_image_cross", "meter.fusion_text_cross")}
    ca = scores[scores.atlas == "ca_network"].set_index(["layer_name", "network"])
    # visual attributes drive Visual1 (planted), nothing drives Somatomotor
    assert ca.loc[("clip.image.L00", "Visual1"), "r_mean"] > ca.loc[("clip.image.L00", "Somatomotor"), "r_mean"] + 0.1
    assert ca.loc[("clip.image.L00", "Visual1"), "frac_bn"] > 5 * ca.loc[("clip.image.L00", "Somatomotor"), "frac_bn"]
    # caption content drives Language (planted)
    assert ca.loc[("roberta.text.L00", "Language"), "r_mean"] > ca.loc[("roberta.text.L00", "Somatomotor"), "r_mean"] + 0.1

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlruns/mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = mlflow.get_experiment_by_name("vlm-brain")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on runs
    runs = mlflow.search_runs(experiment_names=["vlm-brain"])
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(parents) == 1 and parents.status.iloc[0] == "FINISHED"
    run = mlflow.get_run(parents.run_id.iloc[0])
    assert run.data.params["weights.clip"] == "random(seed=0)" and run.data.params["data"] == "demo"
    assert run.data.tags["random_weights"] == "yes" and run.data.tags["env"] == "base"
    assert run.data.tags["data"] == "demo" and len(run.data.tags["git_commit"]) >= 7
    assert not [m for m in run.data.metrics if m.endswith("/r_mean")]  # no flat per-layer metrics in the parent
    # one nested run per stream; per-network metrics with step = layer index (a native layer profile)
    children = runs[runs["tags.mlflow.parentRunId"] == run.info.run_id]
    assert set(children["tags.mlflow.runName"]) == {s.rsplit(".", 1)[0] for s in scores.layer_name}
    clip_image = children[children["tags.mlflow.runName"] == "clip.image"].run_id.iloc[0]
    history = {m.step: m.value for m in client.get_metric_history(clip_image, "Visual1/r_mean")}
    assert history == pytest.approx({0: ca.loc[("clip.image.L00", "Visual1"), "r_mean"],
                                     1: ca.loc[("clip.image.L01", "Visual1"), "r_mean"]})
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert {"network_scores.csv", "network_scores.json"} <= set(artifacts)
    inputs = {d.dataset.name for d in run.inputs.dataset_inputs}
    assert {"network_scores", "run_timeline", "fmri_inventory"} <= inputs

    # ---- analyses + reporting on the same outputs
    run_kedro(kedro_project, "analyses", params=both)
    run_kedro(kedro_project, "reporting", params=both)
    check_report_outputs(kedro_project)
    import json

    findings = json.loads((kedro_project / "data/08_reporting/findings.json").read_text())
    across = findings["across_subjects"]
    assert across["available"] and across["n_subjects"] == 2 and findings["units"]["across_subjects"] == "subjects (n = 2)"
    dice = across["architecture"]["pairs/CLIP towers/dice/mean"]
    assert dice["n"] == 2 and dice["ci_low"] <= dice["mean"] <= dice["ci_high"]
    assert set(across["cohort_bns"]) == set(scores.layer_name)
    runs = mlflow.search_runs(experiment_names=["vlm-brain"])
    runs = runs[runs["tags.mlflow.parentRunId"].isna()]
    assert len(runs) == 2
    report_run = runs.sort_values("start_time").iloc[-1]
    logged = [a.path for a in mlflow.MlflowClient().list_artifacts(report_run.run_id)]
    assert {"findings.json", "report.html", "figures", "surface_viewers"} <= set(logged)
    figures = [a.path for a in mlflow.MlflowClient().list_artifacts(report_run.run_id, "figures")]
    assert "figures/network_r_heatmaps.png" in figures
    # the viewers beside report.html, where its relative links point
    viewers = [a.path for a in mlflow.MlflowClient().list_artifacts(report_run.run_id, "surface_viewers")]
    assert viewers and all(v.startswith("surface_viewers/") and v.endswith(".html") for v in viewers)
    assert report_run["metrics.findings/ground_truth/network_accuracy"] >= 0


def check_report_outputs(project):
    """report.html parses, embeds every figure written, and states the findings; findings.json agrees."""
    import base64
    import json
    from html.parser import HTMLParser

    findings = json.loads((project / "data/08_reporting/findings.json").read_text())
    assert set(findings) >= {"provenance", "networks", "redundancy", "polarity", "architecture", "ground_truth"}
    assert findings["provenance"]["random_weights"] == ["clip", "meter", "roberta", "vit"]
    # planted truth: Visual1 and Language driven, Somatomotor not
    truth = findings["ground_truth"]
    assert truth["available"] and {"Visual1", "Language"} <= set(truth["recovered"])
    assert "Somatomotor" not in truth["recovered"]
    assert findings["architecture"]["pairs"]["CLIP towers"]["dice"]["n"] == 2
    assert "clip.image vs vit.image" in findings["architecture"]["baselines"]

    class Images(HTMLParser):
        def __init__(self):
            super().__init__()
            self.images, self.captions, self.text = {}, {}, []
            self.figure, self.in_caption = None, False

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "figure":
                self.figure = attrs["id"].removeprefix("fig-")
            elif tag == "img":
                self.images[self.figure] = attrs["src"]
            elif tag == "figcaption":
                self.in_caption = True

        def handle_endtag(self, tag):
            self.in_caption = self.in_caption and tag != "figcaption"

        def handle_data(self, data):
            self.text.append(data)
            if self.in_caption:
                self.captions[self.figure] = self.captions.get(self.figure, "") + data

    page = Images()
    page.feed((project / "data/08_reporting/report.html").read_text(encoding="utf-8"))
    written = {p.name for p in (project / "data/08_reporting/figures").glob("*.png")}
    assert {"network_r_heatmaps.png", "surface_r.png", "surface_polarity.png", "redundancy_ablation.png",
            "polarity_profiles.png", "architecture_overlap.png", "architecture_baselines.png"} <= written
    assert set(page.images) == written
    # every figure has a caption that says what it shows, not its file name
    assert set(page.captions) == written and all(len(c) > 60 and ".png" not in c for c in page.captions.values())
    assert "q = 0.05" in page.captions["network_bn_heatmaps.png"]
    shown = [n for n in page.captions["surface_r.png"].split(": ", 1)[1].split(", ")]
    assert shown and all(" BNs)" in n for n in shown)  # the layers shown, with their BN counts
    for src in page.images.values():
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    text = " ".join(page.text)
    assert "RANDOM WEIGHTS" in text and "Recovered vs planted ground truth" in text
    assert f"{truth['networks_agree']} of {truth['n_networks']} networks agree" in text


def test_flatten_numbers_for_mlflow():
    from vlm_brain.tracking import flatten_numbers

    tree = {"networks": {"top": [{"r_mean": 0.3, "network": "Visual1"}], "ok": True},
            "architecture": {"pairs": {"CLIP towers": {"dice": {"mean": 0.5, "n": 12}}}}, "none": None}
    assert flatten_numbers(tree) == {"networks/top/0/r_mean": 0.3,
                                     "architecture/pairs/CLIP towers/dice/mean": 0.5,
                                     "architecture/pairs/CLIP towers/dice/n": 12.0}


def test_relative_sqlite_uri_is_made_absolute(tmp_path, monkeypatch):
    from vlm_brain.tracking import absolute_sqlite_uri

    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite_uri("sqlite:///mlruns/mlflow.db") == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    assert absolute_sqlite_uri("sqlite:////data/m.db") == "sqlite:////data/m.db"
    assert absolute_sqlite_uri("http://localhost:5000") == "http://localhost:5000"


@pytest.mark.slow
def test_subjects_only_run_reports_the_findings_across_subjects(kedro_project):
    """encoding.target=subjects: no group-mean model; analyses and report carry the across-subject findings."""
    import json

    _configure(kedro_project)
    run_kedro(kedro_project, "fmri_preprocessing")
    _planted_features(kedro_project, np.random.default_rng(0))
    subjects = {"encoding": {"target": "subjects", "cluster": {"scheduler": "none"}}}
    for pipeline in ("encoding", "analyses", "reporting"):
        run_kedro(kedro_project, pipeline, params=subjects)

    version = sorted((kedro_project / "data/08_reporting/network_scores.parquet").iterdir())[-1]
    scores = pd.read_parquet(version / "network_scores.parquet")
    assert set(scores.subject) == {"demo01", "demo02"}
    findings = json.loads((kedro_project / "data/08_reporting/findings.json").read_text())
    assert findings["networks"]["available"] is False and findings["across_subjects"]["n_subjects"] == 2
    multi = findings["across_subjects"]["redundancy"]["overall/multi_atom_fraction/mean"]
    assert multi["n"] == 2 and 0 <= multi["mean"] <= 1
    page = (kedro_project / "data/08_reporting/report.html").read_text(encoding="utf-8")
    assert "Across subjects (n = 2)" in page and "The group mean was not modelled" in page
    assert "Finding 1:" not in page  # no group-level section without a group model
    assert {p.name for p in (kedro_project / "data/08_reporting/figures").glob("*.png")} == {"cohort_bn_profiles.png"}
