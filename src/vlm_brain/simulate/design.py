"""The stimulus plan of the demo movie: clips, scenes, objects and captions.

Time is kept in video frames internally (frame ``k`` shows time ``k / fps`` s and
lasts ``1 / fps`` s), so every onset is on the frame grid and exact; tables give
seconds. Positions are in pixels of the frame (x to the right, y downwards, pixel
centres at integer coordinates); velocities in pixels per second.

A run is (like an HCP 7T movie run, only shorter)::

    rest_start | clip 1 | rest_between | clip 2 | ... | rest_between | repeat | rest >= rest_end

Clips fill the run: the last regular clip is cut to end right before the repeat
(see :func:`plan_clips`), so the final rest is ``rest_end_s`` unless the leftover
was shorter than a scene.

The last clip of every run (the *repeat*) is one validation clip planned once and
shown identically in every run.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

CATEGORIES = ("circle", "square", "triangle", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 210, 40),
}
SIZES: dict[str, float] = {
    "small": 0.08,
    "large": 0.15,
}  # radius, fraction of frame height
SPEED = 0.08  # frame heights per second, for every moving object
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),
    "down": (0, 1),
    "still": (0, 0),
}
_DIRECTION_P = (0.175, 0.175, 0.175, 0.175, 0.3)
BACKGROUND_LEVELS = (
    25,
    154,
)  # grey level range (0-255) of scene backgrounds; rest is 0
MAX_OBJECTS = 3

# Random streams: np.random.default_rng([seed, stream, ...]).
STREAM_CLIPS = 1
STREAM_REPEAT = 2


@dataclass(frozen=True)
class SceneObject:
    """One drawn object: centre ``(x, y)`` at scene onset (px), velocity (px/s)."""

    category: str
    colour: str
    size: str
    x: float
    y: float
    vx: float
    vy: float

    def radius(self, height: int) -> float:
        """Half the object's extent in pixels."""
        return SIZES[self.size] * height

    @property
    def direction(self) -> str:
        """'left', 'right', 'up', 'down' or 'still'."""
        if self.vx < 0:
            return "left"
        if self.vx > 0:
            return "right"
        if self.vy < 0:
            return "up"
        if self.vy > 0:
            return "down"
        return "still"

    def position(self, t: float) -> tuple[float, float]:
        """Centre (px) at ``t`` seconds after the scene onset."""
        return self.x + self.vx * t, self.y + self.vy * t

    def phrase(self) -> str:
        """Caption phrase, e.g. 'a large red circle moving left'."""
        text = f"a {self.size} {self.colour} {self.category}"
        return text if self.direction == "still" else f"{text} moving {self.direction}"


@dataclass(frozen=True)
class Scene:
    """Frames ``start .. start + n_frames - 1`` of one run showing the same objects."""

    start: int
    n_frames: int
    clip: int
    is_repeat: bool
    background: int  # grey level 0-255
    objects: tuple[SceneObject, ...]

    @property
    def stop(self) -> int:
        return self.start + self.n_frames

    @property
    def caption(self) -> str:
        """A true description of the scene's objects, e.g. 'a small blue square and ...'."""
        phrases = [obj.phrase() for obj in self.objects]
        if len(phrases) == 1:
            return phrases[0]
        return ", ".join(phrases[:-1]) + " and " + phrases[-1]


@dataclass(frozen=True)
class Clip:
    """A stretch of movie between rests; ``number`` starts at 1 in each run."""

    number: int
    start: int
    n_frames: int
    is_repeat: bool

    @property
    def stop(self) -> int:
        return self.start + self.n_frames


@dataclass(frozen=True)
class RunPlan:
    """Everything shown during one run."""

    run: str
    n_trs: int
    tr: float
    fps: int
    width: int
    height: int
    clips: tuple[Clip, ...]
    scenes: tuple[Scene, ...]

    @property
    def n_frames(self) -> int:
        return frames_of(self.n_trs * self.tr, self.fps)

    def scene_of_frame(self) -> np.ndarray:
        """(n_frames,) int: index into ``scenes`` of each frame, -1 during rest."""
        index = np.full(self.n_frames, -1, dtype=np.int64)
        for i, scene in enumerate(self.scenes):
            index[scene.start : scene.stop] = i
        return index


def frames_of(seconds: float, fps: int) -> int:
    """Number of frames closest to ``seconds``."""
    return int(round(seconds * fps))


def run_key(run: str) -> int:
    """Stable integer of a run name, used to seed its random stream."""
    return zlib.crc32(run.encode("utf-8"))


def _fits(boxes: list[tuple[float, float, float, float]]) -> bool:
    for i, (ax0, ay0, ax1, ay1) in enumerate(boxes):
        for bx0, by0, bx1, by1 in boxes[:i]:
            if ax0 <= bx1 + 1 and bx0 <= ax1 + 1 and ay0 <= by1 + 1 and by0 <= ay1 + 1:
                return False
    return True


