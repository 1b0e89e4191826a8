"""Models are configuration: a fifth model (SigLIP) and the removal of METER by YAML alone."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import edit_yaml, run_kedro, shrink_demo

RUNS = {"tfMRI_MOVIE1_7T_AP": 55, "tfMRI_MOVIE2_7T_PA": 55, "tfMRI_MOVIE3_7T_PA": 55}

#: a SigLIP (transformers SiglipModel) of random weights, defined by its config alone
TINY_SIGLIP = {
    "family": "two_tower", "weights": "random", "seed": 0, "max_text_tokens": 32,
    "config": {"model_type": "siglip",
               "vision_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                                 "num_attention_heads": 4, "image_size": 32, "patch_size": 8},
               "text_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                               "num_attention_heads": 4, "vocab_size": 1000, "max_position_embeddings": 32}},
}


def _models(project, update) -> None:
    edit_yaml(project / "conf/base/parameters_feature_extraction.yml",
              lambda c: update(c["feature_extraction"]["models"]))


def _registered(project, params=None):
    """The pipelines Kedro registers for a session of ``project`` (as `kedro run` sees them)."""
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        session.load_context()
        return dict(pipelines)


def test_the_model_list_is_read_from_the_parameters(kedro_project):
    default = _registered(kedro_project)["__default__"]
    namespaces = {n.namespace for n in default.nodes if n.namespace}
    assert namespaces == {"clip", "vit", "roberta", "meter"}
    assert {n.name for n in default.only_nodes_with_namespaces(["clip"]).nodes} == {"clip.extract_ans", "clip.encode"}

    _models(kedro_project, lambda m: m.update(siglip=TINY_SIGLIP))
    dropped = _registered(kedro_project, params={"feature_extraction": {"models": {"meter": None}}})
    names = {n.name for n in dropped["__default__"].nodes}
    assert {"siglip.extract_ans", "siglip.encode"} <= names and not any(n.startswith("meter.") for n in names)
    scores = next(n for n in dropped["encoding"].nodes if n.name == "score_networks")
    assert {"clip.encoding", "vit.encoding", "roberta.encoding", "siglip.encoding"} <= set(scores.inputs)
    assert "meter.encoding" not in scores.inputs

    _models(kedro_project, lambda m: m["clip"].update(enabled=False))
    assert "clip.encode" not in {n.name for n in _registered(kedro_project)["__default__"].nodes}


def test_a_model_entry_without_a_family_is_refused(kedro_project):
    _models(kedro_project, lambda m: m.update(broken={"weights": "random"}))
    with pytest.raises(ValueError, match=r"feature_extraction.models.broken: expected a mapping with a `family`"):
        _registered(kedro_project)


@pytest.mark.slow
def test_siglip_added_and_meter_removed_by_yaml_run_end_to_end(kedro_project):
    shrink_demo(kedro_project, RUNS, signal_to_noise=2.0)
    edit_yaml(kedro_project / "conf/base/parameters_encoding.yml", lambda c: c["encoding"].update(
        {"sdl": {"n_atoms": 4, "alpha": 0.5, "max_iter": 5}, "n_refit": 50, "alphas": [1.0, 100.0, 10000.0]}))

    def swap(models):
        del models["meter"], models["vit"]  # vit too: it only slows the test; METER is the point
        models["siglip"] = TINY_SIGLIP

    _models(kedro_project, swap)
    edit_yaml(kedro_project / "conf/base/parameters_analyses.yml", lambda c: c["analyses"]["architecture"]["pairs"]
              .update({"SigLIP towers": ["siglip.image", "siglip.text"]}))
    edit_yaml(kedro_project / "conf/base/parameters_reporting.yml",
              lambda c: c["reporting"].update(surface_streams=["clip.image", "siglip.image", "siglip.text"]))
    run_kedro(kedro_project, "__default__")

    features = kedro_project / "data/04_feature"
    assert sorted(p.name for p in features.iterdir()) == ["an_cache", "clip_an_timeseries", "roberta_an_timeseries",
                                                          "siglip_an_timeseries", "stimulus_features.parquet"]
    scores_dir = kedro_project / "data/08_reporting/network_scores.parquet"
    scores = pd.read_parquet(sorted(scores_dir.iterdir())[-1] / "network_scores.parquet")
    assert set(scores.model) == {"clip", "roberta", "siglip"}
    assert {f"siglip.{s}.L{i:02d}" for s in ("image", "text") for i in range(2)} <= set(scores.layer_name)

    findings = json.loads((kedro_project / "data/08_reporting/findings.json").read_text())
    assert set(findings["provenance"]["weights"]) == {"clip", "roberta", "siglip"} and findings["data_warnings"] == []
    streams = ["clip.image", "clip.text", "roberta.text", "siglip.image", "siglip.text"]
    assert list(findings["redundancy"]["per_stream"]) == streams  # discovered from the results
    assert list(findings["polarity"]["bn_counts"]) == streams and list(findings["networks"]["top_networks"]) == streams
    assert set(findings["architecture"]["pairs"]) == {"CLIP towers", "SigLIP towers"}  # METER's pairs: skipped
    assert "meter" not in json.dumps({k: findings[k] for k in ("networks", "redundancy", "polarity", "architecture")})
    report = (kedro_project / "data/08_reporting/report.html").read_text()
    assert "siglip.image" in report and "siglip.text" in report
    check_the_notebook_runs_on_these_outputs(kedro_project)
    figures = {p.name for p in (kedro_project / "data/08_reporting/figures").iterdir()}
    assert {"surface_r.png", "network_layer_profiles.png", "architecture_overlap.png"} <= figures
    assert report.count("<img") == len(figures) == report.count("<figcaption>")
    captions = json.loads((kedro_project / "data/08_reporting/figure_captions.json").read_text())
    assert set(captions) == figures and "siglip.image.L0" in captions["surface_r.png"]


def check_the_notebook_runs_on_these_outputs(project) -> None:
    """notebooks/quickstart.ipynb, executed in ``project`` after its run: it loads the outputs,
    re-encodes a layer with the library (equal to the stored one) and draws a surface map."""
    import nbformat
    from nbclient import NotebookClient

    from tests.conftest import REPO

    notebook = nbformat.read(REPO / "notebooks/quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(project)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "clip.image.L00: " in text and "the stored result differs by at most" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the surface figure
