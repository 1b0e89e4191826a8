"""Per-subject encoding tasks on Dask: same results as in-process, a killed worker, an interrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vlm_brain.cohort.execution import run_tasks
from vlm_brain.cohort.tasks import (
    array_ref,
    is_done,
    load_result,
    make_task,
    run_encoding_task,
)
from vlm_brain.datasets.cache import ArrayCache
from vlm_brain.encoding.settings import EncodingSettings
from vlm_brain.pipelines.encoding.nodes import encode_subjects

RUN_LENGTH, N_RUNS, N_TARGETS, N_ANS = 60, 3, 120, 24
PARAMS = {"target": "subjects", "tr": 1.0, "sdl": {"n_atoms": 4, "alpha": 0.5, "max_iter": 5},
          "alphas": [1.0, 100.0, 10000.0], "q": 0.05, "seed": 0, "backend": "numpy", "target_batch_size": 64,
          "null_method": "refit", "n_refit": 50, "refit_targets": 50, "max_lag": 5}


def write_inputs(folder: Path, subjects=("s1", "s2"), layers=("m.image.L00", "m.image.L01", "m.text.L00")):
    """Memory-mapped inputs as the pipeline loads them: run timeline, fmri_clean, one model's ANs."""
    rng = np.random.default_rng(0)
    n = RUN_LENGTH * N_RUNS
    timeline = pd.DataFrame({"run": np.repeat(np.arange(N_RUNS), RUN_LENGTH), "keep": np.ones(n, dtype=bool)})
    sources = rng.standard_normal((n, 6))
    folder.mkdir(parents=True, exist_ok=True)

    def saved(name, array):  # written once per folder
        if not (folder / f"{name}.npy").exists():
            np.save(folder / f"{name}.npy", array.astype(np.float32))
        return np.load(folder / f"{name}.npy", mmap_mode="r")

    ans = {layer: saved(layer, sources @ rng.standard_normal((6, N_ANS)) + 0.3 * rng.standard_normal((n, N_ANS)))
           for layer in layers}
    clean = {}
    for subject in subjects:
        bold = 0.5 * sources @ rng.standard_normal((6, N_TARGETS)) + rng.standard_normal((n, N_TARGETS))
        clean[subject] = {"bold": saved(f"bold_{subject}", (bold - bold.mean(0)) / bold.std(0)),
                          "repeat": np.zeros((2, 5, N_TARGETS), dtype=np.float32)}
    return timeline, clean, ans


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("inputs"))


def stored(cache_root: Path, manifest: pd.DataFrame) -> dict:
    return {(r.subject, r.layer_name): load_result(cache_root, r.key) for r in manifest.itertuples()}


def assert_same_results(a: dict, b: dict):
    assert a.keys() == b.keys()
    for task in a:
        assert a[task].keys() == b[task].keys()
        for name in a[task]:
            np.testing.assert_array_equal(np.asarray(a[task][name]), np.asarray(b[task][name]), err_msg=f"{task} {name}")


@pytest.fixture(scope="module")
def sequential(inputs, tmp_path_factory):
    """The reference: every task in this process, in order."""
    timeline, clean, ans = inputs
    root = tmp_path_factory.mktemp("sequential")
    manifest = encode_subjects(timeline, clean, {**PARAMS, "cluster": {"scheduler": "none"}}, ArrayCache(root), None,
                               ans)
    return root, manifest


def test_tasks_pass_data_by_path(inputs):
    _, clean, ans = inputs
    ref = array_ref(clean["s1"]["bold"])
    assert ref.path is not None and ref.value is None and ref.path.endswith("bold_s1.npy")
    np.testing.assert_array_equal(ref.load(), clean["s1"]["bold"])
    in_memory = array_ref(np.asarray(clean["s1"]["bold"]) + 0)  # not a file: passed by value
    assert in_memory.path is None and in_memory.value is not None
    # the key follows the values, not the file: the same data in memory or re-saved elsewhere, same fingerprint
    assert in_memory.fingerprint == ref.fingerprint
    changed = np.asarray(clean["s1"]["bold"]).copy()
    changed[0, 0] += 1e-3
    assert array_ref(changed).fingerprint != ref.fingerprint


def test_sequential_run_writes_every_task(sequential):
    import numba

    root, manifest = sequential
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # in-process tasks restore their caller's
    assert len(manifest) == 6 and manifest.computed.all() and set(manifest.worker) == {"this process"}
    assert all(is_done(root, key) for key in manifest.key)
    first = load_result(root, manifest.key.iloc[0])
    assert first["r"].shape == (N_TARGETS,) and first["bn"].dtype == bool


