"""Parcel/ROI time courses: tables, arrays, labels, atlas reduction and gap-aware cleaning."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import write_text as write
from nilearn.signal import clean

from vlm_brain.fmri.cleaning import clean_run
from vlm_brain.fmri.io import FmriInputError
from vlm_brain.fmri.timecourses import (
    TimeCourseError,
    TimeCourses,
    _clean_present,
    clean_with_missing,
    mask_nifti_with_atlas,
    read_target_labels,
    read_timecourses,
)


# --------------------------------------------------------------------------- tables
def test_tsv_every_column_is_a_target_and_missing_cells_are_nan(tmp_path):
    path = write(tmp_path / "tc.tsv", "V1\tV2\tFFA\n1.5\t-2\t3e2\n\tn/a\t4\n2\tNaN\t N/A \n")
    courses = read_timecourses(path)
    assert courses.names == ["V1", "V2", "FFA"]
    assert courses.data.dtype == np.float32 and courses.data.shape == (3, 3)
    expected = np.array([[1.5, -2, 300], [np.nan, np.nan, 4], [2, np.nan, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(courses.data, expected)
    assert courses.n_trs == 3 and courses.n_targets == 3


def test_csv_with_an_index_column_named_in_index_columns(tmp_path):
    path = write(tmp_path / "tc.csv", "tr,a,b\n0,1,2\n1,3,4\n")
    courses = read_timecourses(path, index_columns=["tr"])
    assert courses.names == ["a", "b"]
    np.testing.assert_array_equal(courses.data, [[1, 2], [3, 4]])
    # without index_columns the index is a target like any other column
    assert read_timecourses(path).names == ["tr", "a", "b"]


@pytest.mark.parametrize(("text", "message"), [
    ("a\tb\n1\tx\n", r"data row 1 \(line 2\), column 'b': 'x' is not a number"),
    ("a\tb\n1\t2\n3\tinf\n", r"data row 2 \(line 3\), column 'b': 'inf' is infinite"),
    ("a\ta\n1\t2\n", r"duplicate column name\(s\) \['a'\]"),
    ("\ta\n0\t2\n", r"column\(s\) \[1\] have an empty header.*index_columns"),
    ("a\tb\n", "a header but no rows"),
    ("", "empty file"),
    ("a\tb\n1\t2\t3\n", r"data row 1 \(line 2\) has 3 cells, the header has 2"),
    ("a\tb\n1\t\n2\tn/a\n", r"every TR is missing in target\(s\) \['b'\]"),
])
def test_bad_tables_name_the_file_and_the_cell(tmp_path, text, message):
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(TimeCourseError, match=message) as info:
        read_timecourses(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, FmriInputError)


def test_no_target_columns_and_unknown_index_column(tmp_path):
    path = write(tmp_path / "t.csv", "tr\n0\n1\n")
    with pytest.raises(TimeCourseError, match="no target columns"):
        read_timecourses(path, index_columns=["tr"])
    with pytest.raises(TimeCourseError, match=r"index_columns \['time'\] are not in the header"):
        read_timecourses(path, index_columns=["time"])


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(TimeCourseError, match="no such time-course file"):
        read_timecourses(tmp_path / "nothing.tsv")
    with pytest.raises(TimeCourseError, match=r"unknown time-course format '.txt'"):
        read_timecourses(write(tmp_path / "x.txt", "a\n1\n"))


# --------------------------------------------------------------------------- arrays
def test_npy_with_and_without_a_labels_file(tmp_path):
    array = np.array([[1.0, np.nan], [2.0, 5.0], [3.0, 6.0]])
    np.save(tmp_path / "tc.npy", array)
    courses = read_timecourses(tmp_path / "tc.npy")
    assert courses.names == ["target_0", "target_1"] and courses.data.dtype == np.float32
    np.testing.assert_array_equal(courses.data, array.astype(np.float32))
    labels = write(tmp_path / "names.txt", "left V1\n\nright V1\n")
    assert read_timecourses(tmp_path / "tc.npy", labels=labels).names == ["left V1", "right V1"]
    assert read_timecourses(tmp_path / "tc.npy", labels=["x", "y"]).names == ["x", "y"]


def test_bad_npy_arrays(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(5))
    with pytest.raises(TimeCourseError, match=r"shape \(5,\); expected 2-D"):
        read_timecourses(tmp_path / "one.npy")
    np.save(tmp_path / "ok.npy", np.zeros((4, 2)))
    with pytest.raises(TimeCourseError, match="2 target columns but 3 names"):
        read_timecourses(tmp_path / "ok.npy", labels=["a", "b", "c"])
    with pytest.raises(TimeCourseError, match="unique"):
        read_timecourses(tmp_path / "ok.npy", labels=["a", "a"])
    np.save(tmp_path / "rows.npy", np.zeros((0, 2)))
    with pytest.raises(TimeCourseError, match="no rows"):
        read_timecourses(tmp_path / "rows.npy")
    big = np.zeros((3, 2))
    big[1, 1] = 1e300  # overflows float32
    np.save(tmp_path / "big.npy", big)
    with pytest.raises(TimeCourseError, match="row 1, column 1 is infinite"):
        read_timecourses(tmp_path / "big.npy")
    nan_column = np.zeros((3, 2))
    nan_column[:, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan_column)
    with pytest.raises(TimeCourseError, match=r"every TR is missing in target\(s\) \['target_0'\]"):
        read_timecourses(tmp_path / "nan.npy")


# --------------------------------------------------------------------------- labels
def test_target_labels_in_data_order_with_none_for_unlisted(tmp_path):
    path = write(tmp_path / "labels.tsv", "network\ttarget\themisphere\nvisual\tV1\tL\ndefault\tPCC\t\n")
    labels = read_target_labels(path, ["PCC", "FFA", "V1"])
    assert list(labels.columns) == ["target", "network", "hemisphere"]
    assert labels["target"].tolist() == ["PCC", "FFA", "V1"]
    assert labels["network"].tolist() == ["default", "none", "visual"]
    assert labels["hemisphere"].tolist() == ["none", "none", "L"]


def test_target_labels_errors(tmp_path):
    with pytest.raises(TimeCourseError, match=r"not in the data: \['MT'\]"):
        read_target_labels(write(tmp_path / "a.csv", "target,roi\nV1,x\nMT,y\n"), ["V1"])
    with pytest.raises(TimeCourseError, match="no 'target' column"):
        read_target_labels(write(tmp_path / "b.csv", "name,roi\nV1,x\n"), ["V1"])
    with pytest.raises(TimeCourseError, match="more than once"):
        read_target_labels(write(tmp_path / "c.csv", "target,roi\nV1,x\nV1,y\n"), ["V1"])


# --------------------------------------------------------------------------- NIfTI + atlas
AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])


def synthetic_run(tmp_path, n_trs=20, seed=0):
    """A 6x6x6x20 run (values around 100) and an atlas with regions 2, 5 and 7 (0 = background)."""
    rng = np.random.default_rng(seed)
    data = 100 + rng.standard_normal((6, 6, 6, n_trs))
    atlas = np.zeros((6, 6, 6), dtype=np.int16)
    atlas[:2] = 2
    atlas[2:4, :3] = 5
    atlas[4:, 3:, 1:] = 7
    image = nib.Nifti1Image(data.astype(np.float32), AFFINE)
    image.header.set_zooms((3.0, 3.0, 3.0, 1.5))
    nib.save(image, tmp_path / "run.nii.gz")
    nib.save(nib.Nifti1Image(atlas, AFFINE), tmp_path / "atlas.nii.gz")
    return data.astype(np.float32).astype(np.float64), atlas


def test_labels_atlas_gives_the_mean_of_each_regions_voxels(tmp_path):
    data, atlas = synthetic_run(tmp_path)
    courses = mask_nifti_with_atlas(tmp_path / "run.nii.gz", tmp_path / "atlas.nii.gz")
    assert courses.names == ["2", "5", "7"]
    assert courses.data.shape == (20, 3) and courses.data.dtype == np.float32
    for k, value in enumerate((2, 5, 7)):
        expected = data[atlas == value].mean(axis=0)  # (n_voxels, T) -> (T,); values kept near 100
        np.testing.assert_allclose(courses.data[:, k], expected, rtol=1e-5)


def test_labels_atlas_names_from_list_background_entry_mapping_and_file(tmp_path):
    synthetic_run(tmp_path)
    run, atlas = tmp_path / "run.nii.gz", tmp_path / "atlas.nii.gz"
    assert mask_nifti_with_atlas(run, atlas, labels=["V1", "FFA", "PPA"]).names == ["V1", "FFA", "PPA"]
    assert mask_nifti_with_atlas(run, atlas, labels=["Background", "V1", "FFA", "PPA"]).names == ["V1", "FFA", "PPA"]
    assert mask_nifti_with_atlas(run, atlas, labels={7: "PPA", 2: "V1", 5: "FFA"}).names == ["V1", "FFA", "PPA"]
    table = write(tmp_path / "lut.tsv", "index\tname\n0\tBackground\n5\tFFA\n2\tV1\n7\tPPA\n")
    assert mask_nifti_with_atlas(run, atlas, labels=table).names == ["V1", "FFA", "PPA"]
    lines = write(tmp_path / "names.txt", "V1\nFFA\nPPA\n")
    assert mask_nifti_with_atlas(run, atlas, labels=lines).names == ["V1", "FFA", "PPA"]
    with pytest.raises(TimeCourseError, match=r"3 regions \(values \[2, 5, 7\]\) but 2 labels"):
        mask_nifti_with_atlas(run, atlas, labels=["V1", "FFA"])
    with pytest.raises(TimeCourseError, match=r"region value\(s\) \[7\] have no name"):
        mask_nifti_with_atlas(run, atlas, labels={2: "V1", 5: "FFA"})


def test_maps_atlas_of_disjoint_binary_maps_gives_the_region_means(tmp_path):
    data, atlas = synthetic_run(tmp_path)
    maps = np.stack([(atlas == v).astype(np.float32) for v in (2, 5, 7)], axis=-1)
    nib.save(nib.Nifti1Image(maps, AFFINE), tmp_path / "maps.nii.gz")
    courses = mask_nifti_with_atlas(tmp_path / "run.nii.gz", tmp_path / "maps.nii.gz", kind="maps")
    assert courses.names == ["map_0", "map_1", "map_2"]
    for k, value in enumerate((2, 5, 7)):
        np.testing.assert_allclose(courses.data[:, k], data[atlas == value].mean(axis=0), rtol=1e-5)


def test_atlas_errors(tmp_path):
    synthetic_run(tmp_path)
    run = tmp_path / "run.nii.gz"
    nib.save(nib.Nifti1Image(np.full((6, 6, 6), 0.5, dtype=np.float32), AFFINE), tmp_path / "prob.nii.gz")
    with pytest.raises(TimeCourseError, match="non-integer values.*kind='maps'"):
        mask_nifti_with_atlas(run, tmp_path / "prob.nii.gz")
    with pytest.raises(TimeCourseError, match="must be 4D"):
        mask_nifti_with_atlas(run, tmp_path / "atlas.nii.gz", kind="maps")
    with pytest.raises(TimeCourseError, match="a run must be a 4D NIfTI"):
        mask_nifti_with_atlas(tmp_path / "atlas.nii.gz", tmp_path / "atlas.nii.gz")
    with pytest.raises(TimeCourseError, match="atlas kind 'parcels'"):
        mask_nifti_with_atlas(run, tmp_path / "atlas.nii.gz", kind="parcels")


# --------------------------------------------------------------------------- cleaning
def test_clean_without_missing_trs_equals_clean_run():
    rng = np.random.default_rng(0)
    t = np.arange(120.0)
    data = np.column_stack([3 + 0.2 * t, np.sin(t / 5), np.full(120, 4.0)]) + rng.standard_normal((120, 3)) * [1, 1, 0]
    for kwargs in ({}, {"high_pass": 0.01}, {"detrend": False}, {"standardize": False}):
        np.testing.assert_array_equal(clean_with_missing(data, 1.5, **kwargs), clean_run(data, 1.5, **kwargs))


def test_gap_aware_helper_matches_nilearn_on_gap_free_data():
    """The code path used for columns with gaps reproduces nilearn's detrend + z-score when there are none."""
    data = np.random.default_rng(1).standard_normal((50, 4)) + np.arange(50.0)[:, None] * [0.1, -0.3, 0, 1]
    ours = _clean_present(data.copy(), np.arange(50.0), detrend=True, standardize=True)
    reference = clean(data, detrend=True, standardize="zscore_sample", filter=False, t_r=1.0)
    np.testing.assert_allclose(ours, reference, atol=1e-10)


