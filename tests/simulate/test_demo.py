"""The written demo dataset: layout, determinism, video, captions, fMRI and planted truth."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.first_level import glover_hrf

from tests.simulate.conftest import RUNS, TINY_PARAMS, tiny_params
from vlm_brain.fmri.cifti import (
    N_CORTEX,
    N_GRAYORDINATES,
    read_dtseries,
    standard_index,
)
from vlm_brain.fmri.layout import run_path
from vlm_brain.simulate import (
    demo_params_hash,
    generate_demo_dataset,
    resolve_demo_params,
)
from vlm_brain.simulate.design import COLOURS, SIZES, plan_design
from vlm_brain.simulate.render import iter_frames, write_video

FPS, WIDTH, HEIGHT = 8, 64, 48
SUBJECTS = ["demo01", "demo02"]


def decode(path: Path) -> tuple[np.ndarray, float, str]:
    """(frames (n, h, w, 3) uint8, duration in s, codec name) of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        frames = np.stack(
            [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        )
        duration = container.duration / 1_000_000
    return frames, duration, codec


def fmri(root: Path, subject: str, run: str) -> np.ndarray:
    return read_dtseries(run_path(root / "fmri", subject, run)).data


def clip_times(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "stimuli" / "clip_times.csv")


def scenes(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "stimuli" / "scenes.csv")


def captions(root: Path, run: str) -> pd.DataFrame:
    return pd.read_csv(root / "stimuli" / "captions" / f"{run}.tsv", sep="\t")


def in_clip(times: np.ndarray, clips: pd.DataFrame) -> np.ndarray:
    """Bool per time (s): inside one of ``clips``' [onset, offset)."""
    times = np.asarray(times)[:, None]
    return np.any(
        (times >= clips.onset.to_numpy()) & (times < clips.offset.to_numpy()), axis=1
    )


# --------------------------------------------------------------------------- layout


def test_layout_and_manifest(demo_a):
    root, manifest = demo_a
    on_disk = sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
    )
    assert "manifest.json" in on_disk
    on_disk.remove("manifest.json")
    assert manifest["files"] == on_disk
    for run in RUNS:
        assert f"stimuli/videos/{run}.mp4" in on_disk
        assert f"stimuli/captions/{run}.tsv" in on_disk
        for subject in SUBJECTS:
            path = run_path(root / "fmri", subject, run).relative_to(root).as_posix()
            assert path in on_disk
            assert path.endswith(
                f"MNINonLinear/Results/{run}/{run}_Atlas_MSMAll_hp2000_clean.dtseries.nii"
            )
    for name in (
        "stimuli/clip_times.csv",
        "stimuli/scenes.csv",
        "stimuli/attributes.parquet",
        "ground_truth/drivers.csv",
        "ground_truth/weights.npy",
        "ground_truth/attributes.json",
        "ground_truth/grayordinates.parquet",
    ):
        assert name in on_disk

    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert (
        manifest["generator"] == "vlm_brain.simulate.demo" and manifest["version"] == 1
    )
    assert manifest["params_hash"] == demo_params_hash(TINY_PARAMS)
    assert manifest["params"]["bold"]["signal_to_noise"] == 3.0
    assert manifest["subjects"] == SUBJECTS
    assert manifest["runs"] == RUNS
    assert manifest["n_grayordinates"] == N_CORTEX
    assert manifest["video"]["pixels_deterministic"] is True
    newest_data = max((root / f).stat().st_mtime_ns for f in on_disk)
    assert (root / "manifest.json").stat().st_mtime_ns >= newest_data


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_dataset(demo_a, demo_b):
    (a, manifest_a), (b, manifest_b) = demo_a, demo_b
    assert manifest_a == manifest_b
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "stimuli/attributes.parquet"),
        pd.read_parquet(b / "stimuli/attributes.parquet"),
    )
    for name in [
        "stimuli/clip_times.csv",
        "stimuli/scenes.csv",
        "ground_truth/drivers.csv",
        "ground_truth/attributes.json",
        *(f"stimuli/captions/{r}.tsv" for r in RUNS),
    ]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    np.testing.assert_array_equal(
        np.load(a / "ground_truth/weights.npy"), np.load(b / "ground_truth/weights.npy")
    )
    for run in RUNS:
        np.testing.assert_array_equal(
            decode(a / f"stimuli/videos/{run}.mp4")[0],
            decode(b / f"stimuli/videos/{run}.mp4")[0],
        )
        for subject in SUBJECTS:
            np.testing.assert_array_equal(fmri(a, subject, run), fmri(b, subject, run))


