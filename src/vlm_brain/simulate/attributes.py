"""Stimulus attributes per TR: what the simulated brain responds to.

Each TR ``n`` of a run is described by the frame shown at its midpoint
``(n + 0.5) * tr`` s and by the caption active then. Rest TRs are all zero.

Visual attributes (from the drawn objects of that frame):

- ``visual_luminance``: mean Rec. 601 luminance of the frame, 0-1.
- ``visual_contrast``: sum over objects of area (% of frame) x |object luminance -
  background luminance| (luminances 0-1).
- ``visual_motion``: mean object speed, frame heights per second (still = 0).
- ``visual_n_objects``: number of objects.
- ``visual_size``: mean object area, % of frame.
- ``visual_position_x`` / ``visual_position_y``: mean object centre, fraction of
  the frame from its centre (-0.5 left/top .. 0.5 right/bottom).
- ``visual_<colour>``: 1 if an object of that colour is shown.
- ``visual_shape_<category>``: area of the objects of that category, % of frame.
- ``visual_scene_change``: 1 if a scene starts during the TR.

Text attributes (from the words of the caption): ``text_present`` (0/1),
``text_n_words``, ``text_mentions_motion`` (number of "moving"),
``text_mentions_<colour>`` and ``text_mentions_<category>`` (word counts).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vlm_brain.simulate.design import CATEGORIES, COLOURS, RunPlan, Scene
from vlm_brain.simulate.render import (
    colour_luminance,
    frame_luminance,
    object_mask,
    render_scene_frame,
)

VISUAL_ATTRIBUTES = (
    "visual_luminance",
    "visual_contrast",
    "visual_motion",
    "visual_n_objects",
    "visual_size",
    "visual_position_x",
    "visual_position_y",
    *(f"visual_{colour}" for colour in COLOURS),
    *(f"visual_shape_{category}" for category in CATEGORIES),
    "visual_scene_change",
)
TEXT_ATTRIBUTES = (
    "text_present",
    "text_n_words",
    "text_mentions_motion",
    *(f"text_mentions_{colour}" for colour in COLOURS),
    *(f"text_mentions_{category}" for category in CATEGORIES),
)
ATTRIBUTES = VISUAL_ATTRIBUTES + TEXT_ATTRIBUTES


def attribute_modality(name: str) -> str:
    """'visual' or 'text' (from the name's prefix)."""
    return name.split("_", 1)[0]


def visual_attributes(
    scene: Scene, frame_in_scene: int, fps: int, width: int, height: int
) -> dict[str, float]:
    """Visual attributes of one scene frame (all but ``visual_scene_change``)."""
    t = frame_in_scene / fps
    n_pixels = width * height
    values = dict.fromkeys(VISUAL_ATTRIBUTES, 0.0)
    background = scene.background / 255.0
    areas, speeds, xs, ys = [], [], [], []
    for obj in scene.objects:
        _, mask = object_mask(obj, t, width, height)
        area = 100.0 * float(mask.sum()) / n_pixels
        areas.append(area)
        speeds.append(math.hypot(obj.vx, obj.vy) / height)
        cx, cy = obj.position(t)
        xs.append(cx / (width - 1) - 0.5)
        ys.append(cy / (height - 1) - 0.5)
        values["visual_contrast"] += area * abs(
            colour_luminance(COLOURS[obj.colour]) - background
        )
        values[f"visual_{obj.colour}"] = 1.0
        values[f"visual_shape_{obj.category}"] += area
    image = render_scene_frame(scene, frame_in_scene, fps, width, height)
    values["visual_luminance"] = frame_luminance(image)
    values["visual_motion"] = float(np.mean(speeds))
    values["visual_n_objects"] = float(len(scene.objects))
    values["visual_size"] = float(np.mean(areas))
    values["visual_position_x"] = float(np.mean(xs))
    values["visual_position_y"] = float(np.mean(ys))
    return values


def text_attributes(caption: str) -> dict[str, float]:
    """Text attributes of a caption (word counts)."""
    words = caption.replace(",", " ").split()
    values = {
        "text_present": 1.0,
        "text_n_words": float(len(words)),
        "text_mentions_motion": float(words.count("moving")),
    }
    for name in (*COLOURS, *CATEGORIES):
        values[f"text_mentions_{name}"] = float(words.count(name))
    return values


def run_attributes(plan: RunPlan) -> pd.DataFrame:
    """(n_trs, 2 + n_attributes) table: run, tr, then :data:`ATTRIBUTES`."""
    values = np.zeros((plan.n_trs, len(ATTRIBUTES)))
    column = {name: i for i, name in enumerate(ATTRIBUTES)}
    scene_of_frame = plan.scene_of_frame()
    for tr in range(plan.n_trs):
        frame = min(
            math.floor((tr + 0.5) * plan.tr * plan.fps + 1e-9), plan.n_frames - 1
        )
        index = scene_of_frame[frame]
        if index < 0:
            continue
        scene = plan.scenes[index]
        row = visual_attributes(
            scene, frame - scene.start, plan.fps, plan.width, plan.height
        )
        row.update(text_attributes(scene.caption))
        for name, value in row.items():
            values[tr, column[name]] = value
    for scene in plan.scenes:
        tr = math.floor(scene.start / plan.fps / plan.tr + 1e-9)
        if tr < plan.n_trs:
            values[tr, column["visual_scene_change"]] = 1.0
    table = pd.DataFrame(values, columns=list(ATTRIBUTES))
    table.insert(0, "tr", np.arange(plan.n_trs, dtype=np.int64))
    table.insert(0, "run", plan.run)
    return table


def design_attributes(plans: dict[str, RunPlan]) -> pd.DataFrame:
    """Attributes of all runs stacked: one row per (run, tr)."""
    return pd.concat(
        [run_attributes(plan) for plan in plans.values()], ignore_index=True
    )