def _tenth_within(value: float, low: float, high: float) -> float:
    """``value`` rounded to 0.1 px, kept inside [low, high] (a readable scenes.csv)."""
    return min(
        max(round(float(value), 1), math.ceil(low * 10) / 10),
        math.floor(high * 10) / 10,
    )


def _random_object(
    rng: np.random.Generator, duration_s: float, width: int, height: int
) -> tuple[SceneObject, tuple[float, float, float, float]]:
    """An object that stays inside the frame for ``duration_s``; and its swept box."""
    category = CATEGORIES[rng.integers(len(CATEGORIES))]
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    size = list(SIZES)[rng.integers(len(SIZES))]
    direction = list(DIRECTIONS)[rng.choice(len(DIRECTIONS), p=_DIRECTION_P)]
    r = SIZES[size] * height
    speed = SPEED * height
    travel = speed * duration_s
    dx, dy = DIRECTIONS[direction]
    if (dx and travel + 2 * r > width - 1) or (dy and travel + 2 * r > height - 1):
        dx, dy = 0, 0  # too long a scene to move across the frame: keep it still
    lows = [r + (travel if d < 0 else 0.0) for d in (dx, dy)]
    highs = [
        extent - 1 - r - (travel if d > 0 else 0.0)
        for d, extent in ((dx, width), (dy, height))
    ]
    x0, y0 = (_tenth_within(rng.uniform(lo, hi), lo, hi) for lo, hi in zip(lows, highs))
    x1, y1 = x0 + dx * travel, y0 + dy * travel
    obj = SceneObject(
        category, colour, size, x0, y0, float(dx * speed), float(dy * speed)
    )
    box = (min(x0, x1) - r, min(y0, y1) - r, max(x0, x1) + r, max(y0, y1) + r)
    return obj, box


def plan_objects(
    rng: np.random.Generator, duration_s: float, width: int, height: int
) -> tuple[SceneObject, ...]:
    """1-3 objects whose paths over ``duration_s`` do not overlap (no occlusion)."""
    wanted = int(rng.integers(1, MAX_OBJECTS + 1))
    for n in range(wanted, 0, -1):
        for _ in range(40):
            drawn = [_random_object(rng, duration_s, width, height) for _ in range(n)]
            if _fits([box for _, box in drawn]):
                return tuple(obj for obj, _ in drawn)
    raise AssertionError("a single object always fits")  # pragma: no cover


