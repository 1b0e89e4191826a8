"""Nodes of the fmri_preprocessing pipeline (thin wrappers over vlm_brain.fmri)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from vlm_brain.datasets.cache import Keyed, cache_key
from vlm_brain.fmri.cifti import CiftiError, standard_index
from vlm_brain.fmri.cleaning import clean_run
from vlm_brain.fmri.io import FmriInputError, RunFiles, check_finite, check_header
from vlm_brain.fmri.networks import label_grayordinates
from vlm_brain.fmri.regions import REGION_COLUMNS, label_regions
from vlm_brain.fmri.timecourses import clean_with_missing
from vlm_brain.fmri.timeline import build_timeline

logger = logging.getLogger(__name__)


def build_run_timeline(clip_table: pd.DataFrame | None, params: dict[str, Any]) -> pd.DataFrame:
    """Per-TR timeline of every run (rest, clips, repeat, kept for fitting); without a clip
    table (None) every TR is kept."""
    timeline = build_timeline(
        clip_table, dict(params["runs"]), float(params["tr"]), bool(params["exclude_repeat"])
    )
    kept = timeline.groupby("run", sort=False)["keep"].sum()
    logger.info(
        "timeline: %d runs, %d TRs, %d kept for fitting (%s)",
        len(kept), len(timeline), int(kept.sum()), ", ".join(f"{r}: {k}" for r, k in kept.items()),
    )
    return timeline


def _selected_subjects(runs: RunFiles, params: dict[str, Any]) -> list[str]:
    wanted = params["subjects"]
    if wanted in ("all", None):
        subjects = runs.subjects(list(params["runs"]))
        if not subjects:
            raise FmriInputError(
                f"no subject folder with run files under {runs.root}"
                f" (expected files like {runs.path('<subject>', next(iter(params['runs'])))})"
            )
        return subjects
    return [str(s) for s in wanted]


INCOMPLETE = ("error", "skip")


def inventory_runs(runs: RunFiles, params: dict[str, Any]) -> pd.DataFrame:
    """Check every (subject, run) file's header before any data is read.

    A missing run, a wrong TR, a run shorter than its stimulus timeline, or a
    grayordinate layout that is not HCP's (or differs between runs) is an error naming
    the file, or, with ``incomplete_subjects: skip``, leaves that subject out with a
    warning.

    Returns:
        One row per file of the subjects used: subject, run, path, n_trs, tr,
        n_grayordinates, status ("ok"); then one row per subject left out, with status
        "skipped" and the reason.
    """
    policy = params.get("incomplete_subjects", "error")
    if policy not in INCOMPLETE:
        raise ValueError(f"fmri_preprocessing.incomplete_subjects must be 'error' or 'skip', got {policy!r}")
    rows, skipped = [], []
    layout: tuple[str, int] | None = None
    for subject in _selected_subjects(runs, params):
        try:
            subject_rows = _subject_inventory(runs, subject, params, layout)
        except FmriInputError as exc:
            if policy == "error":
                raise
            logger.warning("subject %s left out (incomplete_subjects: skip): %s", subject, exc)
            skipped.append({"subject": subject, "status": "skipped", "reason": str(exc)})
            continue
        layout = layout or (subject_rows[0]["path"], subject_rows[0]["n_grayordinates"], subject_rows[0]["names"])
        rows += [{k: v for k, v in row.items() if k != "names"} for row in subject_rows]
    if not rows:
        raise FmriInputError(f"no subject under {runs.root} has every run usable; left out: "
                             + "; ".join(f"{s['subject']} ({s['reason']})" for s in skipped))
    inventory = pd.DataFrame(rows + skipped, columns=[*INVENTORY_COLUMNS, "status", "reason"])
    used = inventory[inventory.status == "ok"]
    logger.info(
        "fMRI: %d subjects x %d runs under %s (%s, %d grayordinates)%s",
        used["subject"].nunique(), len(params["runs"]), runs.root, runs.format,
        used["n_grayordinates"].iloc[0], f"; {len(skipped)} subjects left out" if skipped else "",
    )
    return inventory


INVENTORY_COLUMNS = ["subject", "run", "path", "n_trs", "tr", "n_grayordinates"]


def usable(inventory: pd.DataFrame) -> pd.DataFrame:
    """The inventory rows of the subjects used (inventories without a status: all rows)."""
    return inventory if "status" not in inventory else inventory[inventory.status == "ok"].reset_index(drop=True)


def _subject_inventory(runs: RunFiles, subject: str, params: dict[str, Any],
                       layout: tuple[str, int] | None) -> list[dict[str, Any]]:
    rows = []
    for run, n_trs in params["runs"].items():
        header = runs.header(subject, run)
        check_header(header, float(params["tr"]), int(n_trs), run)
        if runs.format == "cifti":
            try:
                standard_index(runs.brain_models(subject, run), source=str(header.path))
            except CiftiError as exc:
                raise FmriInputError(str(exc)) from exc
        reference = layout if layout is not None else (rows[0]["path"], rows[0]["n_grayordinates"],
                                                       rows[0]["names"]) if rows else None
        if reference is not None and header.n_grayordinates != reference[1]:
            raise FmriInputError(
                f"{header.path}: {header.n_grayordinates} grayordinates, but"
                f" {reference[0]} has {reference[1]}; all runs must share one layout"
            )
        if reference is not None and header.names is not None and header.names != reference[2]:
            first = next(i for i, (a, b) in enumerate(zip(header.names, reference[2], strict=True)) if a != b)
            raise FmriInputError(f"{header.path}: target {first + 1} is {header.names[first]!r}, but in "
                                 f"{reference[0]} it is {reference[2][first]!r}; all runs must name the same "
                                 "targets in the same order")
        if header.n_trs > n_trs:
            logger.warning(
                "%s: %d TRs, the stimulus timeline has %d; using the first %d",
                header.path, header.n_trs, n_trs, n_trs,
            )
        rows.append(
            {"subject": subject, "run": run, "path": str(header.path), "n_trs": header.n_trs,
             "tr": np.nan if header.tr is None else header.tr, "n_grayordinates": header.n_grayordinates,
             "status": "ok", "reason": "", "names": header.names}
        )
    return rows


def label_networks(runs: RunFiles, inventory: pd.DataFrame) -> pd.DataFrame:
    """Cole-Anticevic and Yeo-7 network of every grayordinate (HCP CIFTI); for parcels/ROIs,
    the labels of the data's own labels table (`fmri.networks.label_regions`)."""
    first = usable(inventory).iloc[0]
    if runs.has_regions:
        names = runs.header(first["subject"], first["run"]).names
        labels = label_regions(list(names), runs.labels)
        logger.info("target labels: %d regions%s", len(labels),
                    f", label columns {[c for c in labels.columns if c not in REGION_COLUMNS]} from {runs.labels}"
                    if runs.labels else " (no labels table: catalog fmri_runs, key 'labels')")
        return labels
    models = runs.brain_models(first["subject"], first["run"])
    index = None if models is None else standard_index(models, source=first["path"])
    labels = label_grayordinates(index, n=int(first["n_grayordinates"]))
    logger.info(
        "network labels: %s", labels["ca_network"].value_counts().to_dict()
    )
    return labels


