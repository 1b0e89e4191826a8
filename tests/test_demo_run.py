"""The demo route: the hook generates the demo once, then fmri_preprocessing runs on it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_kedro
from tests.conftest import shrink_demo as shrink
from vlm_brain.hooks import DemoDataError, ensure_demo_dataset

SMALL_RUNS = {"tfMRI_MOVIE1_7T_AP": 55, "tfMRI_MOVIE2_7T_PA": 55}


def shrink_demo(project):
    """A tiny demo: 2 runs of 55 TRs, 2 subjects, a small video."""
    shrink(project, SMALL_RUNS)


@pytest.mark.slow
def test_kedro_run_fmri_preprocessing_on_the_demo(kedro_project):
    shrink_demo(kedro_project)
    run_kedro(kedro_project, "fmri_preprocessing")
    root = kedro_project / "data/01_raw/demo"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["subjects"] == ["demo01", "demo02"]
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}

    run_kedro(kedro_project, "fmri_preprocessing")  # second run reuses the demo untouched
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == mtimes

    qc = pd.read_csv(kedro_project / "data/08_reporting/fmri_qc.csv")
    timeline = pd.read_parquet(kedro_project / "data/02_intermediate/run_timeline.parquet")
    assert qc.subject.tolist() == ["demo01", "demo02"]
    assert (qc.n_kept_trs == int(timeline.keep.sum())).all() and (qc.n_grayordinates == 59_412).all()
    labels = pd.read_parquet(kedro_project / "data/03_primary/grayordinate_labels.parquet")
    assert labels.ca_network.nunique() == 12
    from vlm_brain.datasets import NpyDictDataset

    group = NpyDictDataset(str(kedro_project / "data/03_primary/fmri_group")).load()
    assert group["bold"].shape == (int(timeline.keep.sum()), 59_412)
    assert group["repeat"].shape[0] == 2
    # planted truth survives preprocessing: Visual1's driven grayordinates respond to
    # visual contrast more than Somatomotor's (no driver) do
    truth = pd.read_parquet(root / "ground_truth/grayordinates.parquet")
    attrs = pd.read_parquet(root / "stimuli/attributes.parquet")
    assert len(truth) == 59_412 and truth.driven.any()
    assert set(truth.loc[truth.network == "Somatomotor", "modality"]) == {"none"}
    assert len(attrs) == sum(SMALL_RUNS.values())


def test_existing_demo_with_other_parameters_is_never_overwritten(tmp_path):
    root = tmp_path / "demo"
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"params_hash": "0" * 64}))
    (root / "precious.txt").write_text("keep me")
    with pytest.raises(DemoDataError, match="generated with other demo parameters"):
        ensure_demo_dataset(root, {"n_subjects": 1})
    assert (root / "precious.txt").read_text() == "keep me"


def test_foreign_folder_is_refused(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "my_data.nii").write_bytes(b"\x00")
    with pytest.raises(DemoDataError, match="has no manifest.json"):
        ensure_demo_dataset(tmp_path / "demo", {})
    assert (tmp_path / "demo" / "my_data.nii").exists()
    np.testing.assert_equal(sorted(p.name for p in (tmp_path / "demo").iterdir()), ["my_data.nii"])
