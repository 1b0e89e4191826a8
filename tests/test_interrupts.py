"""Ctrl-C in the middle of `kedro run`: no half-written dataset left, the MLflow run not FINISHED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import shrink_demo


def partial_folders(project):
    """Every ``*.partial`` folder under data/ (os.walk skips folders renamed or removed while it looks)."""
    found = []
    for root, folders, _ in os.walk(project / "data"):
        found += [Path(root) / name for name in folders if ".partial" in name]
    return found


@pytest.mark.slow
def test_ctrl_c_during_a_save_leaves_no_partial_folder_and_a_killed_mlflow_run(kedro_project):
    import mlflow

    shrink_demo(kedro_project, {"tfMRI_MOVIE1_7T_AP": 60, "tfMRI_MOVIE2_7T_PA": 60}, n_subjects=3)
    process = subprocess.Popen([sys.executable, "-m", "kedro", "run"], cwd=kedro_project,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        seen = [p for p in partial_folders(kedro_project) if "01_raw" not in p.parts]
        if seen:  # a pipeline dataset is being written (the cleaned fMRI, subject by subject)
            process.send_signal(signal.SIGINT)
            break
        time.sleep(0.02)
    stderr = process.communicate(timeout=120)[1].decode(errors="replace")
    assert seen, f"no save was caught in progress; the run ended with {process.returncode}: {stderr[-2000:]}"
    assert process.returncode != 0 and "Aborted" in stderr  # click's word for Ctrl-C
    assert partial_folders(kedro_project) == [] and not any(p.exists() for p in seen)

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlruns/mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["vlm-brain"])
    assert len(runs) == 1 and runs.status.iloc[0] == "KILLED"


def _encoding_project(project):
    """A tiny demo whose only model is clip, with 6 planted-feature layers (encoded one at a time)."""
    import numpy as np
    import pandas as pd
    from kedro.io.core import Version

    from tests.conftest import edit_yaml, run_kedro
    from vlm_brain.datasets import NpyDictDataset

    shrink_demo(project, {"tfMRI_MOVIE1_7T_AP": 55, "tfMRI_MOVIE2_7T_PA": 55, "tfMRI_MOVIE3_7T_PA": 55})
    edit_yaml(project / "conf/base/parameters_encoding.yml", lambda c: c["encoding"].update(
        {"sdl": {"n_atoms": 4, "alpha": 0.5, "max_iter": 5}, "n_refit": 50, "alphas": [1.0, 100.0], "n_jobs": 1}))
    edit_yaml(project / "conf/base/parameters_feature_extraction.yml",
              lambda c: c["feature_extraction"].update(models={"clip": c["feature_extraction"]["models"]["clip"]}))
    run_kedro(project, "fmri_preprocessing")
    attrs = pd.read_parquet(project / "data/01_raw/demo/stimuli/attributes.parquet").filter(like="visual_")
    rng = np.random.default_rng(0)
    layers = {f"clip.image.L{i:02d}": attrs.to_numpy(float) @ rng.standard_normal((attrs.shape[1], 24))
              + 0.1 * rng.standard_normal((len(attrs), 24)) for i in range(6)}
    NpyDictDataset(str(project / "data/04_feature/clip_an_timeseries"),
                   version=Version(None, "2026-01-01T00.00.00.000Z")).save(layers)


def _encode(project) -> tuple[int, str]:
    """`kedro run --pipelines encoding --nodes clip.encode` in a subprocess: (return code, log)."""
    env = {**os.environ, "COLUMNS": "400"}  # log lines unwrapped
    done = subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines", "encoding", "--nodes",
                           "clip.encode"], cwd=project, capture_output=True, timeout=600, env=env)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


@pytest.mark.slow
def test_an_interrupted_encoding_resumes_with_the_unfinished_layers_only(kedro_project):
    import numpy as np
    from kedro.io.core import Version

    from vlm_brain.datasets import NpyDictDataset

    _encoding_project(kedro_project)
    cache = kedro_project / "data/07_model_output/group_encodings"
    result = kedro_project / "data/07_model_output/clip_encoding"
    process = subprocess.Popen([sys.executable, "-m", "kedro", "run", "--pipelines", "encoding", "--nodes",
                                "clip.encode"], cwd=kedro_project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finished: list = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        finished = [p for p in cache.iterdir() if not p.name.startswith(".")] if cache.is_dir() else []
        if len(finished) >= 2:  # two of six layers stored: interrupt the third
            process.send_signal(signal.SIGINT)
            break
        time.sleep(0.02)
    stderr = process.communicate(timeout=120)[1].decode(errors="replace")
    assert len(finished) >= 2 and process.returncode != 0, stderr[-2000:]
    kept = sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))
    assert 2 <= len(kept) < 6 and not any(result.rglob("*.npy"))  # no half-written encoding to load later
    mtimes = {name: (cache / name).stat().st_mtime_ns for name in kept}

    code, log = _encode(kedro_project)  # the next run finishes the job
    assert code == 0, log[-3000:]
    assert "clip: encoding 6 layers" in log and f"{len(kept)} done in earlier runs" in log
    assert log.count("encoding clip.image.L") == 6 - len(kept)  # only the unfinished layers were computed
    assert {name: (cache / name).stat().st_mtime_ns for name in kept} == mtimes
    latest = Version(None, None)
    resumed = {k: {n: np.array(a) for n, a in v.items()}
               for k, v in NpyDictDataset(str(result), version=latest).load().items()}

    for path in (cache, result):  # the same from scratch, uninterrupted
        subprocess.run(["rm", "-rf", str(path)], check=True)
    code, log = _encode(kedro_project)
    assert code == 0 and log.count("encoding clip.image.L") == 6, log[-3000:]
    scratch = NpyDictDataset(str(result), version=latest).load()
    assert sorted(scratch) == sorted(resumed)
    for layer, arrays in resumed.items():
        for name, array in arrays.items():
            np.testing.assert_array_equal(scratch[layer][name], array, err_msg=f"{layer}/{name}")
