"""Shared fixtures: small files in the HCP layout and a throw-away Kedro project."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vlm_brain.fmri.cifti import standard_brain_models, write_dtseries
from vlm_brain.fmri.layout import run_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cortex_models():
    return standard_brain_models(include_subcortical=False)


def write_text(path: Path, text: str) -> Path:
    """Write a small UTF-8 text file (a table under test) and return its path."""
    path.write_text(text, encoding="utf-8")
    return path


def clip_table(runs: dict[str, int], tr: float = 1.0) -> pd.DataFrame:
    """Rest 4 s, a clip, rest 2 s, a 6 s repeat clip, rest 2 s in every run."""
    rows = []
    for run, n in runs.items():
        end = n * tr
        rows.append({"run": run, "clip": 1, "onset": 4.0, "offset": end - 10.0, "is_repeat": False})
        rows.append({"run": run, "clip": 2, "onset": end - 8.0, "offset": end - 2.0, "is_repeat": True})
    return pd.DataFrame(rows)


def write_hcp_layout(
    root: Path,
    models,
    subjects=("100610", "102311"),
    runs: dict[str, int] | None = None,
    tr: float = 1.0,
    seed: int = 0,
) -> dict[tuple[str, str], np.ndarray]:
    """Random BOLD-like runs in the HCP layout under root/fmri + root/stimuli."""
    runs = runs or {"tfMRI_MOVIE1_7T_AP": 30, "tfMRI_MOVIE2_7T_PA": 28}
    rng = np.random.default_rng(seed)
    written = {}
    for subject in subjects:
        for run, n in runs.items():
            data = 1000 + rng.standard_normal((n, len(models))).astype(np.float32)
            write_dtseries(run_path(root / "fmri", subject, run), data, tr, models)
            written[subject, run] = data
    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    clip_table(runs, tr).to_csv(root / "stimuli" / "clip_times.csv", index=False)
    return written


@pytest.fixture
def kedro_project(tmp_path, monkeypatch):
    """A copy of this project's configuration in tmp_path, made the working dir.

    Kedro resolves catalog paths against the working directory, so pipelines run
    here write under tmp_path/data and never touch the repository's data folder.
    """
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local", "*-local"))
    (tmp_path / "conf" / "local").mkdir()
    shutil.copy(REPO / ".telemetry", tmp_path / ".telemetry")
    (tmp_path / "src").mkdir()  # the package itself is installed (editable)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_kedro(project: Path, pipeline: str, env: str | None = None, params: dict | None = None, **run_kwargs):
    """Run a pipeline in-process like `kedro run --pipelines ... --env ...` (``run_kwargs``:
    e.g. ``from_nodes=[...]``, as `KedroSession.run` takes them)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        return session.run(pipeline_names=[pipeline], **run_kwargs)


def edit_yaml(path: Path, update) -> None:
    """Load a YAML file of the copied configuration, let ``update`` change it, save it."""
    import yaml

    config = yaml.safe_load(path.read_text())
    update(config)
    path.write_text(yaml.safe_dump(config))


def set_runs(project: Path, runs: dict[str, int], env: str = "base") -> None:
    """Point an environment's ``globals.runs`` (run -> TRs) at small test runs."""
    edit_yaml(project / "conf" / env / "globals.yml", lambda c: c.update(runs=dict(runs)))


def shrink_demo(project: Path, runs: dict[str, int], n_subjects: int = 2, **bold) -> None:
    """Make the copied conf/base describe a tiny demo (small runs and video)."""
    set_runs(project, runs)

    def update(config):
        config["demo"].update({"n_subjects": n_subjects, "video": {"width": 64, "height": 48, "fps": 4}})
        config["demo"]["bold"].update(bold)

    edit_yaml(project / "conf/base/parameters_demo.yml", update)