def test_missing_trs_detrend_against_true_time_and_stay_nan():
    t = np.arange(60.0)
    wave = np.sin(2 * np.pi * t / 9)
    data = np.column_stack([5 + 0.5 * t + wave, 2 - 0.1 * t + 2 * wave, wave]).astype(np.float64)
    data[10:25, 0] = np.nan  # a long gap in column 0
    data[40, 1:] = np.nan  # another pattern shared by columns 1 and 2
    out = clean_with_missing(data, tr=1.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(out), np.isnan(data))
    for column in range(3):
        keep = ~np.isnan(data[:, column])
        resid = data[keep, column] - np.polyval(np.polyfit(t[keep], data[keep, column], 1), t[keep])
        expected = (resid - resid.mean()) / resid.std(ddof=1)
        np.testing.assert_allclose(out[keep, column], expected, atol=1e-5)
    # negative control: a trend fitted against the row positions (gap closed up) is not what we do
    keep = ~np.isnan(data[:, 0])
    closed_up = clean_run(data[keep, :1], tr=1.0)[:, 0]
    assert np.max(np.abs(out[keep, 0] - closed_up)) > 0.5


def test_missing_trs_without_detrend_or_standardize_and_constant_columns():
    data = np.array([[1.0, 7.0], [np.nan, np.nan], [3.0, 7.0], [6.0, 7.0]])
    np.testing.assert_array_equal(clean_with_missing(data, 1.0, detrend=False, standardize=False),
                                  np.array([[1, 0], [np.nan, np.nan], [3, 0], [6, 0]], dtype=np.float32))
    zscored = clean_with_missing(data, 1.0, detrend=False)
    present = np.array([1.0, 3.0, 6.0])
    np.testing.assert_allclose(zscored[[0, 2, 3], 0], (present - present.mean()) / present.std(ddof=1), atol=1e-6)


def test_high_pass_with_missing_trs_and_too_few_trs_are_errors():
    data = np.random.default_rng(2).standard_normal((30, 2))
    data[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"high_pass=0.01 Hz needs gap-free data, but 1 column\(s\)"):
        clean_with_missing(data, 1.0, high_pass=0.01)
    sparse = np.full((10, 1), np.nan)
    sparse[[2, 5], 0] = [1.0, 2.0]
    with pytest.raises(ValueError, match=r"column\(s\) \[0\] have 2 present TR\(s\)"):
        clean_with_missing(sparse, 1.0)


def test_timecourses_needs_one_name_per_column():
    with pytest.raises(ValueError, match="one name per column"):
        TimeCourses(np.zeros((3, 2), dtype=np.float32), ["a"])
