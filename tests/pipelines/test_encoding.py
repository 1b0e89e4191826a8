"""encoding: network scores by hand, and a Kedro run with MLflow on planted features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import Version

from tests.conftest import edit_yaml, run_kedro, shrink_demo
from vlm_brain.datasets import NpyDictDataset
from vlm_brain.pipelines.encoding.nodes import score_networks
from vlm_brain.tracking import network_metrics, run_parameters


def test_score_networks_by_hand():
    labels = pd.DataFrame({"ca_network": ["Visual1", "Visual1", "Language", "none"],
                           "yeo7": ["Visual", "Visual", "Default", "none"]})
    t = np.array([[4.0, -5.0, 0.0, 0.0], [1.0, 2.0, 0.0, 0.0]])
    layer = {"r": np.array([0.4, 0.2, -0.1, 0.0]), "bn": np.array([True, True, False, False]),
             "atom_t": t, "atom_pos": t > 3, "atom_neg": t < -3}
    ceiling = {"ceiling": np.array([0.8, 0.4, 0.05, 0.5])}
    table = score_networks(labels, ceiling, {"clip.image.L03": layer})
    v1 = table[(table.atlas == "ca_network") & (table.network == "Visual1")].iloc[0]
    assert (v1.model, v1.stream, v1.layer, v1.n_grayordinates) == ("clip", "image", 3, 2)
    assert v1.r_mean == pytest.approx(0.3) and v1.frac_bn == 1.0
    assert (v1.n_bn_pos, v1.n_bn_neg) == (1, 1)
    assert v1.r_norm_mean == pytest.approx((0.4 / 0.8 + 0.2 / 0.4) / 2)
    lang = table[(table.atlas == "ca_network") & (table.network == "Language")].iloc[0]
    assert lang.frac_bn == 0 and np.isnan(lang.r_norm_mean)  # ceiling 0.05 < 0.1
    assert set(table.network) == {"Visual1", "Language", "Visual", "Default"}  # "none" dropped
    metrics = network_metrics(table)
    assert metrics["clip.image.L03/Visual1/r_mean"] == pytest.approx(0.3)
    assert metrics["clip.image.L03/yeo7.Default/frac_bn"] == 0.0


def test_run_parameters_say_which_weights():
    params = {"demo": {"enabled": True}, "fmri_preprocessing": {"runs": {"A": 3}},
              "feature_extraction": {"models": {"clip": {"family": "open_clip", "architecture": "ViT-B-32", "weights": "random", "seed": 4}}},
              "encoding": {"sdl": {"n_atoms": 8, "alpha": 1.0}, "n_null": 100, "q": 0.05}}
    out = run_parameters(params, None)
    assert out["data"] == "demo" and out["weights.clip"] == "random(seed=4)" and out["sdl.k"] == "8"


RUNS = {"tfMRI_MOVIE1_7T_AP": 70, "tfMRI_MOVIE2_7T_PA": 70, "tfMRI_MOVIE3_7T_PA": 70}


def _configure(project):
    shrink_demo(project, RUNS, signal_to_noise=2.0)
    edit_yaml(project / "conf/base/parameters_encoding.yml", lambda c: c["encoding"].update(
        {"sdl": {"n_atoms": 4, "alpha": 0.5, "max_iter": 5}, "n_null": 200, "alphas": [1.0, 100.0, 10000.0]}))


def _planted_features(project, rng):
    """ANs made from the demo's planted stimulus attributes (2 layers per model)."""
    attrs = pd.read_parquet(project / "data/01_raw/demo/stimuli/attributes.parquet")
    visual = attrs.filter(like="visual_").to_numpy(float)
    text = attrs.filter(like="text_").to_numpy(float)
    version = Version(None, "2026-01-01T00.00.00.000Z")
    both = np.hstack([visual, text])
    for model, stream, source in (("clip", "image", visual), ("vit", "image", visual), ("roberta", "text", text),
                                  ("meter", "fusion_text_cross", both)):
        layers = {}
        for i in range(2):
            mixing = rng.standard_normal((source.shape[1], 32))
            layers[f"{model}.{stream}.L{i:02d}"] = source @ mixing + 0.1 * rng.standard_normal((len(source), 32))
        NpyDictDataset(f"data/04_feature/{model}_an_timeseries", version=version).save(layers)


@pytest.mark.slow
def test_encoding_run_tracks_metrics_in_mlflow_and_recovers_planted_networks(kedro_project):
    import mlflow

    _configure(kedro_project)
    run_kedro(kedro_project, "fmri_preprocessing")
    _planted_features(kedro_project, np.random.default_rng(0))
    run_kedro(kedro_project, "encoding")

    scores_dir = kedro_project / "data/08_reporting/network_scores.parquet"
    version = sorted(scores_dir.iterdir())[-1]
    scores = pd.read_parquet(version / "network_scores.parquet")
    assert set(scores.layer_name) == {"clip.image.L00", "clip.image.L01", "vit.image.L00",
                                      "vit.image.L01", "roberta.text.L00", "roberta.text.L01",
                                      "meter.fusion_text_cross.L00", "meter.fusion_text_cross.L01"}
    ca = scores[scores.atlas == "ca_network"].set_index(["layer_name", "network"])
    # visual attributes drive Visual1 (planted), nothing drives Somatomotor
    assert ca.loc[("clip.image.L00", "Visual1"), "r_mean"] > ca.loc[("clip.image.L00", "Somatomotor"), "r_mean"] + 0.1
    assert ca.loc[("clip.image.L00", "Visual1"), "frac_bn"] > 5 * ca.loc[("clip.image.L00", "Somatomotor"), "frac_bn"]
    # caption content drives Language (planted)
    assert ca.loc[("roberta.text.L00", "Language"), "r_mean"] > ca.loc[("roberta.text.L00", "Somatomotor"), "r_mean"] + 0.1

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlruns/mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["vlm-brain"])
    assert len(runs) == 1 and runs.status.iloc[0] == "FINISHED"
    run = mlflow.get_run(runs.run_id.iloc[0])
    assert run.data.params["weights.clip"] == "random(seed=0)" and run.data.params["data"] == "demo"
    expected = ca.loc[("clip.image.L00", "Visual1"), "r_mean"]
    assert run.data.metrics["clip.image.L00/Visual1/r_mean"] == pytest.approx(expected)
    assert len([m for m in run.data.metrics if m.endswith("/r_mean")]) == len(scores)
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)]
    assert "network_scores.csv" in artifacts
