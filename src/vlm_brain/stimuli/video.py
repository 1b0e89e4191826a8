"""Reading movie frames at given times with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


class VideoError(ValueError):
    """A video that cannot serve the requested frames; the message names the file."""


def frame_times(n_trs: int, tr: float, frames_per_tr: int = 1) -> np.ndarray:
    """Sample times (s) of ``frames_per_tr`` evenly spaced frames inside each TR.

    TR t covers [t*tr, (t+1)*tr); with one frame per TR this is its midpoint.

    Returns:
        (n_trs, frames_per_tr) seconds from the start of the run.
    """
    if frames_per_tr < 1:
        raise ValueError(f"frames_per_tr must be >= 1, got {frames_per_tr}")
    offsets = (np.arange(frames_per_tr) + 0.5) / frames_per_tr
    return (np.arange(n_trs)[:, None] + offsets[None, :]) * tr


def video_duration(path: str | Path) -> float:
    """Duration of the first video stream in seconds (from the container)."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.duration is not None:
                return float(stream.duration * stream.time_base)
            return float(container.duration / av.time_base)
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise VideoError(f"{path}: not a readable video ({exc})") from exc


def iter_frames(path: str | Path, times: np.ndarray):
    """Yield the frame on screen at each time: the last frame starting at or before it.

    Decodes the video once, sequentially; only one decoded frame is held at a time,
    so memory does not grow with the movie length.

    Args:
        path: video file (any container/codec FFmpeg reads).
        times: sorted 1-D array of times in seconds.

    Yields:
        (height, width, 3) uint8 RGB frames, one per time, in order.

    Raises:
        VideoError: unreadable or truncated file, or a video shorter than ``times``.
    """
    path = Path(path)
    times = np.asarray(times, dtype=float)
    if np.any(np.diff(times) < 0):
        raise ValueError("times must be sorted")
    next_i = 0
    previous = None
    frame_period = 0.0
    last_time = -np.inf
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.average_rate:
                frame_period = 1.0 / float(stream.average_rate)
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else last_time + frame_period
                while next_i < len(times) and times[next_i] < t and previous is not None:
                    yield previous
                    next_i += 1
                if next_i >= len(times):
                    return
                previous = frame.to_ndarray(format="rgb24")
                last_time = t
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise VideoError(f"{path}: could not be decoded ({exc}); truncated or not a video?") from exc
    end = last_time + frame_period
    while next_i < len(times) and previous is not None and times[next_i] < end + 1e-6:
        yield previous
        next_i += 1
    if next_i < len(times):
        if previous is None:
            raise VideoError(f"{path}: no decodable video frame")
        raise VideoError(
            f"{path}: the video ends at {end:.2f} s but frames are needed up to"
            f" {times[-1]:.2f} s; the video is shorter than the run"
        )


def read_frames(path: str | Path, times: np.ndarray) -> np.ndarray:
    """All frames of :func:`iter_frames` stacked: (len(times), height, width, 3) uint8."""
    return np.stack(list(iter_frames(path, times)))
