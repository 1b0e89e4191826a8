"""fmri_preprocessing: node-level behaviour and bad inputs, plus full Kedro runs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tests.conftest import clip_table, run_kedro, set_runs, write_hcp_layout
from vlm_brain.fmri.cifti import write_dtseries
from vlm_brain.fmri.cleaning import clean_run
from vlm_brain.fmri.io import FmriInputError, RunFiles
from vlm_brain.fmri.layout import run_path
from vlm_brain.fmri.timeline import build_timeline
from vlm_brain.pipelines.fmri_preprocessing import nodes

RUNS = {"tfMRI_MOVIE1_7T_AP": 30, "tfMRI_MOVIE2_7T_PA": 28}


def params(**overrides):
    p = {"tr": 1.0, "runs": dict(RUNS), "subjects": "all", "exclude_repeat": True,
         "detrend": True, "high_pass": None, "standardize": True}
    p.update(overrides)
    return p


@pytest.fixture
def layout(tmp_path, cortex_models):
    data = write_hcp_layout(tmp_path, cortex_models, runs=RUNS)
    return tmp_path, RunFiles(tmp_path / "fmri"), data


def test_clean_subject_is_per_run_cleaning_then_exclusions(layout):
    _, runs, raw = layout
    timeline = build_timeline(clip_table(RUNS), RUNS, 1.0)
    inventory = nodes.inventory_runs(runs, params())
    assert inventory[["subject", "run"]].values.tolist() == [
        ["100610", "tfMRI_MOVIE1_7T_AP"], ["100610", "tfMRI_MOVIE2_7T_PA"],
        ["102311", "tfMRI_MOVIE1_7T_AP"], ["102311", "tfMRI_MOVIE2_7T_PA"]]
    lazy = nodes.clean_runs(runs, inventory, timeline, params())
    out = lazy["102311"].compute()
    expected, repeats = [], []
    for run in RUNS:
        rows = timeline[timeline.run == run]
        cleaned = clean_run(raw["102311", run], 1.0)
        expected.append(cleaned[rows.keep.to_numpy()])
        repeats.append(cleaned[rows.is_repeat.to_numpy()])
    np.testing.assert_allclose(out["bold"], np.concatenate(expected), atol=1e-6)
    assert out["bold"].shape == (int(timeline.keep.sum()), 59_412)
    assert out["repeat"].shape == (2, 6, 59_412)
    np.testing.assert_allclose(out["repeat"], np.stack(repeats), atol=1e-6)


def test_group_mean_and_quality(layout):
    a = {"bold": np.ones((3, 2)), "repeat": np.zeros((2, 1, 2))}
    b = {"bold": np.array([[3.0, 0], [3, 0], [3, 0]]), "repeat": np.ones((2, 1, 2))}
    group = nodes.average_subjects({"s1": a, "s2": b})
    np.testing.assert_array_equal(group["bold"], [[2, 0.5]] * 3)
    np.testing.assert_array_equal(group["repeat"], np.full((2, 1, 2), 0.5))
    inventory = pd.DataFrame({"subject": ["s1", "s1", "s2"]})
    qc = nodes.summarise_quality({"s1": a, "s2": b}, inventory)
    assert qc.n_constant.tolist() == [0, 1] and qc.n_runs.tolist() == [2, 1]


def test_quality_counts_trs_beyond_the_timeline_and_says_what_will_be_missing():
    from vlm_brain.fmri.quality import data_warnings

    clean = {"s1": {"bold": np.ones((3, 2)), "repeat": np.zeros((2, 0, 2))}}
    inventory = pd.DataFrame({"subject": ["s1", "s1"], "run": ["A", "B"], "n_trs": [12, 10], "status": "ok"})
    timeline = pd.DataFrame({"run": ["A"] * 10 + ["B"] * 10})
    qc = nodes.summarise_quality(clean, inventory, timeline)
    assert qc.n_dropped_trs.tolist() == [2]
    assert data_warnings(qc) == [
        "subject s1: 2 TRs of its run files lie beyond the stimulus timeline and are not used",
        "no usable repeated clip (is_repeat in >= 2 runs): there is no noise ceiling, r / ceiling is NaN"]
    clean["s1"]["repeat"] = np.zeros((2, 5, 2))
    assert data_warnings(nodes.summarise_quality(clean, inventory.assign(n_trs=10), timeline)) == []


def test_missing_run_file(layout):
    root, runs, _ = layout
    missing = run_path(root / "fmri", "102311", "tfMRI_MOVIE2_7T_PA")
    missing.unlink()
    with pytest.raises(FmriInputError, match=f"missing run file for subject 102311, run tfMRI_MOVIE2_7T_PA: {missing}"):
        nodes.inventory_runs(runs, params(subjects=["100610", "102311"]))


def test_incomplete_subject_is_skipped_with_a_reason_when_asked(layout, caplog):
    root, runs, _ = layout
    missing = run_path(root / "fmri", "102311", "tfMRI_MOVIE2_7T_PA")
    missing.unlink()
    inventory = nodes.inventory_runs(runs, params(incomplete_subjects="skip"))
    assert "subject 102311 left out" in caplog.text
    assert nodes.usable(inventory).subject.unique().tolist() == ["100610"]
    skipped = inventory[inventory.status == "skipped"]
    assert skipped.subject.tolist() == ["102311"] and str(missing) in skipped.reason.iloc[0]
    timeline = build_timeline(clip_table(RUNS), RUNS, 1.0)
    clean = {s: entry.compute() for s, entry in nodes.clean_runs(runs, inventory, timeline, params()).items()}
    assert list(clean) == ["100610"]
    qc = nodes.summarise_quality(clean, inventory).set_index("subject")
    assert qc.loc["100610", "status"] == "used" and qc.loc["100610", "n_runs"] == 2
    assert qc.loc["102311", "status"] == "skipped" and "missing run file" in qc.loc["102311", "reason"]
    with pytest.raises(ValueError, match="incomplete_subjects must be 'error' or 'skip', got 'drop'"):
        nodes.inventory_runs(runs, params(incomplete_subjects="drop"))
    missing_too = run_path(root / "fmri", "100610", "tfMRI_MOVIE1_7T_AP")
    missing_too.unlink()  # nobody left: one error listing why each subject was left out
    with pytest.raises(FmriInputError, match="no subject .* has every run usable; left out: 100610 .*; 102311"):
        nodes.inventory_runs(runs, params(incomplete_subjects="skip"))


def test_wrong_tr(layout, cortex_models):
    root, runs, _ = layout
    path = write_dtseries(run_path(root / "fmri", "100610", "tfMRI_MOVIE1_7T_AP"),
                          np.ones((30, 59_412)), 0.72, cortex_models)
    with pytest.raises(FmriInputError, match=f"{path}: TR is 0.72 s, expected 1 s"):
        nodes.inventory_runs(runs, params())


def test_run_shorter_than_timeline(layout, cortex_models):
    root, runs, _ = layout
    path = write_dtseries(run_path(root / "fmri", "102311", "tfMRI_MOVIE2_7T_PA"),
                          np.ones((20, 59_412)), 1.0, cortex_models)
    with pytest.raises(FmriInputError, match=f"{path}: 20 TRs, shorter than the stimulus timeline of run tfMRI_MOVIE2_7T_PA \\(28 TRs\\)"):
        nodes.inventory_runs(runs, params())


def test_longer_run_is_cropped_with_a_warning(layout, cortex_models, caplog):
    root, runs, _ = layout
    write_dtseries(run_path(root / "fmri", "102311", "tfMRI_MOVIE2_7T_PA"),
                   np.random.default_rng(0).standard_normal((35, 59_412)), 1.0, cortex_models)
    inventory = nodes.inventory_runs(runs, params())
    assert "using the first 28" in caplog.text
    timeline = build_timeline(clip_table(RUNS), RUNS, 1.0)
    out = nodes.clean_runs(runs, inventory, timeline, params())["102311"].compute()
    assert out["bold"].shape[0] == int(timeline.keep.sum())


@pytest.mark.parametrize("bad", ["all_nan", "some_inf"])
def test_non_finite_data(layout, cortex_models, bad):
    root, runs, _ = layout
    data = np.ones((30, 59_412), dtype=np.float32)
    if bad == "all_nan":
        data[:] = np.nan
        message = "all values are NaN or infinite"
    else:
        data[3, 7] = np.inf
        message = "1 values in 1 grayordinates are NaN or infinite"
    path = write_dtseries(run_path(root / "fmri", "100610", "tfMRI_MOVIE1_7T_AP"), data, 1.0, cortex_models)
    inventory = nodes.inventory_runs(runs, params())
    timeline = build_timeline(clip_table(RUNS), RUNS, 1.0)
    with pytest.raises(FmriInputError, match=f"{path}: {message}"):
        nodes.clean_runs(runs, inventory, timeline, params())["100610"].compute()


def test_unknown_grayordinate_count(layout, cortex_models):
    root, runs, _ = layout
    path = write_dtseries(run_path(root / "fmri", "100610", "tfMRI_MOVIE1_7T_AP"),
                          np.ones((30, 1000)), 1.0, cortex_models[:1000])
    with pytest.raises(FmriInputError, match=f"{path}: 1000 grayordinates; expected 91282"):
        nodes.inventory_runs(runs, params())


def test_nifti_runs_with_a_mask(tmp_path):
    rng = np.random.default_rng(3)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    mask = np.zeros((4, 5, 3), dtype=np.uint8)
    mask[1:3, 1:4, 1] = 1  # 6 voxels
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "mask.nii.gz")
    pattern = "{subject}/{run}.nii.gz"
    volumes = {}
    for run, n in RUNS.items():
        vol = (500 + rng.standard_normal((4, 5, 3, n))).astype(np.float32)
        img = nib.Nifti1Image(vol, affine)
        img.header.set_zooms((2.0, 2.0, 2.0, 1.0))
        img.header.set_xyzt_units("mm", "sec")
        (tmp_path / "s1").mkdir(exist_ok=True)
        nib.save(img, tmp_path / "s1" / f"{run}.nii.gz")
        volumes[run] = vol
    runs = RunFiles(tmp_path, pattern, "nifti", tmp_path / "mask.nii.gz")
    inventory = nodes.inventory_runs(runs, params())
    assert inventory.n_grayordinates.tolist() == [6, 6] and inventory.tr.tolist() == [1.0, 1.0]
    data = runs.read("s1", "tfMRI_MOVIE1_7T_AP")
    np.testing.assert_allclose(data, volumes["tfMRI_MOVIE1_7T_AP"][mask.astype(bool)].T, rtol=1e-6)
    labels = nodes.label_networks(runs, inventory)
    assert len(labels) == 6 and (labels.ca_network == "none").all()
    no_mask = RunFiles(tmp_path, pattern, "nifti", None)
    with pytest.raises(FmriInputError, match="NIfTI runs need a brain mask"):
        no_mask.header("s1", "tfMRI_MOVIE1_7T_AP")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_kedro_run_env_hcp_on_a_directory_in_the_hcp_layout(kedro_project, cortex_models):
    set_runs(kedro_project, RUNS, env="hcp")
    raw_root = kedro_project / "data" / "01_raw" / "hcp"
    raw = write_hcp_layout(raw_root, cortex_models, runs=RUNS)
    before = _digest(raw_root)

    run_kedro(kedro_project, "fmri_preprocessing", env="hcp")
    data = kedro_project / "data"
    sizes = {p: p.stat().st_size for p in data.rglob("*") if p.is_file() and "01_raw" not in p.parts}
    run_kedro(kedro_project, "fmri_preprocessing", env="hcp")  # unchanged inputs: the cleaned subjects are reused
    after = {p: p.stat().st_size for p in data.rglob("*") if p.is_file() and "01_raw" not in p.parts}
    assert sum(after.values()) == sum(sizes.values()), "the second run must not store another copy"
    entries = kedro_project / "data/03_primary/fmri_clean/entries"
    assert len(list(entries.iterdir())) == 2  # one stored entry per subject, not per run

    assert _digest(raw_root) == before, "a run changed data/01_raw"
    from vlm_brain.datasets import ContentAddressedDataset, NpyDictDataset

    clean = ContentAddressedDataset(str(kedro_project / "data/03_primary/fmri_clean")).load()
    assert sorted(clean) == ["100610", "102311"]
    timeline = pd.read_parquet(kedro_project / "data/02_intermediate/run_timeline.parquet")
    first = clean_run(raw["100610", "tfMRI_MOVIE1_7T_AP"], 1.0)[timeline.keep[timeline.run == "tfMRI_MOVIE1_7T_AP"].to_numpy()]
    np.testing.assert_allclose(clean["100610"]["bold"][: len(first)], first, atol=1e-6)
    group = NpyDictDataset(str(kedro_project / "data/03_primary/fmri_group")).load()
    np.testing.assert_allclose(group["bold"], (clean["100610"]["bold"] + clean["102311"]["bold"]) / 2, atol=1e-6)
    labels = pd.read_parquet(kedro_project / "data/03_primary/grayordinate_labels.parquet")
    assert len(labels) == 59_412 and labels.ca_network.nunique() == 12
    qc = pd.read_csv(kedro_project / "data/08_reporting/fmri_qc.csv")
    assert qc.n_kept_trs.tolist() == [int(timeline.keep.sum())] * 2


@pytest.mark.slow
def test_kedro_run_reports_a_missing_run_file(kedro_project, cortex_models):
    set_runs(kedro_project, RUNS, env="hcp")
    raw_root = kedro_project / "data" / "01_raw" / "hcp"
    write_hcp_layout(raw_root, cortex_models, runs=RUNS)
    run_path(raw_root / "fmri", "100610", "tfMRI_MOVIE2_7T_PA").unlink()
    with pytest.raises(FmriInputError, match="missing run file for subject 100610, run tfMRI_MOVIE2_7T_PA"):
        run_kedro(kedro_project, "fmri_preprocessing", env="hcp")


@pytest.mark.slow
def test_kedro_run_with_bad_inputs_names_them_and_leaves_the_raw_data_untouched(kedro_project, cortex_models):
    """A repeat flag spelled 1.0 is understood; an all-zero run and overlapping clips stop the run with one
    message naming the file and the fix; data/01_raw is byte-identical afterwards."""
    from kedro.io import DatasetError

    from vlm_brain.datasets import EntryError
    from vlm_brain.fmri.cifti import write_dtseries
    from vlm_brain.fmri.timeline import TimelineError

    set_runs(kedro_project, RUNS, env="hcp")
    raw_root = kedro_project / "data" / "01_raw" / "hcp"
    write_hcp_layout(raw_root, cortex_models, runs=RUNS)
    table_path = raw_root / "stimuli/clip_times.csv"
    table = pd.read_csv(table_path)
    table["is_repeat"] = table["is_repeat"].map({True: "1.0", False: "0.0"})
    table.to_csv(table_path, index=False)
    run_kedro(kedro_project, "fmri_preprocessing", env="hcp")
    timeline = pd.read_parquet(kedro_project / "data/02_intermediate/run_timeline.parquet")
    assert timeline.is_repeat.sum() == 2 * 6 and not timeline[timeline.is_repeat].keep.any()

    zero = run_path(raw_root / "fmri", "102311", "tfMRI_MOVIE2_7T_PA")
    write_dtseries(zero, np.zeros((RUNS["tfMRI_MOVIE2_7T_PA"], len(cortex_models))), 1.0, cortex_models)
    before = _digest(raw_root)
    with pytest.raises(DatasetError, match=r"^fmri_clean: 102311: .*tfMRI_MOVIE2_7T_PA.*every grayordinate is constant") \
            as caught:  # the problem itself, not "Failed while saving data to dataset ..."
        run_kedro(kedro_project, "fmri_preprocessing", env="hcp")
    assert isinstance(caught.value.__cause__, EntryError) and caught.value.__cause__.__cause__ is None
    assert _digest(raw_root) == before

    overlapping = table.copy()
    overlapping.loc[overlapping["clip"] == 2, "onset"] = 5.0
    overlapping.to_csv(table_path, index=False)
    before = _digest(raw_root)
    with pytest.raises(TimelineError, match=r"clip 2 starts at 5.0 s, before clip 1 ends"):
        run_kedro(kedro_project, "fmri_preprocessing", env="hcp")
    assert _digest(raw_root) == before