def _clean_subject(
    runs: RunFiles, subject: str, timeline: pd.DataFrame, params: dict[str, Any], position: str
) -> dict[str, np.ndarray]:
    logger.info("cleaning subject %s (%s)", subject, position)
    kept, repeats = [], []
    for run, n_trs in params["runs"].items():
        data = runs.read(subject, run)[: int(n_trs)]
        constant = check_finite(data, runs.path(subject, run), allow_missing=runs.has_regions)
        if constant.any():
            logger.warning(
                "%s: %d constant grayordinates (set to 0 after cleaning)",
                runs.path(subject, run), int(constant.sum()),
            )
        clean = clean_with_missing if runs.has_regions else clean_run
        try:
            cleaned = clean(data, float(params["tr"]), detrend=bool(params["detrend"]),
                            high_pass=params.get("high_pass"), standardize=bool(params["standardize"]))
        except ValueError as exc:
            raise FmriInputError(f"{runs.path(subject, run)}: {exc}") from exc
        if np.isnan(cleaned).any():
            logger.info("%s: %d missing values (NaN) in %d targets: left out of their fits", runs.path(subject, run),
                        int(np.isnan(cleaned).sum()), int(np.isnan(cleaned).any(axis=0).sum()))
        rows = timeline[timeline["run"] == run]
        kept.append(cleaned[rows["keep"].to_numpy()])
        repeats.append(cleaned[rows["is_repeat"].to_numpy()])
    length = min(len(r) for r in repeats)
    return {"bold": np.concatenate(kept), "repeat": np.stack([r[:length] for r in repeats])}