def test_another_seed_gives_another_dataset(demo_a, demo_other_seed):
    (a, _), (c, _) = demo_a, demo_other_seed
    assert (a / "stimuli/scenes.csv").read_bytes() != (
        c / "stimuli/scenes.csv"
    ).read_bytes()
    run = next(iter(RUNS))
    assert (a / f"stimuli/captions/{run}.tsv").read_bytes() != (
        c / f"stimuli/captions/{run}.tsv"
    ).read_bytes()
    assert not np.array_equal(
        np.load(a / "ground_truth/weights.npy"), np.load(c / "ground_truth/weights.npy")
    )
    assert not np.array_equal(fmri(a, "demo01", run), fmri(c, "demo01", run))


def test_subjects_get_independent_noise(demo_a):
    root, _ = demo_a
    run = next(iter(RUNS))
    one, two = fmri(root, "demo01", run), fmri(root, "demo02", run)
    assert not np.array_equal(one, two)


# --------------------------------------------------------------------------- video


@pytest.mark.parametrize("run", list(RUNS))
def test_video_length_rest_and_scenes(demo_a, run):
    root, manifest = demo_a
    frames, duration, codec = decode(root / f"stimuli/videos/{run}.mp4")
    assert codec == {"libx264": "h264", "mpeg4": "mpeg4"}[manifest["video"]["codec"]]
    assert frames.shape == (RUNS[run] * FPS, HEIGHT, WIDTH, 3)
    assert duration == pytest.approx(RUNS[run] * 1.0, abs=1 / FPS)
    times = np.arange(len(frames)) / FPS
    showing = in_clip(times, clip_times(root).query("run == @run"))
    assert showing.any() and (~showing).any()
    assert frames[~showing].max() <= 2  # rest is black
    assert np.all(frames[showing].reshape(showing.sum(), -1).max(axis=1) >= 20)


@pytest.mark.parametrize("run", list(RUNS))
def test_video_pixels_match_the_scene_plan(demo_a, run):
    root, _ = demo_a
    frames, _, _ = decode(root / f"stimuli/videos/{run}.mp4")
    palette = {name: np.array(rgb, dtype=float) for name, rgb in COLOURS.items()}
    plan = scenes(root).query("run == @run")
    n_checked = 0
    for _, scene in plan.groupby("scene"):
        first = scene.iloc[0]
        frame_index = int(round((first.onset + first.offset) / 2 * FPS))
        image = frames[frame_index].astype(float)
        t = frame_index / FPS - first.onset
        # the background fills most of the frame
        assert (
            np.abs(np.median(image.reshape(-1, 3), axis=0) - first.background).max()
            <= 2
        )
        for obj in scene.itertuples():
            x, y = obj.x + obj.vx * t, obj.y + obj.vy * t
            r = SIZES[obj.size] * HEIGHT
            rows = slice(int(round(y)) - 1, int(round(y)) + 2)
            cols = slice(int(round(x)) - 1, int(round(x)) + 2)
            centre = np.median(image[rows, cols].reshape(-1, 3), axis=0)
            candidates = {**palette, "background": np.full(3, float(obj.background))}
            nearest = min(
                candidates, key=lambda k: np.linalg.norm(candidates[k] - centre)
            )
            assert nearest == obj.colour, (run, obj.scene, obj.category, centre)
            # dominant non-background colour of the object's bounding box
            box = image[
                max(0, int(y - r)) : int(y + r) + 1, max(0, int(x - r)) : int(x + r) + 1
            ]
            distances = {
                k: np.linalg.norm(box - v, axis=2) for k, v in candidates.items()
            }
            closest = np.argmin(np.stack(list(distances.values())), axis=0)
            counts = np.bincount(closest.ravel(), minlength=len(candidates))[
                : len(palette)
            ]
            assert list(palette)[int(np.argmax(counts))] == obj.colour
            n_checked += 1
    assert n_checked >= 5


def test_mpeg4_fallback_writes_a_decodable_video(tmp_path):
    plan = next(iter(plan_design(resolve_demo_params(tiny_params())).values()))
    path = write_video(tmp_path / "fallback.mp4", plan, codec="mpeg4")
    frames, duration, codec = decode(path)
    assert codec == "mpeg4" and frames.shape[0] == plan.n_frames
    drawn = np.stack(list(iter_frames(plan))).astype(float)
    assert np.mean(np.abs(frames - drawn)) < 3.0