def _scene_lengths(
    n_frames: int, fps: int, scene_s: list[float], rng: np.random.Generator
) -> list[int]:
    """Split ``n_frames`` into scene lengths drawn in ``scene_s`` (the last may be cut)."""
    low = max(1, frames_of(scene_s[0], fps))
    high = max(low, frames_of(scene_s[1], fps))
    lengths: list[int] = []
    remaining = n_frames
    while remaining > 0:
        if remaining <= high:
            length = remaining
        else:
            length = frames_of(rng.uniform(*scene_s), fps)
            if remaining - length < low:
                length = max(remaining - low, (remaining + 1) // 2)
        lengths.append(length)
        remaining -= length
    return lengths


def plan_scenes(
    n_frames: int,
    params: dict[str, Any],
    rng: np.random.Generator,
    *,
    clip: int = 0,
    start: int = 0,
    is_repeat: bool = False,
) -> list[Scene]:
    """Scenes filling a clip of ``n_frames`` frames that starts at frame ``start``."""
    fps, width, height = (params["video"][k] for k in ("fps", "width", "height"))
    scenes = []
    for length in _scene_lengths(n_frames, fps, params["design"]["scene_s"], rng):
        background = int(rng.integers(BACKGROUND_LEVELS[0], BACKGROUND_LEVELS[1] + 1))
        objects = plan_objects(rng, length / fps, width, height)
        scenes.append(Scene(start, length, clip, is_repeat, background, objects))
        start += length
    return scenes


def plan_repeat(params: dict[str, Any]) -> list[Scene]:
    """The validation clip shown at the end of every run (scenes start at frame 0)."""
    rng = np.random.default_rng([params["seed"], STREAM_REPEAT])
    n_frames = frames_of(params["design"]["repeat_s"], params["video"]["fps"])
    return plan_scenes(n_frames, params, rng, is_repeat=True)


def plan_clips(
    run: str, n_trs: int, params: dict[str, Any], rng: np.random.Generator
) -> list[Clip]:
    """Clip placement in one run; the repeat clip is last (``is_repeat`` True).

    Clip lengths are drawn in ``clip_s``; a clip that does not fit before the
    repeat is shortened to fit, down to ``scene_s[0]`` (the first clip to
    ``clip_s[0]``). Leftover time too short for a clip lengthens the final rest.
    """
    fps, design = params["video"]["fps"], params["design"]
    n_frames = frames_of(n_trs * params["tr"], fps)
    gap = frames_of(design["rest_between_s"], fps)
    repeat = frames_of(design["repeat_s"], fps)
    first_shortest = max(1, frames_of(design["clip_s"][0], fps))
    shortest = min(first_shortest, max(1, frames_of(design["scene_s"][0], fps)))
    last_stop = n_frames - frames_of(design["rest_end_s"], fps) - repeat - gap
    clips: list[Clip] = []
    start = frames_of(design["rest_start_s"], fps)
    while last_stop - start >= (shortest if clips else first_shortest):
        length = frames_of(rng.uniform(*design["clip_s"]), fps)
        length = min(length, last_stop - start)
        clips.append(Clip(len(clips) + 1, start, length, False))
        start += length + gap
    if not clips:
        raise ValueError(
            f"demo params: runs.{run} ({n_trs} TRs) is too short for rest_start_s + one"
            " clip of clip_s[0] + rest_between_s + repeat_s + rest_end_s"
        )
    clips.append(Clip(len(clips) + 1, clips[-1].stop + gap, repeat, True))
    return clips


def plan_run(
    run: str, n_trs: int, params: dict[str, Any], repeat: list[Scene]
) -> RunPlan:
    """Clips and scenes of one run; ``repeat`` from :func:`plan_repeat`."""
    rng = np.random.default_rng([params["seed"], STREAM_CLIPS, run_key(run)])
    clips = plan_clips(run, n_trs, params, rng)
    scenes: list[Scene] = []
    for clip in clips:
        if clip.is_repeat:
            scenes += [
                replace(s, start=s.start + clip.start, clip=clip.number) for s in repeat
            ]
        else:
            scenes += plan_scenes(
                clip.n_frames, params, rng, clip=clip.number, start=clip.start
            )
    video = params["video"]
    return RunPlan(
        run,
        n_trs,
        params["tr"],
        video["fps"],
        video["width"],
        video["height"],
        tuple(clips),
        tuple(scenes),
    )


def plan_design(params: dict[str, Any]) -> dict[str, RunPlan]:
    """Plans of every run of resolved ``params``, in the order of ``params['runs']``."""
    repeat = plan_repeat(params)
    return {
        run: plan_run(run, n_trs, params, repeat)
        for run, n_trs in params["runs"].items()
    }


def clip_table(plans: dict[str, RunPlan]) -> pd.DataFrame:
    """Columns run, clip, onset, offset (s), is_repeat; one row per clip."""
    rows = [
        {
            "run": plan.run,
            "clip": clip.number,
            "onset": clip.start / plan.fps,
            "offset": clip.stop / plan.fps,
            "is_repeat": clip.is_repeat,
        }
        for plan in plans.values()
        for clip in plan.clips
    ]
    return pd.DataFrame(rows, columns=["run", "clip", "onset", "offset", "is_repeat"])


SCENE_COLUMNS = [
    "run",
    "scene",
    "onset",
    "offset",
    "clip",
    "is_repeat",
    "category",
    "colour",
    "size",
    "x",
    "y",
    "vx",
    "vy",
    "background",
]


def scene_table(plans: dict[str, RunPlan]) -> pd.DataFrame:
    """One row per object per scene (``SCENE_COLUMNS``); scenes numbered from 1 per run.

    x, y: centre at scene onset (px); vx, vy: px/s; background: grey level 0-255.
    """
    rows = []
    for plan in plans.values():
        for number, scene in enumerate(plan.scenes, start=1):
            for obj in scene.objects:
                rows.append(
                    {
                        "run": plan.run,
                        "scene": number,
                        "onset": scene.start / plan.fps,
                        "offset": scene.stop / plan.fps,
                        "clip": scene.clip,
                        "is_repeat": scene.is_repeat,
                        "category": obj.category,
                        "colour": obj.colour,
                        "size": obj.size,
                        "x": obj.x,
                        "y": obj.y,
                        "vx": obj.vx,
                        "vy": obj.vy,
                        "background": scene.background,
                    }
                )
    return pd.DataFrame(rows, columns=SCENE_COLUMNS)


def caption_table(plan: RunPlan) -> pd.DataFrame:
    """Columns onset, duration (s), text; one row per scene, none during rest."""
    rows = [
        {
            "onset": s.start / plan.fps,
            "duration": s.n_frames / plan.fps,
            "text": s.caption,
        }
        for s in plan.scenes
    ]
    return pd.DataFrame(rows, columns=["onset", "duration", "text"])
