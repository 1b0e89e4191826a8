"""The embedded demo dataset: a tiny, deterministic stand-in for the HCP 7T movie data.

:func:`generate_demo_dataset` writes under ``root``::

    stimuli/videos/{run}.mp4            movie shown in each run (n_trs * tr s at fps)
    stimuli/captions/{run}.tsv          onset, duration, text (s); one row per scene
    stimuli/clip_times.csv              run, clip, onset, offset, is_repeat (s)
    stimuli/scenes.csv                  one row per object per scene (design.SCENE_COLUMNS)
    stimuli/attributes.parquet          run, tr, visual_*, text_* (see attributes.py)
    fmri/{subject}/MNINonLinear/Results/{run}/{run}_Atlas_MSMAll_hp2000_clean.dtseries.nii
    ground_truth/drivers.csv            attribute, modality, network, sign, n_grayordinates, mean_amplitude
    ground_truth/weights.npy            (n_attributes, n_grayordinates) float32 signed weights
    ground_truth/attributes.json        attribute order of the weights' rows
    ground_truth/grayordinates.parquet  grayordinate, network, driven, modality, sign
    manifest.json                       written last: the dataset is complete when it exists

Everything is a function of the parameters (and seed) only. The decoded video
pixels are deterministic; the .mp4 bytes are not promised to be.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nibabel.cifti2 import BrainModelAxis

from vlm_brain.fmri.cifti import standard_brain_models, write_dtseries
from vlm_brain.fmri.layout import DTSERIES_PATTERN, run_path
from vlm_brain.simulate.attributes import ATTRIBUTES, design_attributes
from vlm_brain.simulate.bold import (
    STREAM_NOISE,
    GroundTruth,
    design_regressors,
    grayordinate_table,
    plant_ground_truth,
    simulate_run,
    subject_factors,
)
from vlm_brain.simulate.design import (
    RunPlan,
    caption_table,
    clip_table,
    plan_design,
    run_key,
    scene_table,
)
from vlm_brain.simulate.params import (
    DEFAULT_DEMO_PARAMS,
    demo_params_hash,
    resolve_demo_params,
)
from vlm_brain.simulate.render import choose_codec, write_video

__all__ = [
    "DEFAULT_DEMO_PARAMS",
    "GENERATOR",
    "MANIFEST_NAME",
    "VERSION",
    "demo_params_hash",
    "demo_subjects",
    "generate_demo_dataset",
]

logger = logging.getLogger(__name__)

GENERATOR = "vlm_brain.simulate.demo"
VERSION = 1
MANIFEST_NAME = "manifest.json"
FMRI_DIR = "fmri"


def demo_subjects(n_subjects: int) -> list[str]:
    """Subject ids 'demo01', 'demo02', ..."""
    return [f"demo{k:02d}" for k in range(1, n_subjects + 1)]


def _remove_previous(root: Path) -> None:
    """Delete a previous demo dataset's manifest (first) and files under ``root``."""
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.exists():
        return
    try:
        previous = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"{manifest_path}: unreadable manifest ({exc}); remove it"
        ) from exc
    if not isinstance(previous, dict) or previous.get("generator") != GENERATOR:
        raise ValueError(
            f"{manifest_path} was not written by {GENERATOR}; refusing to overwrite {root}"
        )
    manifest_path.unlink()
    resolved_root = root.resolve()
    for name in previous.get("files", []):
        path = (root / name).resolve()
        if path.is_relative_to(resolved_root) and path.is_file():
            path.unlink()


