"""feature_extraction end to end on a tiny demo, the AN cache, and bad stimulus input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_kedro
from tests.test_demo_run import SMALL_RUNS, shrink_demo
from vlm_brain.datasets import NpyDictDataset
from vlm_brain.datasets.cache import ArrayCache
from vlm_brain.datasets.fmri import RunFileIndex
from vlm_brain.pipelines.feature_extraction import nodes
from vlm_brain.stimuli.video import VideoError

N_TRS = sum(SMALL_RUNS.values())


def latest(folder: Path) -> dict:
    version = sorted(folder.iterdir())[-1]
    return NpyDictDataset(str(version / folder.name)).load()


@pytest.mark.slow
def test_feature_extraction_on_the_demo_then_from_cache(kedro_project, monkeypatch):
    shrink_demo(kedro_project)
    run_kedro(kedro_project, "fmri_preprocessing")  # the run timeline comes from here
    run_kedro(kedro_project, "feature_extraction")
    features = kedro_project / "data/04_feature"
    expected = {"clip": {"clip.image": 12, "clip.text": 12}, "vit": {"vit.image": 12},
                "roberta": {"roberta.text": 12},
                "meter": {"meter.image": 11, "meter.text": 12, "meter.fusion_text_self": 6,
                          "meter.fusion_text_cross": 6, "meter.fusion_image_self": 6,
                          "meter.fusion_image_cross": 6}}
    first = {}
    for model, streams in expected.items():
        ans = latest(features / f"{model}_an_timeseries")
        first[model] = {k: np.array(v) for k, v in ans.items()}
        assert sorted(ans) == sorted(f"{s}.L{i:02d}" for s, n in streams.items() for i in range(n))
        for layer, array in ans.items():
            width = 512 if layer.startswith("clip.text") else 768
            assert array.shape == (N_TRS, width) and np.isfinite(array).all()
    stimulus = pd.read_parquet(kedro_project / "data/02_intermediate/stimulus_table.parquet")
    assert len(stimulus) == N_TRS and 0 < stimulus.has_text.sum() < N_TRS
    # TRs without text have zero text ANs; TRs with text do not
    text = first["roberta"]["roberta.text.L05"]
    assert np.all(text[~stimulus.has_text.to_numpy()] == 0)
    assert np.all(np.abs(text[stimulus.has_text.to_numpy()]).sum(axis=1) > 0)
    # rest frames are black: every rest TR gets the same image ANs
    image = first["clip"]["clip.image.L03"]
    rest = ~stimulus.has_text.to_numpy()
    np.testing.assert_allclose(image[rest], np.broadcast_to(image[rest][0], image[rest].shape), atol=1e-5)

    assert len(list((features / "an_cache").iterdir())) == 4

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built although nothing changed")

    monkeypatch.setattr(nodes, "build_adapter", no_model)
    run_kedro(kedro_project, "feature_extraction")
    for model in expected:
        assert len(list((features / f"{model}_an_timeseries").iterdir())) == 2
        again = latest(features / f"{model}_an_timeseries")
        for layer, array in first[model].items():
            np.testing.assert_array_equal(again[layer], array)


def test_cache_key_changes_with_what_the_result_depends_on(tmp_path):
    video = tmp_path / "r.mp4"
    video.write_bytes(b"video bytes")
    videos = RunFileIndex(tmp_path, "{run}.mp4", {})
    stimulus = pd.DataFrame({"run": ["r"] * 2, "tr": [0, 1], "text": ["a", ""]})
    spec = {"family": "open_clip", "weights": "random", "seed": 0}
    params = {"tr": 1.0, "runs": {"r": 2}, "frames_per_tr": 1, "pooling": "mean", "batch_size": 8}
    key = nodes.extraction_key("clip", videos, stimulus, spec, params)[0]
    assert key == nodes.extraction_key("clip", videos, stimulus, spec, {**params, "batch_size": 1})[0]
    changed = [
        nodes.extraction_key("clip", videos, stimulus, {**spec, "seed": 1}, params)[0],
        nodes.extraction_key("clip", videos, stimulus, spec, {**params, "pooling": "cls"})[0],
        nodes.extraction_key("clip", videos, stimulus.assign(text=["b", ""]), spec, params)[0],
    ]
    video.write_bytes(b"other video bytes")
    changed.append(nodes.extraction_key("clip", videos, stimulus, spec, params)[0])
    assert len(set(changed) | {key}) == 5
    cache = ArrayCache(tmp_path / "cache")
    assert cache.get(key) is None
    cache.put(key, {"clip.image.L00": np.ones((2, 3))}, {"what": "test"})
    np.testing.assert_array_equal(cache.get(key)["clip.image.L00"], np.ones((2, 3)))


def test_missing_video_and_captions_are_named(tmp_path):
    videos = RunFileIndex(tmp_path / "videos", "{run}.mp4", {})
    stimulus = pd.DataFrame({"run": ["r"] * 2, "tr": [0, 1], "text": ["", ""]})
    params = {"tr": 1.0, "runs": {"r": 2}, "pooling": "mean", "batch_size": 2, "device": "cpu"}
    with pytest.raises(FileNotFoundError, match=f"missing video for run r: {tmp_path / 'videos' / 'r.mp4'}"):
        nodes.extract_model_ans("clip", videos, stimulus, {"family": "open_clip", "streams": ["image"]}, params)
    captions = RunFileIndex(tmp_path / "captions", "{run}.tsv", {})
    timeline = pd.DataFrame({"run": ["r"] * 2, "tr": [0, 1], "time": [0.5, 1.5]})
    clips = pd.DataFrame({"run": ["r"], "clip": [1], "onset": [0.0], "offset": [2.0], "is_repeat": [False]})
    with pytest.raises(FileNotFoundError, match="missing caption file for run r"):
        nodes.build_stimulus_table(timeline, captions, clips, params)


def test_video_shorter_than_the_run_stops_extraction(tmp_path):
    from tests.stimuli.test_video_text import write_counting_video

    (tmp_path / "videos").mkdir()
    write_counting_video(tmp_path / "videos" / "r.mp4", 8)  # 2 s
    videos = RunFileIndex(tmp_path / "videos", "{run}.mp4", {})
    stimulus = pd.DataFrame({"run": ["r"] * 4, "tr": range(4), "text": [""] * 4})
    params = {"tr": 1.0, "runs": {"r": 4}, "pooling": "mean", "batch_size": 2, "device": "cpu"}
    with pytest.raises(VideoError, match="shorter than the run"):
        nodes.extract_model_ans("clip", videos, stimulus, {"family": "open_clip", "streams": ["image"]}, params)
