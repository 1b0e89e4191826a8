"""Ctrl-C in the middle of `kedro run`: no half-written dataset left, the MLflow run not FINISHED."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import shrink_demo


def partial_folders(project):
    return [p for p in (project / "data").rglob("*") if p.is_dir() and ".partial" in p.name]


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
