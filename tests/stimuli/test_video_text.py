"""Timeline alignment: which frame and which caption each TR gets."""

from __future__ import annotations

import av
import numpy as np
import pandas as pd
import pytest

from vlm_brain.stimuli.text import (CaptionError, check_caption_coverage, read_captions,
                                    text_per_tr, wordnet_text)
from vlm_brain.stimuli.video import VideoError, frame_times, iter_frames, read_frames, video_duration

FPS = 4


def write_counting_video(path, n_frames, fps=FPS):
    """Frame k is a flat grey of level 10*k (lossless H.264), so a frame tells its index."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv444p"
        for k in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), (10 * k) % 250, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def frame_index(frame):
    return int(round(frame.mean() / 10))


def test_frame_times_are_tr_midpoints_or_evenly_spaced():
    np.testing.assert_allclose(frame_times(3, 1.0), [[0.5], [1.5], [2.5]])
    np.testing.assert_allclose(frame_times(2, 2.0, 2), [[0.5, 1.5], [2.5, 3.5]])
    with pytest.raises(ValueError):
        frame_times(2, 1.0, 0)


def test_frames_at_tr_midpoints_are_the_frames_on_screen(tmp_path):
    path = tmp_path / "count.mp4"
    write_counting_video(path, 24)  # 6 s at 4 fps
    assert video_duration(path) == pytest.approx(6.0, abs=0.3)
    frames = read_frames(path, frame_times(6, 1.0).ravel())
    # midpoint t+0.5 s shows frame floor((t+0.5)*4) = 4t+2
    assert [frame_index(f) for f in frames] == [2, 6, 10, 14, 18, 22]
    two = read_frames(path, frame_times(3, 2.0, 2).ravel())  # 0.5, 1.5, 2.5, ...
    assert [frame_index(f) for f in two] == [2, 6, 10, 14, 18, 22]


def test_video_shorter_than_the_run(tmp_path):
    path = tmp_path / "short.mp4"
    write_counting_video(path, 12)  # 3 s
    with pytest.raises(VideoError, match=r"short.mp4: the video ends at 3.00 s but frames are needed up to 4.50 s"):
        read_frames(path, frame_times(5, 1.0).ravel())


def test_unreadable_and_truncated_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(VideoError, match="bad.mp4"):
        read_frames(bad, [0.5])
    path = tmp_path / "cut.mp4"
    write_counting_video(path, 40)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(VideoError, match="cut.mp4"):
        read_frames(path, frame_times(10, 1.0).ravel())


def test_iter_frames_is_lazy(tmp_path):
    path = tmp_path / "count.mp4"
    write_counting_video(path, 24)
    gen = iter_frames(path, [0.1, 5.9])
    assert frame_index(next(gen)) == 0
    assert frame_index(next(gen)) == 23


def test_caption_covering_each_tr_midpoint(tmp_path):
    path = tmp_path / "c.tsv"
    pd.DataFrame({"onset": [1.0, 3.0], "duration": [2.0, 1.5], "text": ["a red circle", "two squares"]}).to_csv(path, sep="\t", index=False)
    captions = read_captions(path)
    texts = text_per_tr(captions, frame_times(6, 1.0).ravel())
    assert texts == ["", "a red circle", "a red circle", "two squares", "", ""]


def test_caption_errors(tmp_path):
    path = tmp_path / "bad.tsv"
    pd.DataFrame({"onset": [0.0], "text": ["x"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(CaptionError, match=r"bad.tsv: missing column\(s\) \['duration'\]"):
        read_captions(path)
    captions = pd.DataFrame({"onset": [0.0], "duration": [10.0], "text": ["x"]})
    with pytest.raises(CaptionError, match="before the last clip starts"):
        check_caption_coverage(captions, [(0.0, 10.0), (20.0, 30.0)], 40.0, "run1.tsv")
    with pytest.raises(CaptionError, match="after the end of the run"):
        check_caption_coverage(captions, [(0.0, 5.0)], 8.0, "run1.tsv")


def test_wordnet_labels_become_lemma_text():
    matrix = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    assert wordnet_text(matrix, ["plant.n.02", "traffic_light.n.01", "walk.v.01"]) == ["plant walk", "", "traffic light"]
