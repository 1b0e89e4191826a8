"""Data beyond HCP through the pipelines' nodes: ROI tables, no clip table, segment tables, no video."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlm_brain.datasets import FmriRunsDataset
from vlm_brain.datasets.fmri import RunFileIndex
from vlm_brain.fmri.io import FmriInputError
from vlm_brain.fmri.timecourses import clean_with_missing
from vlm_brain.fmri.timeline import build_timeline
from vlm_brain.pipelines.feature_extraction import nodes as fx
from vlm_brain.pipelines.fmri_preprocessing import nodes

RUNS = {"scan1": 24, "scan2": 20}
NAMES = ["V1", "A1", "PCC"]


def params(**overrides):
    p = {"tr": 1.5, "runs": dict(RUNS), "subjects": "all", "exclude_repeat": True, "detrend": True,
         "high_pass": None, "standardize": True}
    return {**p, **overrides}


def write_tables(root, subjects=("s1", "s2"), seed=0, names=NAMES):
    rng = np.random.default_rng(seed)
    raw = {}
    for subject in subjects:
        (root / subject).mkdir(parents=True)
        for scan, n in RUNS.items():
            data = 50 + rng.standard_normal((n + 2, len(names)))  # files 2 TRs longer than the timeline
            if subject == "s2" and scan == "scan2":
                data[5:9, 2] = np.nan  # a dropout of PCC
            pd.DataFrame(data, columns=names).to_csv(root / subject / f"{scan}.tsv", sep="\t", index=False, na_rep="")
            raw[subject, scan] = data
    pd.DataFrame({"target": ["V1", "A1"], "network": ["Visual", "Auditory"]}).to_csv(
        root / "labels.tsv", sep="\t", index=False)
    return raw


def test_roi_tables_are_inventoried_labelled_and_cleaned_with_their_missing_trs(tmp_path):
    raw = write_tables(tmp_path)
    runs = FmriRunsDataset(str(tmp_path), pattern="{subject}/{run}.tsv", format="table",
                           labels=str(tmp_path / "labels.tsv")).load()
    inventory = nodes.inventory_runs(runs, params())
    assert inventory.n_grayordinates.tolist() == [3] * 4 and inventory.n_trs.tolist() == [26, 22] * 2
    assert inventory.tr.isna().all()  # tables state no TR: the parameter is trusted
    labels = nodes.label_networks(runs, inventory)
    assert labels.region.tolist() == NAMES and labels.network.tolist() == ["Visual", "Auditory", "none"]
    timeline = build_timeline(None, RUNS, 1.5)
    assert timeline.keep.all() and not timeline.is_repeat.any()
    clean = {s: e.compute() for s, e in nodes.clean_runs(runs, inventory, timeline, params()).items()}
    expected = np.concatenate([clean_with_missing(raw["s2", scan][:n], 1.5) for scan, n in RUNS.items()])
    np.testing.assert_allclose(clean["s2"]["bold"], expected, atol=1e-5)
    assert np.isnan(clean["s2"]["bold"][RUNS["scan1"] + 5:RUNS["scan1"] + 9, 2]).all()
    group = nodes.average_subjects(clean)
    rows = slice(RUNS["scan1"] + 5, RUNS["scan1"] + 9)
    np.testing.assert_allclose(group["bold"][rows, 2], clean["s1"]["bold"][rows, 2], atol=1e-6)  # s1 alone there
    np.testing.assert_allclose(group["bold"][:5], (clean["s1"]["bold"][:5] + clean["s2"]["bold"][:5]) / 2, atol=1e-6)


def test_roi_tables_that_name_other_targets_are_refused(tmp_path):
    write_tables(tmp_path / "a", subjects=("s1",))
    write_tables(tmp_path / "b", subjects=("s2",), names=["V1", "A1", "mPFC"])
    (tmp_path / "b" / "s2").rename(tmp_path / "a" / "s2")
    runs = FmriRunsDataset(str(tmp_path / "a"), pattern="{subject}/{run}.tsv", format="table").load()
    with pytest.raises(FmriInputError, match="target 3 is 'mPFC'"):
        nodes.inventory_runs(runs, params())
    write_tables(tmp_path / "c", subjects=("s2",))
    runs = FmriRunsDataset(str(tmp_path / "c"), pattern="{subject}/{run}.tsv", format="table").load()
    inventory = nodes.inventory_runs(runs, params())
    entry = nodes.clean_runs(runs, inventory, build_timeline(None, RUNS, 1.5), params(high_pass=0.01))["s2"]
    with pytest.raises(FmriInputError, match="high-pass|filter"):
        entry.compute()


def test_segment_table_gives_the_text_and_features_need_no_video(tmp_path):
    timeline = build_timeline(None, RUNS, 1.5)
    segments = pd.DataFrame({"run": ["scan1", "scan1", "scan2"], "start": [0.0, 3.0, 1.5], "end": [3.0, 7.5, 30.0],
                             "text": ["a dog", "the red car drives", "she speaks"]})
    p = {"tr": 1.5, "runs": dict(RUNS), "segment_unit": "s"}
    captions = RunFileIndex(tmp_path / "captions", "{run}.tsv", {})  # not there: the segments are used
    table = fx.build_stimulus_table(timeline, captions, None, p, segments)
    scan1, scan2 = table[table.run == "scan1"], table[table.run == "scan2"]
    # TR midpoints 0.75, 2.25 | 3.75, 5.25, 6.75 | 8.25 ... (TR 1.5 s)
    assert scan1.text.tolist()[:6] == ["a dog"] * 2 + ["the red car drives"] * 3 + [""]
    assert scan2.text.tolist()[:2] == ["", "she speaks"] and not scan1.has_text.iloc[5]
    features = fx.extract_stimulus_features(RunFileIndex(tmp_path / "videos", "{run}.mp4", {}), table, p)
    assert list(features.columns) == ["run", "tr", "n_words", "has_text"]
    assert features.n_words.tolist()[:6] == [2, 2, 4, 4, 4, 0]


def test_noise_ceiling_without_a_repeated_clip_is_leave_one_subject_out():
    from vlm_brain.encoding.ceiling import loso_noise_ceiling, noise_ceiling
    from vlm_brain.pipelines.encoding.nodes import compute_noise_ceiling

    rng = np.random.default_rng(1)
    signal = rng.standard_normal((200, 1))
    clean = {f"s{i}": {"bold": (signal + rng.standard_normal((200, 4))).astype(np.float32),
                       "repeat": np.zeros((0, 0, 4), np.float32)} for i in range(4)}
    group = nodes.average_subjects(clean)
    auto = compute_noise_ceiling(group, clean, {})["ceiling"]
    np.testing.assert_allclose(auto, loso_noise_ceiling(np.stack([clean[s]["bold"] for s in sorted(clean)])))
    assert np.all(np.abs(auto - np.sqrt(4 / 5)) < 0.1)  # S = 4 subjects at SNR 1: sqrt(S snr / (S snr + 1))
    repeats = np.stack([signal[:30, [0, 0, 0, 0]] + rng.standard_normal((30, 4)) for _ in range(2)]).astype(np.float32)
    with_repeat = compute_noise_ceiling({**group, "repeat": repeats}, clean, {"noise_ceiling": "auto"})["ceiling"]
    np.testing.assert_allclose(with_repeat, noise_ceiling(repeats), atol=1e-6)
    with pytest.raises(ValueError, match="encoding.noise_ceiling"):
        compute_noise_ceiling(group, clean, {"noise_ceiling": "split"})


def test_nifti_runs_reduced_with_an_atlas_go_through_inventory_labels_and_cleaning(tmp_path):
    """format: atlas: each region's time course is the mean of its voxels (nilearn's labels masker), then cleaned."""
    import nibabel as nib

    from vlm_brain.fmri.cleaning import clean_run

    rng = np.random.default_rng(2)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    atlas = np.zeros((4, 4, 4), dtype=np.int16)
    atlas[:2], atlas[2:, :2], atlas[2:, 2:] = 1, 2, 3
    nib.save(nib.Nifti1Image(atlas, affine), tmp_path / "atlas.nii.gz")
    (tmp_path / "names.txt").write_text("V1\nA1\nPCC\n")
    raw = {}
    for scan, n in RUNS.items():
        volume = (100 + rng.standard_normal((4, 4, 4, n))).astype(np.float32)
        image = nib.Nifti1Image(volume, affine)
        image.header.set_xyzt_units("mm", "sec")
        image.header["pixdim"][4] = 1.5
        (tmp_path / "s1").mkdir(exist_ok=True)
        nib.save(image, tmp_path / "s1" / f"{scan}.nii.gz")
        raw[scan] = np.stack([volume[atlas == v].mean(axis=0) for v in (1, 2, 3)], axis=1)
    runs = FmriRunsDataset(str(tmp_path), pattern="{subject}/{run}.nii.gz", format="atlas",
                           atlas=str(tmp_path / "atlas.nii.gz"), atlas_labels=str(tmp_path / "names.txt")).load()
    inventory = nodes.inventory_runs(runs, params())
    assert inventory.tr.tolist() == [1.5, 1.5] and inventory.n_grayordinates.tolist() == [3, 3]
    assert nodes.label_networks(runs, inventory).region.tolist() == NAMES
    with pytest.raises(FmriInputError, match="TR is 1.5 s, expected 1 s"):
        nodes.inventory_runs(runs, params(tr=1.0))
    clean = nodes.clean_runs(runs, inventory, build_timeline(None, RUNS, 1.5), params())["s1"].compute()
    expected = np.concatenate([clean_run(raw[scan], 1.5) for scan in RUNS])
    np.testing.assert_allclose(clean["bold"], expected, atol=1e-3)  # nilearn averages in float32