# --------------------------------------------------------------------------- captions and clips


@pytest.mark.parametrize("run", list(RUNS))
def test_captions_cover_every_scene_and_no_rest(demo_a, run):
    root, _ = demo_a
    table = captions(root, run)
    assert list(table.columns) == ["onset", "duration", "text"]
    plan = scenes(root).query("run == @run")
    onsets = plan.groupby("scene").onset.first().to_numpy()
    np.testing.assert_allclose(table.onset, onsets)
    clips = clip_times(root).query("run == @run")
    assert in_clip(table.onset, clips).all()
    assert in_clip(table.onset + table.duration - 1e-6, clips).all()
    assert table.duration.sum() == pytest.approx((clips.offset - clips.onset).sum())
    for (_, scene), text in zip(plan.groupby("scene"), table.text, strict=True):
        for obj in scene.itertuples():
            assert f"{obj.size} {obj.colour} {obj.category}" in text
        assert text.count("moving") == int(((scene.vx != 0) | (scene.vy != 0)).sum())


def test_repeat_clip_is_last_and_identical_across_runs(demo_a):
    root, _ = demo_a
    clips = clip_times(root)
    pixels, texts = [], []
    for run in RUNS:
        run_clips = clips.query("run == @run")
        last = run_clips.iloc[-1]
        assert bool(last["is_repeat"]) and last["clip"] == run_clips["clip"].max()
        assert not run_clips.is_repeat.iloc[:-1].any()
        assert last.offset - last.onset == pytest.approx(
            TINY_PARAMS["design"]["repeat_s"]
        )
        frames, _, _ = decode(root / f"stimuli/videos/{run}.mp4")
        pixels.append(
            frames[int(round(last.onset * FPS)) : int(round(last.offset * FPS))]
        )
        table = captions(root, run).query("onset >= @last.onset")
        texts.append(
            [(o - last.onset, d, t) for o, d, t in table.itertuples(index=False)]
        )
    assert len(texts[0]) >= 1
    for other_pixels, other_texts in zip(pixels[1:], texts[1:], strict=True):
        np.testing.assert_array_equal(other_pixels, pixels[0])
        assert other_texts == texts[0]


# --------------------------------------------------------------------------- attributes


def test_attributes_follow_the_stimulus(demo_a):
    root, _ = demo_a
    table = pd.read_parquet(root / "stimuli/attributes.parquet")
    names = json.loads((root / "ground_truth/attributes.json").read_text())
    assert list(table.columns) == ["run", "tr", *names]
    assert (
        any(n.startswith("visual_shape_") for n in names)
        and "text_mentions_motion" in names
    )
    assert len(table) == sum(RUNS.values())
    plan = scenes(root)
    for run in RUNS:
        rows = table.query("run == @run")
        assert rows.tr.tolist() == list(range(RUNS[run]))
        middle = rows.tr.to_numpy() + 0.5
        showing = in_clip(middle, clip_times(root).query("run == @run"))
        assert (rows.loc[~showing, names].to_numpy() == 0).all()
        assert (rows.loc[showing, "visual_n_objects"] >= 1).all()
        assert (rows.loc[showing, "text_present"] == 1).all()
        caption = captions(root, run)
        run_scenes = plan.query("run == @run")
        for row in rows[showing].itertuples():
            t = row.tr + 0.5
            scene = run_scenes[(run_scenes.onset <= t) & (run_scenes.offset > t)]
            assert row.visual_n_objects == len(scene)
            text = caption[
                (caption.onset <= t) & (caption.onset + caption.duration > t)
            ].text.item()
            assert row.text_n_words == len(text.replace(",", " ").split())
            assert row.text_mentions_motion == text.count("moving")
            assert (
                row.visual_shape_circle > 0
                if (scene.category == "circle").any()
                else row.visual_shape_circle == 0
            )
        n_scenes = run_scenes.scene.nunique()
        assert rows.visual_scene_change.sum() == n_scenes


# --------------------------------------------------------------------------- fMRI and ground truth


