import pandas as pd
import pytest

from vlm_brain.fmri.timeline import TimelineError, build_timeline

CLIPS = pd.DataFrame(
    [
        {"run": "A", "clip": 1, "onset": 2.0, "offset": 5.0, "is_repeat": False},
        {"run": "A", "clip": 2, "onset": 6.0, "offset": 8.0, "is_repeat": True},
        {"run": "B", "clip": 1, "onset": 0.0, "offset": 3.0, "is_repeat": False},
    ]
)


def test_keep_marks_tr_midpoints_inside_non_repeat_clips():
    tl = build_timeline(CLIPS, {"A": 10, "B": 4}, tr=1.0)
    a = tl[tl.run == "A"]
    # midpoints 0.5 .. 9.5: clip 1 covers 2.5, 3.5, 4.5; repeat covers 6.5, 7.5
    assert a["clip"].tolist() == [0, 0, 1, 1, 1, 0, 2, 2, 0, 0]
    assert a.tr[a.keep].tolist() == [2, 3, 4]
    assert a.tr[a.is_repeat].tolist() == [6, 7]
    assert tl[tl.run == "B"].keep.tolist() == [True, True, True, False]
    assert tl.run.unique().tolist() == ["A", "B"]


def test_repeat_kept_when_not_excluded():
    tl = build_timeline(CLIPS, {"A": 10, "B": 4}, tr=1.0, exclude_repeat=False)
    assert tl[tl.run == "A"].tr[tl.keep].tolist() == [2, 3, 4, 6, 7]


def test_tr_scales_time():
    tl = build_timeline(CLIPS, {"A": 5, "B": 2}, tr=2.0)
    assert tl[tl.run == "A"].time.tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert tl[tl.run == "A"].keep.tolist() == [False, True, False, False, False]  # 5.0 is the offset


def test_clip_past_end_of_run_is_an_error():
    with pytest.raises(TimelineError, match=r"run A clip 2 ends at 8.0 s, after the end of the run \(7 TRs"):
        build_timeline(CLIPS, {"A": 7, "B": 4}, tr=1.0)


def test_missing_column_and_unknown_run():
    with pytest.raises(TimelineError, match="missing column"):
        build_timeline(CLIPS.drop(columns="is_repeat"), {"A": 10, "B": 4}, tr=1.0)
    with pytest.raises(TimelineError, match=r"run\(s\) \['B'\] are not among"):
        build_timeline(CLIPS, {"A": 10}, tr=1.0)
    with pytest.raises(TimelineError, match="no clip for run C"):
        build_timeline(CLIPS, {"A": 10, "B": 4, "C": 5}, tr=1.0)
