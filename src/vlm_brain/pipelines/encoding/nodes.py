"""Nodes of the encoding pipeline (thin wrappers over vlm_brain.encoding)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from vlm_brain.cohort.execution import run_tasks
from vlm_brain.cohort.inference import across_subjects
from vlm_brain.cohort.tasks import (
    array_ref,
    is_done,
    load_result,
    make_task,
    results_by_subject,
    run_encoding_task,
    store_result,
)
from vlm_brain.datasets.cache import ArrayCache
from vlm_brain.encoding.ceiling import loso_noise_ceiling, noise_ceiling
from vlm_brain.encoding.layer import encode_layer
from vlm_brain.encoding.scores import SCORE_COLUMNS, network_rows
from vlm_brain.encoding.settings import EncodingSettings
from vlm_brain.results import parse_layer_name

logger = logging.getLogger(__name__)

#: bumped when `encode_layer` changes what it computes, so that stored per-subject results are not reused
ENGINE_VERSION = 3  # 2: reference_r (BN signs against the dominant AN direction and stimulus features); 3: folds, masks, fdr_pi0, raw_p
CLUSTER_DEFAULTS = {"scheduler": "local", "n_workers": None, "retries": 2}
COHORT_DEFAULTS = {"test": "t", "n_perm": 1000}


TARGETS = ("group", "subjects", "both")
MANIFEST_COLUMNS = ["subject", "model", "layer_name", "key", "computed", "worker", "seconds"]


def encoding_target(params: dict[str, Any]) -> str:
    """``encoding.target``: what is modelled (the group mean, each subject, or both)."""
    target = params.get("target", "group")
    if target not in TARGETS:
        raise ValueError(f"encoding.target must be one of {', '.join(TARGETS)}, got {target!r}")
    return target


def _target(fmri_group: dict[str, np.ndarray], params: dict[str, Any]) -> np.ndarray:
    return np.asarray(fmri_group["bold"], dtype=np.float32)


def task_context(settings: EncodingSettings, run_timeline: pd.DataFrame, tr: float,
                 references: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """What a stored layer result depends on besides its two inputs (part of every key)."""
    return {"settings": settings.as_dict(), "runs": run_timeline["run"].to_numpy().tolist(),
            "keep": run_timeline["keep"].to_numpy().tolist(), "tr": tr, "engine": ENGINE_VERSION,
            "references": {name: array_ref(np.ascontiguousarray(v, dtype=np.float64)).fingerprint
                           for name, v in (references or {}).items()}}


def sign_references(stimulus_features: pd.DataFrame | None, run_timeline: pd.DataFrame,
                    params: dict[str, Any]) -> dict[str, np.ndarray]:
    """{feature: (T_full,)} the stimulus features of ``encoding.sign_references``, in timeline order.

    BN signs are read against them (`encode_layer`'s ``references``); an unknown name
    is an error naming the features there are. Without the table (AN features brought
    from elsewhere) there are none, with a warning.
    """
    names = list(params.get("sign_references") or [])
    if not names:
        return {}
    if stimulus_features is None:
        logger.warning("encoding.sign_references names %s but there is no stimulus_features table (run "
                       "feature_extraction to make it): BN signs are read against the dominant AN direction only",
                       ", ".join(names))
        return {}
    unknown = [n for n in names if n not in stimulus_features.columns]
    if unknown:
        features = [c for c in stimulus_features.columns if c not in ("run", "tr")]
        raise ValueError(f"encoding.sign_references: unknown feature(s) {unknown}; stimulus_features has {features}")
    if len(stimulus_features) != len(run_timeline) or not np.array_equal(
            stimulus_features.run.astype(str).to_numpy(), run_timeline.run.astype(str).to_numpy()):
        raise ValueError(f"stimulus_features has {len(stimulus_features)} rows that do not follow the run timeline "
                         f"({len(run_timeline)} TRs); rerun feature_extraction with the same runs")
    return {name: stimulus_features[name].to_numpy(dtype=np.float64) for name in names}


def encode_model_layers(
    name: str, ans: dict[str, np.ndarray], run_timeline: pd.DataFrame, fmri_group: dict[str, np.ndarray],
    params: dict[str, Any], cache: ArrayCache | None = None, stimulus_features: pd.DataFrame | None = None,
) -> dict[str, Callable[[], dict[str, np.ndarray]]]:
    """Per layer of one model, a lazy entry computed by :func:`encode_layer` while saving.

    Entries are computed while the dataset saves them, so memory holds one layer's
    results at a time (a few with ``n_jobs`` > 1 worker processes), whatever the number
    of layers. With a ``cache``, each layer's result is also kept there under a key of
    its inputs' values and the settings the moment it is computed: a run interrupted
    mid-model resumes with the layers it had not finished, and an unchanged layer is
    never computed twice.
    """
    settings = EncodingSettings.from_params(params)
    if encoding_target(params) == "subjects":
        logger.info("%s: group-mean encoding skipped (encoding.target=subjects)", name)
        return {}
    references = sign_references(stimulus_features, run_timeline, params)
    y = _target(fmri_group, params)
    runs = run_timeline["run"].to_numpy()
    keep = run_timeline["keep"].to_numpy()
    layers = sorted(ans)
    if not layers:
        raise ValueError(f"{name}: no AN layers to encode")
    for layer in layers:
        if len(ans[layer]) != len(run_timeline):
            raise ValueError(f"{layer}: {len(ans[layer])} TRs of ANs but the run timeline has {len(run_timeline)}")
    tr = float(params["tr"])
    keys: dict[str, str] = {}
    if cache is not None:
        # the stored float32 file when there is one: its digest is computed once per process, not per model
        stored = fmri_group["bold"]
        bold_ref = array_ref(stored if getattr(stored, "dtype", None) == np.float32 else y)
        context = task_context(settings, run_timeline, tr, references)
        keys = {layer: make_task("group", layer, array_ref(ans[layer]), bold_ref, context).key for layer in layers}
    stored = [layer for layer, key in keys.items() if is_done(cache.root, key)] if cache is not None else []
    logger.info("%s: encoding %d layers (k=%d atoms, lambda=%g, %s null, q=%g) against %d grayordinates x %d TRs;"
                " %d done in earlier runs", name, len(layers), settings.n_atoms, settings.sdl_alpha,
                settings.null_method, settings.q, y.shape[1], y.shape[0], len(stored))

    def kept(layer: str, result: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if cache is None:
            return result
        store_result(cache.root, keys[layer], result, {"subject": "group", "model": name, "layer": layer})
        return load_result(cache.root, keys[layer])  # the same values, memory-mapped (linked, not copied)

    to_compute = [layer for layer in layers if layer not in stored]
    n_jobs = int(params.get("n_jobs", 1))
    if n_jobs == 1 or len(to_compute) <= 1:
        def compute(layer: str, i: int) -> dict[str, np.ndarray]:
            logger.info("encoding %s (%d/%d)", layer, i, len(to_compute))
            return kept(layer, encode_layer(np.asarray(ans[layer]), y, runs, keep, tr, settings, references))

        computed = {layer: (lambda layer=layer, i=i: compute(layer, i)) for i, layer in enumerate(to_compute, start=1)}
    else:
        computed = _parallel_entries(name, to_compute, ans, y, runs, keep, tr, settings, references, n_jobs, kept)
    return {layer: computed[layer] if layer in computed else (lambda layer=layer: load_result(cache.root, keys[layer]))
            for layer in layers}


def _encode_named(layer: str, *args, **kwargs) -> tuple[str, dict[str, np.ndarray]]:
    import numba

    numba.set_num_threads(1)  # one compiled-kernel thread per worker process, as joblib does for BLAS
    return layer, encode_layer(*args, **kwargs)


def _parallel_entries(name, layers, ans, y, runs, keep, tr, settings, references, n_jobs, kept):
    """Lazy entries backed by `n_jobs` worker processes (joblib), results in layer order.

    Workers get one BLAS thread each and the fMRI as a shared memory map; the entries
    are read in order while saving, so at most the results not yet saved (a few layers)
    are held in memory. Each result is passed to ``kept`` as soon as it arrives.
    """
    from joblib import Parallel, delayed

    logger.info("%s: %d layers in %d parallel processes", name, len(layers), n_jobs)
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered", max_nbytes="1M")(
        delayed(_encode_named)(layer, np.asarray(ans[layer]), y, runs, keep, tr, settings, references)
        for layer in layers
    )
    done: dict[str, dict[str, np.ndarray]] = {}

    def get(layer: str, i: int) -> dict[str, np.ndarray]:
        while layer not in done:
            finished, result = next(results)
            done[finished] = kept(finished, result)
            logger.info("encoded %s", finished)
        logger.info("saving %s (%d/%d)", layer, i, len(layers))
        return done.pop(layer)

    return {layer: (lambda layer=layer, i=i: get(layer, i)) for i, layer in enumerate(layers, start=1)}


def make_encoder(name: str) -> Callable[..., dict]:
    """A node function ``encode_{name}`` bound to one model name."""

    def encoder(ans, run_timeline, fmri_group, params, cache, stimulus_features):
        return encode_model_layers(name, ans, run_timeline, fmri_group, params, cache, stimulus_features)

    encoder.__name__ = encoder.__qualname__ = f"encode_{name}"
    encoder.__doc__ = f"Encoding results of every layer of {name} (see encode_model_layers)."
    return encoder


def encode_subjects(run_timeline: pd.DataFrame, fmri_clean: dict[str, dict[str, np.ndarray]], params: dict[str, Any],
                    cache: ArrayCache, stimulus_features: pd.DataFrame | None,
                    *ans_by_model: dict[str, np.ndarray]) -> pd.DataFrame:
    """Every (subject, layer) encoded on its own, on Dask; the manifest of where each result is.

    Tasks pass the subject's cleaned BOLD and the layer's ANs by file, so a worker
    memory-maps one subject at a time. Each result is written to ``cache`` under a key
    of its inputs and settings as soon as its task ends; tasks whose result is already
    there are not run again (an interrupted run resumes). ``encoding.cluster`` says
    where tasks run (`vlm_brain.cohort.execution.run_tasks`).

    Returns one row per task: subject, model, layer_name, key (in ``cache``), computed
    (False: found from an earlier run), worker and seconds. Empty for ``target: group``.
    """
    if encoding_target(params) == "group":
        return pd.DataFrame(columns=MANIFEST_COLUMNS)
    settings = EncodingSettings.from_params(params)
    runs, keep, tr = run_timeline["run"].to_numpy(), run_timeline["keep"].to_numpy(), float(params["tr"])
    references = sign_references(stimulus_features, run_timeline, params)
    context = task_context(settings, run_timeline, tr, references)
    layer_refs = {}
    for ans in ans_by_model:
        for layer in sorted(ans):
            if len(ans[layer]) != len(run_timeline):
                raise ValueError(f"{layer}: {len(ans[layer])} TRs of ANs but the run timeline has {len(run_timeline)}")
            layer_refs[layer] = array_ref(ans[layer])  # hashed once, shared by the subjects
    tasks = []
    for subject in sorted(fmri_clean):
        bold = fmri_clean[subject]["bold"]
        if len(bold) != int(keep.sum()):
            raise ValueError(f"fmri_clean[{subject!r}]: {len(bold)} TRs but the run timeline keeps {int(keep.sum())}; "
                             "rerun fmri_preprocessing with the same runs")
        bold_ref = array_ref(bold)  # hashed once per subject
        for layer, ans_ref in layer_refs.items():
            tasks.append(make_task(subject, layer, ans_ref, bold_ref, context))
    missing = [task for task in tasks if not is_done(cache.root, task.key)]
    cluster = {**CLUSTER_DEFAULTS, **(params.get("cluster") or {})}
    logger.info("per-subject encoding: %d subjects x %d layers = %d tasks; %d done in earlier runs, %d to compute "
                "(scheduler: %s)", len(fmri_clean), len(tasks) // max(len(fmri_clean), 1), len(tasks),
                len(tasks) - len(missing), len(missing), cluster["scheduler"])
    work = partial(run_encoding_task, runs=runs, keep=keep, tr=tr, settings=settings, cache_root=str(cache.root),
                   references=references)
    reports = run_tasks(work, missing, scheduler=str(cluster["scheduler"]), n_workers=cluster["n_workers"],
                        retries=int(cluster["retries"]), describe=lambda task: task.name, desc="subject x layer")
    done = {report.key: report for report in reports}
    rows = [{"subject": task.subject, "model": parse_layer_name(task.layer).model, "layer_name": task.layer, "key": task.key,
             "computed": task.key in done, "worker": done[task.key].worker if task.key in done else "",
             "seconds": done[task.key].seconds if task.key in done else np.nan} for task in tasks]
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def infer_across_subjects(manifest: pd.DataFrame, cache: ArrayCache, params: dict[str, Any]) -> dict[str, dict]:
    """Per layer, the cohort maps of `vlm_brain.cohort.inference.across_subjects` (empty without subjects)."""
    by_subject = results_by_subject(manifest, cache.root)
    if not by_subject:
        return {}
    cohort = {**COHORT_DEFAULTS, **(params.get("cohort") or {})}
    subjects = sorted(by_subject)
    if len(subjects) < 2:
        raise ValueError(f"inference across subjects needs >= 2 subjects, got {len(subjects)} ({subjects[0]})")
    out = {}
    for layer in sorted(by_subject[subjects[0]]):
        r = np.stack([np.asarray(by_subject[s][layer]["r"]) for s in subjects])
        bn = np.stack([np.asarray(by_subject[s][layer]["bn"]) for s in subjects])
        out[layer] = across_subjects(r, bn, q=float(params["q"]), test=cohort["test"], n_perm=int(cohort["n_perm"]),
                                     seed=int(params["seed"]), fdr=str(params.get("fdr", "adaptive")))
        logger.info("%s across %d subjects: %d cohort BNs (%s test, %s FDR q=%g); BN in >= half the subjects: %d",
                    layer, len(subjects), int(out[layer]["bn"].sum()), cohort["test"], params.get("fdr", "adaptive"),
                    float(params["q"]),
                    int((out[layer]["frac_subjects_bn"] >= 0.5).sum()))
    return out


CEILING_METHODS = ("auto", "repeat", "loso")


def compute_noise_ceiling(fmri_group: dict[str, np.ndarray], fmri_clean: dict[str, dict[str, np.ndarray]],
                          params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per-grayordinate ceiling on the r of the group-mean model (``encoding.noise_ceiling``).

    ``repeat``: from the repeated clip (split-half, Spearman-Brown); ``loso``: across
    subjects, leave-one-subject-out (`ceiling.loso_noise_ceiling`), for data without a
    repeated clip; ``auto`` (default): the repeat when the clip is in >= 2 runs, else
    leave-one-subject-out with >= 2 subjects, else none (NaN).
    """
    method = params.get("noise_ceiling", "auto")
    if method not in CEILING_METHODS:
        raise ValueError(f"encoding.noise_ceiling must be one of {', '.join(CEILING_METHODS)}, got {method!r}")
    repeat = np.asarray(fmri_group["repeat"])
    has_repeat = repeat.shape[0] >= 2 and repeat.shape[1] >= 3
    if method == "repeat" or (method == "auto" and has_repeat):
        return {"ceiling": _ceiling(repeat, "group")}
    subjects = sorted(fmri_clean)
    if len(subjects) < 2:
        logger.warning("noise ceiling: no repeated clip and %d subject(s); leave-one-subject-out needs >= 2, "
                       "ceiling set to NaN", len(subjects))
        return {"ceiling": np.full(np.asarray(fmri_group["bold"]).shape[1], np.nan, dtype=np.float32)}
    ceiling = loso_noise_ceiling(np.stack([np.asarray(fmri_clean[s]["bold"], dtype=np.float32) for s in subjects]))
    logger.info("noise ceiling (group, leave-one-subject-out over %d subjects): median %.3f over %d targets",
                len(subjects), float(np.nanmedian(ceiling)), len(ceiling))
    return {"ceiling": np.asarray(ceiling, dtype=np.float32)}


def _ceiling(repeat: np.ndarray, who: str) -> np.ndarray:
    repeat = np.asarray(repeat, dtype=np.float32)
    if repeat.shape[0] < 2 or repeat.shape[1] < 3:
        logger.warning("noise ceiling (%s): the repeated clip is missing or too short (%s); ceiling set to NaN",
                       who, repeat.shape)
        return np.full(repeat.shape[-1], np.nan, dtype=np.float32)
    if repeat.shape[0] % 2:
        logger.warning("noise ceiling (%s): %d repeats; split-half uses the first %d", who, repeat.shape[0],
                       repeat.shape[0] - 1)
        repeat = repeat[: repeat.shape[0] - 1]
    ceiling = noise_ceiling(repeat)
    logger.info("noise ceiling (%s): median %.3f over %d grayordinates (%d repeats of %d TRs)", who,
                float(np.median(ceiling)), len(ceiling), repeat.shape[0], repeat.shape[1])
    return ceiling


def score_networks(labels: pd.DataFrame, ceiling: dict[str, np.ndarray], manifest: pd.DataFrame, cache: ArrayCache,
                   fmri_clean: dict[str, dict[str, np.ndarray]], *encodings: dict) -> pd.DataFrame:
    """Per (subject, model, stream, layer, atlas, network): the tidy table of the study.

    ``subject`` is "group" for the group-mean encodings and the subject id for the
    per-subject ones (listed in ``manifest``, each against its own noise ceiling).
    Columns otherwise as `network_rows`.
    """
    tables = [network_rows(labels, np.asarray(ceiling["ceiling"]), encoding, "group") for encoding in encodings]
    for subject, layers in results_by_subject(manifest, cache.root).items():
        own = _ceiling(fmri_clean[subject]["repeat"], subject)
        tables.append(network_rows(labels, own, layers, subject))
    tables = [t for t in tables if len(t)]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=SCORE_COLUMNS)
    logger.info("network scores: %d rows (%d layers, %d subjects + %s)", len(table),
                table.layer_name.nunique() if len(table) else 0, table[table.subject != "group"].subject.nunique()
                if len(table) else 0, "group" if (table.subject == "group").any() else "no group")
    return table