def test_fmri_files_read_back_in_hcp_space(demo_a):
    root, _ = demo_a
    for subject in SUBJECTS:
        for run, n_trs in RUNS.items():
            series = read_dtseries(run_path(root / "fmri", subject, run))
            assert series.tr == pytest.approx(1.0)
            assert (
                series.data.shape == (n_trs, N_CORTEX)
                and series.data.dtype == np.float32
            )
            assert len(standard_index(series.brain_models)) == N_CORTEX
            assert np.all(series.data > 0)
            assert abs(np.median(series.data) / 10_000 - 1) < 0.05


def test_ground_truth_files_are_consistent(demo_a):
    root, _ = demo_a
    names = json.loads((root / "ground_truth/attributes.json").read_text())
    weights = np.load(root / "ground_truth/weights.npy")
    assert weights.shape == (len(names), N_CORTEX) and weights.dtype == np.float32
    drivers = pd.read_csv(root / "ground_truth/drivers.csv")
    assert list(drivers.columns) == [
        "attribute",
        "modality",
        "network",
        "sign",
        "n_grayordinates",
        "mean_amplitude",
    ]
    gray = pd.read_parquet(root / "ground_truth/grayordinates.parquet")
    assert list(gray.columns) == [
        "grayordinate",
        "network",
        "driven",
        "modality",
        "sign",
    ]
    assert gray.grayordinate.tolist() == list(range(N_CORTEX))
    network = gray.network.to_numpy()
    for d in drivers.itertuples():
        w = weights[names.index(d.attribute)]
        assert d.modality == d.attribute.split("_")[0]
        in_net = w[network == d.network]
        assert np.count_nonzero(in_net) == d.n_grayordinates > 0
        assert np.all(np.sign(in_net[in_net != 0]) == d.sign)
        assert np.count_nonzero(w[network != d.network]) == 0 or (
            d.attribute in drivers.query("network != @d.network").attribute.tolist()
        )
        assert np.mean(np.abs(in_net[in_net != 0])) == pytest.approx(
            d.mean_amplitude, rel=1e-5
        )
        assert (
            0.5 < d.n_grayordinates / np.sum(network == d.network) < 0.7
        )  # driven_fraction 0.6
    planted = {(d.attribute, d.network, d.sign) for d in drivers.itertuples()}
    assert ("visual_motion", "Default", -1) in planted and (
        "text_mentions_motion",
        "Default",
        1,
    ) in planted
    assert ("visual_contrast", "Cingulo-Opercular", -1) in planted
    pm = {
        d.attribute for d in drivers.itertuples() if d.network == "Posterior-Multimodal"
    }
    assert {a.split("_")[-1] for a in pm} == {next(iter(pm)).split("_")[-1]} and len(
        pm
    ) == 2
    for null in ("Somatomotor", "Orbito-Affective"):
        assert not weights[:, network == null].any()
        assert not gray.driven[network == null].any()
    assert np.array_equal(gray.driven.to_numpy(), np.any(weights != 0, axis=0))
    assert np.array_equal(
        gray.sign.to_numpy(), np.sign(weights.sum(axis=0)).astype(int)
    )
    assert set(gray.modality[gray.network == "Posterior-Multimodal"]) == {
        "both",
        "none",
    }
    assert set(gray.modality[gray.network == "Language"]) == {"text", "none"}
    assert set(gray.modality[gray.network == "Visual1"]) == {"visual", "none"}


