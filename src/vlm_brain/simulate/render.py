"""Drawing the demo movie with numpy masks and encoding it with PyAV.

Frames are (height, width, 3) uint8 RGB. Rest frames are black; a scene frame is
its grey background with the scene's objects drawn on it (paths never overlap, see
:func:`vlm_brain.simulate.design.plan_objects`).

Video: H.264 (``libx264``) *lossless* (qp 0, yuv420p), so the decoded pixels are
exactly the yuv420p conversion of the drawn frames: deterministic for a seed, and
the repeat clip decodes to identical pixels in every run. If the PyAV wheel lacks
libx264, MPEG-4 part 2 (``mpeg4``) all-intra at a fixed quantiser is used instead
(lossy, but still a deterministic function of each frame).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vlm_brain.simulate.design import COLOURS, RunPlan, Scene, SceneObject

logger = logging.getLogger(__name__)

CODEC_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"qp": "0", "preset": "veryfast"},
    "mpeg4": {"g": "1", "qmin": "2", "qmax": "2"},
}
LUMA_PER_MILLE = (
    299,
    587,
    114,
)  # Rec. 601 luminance weights x 1000 (exact integer sums)


def object_mask(
    obj: SceneObject, t: float, width: int, height: int
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Pixels covered by ``obj`` at ``t`` s after its scene onset.

    Returns ``((rows, cols), mask)``: slices of the frame's bounding box and a
    boolean mask of that box. A square's side is 1.7 r, a triangle (apex up) has
    height and base 2 r, a cross has arms 2 r long and 2 r / 3 wide (r = radius).
    """
    cx, cy = obj.position(t)
    r = obj.radius(height)
    x0, x1 = max(0, math.floor(cx - r)), min(width, math.ceil(cx + r) + 1)
    y0, y1 = max(0, math.floor(cy - r)), min(height, math.ceil(cy + r) + 1)
    dx = np.arange(x0, x1, dtype=np.float64)[None, :] - cx
    dy = np.arange(y0, y1, dtype=np.float64)[:, None] - cy
    if obj.category == "circle":
        mask = dx**2 + dy**2 <= r**2
    elif obj.category == "square":
        mask = (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    elif obj.category == "triangle":
        mask = (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    elif obj.category == "cross":
        arm = r / 3
        mask = ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | (
            (np.abs(dy) <= arm) & (np.abs(dx) <= r)
        )
    else:
        raise ValueError(f"unknown object category {obj.category!r}")
    return (slice(y0, y1), slice(x0, x1)), mask


def render_scene_frame(
    scene: Scene, frame_in_scene: int, fps: int, width: int, height: int
) -> np.ndarray:
    """(height, width, 3) uint8 frame ``frame_in_scene`` of ``scene``."""
    image = np.full((height, width, 3), scene.background, dtype=np.uint8)
    t = frame_in_scene / fps
    for obj in scene.objects:
        box, mask = object_mask(obj, t, width, height)
        image[box][mask] = COLOURS[obj.colour]
    return image


def iter_frames(plan: RunPlan) -> Iterator[np.ndarray]:
    """Every frame of a run in order: black during rest, drawn scenes otherwise."""
    black = np.zeros((plan.height, plan.width, 3), dtype=np.uint8)
    scene_of_frame = plan.scene_of_frame()
    for frame, index in enumerate(scene_of_frame):
        if index < 0:
            yield black
        else:
            scene = plan.scenes[index]
            yield render_scene_frame(
                scene, frame - scene.start, plan.fps, plan.width, plan.height
            )


def colour_luminance(rgb: tuple[int, int, int]) -> float:
    """Rec. 601 luminance of an RGB uint8 colour, in [0, 1]."""
    return sum(w * c for w, c in zip(LUMA_PER_MILLE, rgb, strict=True)) / (1000 * 255)


def frame_luminance(image: np.ndarray) -> float:
    """Mean Rec. 601 luminance of an RGB uint8 frame, in [0, 1]."""
    sums = image.reshape(-1, 3).sum(axis=0, dtype=np.int64)
    total = sum(w * int(s) for w, s in zip(LUMA_PER_MILLE, sums, strict=True))
    return total / (1000 * 255 * (image.size // 3))


def choose_codec() -> str:
    """'libx264' when this PyAV build can encode H.264, else 'mpeg4'."""
    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # av raises UnknownCodecError (a ValueError) or FFmpegError
        logger.warning("demo: PyAV has no libx264 encoder; writing MPEG-4 part 2 video")
        return "mpeg4"
    return "libx264"


def write_video(path: str | Path, plan: RunPlan, codec: str | None = None) -> Path:
    """Encode the run's frames to an .mp4 file at ``plan.fps`` (n_frames / fps seconds)."""
    path = Path(path)
    codec = codec or choose_codec()
    path.parent.mkdir(parents=True, exist_ok=True)
    time_base = Fraction(1, plan.fps)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=plan.fps)
        stream.width, stream.height, stream.pix_fmt = plan.width, plan.height, "yuv420p"
        stream.options = dict(CODEC_OPTIONS[codec])
        for number, image in enumerate(iter_frames(plan)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = number, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path

