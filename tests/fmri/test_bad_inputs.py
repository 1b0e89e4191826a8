"""Bad input never silently changes a result: each case is one error naming the problem, or a warning."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from vlm_brain.fmri.cifti import (
    CORTEX_LEFT,
    MNI_2MM_AFFINE,
    CiftiError,
    standard_brain_models,
    standard_index,
)
from vlm_brain.fmri.io import FmriInputError, check_finite
from vlm_brain.fmri.timeline import TimelineError, build_timeline, truthy
from vlm_brain.stimuli.text import CaptionError, read_captions

RUNS = {"A": 20, "B": 20}


def clips(**changes) -> pd.DataFrame:
    rows = [{"run": r, "clip": 1, "onset": 2.0, "offset": 12.0, "is_repeat": False} for r in RUNS]
    rows += [{"run": r, "clip": 2, "onset": 13.0, "offset": 18.0, "is_repeat": True} for r in RUNS]
    table = pd.DataFrame(rows)
    for column, values in changes.items():
        table[column] = values
    return table


# --------------------------------------------------------------------------- clip table
def test_clip_numbers_from_zero_are_refused_instead_of_read_as_rest():
    with pytest.raises(TimelineError, match=r"run A has clip number 0; clips are numbered from 1 \(0 marks rest"):
        build_timeline(clips(clip=[0, 0, 1, 1]), RUNS, 1.0)


@pytest.mark.parametrize("spelling", [["1.0", "1.0", "0.0", "0.0"], [1.0, 1.0, 0.0, 0.0], ["YES", "yes", "no", "No"],
                                      ["True", "TRUE", "false", "False"], [1, 1, 0, 0]])
def test_repeat_flags_in_any_truthy_spelling(spelling):
    flags = list(reversed(spelling))  # rows: the two clip-1 rows first, then the two repeats
    timeline = build_timeline(clips(is_repeat=flags), RUNS, 1.0)
    assert timeline.is_repeat.sum() == 2 * 5 and not timeline[timeline.is_repeat].keep.any()


def test_unreadable_repeat_flag_is_an_error():
    with pytest.raises(TimelineError, match=r"is_repeat of run A clip 1 is 'maybe'; use true/false"):
        build_timeline(clips(is_repeat=["maybe", False, True, True]), RUNS, 1.0)
    assert truthy(np.float64(0.0), "x") is False and truthy(" t ", "x") is True


def test_overlapping_clips_are_an_error():
    with pytest.raises(TimelineError, match=r"in run A, clip 2 starts at 10.0 s, before clip 1 ends \(12.0 s\)"):
        build_timeline(clips(onset=[2.0, 2.0, 10.0, 13.0]), RUNS, 1.0)


@pytest.mark.parametrize(("flags", "message"), [
    ([False, False, True, False], "only run A has a repeated clip; the noise ceiling needs it in >= 2 runs"),
    ([False, False, False, False], "no clip is marked is_repeat; there will be no noise ceiling"),
])
def test_a_repeat_in_fewer_than_two_runs_is_a_warning(flags, message, caplog):
    with caplog.at_level(logging.WARNING, logger="vlm_brain.fmri.timeline"):
        build_timeline(clips(is_repeat=flags), RUNS, 1.0)
    assert any(message in r.getMessage() for r in caplog.records)


def test_a_clip_past_the_run_end_points_at_the_tr():
    with pytest.raises(TimelineError, match=r"check the TR \(parameter tr in globals.yml\)"):
        build_timeline(clips(), RUNS, 0.5)


# --------------------------------------------------------------------------- captions
def _captions(tmp_path, text: str, encoding: str = "utf-8"):
    path = tmp_path / "A.tsv"
    path.write_bytes(text.encode(encoding))
    return path


def test_latin1_captions_name_the_file_and_the_fix(tmp_path):
    path = _captions(tmp_path, "onset\tduration\ttext\n0\t2\tun café noir\n", "latin-1")
    with pytest.raises(CaptionError, match=r"A.tsv: not UTF-8 text \(byte b'\\xe9' at position \d+\); save it as UTF-8"):
        read_captions(path)


def test_overlapping_and_empty_captions(tmp_path):
    with pytest.raises(CaptionError, match=r"the caption at 1 s starts before the one at 0 s ends \(2 s\)"):
        read_captions(_captions(tmp_path, "onset\tduration\ttext\n0\t2\ta\n1\t2\tb\n"))
    with pytest.raises(CaptionError, match=r"all 2 captions are empty"):
        read_captions(_captions(tmp_path, "onset\tduration\ttext\n0\t2\t \n3\t2\t\n"))


# --------------------------------------------------------------------------- fMRI files
def test_swapped_cortex_blocks_are_refused(cortex_models):
    n_left = int((cortex_models.name == CORTEX_LEFT).sum())
    swapped = cortex_models[n_left:] + cortex_models[:n_left]
    with pytest.raises(CiftiError, match=r"run.dtseries.nii: cortical vertices must come first, left then right"
                                         r" \(HCP order\); this file starts with CORTEX_RIGHT"):
        standard_index(swapped, "run.dtseries.nii")
    assert np.array_equal(standard_index(cortex_models), np.arange(len(cortex_models)))


def test_subcortical_voxels_on_another_grid_are_refused():
    axis = standard_brain_models(include_subcortical=True)
    cortex = axis[: 59_412]
    voxels = axis[59_412:]
    moved = nib.cifti2.BrainModelAxis(voxels.name, voxel=voxels.voxel, affine=MNI_2MM_AFFINE @ np.diag([1.5, 1.5, 1.5, 1]),
                                      volume_shape=voxels.volume_shape)
    with pytest.raises(CiftiError, match=r"the subcortical voxels are on a \(91, 109, 91\) grid .*MNI152 2 mm grid"):
        standard_index(cortex + moved, "run.dtseries.nii")
    assert standard_index(axis).size == 91_282


def test_a_run_that_is_constant_everywhere_is_an_error(tmp_path):
    with pytest.raises(FmriInputError, match=r"x.dtseries.nii: every grayordinate is constant over time \(e.g. all"
                                             r" zeros, value 0.0\): an empty or corrupted run"):
        check_finite(np.zeros((10, 5), dtype=np.float32), tmp_path / "x.dtseries.nii")
    data = np.random.default_rng(0).standard_normal((10, 5)).astype(np.float32)
    data[:, 2] = 3.0
    assert check_finite(data, tmp_path / "x.dtseries.nii").tolist() == [False, False, True, False, False]
