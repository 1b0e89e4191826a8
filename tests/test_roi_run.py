"""Data beyond HCP end to end: the generated ROI example (two scans, TR 1.5 s, a segment table,
missing TRs) through its own conf environment (conf/roi), from raw tables to the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_kedro
from vlm_brain.simulate.roi_example import ROIS, SCANS, SUBJECTS, generate_roi_example


def latest(versioned):
    """The newest version of a versioned dataset (a folder of timestamped versions)."""
    return sorted(versioned.iterdir())[-1] / versioned.name


@pytest.mark.slow
def test_kedro_run_on_a_generated_roi_dataset_writes_the_report(kedro_project):
    generate_roi_example(kedro_project / "data/01_raw/roi")
    run_kedro(kedro_project, "__default__", env="roi")
    report = (kedro_project / "data/08_reporting/report.html").read_text()
    assert "ROI encoding" in report

    timeline = pd.read_parquet(kedro_project / "data/02_intermediate/run_timeline.parquet")
    assert len(timeline) == sum(SCANS.values()) and timeline.keep.all()  # no clip table: every TR kept
    stimulus = pd.read_parquet(kedro_project / "data/02_intermediate/stimulus_table.parquet")
    assert stimulus.has_text.all() and stimulus.text.nunique() > 10  # text from the segment table
    labels = pd.read_parquet(kedro_project / "data/03_primary/grayordinate_labels.parquet")
    assert list(labels.region) == list(ROIS) and set(labels.network) == {v[0] for v in ROIS.values()}

    from vlm_brain.datasets import NpyDictDataset

    group = NpyDictDataset(str(kedro_project / "data/03_primary/fmri_group")).load()
    assert group["bold"].shape == (sum(SCANS.values()), len(ROIS))
    assert np.isfinite(group["bold"]).all()  # one subject's dropout is filled by the others' mean
    ceiling = NpyDictDataset(str(latest(kedro_project / "data/07_model_output/noise_ceiling"))).load()["ceiling"]
    driven = [i for i, v in enumerate(ROIS.values()) if v[2] is not None]
    assert np.all(ceiling[driven] > 0.5)  # leave-one-subject-out: the planted responses are shared

    scores = pd.read_parquet(latest(kedro_project / "data/08_reporting/network_scores.parquet"))
    assert set(scores.atlas) == {"region", "network", "hemisphere"}
    networks = scores[scores.atlas == "network"].groupby("network").r_mean.max()
    assert networks.drop("Somatomotor").min() > networks["Somatomotor"] + 0.3  # driven networks above the undriven
    # FIR (conf/roi) finds the Default ROIs, whose responses come 4 TRs after the canonical HRF, in every layer
    bn = scores[scores.atlas == "network"].pivot_table(index="layer", columns="network", values="frac_bn")
    assert (bn["Default"] == 1).all() and (bn[["Auditory", "Language", "Visual"]] == 1).all().all()
    findings = json.loads((kedro_project / "data/08_reporting/findings.json").read_text())
    assert findings
    qc = pd.read_csv(kedro_project / "data/08_reporting/fmri_qc.csv")
    assert qc.subject.tolist() == list(SUBJECTS) and (qc.n_grayordinates == len(ROIS)).all()
