"""Annotation segments -> text per TR, checked against hand-computed TR assignments."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import write_text as write

from vlm_brain.stimuli.segments import (
    SegmentError,
    check_segments,
    read_segments,
    read_text_per_tr,
    segment_text_per_tr,
)
from vlm_brain.stimuli.text import CaptionError


def test_seconds_segment_covers_the_trs_whose_midpoint_it_contains(tmp_path):
    """TR 1.5 s: midpoints 0.75, 2.25, 3.75, 5.25, 6.75, 8.25; 3.0-7.5 s covers TRs 2, 3, 4."""
    path = write(tmp_path / "seg.tsv", "run\tstart\tend\ttext\nA\t3.0\t7.5\ta dog runs\n")
    segments = read_segments(path, unit="s")
    per_tr = segment_text_per_tr(segments, {"A": 6}, tr=1.5)
    assert list(per_tr.columns) == ["run", "tr", "time", "text"]
    assert per_tr["time"].tolist() == [0.75, 2.25, 3.75, 5.25, 6.75, 8.25]
    assert per_tr["text"].tolist() == ["", "", "a dog runs", "a dog runs", "a dog runs", ""]


def test_midpoint_on_a_boundary_belongs_to_the_segment_that_starts_there(tmp_path):
    """TR 2 s: midpoints 1, 3, 5, 7. Segments [1, 3) and [3, 7) touch at the midpoint of TR 1."""
    path = write(tmp_path / "seg.csv", "start,end,text\n1,3,first\n3,7,second\n")
    segments = read_segments(path, unit="s", runs=["only"])
    per_tr = segment_text_per_tr(segments, {"only": 4}, tr=2.0)
    assert per_tr["text"].tolist() == ["first", "second", "second", ""]
    assert set(per_tr["run"]) == {"only"}


def test_tr_units_are_indices_with_exclusive_end_and_runs_in_the_given_order(tmp_path):
    path = write(tmp_path / "seg.tsv", "run\tstart\tend\ttext\tunit\nB\t0\t2\tcat\ttr\nA\t2\t5\tsky\ttr\n"
                                      "A\t5\t6\tsea\ttr\n")
    segments = read_segments(path)
    assert segments["unit"].eq("tr").all()
    per_tr = segment_text_per_tr(segments, {"A": 7, "B": 3}, tr=0.8)
    assert per_tr["run"].tolist() == ["A"] * 7 + ["B"] * 3
    assert per_tr["text"].tolist() == ["", "", "sky", "sky", "sky", "sea", "", "cat", "cat", ""]
    assert per_tr["time"].iloc[7:].tolist() == pytest.approx([0.4, 1.2, 2.0])


def test_run_without_segments_is_all_empty_text(tmp_path):
    segments = read_segments(write(tmp_path / "s.tsv", "run\tstart\tend\ttext\nA\t0\t1\tx\n"), unit="s")
    per_tr = segment_text_per_tr(segments, {"A": 2, "B": 2}, tr=1.0)
    assert per_tr["text"].tolist() == ["x", "", "", ""]


@pytest.mark.parametrize(("text", "kwargs", "message"), [
    ("run\tstart\tend\ttext\nA\t0\t4\tx\nA\t3\t6\ty\n", {"unit": "s"},
     r"in run A, lines 2 and 3 overlap \(0-4 and 3-6 s\)"),
    ("run\tstart\tend\ttext\nA\t5\t5\tx\n", {"unit": "s"}, r"line 2 \(run A\) has start 5 and end 5; need 0 <= start < end"),
    ("run\tstart\tend\ttext\nA\t-1\t5\tx\n", {"unit": "s"}, "need 0 <= start < end"),
    ("run\tstart\tend\ttext\nA\tsoon\t5\tx\n", {"unit": "s"}, "line 2: start is 'soon', not a number"),
    ("run\tstart\tend\ttext\nC\t0\t5\tx\n", {"unit": "s", "runs": ["A", "B"]},
     r"run\(s\) \['C'\] are not among the runs \['A', 'B'\]"),
    ("run\tstart\tend\ttext\nA\t0\t25\tx\n", {"unit": "s", "run_lengths": {"A": 10}, "tr": 2.0},
     r"line 2 ends at 25 s, after the end of run A \(10 TRs x 2 s = 20 s\)"),
    ("run\tstart\tend\ttext\nA\t0\t11\tx\n", {"unit": "tr", "run_lengths": {"A": 10}},
     r"ends at 11 tr, after the end of run A \(10 TRs\)"),
    ("run\tstart\tend\ttext\nA\t0\t2.5\tx\n", {"unit": "tr"}, "not whole TR indices"),
    ("run\tstart\tend\ttext\nA\t0\t2\tx\n", {}, "no unit column and no unit given"),
    ("run\tstart\tend\ttext\tunit\nA\t0\t2\tx\ts\nA\t3\t4\ty\ttr\n", {}, "unit column mixes"),
    ("run\tstart\tend\ttext\tunit\nA\t0\t2\tx\ts\n", {"unit": "tr"}, "unit column says 's' but unit='tr'"),
    ("run\tstart\tend\ttext\tunit\nA\t0\t2\tx\tms\n", {}, r"unit column holds \['ms'\]"),
    ("start\tend\ttext\n0\t2\tx\n", {"unit": "s", "runs": ["A", "B"]}, "no run column, and 2 runs are configured"),
    ("run\tstart\ttext\nA\t0\tx\n", {"unit": "s"}, r"missing column\(s\) \['end'\]"),
    ("run\tstart\tend\ttext\nA\t0\t2\tx\n", {"unit": "s", "run_lengths": {"A": 10}}, "pass tr"),
])
def test_bad_segment_tables_name_file_line_and_run(tmp_path, text, kwargs, message):
    path = write(tmp_path / "bad.tsv", text)
    with pytest.raises(SegmentError, match=message) as info:
        read_segments(path, **kwargs)
    assert str(path) in str(info.value)
    assert isinstance(info.value, CaptionError)


def test_touching_segments_are_not_an_overlap_and_text_is_kept_verbatim(tmp_path):
    path = write(tmp_path / "s.tsv", "run\tstart\tend\ttext\nA\t4\t8\t NA \nA\t0\t4\tn/a\n")
    segments = read_segments(path, unit="s", run_lengths={"A": 8}, tr=1.0)
    assert segments["start"].tolist() == [0.0, 4.0]  # sorted
    assert segments["text"].tolist() == ["n/a", "NA"]  # never read as missing values


def test_in_memory_segments_are_checked_too():
    table = pd.DataFrame({"run": ["A", "A"], "start": [0.0, 1.0], "end": [2.0, 3.0], "text": ["x", "y"]})
    with pytest.raises(SegmentError, match="rows 0 and 1 overlap"):
        segment_text_per_tr(table, {"A": 5}, tr=1.0, unit="s")
    with pytest.raises(SegmentError, match="rows 0 and 1 overlap"):
        check_segments(table, "segments", unit="s")


def test_text_per_tr_table_is_read_as_is_and_completed(tmp_path):
    path = write(tmp_path / "per_tr.tsv", "run\ttr\ttext\nB\t1\tbird\nA\t0\tcar\nA\t2\troad\n")
    raw = read_text_per_tr(path)
    assert raw[["run", "tr", "text"]].values.tolist() == [["A", 0, "car"], ["A", 2, "road"], ["B", 1, "bird"]]
    full = read_text_per_tr(path, run_lengths={"A": 3, "B": 2}, tr=2.0)
    assert list(full.columns) == ["run", "tr", "time", "text"]
    assert full["text"].tolist() == ["car", "", "road", "", "bird"]
    assert full["time"].tolist() == [1.0, 3.0, 5.0, 1.0, 3.0]


@pytest.mark.parametrize(("text", "kwargs", "message"), [
    ("run\ttr\ttext\nA\t0\tx\nA\t0\ty\n", {}, r"run A TR 0 is listed on lines \[2, 3\]"),
    ("run\ttr\ttext\nA\t3\tx\n", {"run_lengths": {"A": 3}}, r"line 2: TR 3 of run A is past its end \(3 TRs"),
    ("run\ttr\ttext\nA\t1.5\tx\n", {}, "use 0-based whole TR indices"),
    ("run\ttr\ttext\nZ\t1\tx\n", {"run_lengths": {"A": 3}}, r"run\(s\) \['Z'\] are not among"),
    ("tr\ttext\n1\tx\n", {}, "no run column, and no runs were given"),
])
def test_bad_text_per_tr_tables(tmp_path, text, kwargs, message):
    with pytest.raises(SegmentError, match=message):
        read_text_per_tr(write(tmp_path / "bad.tsv", text), **kwargs)


def test_single_scan_text_per_tr_without_run_column(tmp_path):
    path = write(tmp_path / "p.csv", "tr,text\n1,hello\n")
    out = read_text_per_tr(path, run_lengths={"movie": 3})
    assert out.values.tolist() == [["movie", 0, ""], ["movie", 1, "hello"], ["movie", 2, ""]]