def _write_table(table: pd.DataFrame, path: Path, root: Path, files: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    files.append(path.relative_to(root).as_posix())


def _write_stimuli(
    root: Path, plans: dict[str, RunPlan], codec: str, files: list[str]
) -> pd.DataFrame:
    stimuli = root / "stimuli"
    _write_table(clip_table(plans), stimuli / "clip_times.csv", root, files)
    _write_table(scene_table(plans), stimuli / "scenes.csv", root, files)
    for number, (run, plan) in enumerate(plans.items(), start=1):
        logger.info(
            "demo: writing video and captions for %s (%d/%d)", run, number, len(plans)
        )
        _write_table(
            caption_table(plan), stimuli / "captions" / f"{run}.tsv", root, files
        )
        video = write_video(stimuli / "videos" / f"{run}.mp4", plan, codec)
        files.append(video.relative_to(root).as_posix())
    logger.info("demo: computing stimulus attributes")
    attributes = design_attributes(plans)
    _write_table(attributes, stimuli / "attributes.parquet", root, files)
    return attributes


def _write_ground_truth(root: Path, truth: GroundTruth, files: list[str]) -> None:
    folder = root / "ground_truth"
    folder.mkdir(parents=True, exist_ok=True)
    _write_table(truth.drivers, folder / "drivers.csv", root, files)
    np.save(folder / "weights.npy", truth.weights.astype(np.float32))
    files.append("ground_truth/weights.npy")
    (folder / "attributes.json").write_text(
        json.dumps(list(truth.attributes), indent=1) + "\n"
    )
    files.append("ground_truth/attributes.json")
    _write_table(
        grayordinate_table(truth), folder / "grayordinates.parquet", root, files
    )


def _write_fmri(
    root: Path,
    params: dict[str, Any],
    *,
    runs: np.ndarray,
    regressors: np.ndarray,
    truth: GroundTruth,
    brain_models: BrainModelAxis,
    files: list[str],
) -> dict[str, float]:
    """Write every subject's runs; return each subject's signal gain."""
    subjects = demo_subjects(params["n_subjects"])
    gains = {}
    for number, subject in enumerate(subjects, start=1):
        logger.info(
            "demo: writing fMRI for subject %s (%d/%d)", subject, number, len(subjects)
        )
        gain, baseline = subject_factors(params, number, len(brain_models))
        gains[subject] = gain
        for run in params["runs"]:
            rng = np.random.default_rng(
                [params["seed"], STREAM_NOISE, number, run_key(run)]
            )
            data = simulate_run(
                regressors[runs == run],
                truth,
                params,
                gain=gain,
                baseline=baseline,
                rng=rng,
            )
            path = write_dtseries(
                run_path(root / FMRI_DIR, subject, run),
                data,
                params["tr"],
                brain_models,
            )
            files.append(path.relative_to(root).as_posix())
    return gains


def _write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write manifest.json atomically (the completion marker)."""
    temporary = root / f".{MANIFEST_NAME}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, root / MANIFEST_NAME)


def generate_demo_dataset(root: str | Path, params: dict) -> dict:
    """Write the whole demo dataset under root; return the manifest dict (also written to root/manifest.json LAST, as a completion marker).

    Args:
        root: output folder (created; a previous demo dataset there is replaced).
        params: demo parameters, merged over :data:`DEFAULT_DEMO_PARAMS`.

    Raises:
        ValueError: bad parameters (the message names the parameter), or ``root``
            holds a manifest.json from something else.
    """
    started = time.perf_counter()
    resolved = resolve_demo_params(params)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _remove_previous(root)
    files: list[str] = []

    logger.info("demo: planning %d runs under %s", len(resolved["runs"]), root)
    plans = plan_design(resolved)
    codec = choose_codec()
    attributes = _write_stimuli(root, plans, codec, files)

    logger.info("demo: planting the ground truth")
    brain_models = standard_brain_models(resolved["include_subcortical"])
    regressors = design_regressors(attributes, list(ATTRIBUTES), resolved["tr"])
    truth = plant_ground_truth(
        regressors, list(ATTRIBUTES), len(brain_models), resolved
    )
    _write_ground_truth(root, truth, files)
    gains = _write_fmri(
        root,
        resolved,
        runs=attributes["run"].to_numpy(),
        regressors=regressors,
        truth=truth,
        brain_models=brain_models,
        files=files,
    )

    video = resolved["video"]
    manifest = {
        "generator": GENERATOR,
        "version": VERSION,
        "params": resolved,
        "params_hash": demo_params_hash(resolved),
        "subjects": demo_subjects(resolved["n_subjects"]),
        "runs": dict(resolved["runs"]),
        "n_grayordinates": len(brain_models),
        "tr": resolved["tr"],
        "fmri_root": FMRI_DIR,
        "dtseries_pattern": DTSERIES_PATTERN,
        "attributes": list(ATTRIBUTES),
        "subject_gains": gains,
        "video": {
            "codec": codec,
            "pixel_format": "yuv420p",
            "lossless": codec == "libx264",
            "width": video["width"],
            "height": video["height"],
            "fps": video["fps"],
            "pixels_deterministic": True,
            "determinism": (
                "decoded pixels are a function of the parameters only; the .mp4"
                " bytes may differ between PyAV/FFmpeg/encoder builds"
            ),
        },
        "files": sorted(files),
    }
    _write_manifest(root, manifest)
    logger.info(
        "demo: wrote %d files under %s in %.1f s",
        len(files),
        root,
        time.perf_counter() - started,
    )
    return manifest