#: bumped when the cleaning computes something else, so that stored subjects are not reused
CLEANING_VERSION = 1


def clean_runs(
    runs: RunFiles, inventory: pd.DataFrame, timeline: pd.DataFrame, params: dict[str, Any]
) -> dict[str, Keyed]:
    """Clean every subject's runs and apply the clip table's exclusions.

    Each run is detrended, optionally high-pass filtered and z-scored on its own
    (nilearn.signal.clean), then the TRs not kept by the timeline are dropped.

    Returns:
        Per subject, a `Keyed` entry whose key hashes the subject's run files (path,
        size, modification time), the timeline and the cleaning parameters: the
        dataset cleans the subject (one in memory at a time) only if no entry with that
        key is stored, so a rerun with unchanged inputs copies nothing. The arrays:
        ``bold`` (n_kept_trs, n_grayordinates), the kept TRs of all runs in timeline
        order, and ``repeat`` (n_runs, n_repeat_trs, n_grayordinates), the cleaned
        repeated validation clip of each run.
    """
    subjects = list(dict.fromkeys(usable(inventory)["subject"]))
    settings = {k: params.get(k) for k in ("tr", "runs", "detrend", "high_pass", "standardize")}
    marks = {run: timeline.loc[timeline["run"] == run, ["keep", "is_repeat"]].to_numpy().tolist()
             for run in params["runs"]}
    entries = {}
    for i, subject in enumerate(subjects, start=1):
        files = []
        for run in params["runs"]:
            stat = runs.path(subject, run).stat()
            files.append([str(runs.path(subject, run)), stat.st_size, stat.st_mtime_ns])
        description = {"subject": subject, "files": files, "settings": settings, "version": CLEANING_VERSION}
        entries[subject] = Keyed(
            key=cache_key({**description, "timeline": marks, "format": runs.format}),
            compute=lambda s=subject, i=i: _clean_subject(runs, s, timeline, params, f"{i}/{len(subjects)}"),
            description=description,
        )
    return entries


def average_subjects(clean: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Group mean over subjects of ``bold`` and ``repeat`` (grayordinates are aligned).

    A missing value (NaN) is left out of its mean; NaN only where every subject misses it.
    """
    total: dict[str, np.ndarray] = {}
    count: dict[str, np.ndarray] = {}
    for arrays in clean.values():
        for name, array in arrays.items():
            array = np.asarray(array, dtype=np.float64)
            present = ~np.isnan(array)
            total[name] = total.get(name, 0) + np.where(present, array, 0.0)
            count[name] = count.get(name, 0) + present
    return {name: np.divide(t, count[name], out=np.full(t.shape, np.nan), where=count[name] > 0).astype(np.float32)
            for name, t in total.items()}


def summarise_quality(clean: dict[str, dict[str, np.ndarray]], inventory: pd.DataFrame,
                      run_timeline: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per subject: status (used / skipped and why), TRs kept, grayordinates, constant (all-zero)
    grayordinates, TRs of the repeated clip, and ``n_dropped_trs``: TRs of its run files beyond the
    stimulus timeline (not used)."""
    rows = []
    used = usable(inventory)
    lengths = run_timeline.groupby("run").size() if run_timeline is not None else pd.Series(dtype=int)
    for subject, arrays in clean.items():
        bold = arrays["bold"]
        files = used[used["subject"] == subject]
        dropped = sum(max(0, int(r.n_trs) - int(lengths.get(r.run, r.n_trs))) for r in files.itertuples()) \
            if {"run", "n_trs"} <= set(files.columns) else 0
        rows.append(
            {"subject": subject, "status": "used", "reason": "", "n_runs": len(files),
             "n_kept_trs": bold.shape[0], "n_grayordinates": bold.shape[1],
             "n_constant": int(np.sum(~np.any(bold != 0, axis=0))),
             "n_repeat_trs": arrays["repeat"].shape[1], "n_dropped_trs": dropped}
        )
    if "status" in inventory:
        for row in inventory[inventory.status == "skipped"].itertuples():
            rows.append({"subject": row.subject, "status": "skipped", "reason": row.reason, "n_runs": 0,
                         "n_kept_trs": 0, "n_grayordinates": 0, "n_constant": 0, "n_repeat_trs": 0,
                         "n_dropped_trs": 0})
    return pd.DataFrame(rows)
