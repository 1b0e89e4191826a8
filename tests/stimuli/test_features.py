"""Low-level stimulus features on hand-made frames and captions."""

import numpy as np
import pytest

from vlm_brain.stimuli.features import caption_features, frame_features, luma


def flat(value: int, shape=(4, 6)) -> np.ndarray:
    return np.full((*shape, 3), value, dtype=np.uint8)


def test_luma_weights_and_range():
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert luma(red) == pytest.approx(np.full((2, 2), 0.299))
    assert luma(flat(255)).max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="RGB"):
        luma(np.zeros((2, 2)))


def test_frame_features_by_hand():
    half = flat(0)
    half[:, 3:] = 255  # half black, half white: mean 0.5, RMS contrast 0.5
    frames = [flat(0), flat(255), half, half]  # 2 TRs x 2 frames
    table = frame_features(frames, n_trs=2, frames_per_tr=2)
    assert table.luminance.tolist() == pytest.approx([0.5, 0.5])
    assert table.contrast.tolist() == pytest.approx([0.0, 0.5])
    # motion: 0 (first frame), 1 (black -> white); then 0.5 (white -> half), 0 (half -> half)
    assert table.motion.tolist() == pytest.approx([0.5, 0.25])
    with pytest.raises(ValueError, match="expected 6 frames"):
        frame_features(frames, n_trs=3, frames_per_tr=2)


def test_caption_features():
    table = caption_features(["", "a red circle", "moves  left"])
    assert table.n_words.tolist() == [0, 3, 2] and table.has_text.tolist() == [0, 1, 1]