@pytest.mark.slow
def test_local_cluster_equals_sequential_exactly(inputs, sequential, tmp_path):
    timeline, clean, ans = inputs
    manifest = encode_subjects(timeline, clean, {**PARAMS, "cluster": {"scheduler": "local", "n_workers": 2}},
                               ArrayCache(tmp_path), None, ans)
    assert manifest.computed.all() and len(set(manifest.worker)) == 2  # both worker processes took tasks
    assert all(w.startswith("tcp://") for w in manifest.worker)
    assert_same_results(stored(tmp_path, manifest), stored(*sequential))


def kill_worker_once(task, *, marker: str, **kwargs):
    """Kill the worker process running the first attempt of task s1/m.image.L01 (SIGKILL), then run normally."""
    if task.name == "s1/m.image.L01" and not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return run_encoding_task(task, **kwargs)


@pytest.mark.slow
def test_a_killed_worker_still_gives_the_complete_identical_result(inputs, sequential, tmp_path):
    timeline, clean, ans = inputs
    seq_root, seq_manifest = sequential
    tasks = [make_task(r.subject, r.layer_name, array_ref(ans[r.layer_name]), array_ref(clean[r.subject]["bold"]), {})
             for r in seq_manifest.itertuples()]
    settings = EncodingSettings.from_params(PARAMS)
    work = partial(kill_worker_once, marker=str(tmp_path / "killed"), runs=timeline.run.to_numpy(),
                   keep=timeline.keep.to_numpy(), tr=1.0, settings=settings, cache_root=str(tmp_path / "cache"))
    reports = run_tasks(work, tasks, scheduler="local", n_workers=2, describe=lambda t: t.name)
    assert (tmp_path / "killed").exists()  # a worker did die
    assert len(reports) == len(tasks) and all(is_done(tmp_path / "cache", t.key) for t in tasks)
    for task, ref in zip(tasks, seq_manifest.itertuples(), strict=True):
        got, want = load_result(tmp_path / "cache", task.key), load_result(seq_root, ref.key)
        for name in want:
            np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(want[name]))


# Ctrl-C (a real SIGINT to the run's own process) right after its second result is stored.
# A process started in the background by a non-interactive shell inherits SIGINT ignored
# (POSIX), so the script restores Python's handler first.
INTERRUPTED_RUN = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_execution import PARAMS, write_inputs
import vlm_brain.cohort.tasks as tasks
from vlm_brain.datasets.cache import ArrayCache
from vlm_brain.pipelines.encoding.nodes import encode_subjects
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C raises, even if started with SIGINT ignored
store, stored = tasks.store_result, []
def store_then_interrupt(*args, **kwargs):
    store(*args, **kwargs)
    stored.append(1)
    if len(stored) == 2:
        os.kill(os.getpid(), signal.SIGINT)
tasks.store_result = store_then_interrupt
timeline, clean, ans = write_inputs(Path({inputs!r}))
encode_subjects(timeline, clean, {{**PARAMS, "cluster": {{"scheduler": "none"}}}}, ArrayCache(Path({cache!r})), None, ans)
"""


@pytest.mark.slow
def test_an_interrupted_run_resumes_with_only_the_missing_tasks(sequential, tmp_path):
    cache = tmp_path / "cache"
    script = INTERRUPTED_RUN.format(tests=str(Path(__file__).parent), inputs=str(tmp_path / "inputs"),
                                    cache=str(cache))
    process = subprocess.run([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             timeout=300)
    assert process.returncode != 0 and "KeyboardInterrupt" in process.stderr.decode()
    finished = {p.name for p in cache.iterdir() if (p / "index.json").is_file()}
    assert len(finished) == 2  # what was stored before Ctrl-C is kept, nothing after it ran

    timeline, clean, ans = write_inputs(tmp_path / "inputs")  # the same files, loaded again
    manifest = encode_subjects(timeline, clean, {**PARAMS, "cluster": {"scheduler": "none"}}, ArrayCache(cache), None,
                               ans)
    assert int(manifest.computed.sum()) == 6 - len(finished)  # only the missing tasks ran
    assert set(manifest.key[~manifest.computed]) == finished
    assert_same_results(stored(cache, manifest), stored(*sequential))