def _hrf_regressors(table: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Z-scored (all TRs) attributes convolved per run with the Glover HRF (TR = 1 s)."""
    values = table[names].to_numpy(dtype=float)
    std = values.std(axis=0)
    z = np.where(std > 0, (values - values.mean(axis=0)) / np.where(std > 0, std, 1), 0)
    hrf = glover_hrf(t_r=1.0, oversampling=50)[::50]  # nilearn's Glover function at whole TRs
    out = np.empty_like(z)
    for run in RUNS:
        rows = (table.run == run).to_numpy()
        for j in range(z.shape[1]):
            column = z[rows, j]
            out[rows, j] = (
                np.convolve(column - column[0], hrf)[: len(column)] + column[0]
            )
    return out


def _detrend_per_run(values: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """Remove constant, linear and one-cycle cosine/sine trends within each run."""
    out = np.empty_like(values, dtype=float)
    for run in np.unique(runs):
        rows = runs == run
        u = np.arange(rows.sum()) / rows.sum()
        basis = np.column_stack(
            [np.ones_like(u), u, np.cos(2 * np.pi * u), np.sin(2 * np.pi * u)]
        )
        beta, *_ = np.linalg.lstsq(basis, values[rows], rcond=None)
        out[rows] = values[rows] - basis @ beta
    return out


def _correlations(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    y = (y - y.mean(axis=0)) / y.std(axis=0)
    x = (x - x.mean()) / x.std()
    return (x @ y) / len(x)


def test_planted_truth_is_recoverable(demo_a):
    root, _ = demo_a
    table = pd.read_parquet(root / "stimuli/attributes.parquet")
    names = json.loads((root / "ground_truth/attributes.json").read_text())
    weights = np.load(root / "ground_truth/weights.npy")
    drivers = pd.read_csv(root / "ground_truth/drivers.csv")
    network = pd.read_parquet(
        root / "ground_truth/grayordinates.parquet"
    ).network.to_numpy()
    runs = table.run.to_numpy()
    x = _detrend_per_run(_hrf_regressors(table, names), runs)
    for subject in SUBJECTS:
        y = np.concatenate([fmri(root, subject, run) for run in RUNS]).astype(float)
        y = _detrend_per_run(y, runs)
        for net, group in drivers.groupby("network"):
            rows = [names.index(a) for a in group.attribute]
            driven = np.flatnonzero(
                (network == net) & np.any(weights[rows] != 0, axis=0)
            )
            if len(group) == 1:
                r = _correlations(y[:, driven], x[:, rows[0]])
                sign = group.sign.item()
                assert np.mean(np.sign(r) == sign) > 0.95, (subject, net)
                assert np.median(np.abs(r)) > 0.6, (subject, net)
            else:  # several drivers: each multiple-regression coefficient has the planted sign
                design = np.column_stack([x[:, rows], np.ones(len(x))])
                beta, *_ = np.linalg.lstsq(design, y[:, driven], rcond=None)
                for k, sign in enumerate(group.sign):
                    assert np.mean(np.sign(beta[k]) == sign) > 0.9, (
                        subject,
                        net,
                        group.attribute.iloc[k],
                    )
        null = np.flatnonzero(network == "Somatomotor")
        for attribute in (
            "visual_contrast",
            "visual_motion",
            "text_n_words",
            "text_present",
        ):
            r = _correlations(y[:, null], x[:, names.index(attribute)])
            assert abs(np.mean(r)) < 0.05, (subject, attribute)
            assert np.mean(np.abs(r)) < 0.25, (subject, attribute)


# --------------------------------------------------------------------------- other options


def test_subcortical_option_and_regeneration(tmp_path):
    root = tmp_path / "demo"
    params = tiny_params(
        n_subjects=2, runs={"tfMRI_MOVIE1_7T_AP": 45}, include_subcortical=True
    )
    manifest = generate_demo_dataset(root, params)
    assert manifest["n_grayordinates"] == N_GRAYORDINATES
    series = read_dtseries(run_path(root / "fmri", "demo02", "tfMRI_MOVIE1_7T_AP"))
    assert series.data.shape == (45, N_GRAYORDINATES)
    assert len(standard_index(series.brain_models)) == N_GRAYORDINATES
    weights = np.load(root / "ground_truth/weights.npy")
    assert weights.shape[1] == N_GRAYORDINATES and not weights[:, N_CORTEX:].any()
    gray = pd.read_parquet(root / "ground_truth/grayordinates.parquet")
    assert len(gray) == N_GRAYORDINATES and not gray.driven.iloc[N_CORTEX:].any()

    # regenerating with fewer subjects removes the old files and rewrites the manifest
    smaller = generate_demo_dataset(
        root, {**params, "n_subjects": 1, "include_subcortical": False}
    )
    assert smaller["subjects"] == ["demo01"]
    assert not run_path(root / "fmri", "demo02", "tfMRI_MOVIE1_7T_AP").exists()
    assert read_dtseries(
        run_path(root / "fmri", "demo01", "tfMRI_MOVIE1_7T_AP")
    ).data.shape == (45, N_CORTEX)
    assert json.loads((root / "manifest.json").read_text()) == smaller


def test_refuses_a_folder_with_a_foreign_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"generator": "someone else"}))
    with pytest.raises(ValueError, match="not written by"):
        generate_demo_dataset(tmp_path, tiny_params())
    assert json.loads((tmp_path / "manifest.json").read_text()) == {
        "generator": "someone else"
    }
