"""The stimulus plan: clip layout, scenes, objects and captions (no files written)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.simulate.conftest import tiny_params
from vlm_brain.simulate import resolve_demo_params
from vlm_brain.simulate.design import COLOURS, plan_design, plan_repeat, plan_run
from vlm_brain.simulate.render import object_mask

PARAM_SETS = {"default": {}, "tiny": tiny_params()}


@pytest.fixture(params=list(PARAM_SETS), scope="module")
def resolved(request) -> dict:
    return resolve_demo_params(PARAM_SETS[request.param])


def test_clip_layout_follows_the_design(resolved):
    d, fps = resolved["design"], resolved["video"]["fps"]
    for run, plan in plan_design(resolved).items():
        seconds = [(c.start / fps, c.stop / fps, c.is_repeat) for c in plan.clips]
        assert [c.number for c in plan.clips] == list(range(1, len(plan.clips) + 1))
        assert seconds[0][0] == pytest.approx(d["rest_start_s"])
        assert [r for *_, r in seconds] == [False] * (len(seconds) - 1) + [True]
        assert len(seconds) >= 2, run
        for (_, stop, _), (start, _, _) in zip(seconds, seconds[1:], strict=False):
            assert start - stop == pytest.approx(d["rest_between_s"])
        lengths = [stop - start for start, stop, _ in seconds[:-1]]
        for length in lengths[:-1]:  # drawn in clip_s
            assert d["clip_s"][0] - 1e-9 <= length <= d["clip_s"][1] + 1 / fps
        # the last regular clip may be cut to fit, down to one shortest scene
        assert d["scene_s"][0] - 1e-9 <= lengths[-1] <= d["clip_s"][1] + 1 / fps
        repeat_start, repeat_stop, _ = seconds[-1]
        assert repeat_stop - repeat_start == pytest.approx(d["repeat_s"])
        run_s = plan.n_trs * plan.tr
        rest_after = run_s - repeat_stop
        assert rest_after >= d["rest_end_s"] - 1e-9
        # clips fill the run: no room was left for another clip
        assert rest_after < d["rest_end_s"] + d["rest_between_s"] + d["scene_s"][0]


def test_scenes_tile_the_clips_within_scene_durations(resolved):
    lo, hi = resolved["design"]["scene_s"]
    fps = resolved["video"]["fps"]
    for plan in plan_design(resolved).values():
        for clip in plan.clips:
            scenes = [s for s in plan.scenes if s.clip == clip.number]
            assert scenes[0].start == clip.start and scenes[-1].stop == clip.stop
            assert all(
                a.stop == b.start for a, b in zip(scenes, scenes[1:], strict=False)
            )
            assert all(s.is_repeat == clip.is_repeat for s in scenes)
            for s in scenes:
                assert lo - 1e-9 <= s.n_frames / fps <= hi + 1e-9
                assert 1 <= len(s.objects) <= 3
                assert 25 <= s.background <= 154


def test_objects_stay_in_frame_and_never_overlap(resolved):
    width, height, fps = (resolved["video"][k] for k in ("width", "height", "fps"))
    for plan in plan_design(resolved).values():
        for scene in plan.scenes:
            for frame in (0, scene.n_frames // 2, scene.n_frames - 1):
                canvas = np.zeros((height, width), dtype=int)
                total = 0
                for obj in scene.objects:
                    x, y = obj.position(frame / fps)
                    r = obj.radius(height)
                    assert r <= x <= width - 1 - r and r <= y <= height - 1 - r
                    box, mask = object_mask(obj, frame / fps, width, height)
                    canvas[box] += mask
                    total += int(mask.sum())
                assert canvas.max() == 1 and canvas.sum() == total


def test_captions_describe_every_object(resolved):
    for plan in plan_design(resolved).values():
        for scene in plan.scenes:
            text = scene.caption
            assert text.count("a ") >= len(scene.objects)
            for obj in scene.objects:
                assert f"a {obj.size} {obj.colour} {obj.category}" in text
                moving = (
                    f"a {obj.size} {obj.colour} {obj.category} moving {obj.direction}"
                )
                assert (moving in text) == (obj.direction != "still")
            assert text.count("moving") == sum(
                o.direction != "still" for o in scene.objects
            )
            assert all(c in COLOURS for c in (o.colour for o in scene.objects))


def test_repeat_clip_is_the_same_in_every_run(resolved):
    plans = list(plan_design(resolved).values())

    def relative(plan):
        clip = plan.clips[-1]
        return [
            (s.start - clip.start, s.n_frames, s.background, s.objects)
            for s in plan.scenes
            if s.is_repeat
        ]

    first = relative(plans[0])
    assert first and all(relative(p) == first for p in plans[1:])
    assert [s.objects for s in plan_repeat(resolved)] == [o for *_, o in first]


def test_plans_are_deterministic_and_seeded():
    params = resolve_demo_params(tiny_params())
    assert plan_design(params) == plan_design(params)
    other = resolve_demo_params(tiny_params(seed=8))
    assert plan_design(other) != plan_design(params)


def test_a_run_does_not_depend_on_the_other_runs():
    params = resolve_demo_params(tiny_params())
    alone = resolve_demo_params(tiny_params(runs={"tfMRI_MOVIE2_7T_PA": 45}))
    run = "tfMRI_MOVIE2_7T_PA"
    assert plan_design(params)[run] == plan_run(run, 45, alone, plan_repeat(alone))
