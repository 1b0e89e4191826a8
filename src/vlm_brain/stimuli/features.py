"""Low-level stimulus features per TR: what a frame or a caption carries before any model.

They name what a BN's sign is read against (`vlm_brain.encoding.layer.encode_layer`'s
``references``) and what a validation plant drives. Per TR, from the frames the AN
extraction samples (``frames_per_tr`` per TR) and the caption shown at the TR:

- ``luminance``: mean luma of the frames, Rec. 601 (0.299 R + 0.587 G + 0.114 B) / 255,
  in [0, 1];
- ``contrast``: standard deviation of the luma within each frame (RMS contrast), mean
  over the TR's frames, in [0, 0.5];
- ``motion``: mean absolute luma difference between each frame and the previous sampled
  frame of the run (0 for the run's first frame), mean over the TR's frames;
- ``n_words``: words of the caption shown (0 without text);
- ``has_text``: 1 while a caption is shown, else 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

FEATURES = ("luminance", "contrast", "motion", "n_words", "has_text")
_LUMA = np.array([0.299, 0.587, 0.114])


def luma(frame: np.ndarray) -> np.ndarray:
    """(H, W) float64 luma in [0, 1] of one (H, W, 3) uint8 RGB frame."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"a frame must be (height, width, 3) RGB, got shape {frame.shape}")
    return frame.astype(np.float64) @ _LUMA / 255.0


def frame_features(frames: Iterable[np.ndarray], n_trs: int, frames_per_tr: int = 1) -> pd.DataFrame:
    """``luminance``, ``contrast`` and ``motion`` per TR of one run.

    Parameters
    ----------
    frames : the run's frames in time order, ``frames_per_tr`` per TR ((H, W, 3) uint8).
    n_trs : TRs of the run.

    Returns
    -------
    (n_trs, 3) table, one row per TR.
    """
    n = n_trs * frames_per_tr
    values = np.zeros((n, 3))
    previous = None
    count = 0
    for i, frame in enumerate(frames):
        if i >= n:
            break
        y = luma(frame)
        values[i] = (y.mean(), y.std(), 0.0 if previous is None else np.abs(y - previous).mean())
        previous = y
        count += 1
    if count != n:
        raise ValueError(f"expected {n} frames ({n_trs} TRs x {frames_per_tr}), got {count}")
    per_tr = values.reshape(n_trs, frames_per_tr, 3).mean(axis=1)
    return pd.DataFrame(per_tr, columns=["luminance", "contrast", "motion"])


def caption_features(texts: Sequence[str]) -> pd.DataFrame:
    """``n_words`` and ``has_text`` per TR from the caption shown at each TR ("" for none)."""
    words = np.array([len(str(t).split()) for t in texts], dtype=np.float64)
    return pd.DataFrame({"n_words": words, "has_text": (words > 0).astype(np.float64)})
