"""Nodes of the feature_extraction pipeline."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import vlm_brain
from vlm_brain.datasets.cache import ArrayCache, cache_key, file_fingerprint
from vlm_brain.datasets.fmri import RunFileIndex
from vlm_brain.models.extract import extract_images, extract_joint, extract_texts
from vlm_brain.models.registry import build_adapter
from vlm_brain.stimuli.features import FEATURES, caption_features, frame_features
from vlm_brain.stimuli.segments import check_segments, segment_text_per_tr
from vlm_brain.stimuli.text import check_caption_coverage, read_captions, text_per_tr
from vlm_brain.stimuli.video import frame_times, iter_frames

logger = logging.getLogger(__name__)


def build_stimulus_table(
    run_timeline: pd.DataFrame, captions: RunFileIndex, clip_table: pd.DataFrame | None, params: dict[str, Any],
    segments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per (run, TR): the text shown and whether any.

    The text comes from the annotation ``segments`` table when there is one (run, start,
    end, text; `vlm_brain.stimuli.segments`, unit ``feature_extraction.segment_unit``),
    else from each run's caption file (the caption covering the TR midpoint).

    Returns:
        ``run, tr, time, text, has_text``, rows in ``run_timeline`` order.
    """
    tr = float(params["tr"])
    if segments is not None:
        return _segment_stimulus_table(run_timeline, segments, params)
    frames = []
    for run, n_trs in params["runs"].items():
        path = captions.existing(run, "caption file")
        table = read_captions(path)
        clips = clip_table[clip_table["run"].astype(str) == run]
        check_caption_coverage(table, list(zip(clips.onset, clips.offset, strict=True)), n_trs * tr, str(path))
        rows = run_timeline[run_timeline["run"] == run]
        texts = text_per_tr(table, rows["time"].to_numpy())
        frames.append(pd.DataFrame({"run": run, "tr": rows["tr"].to_numpy(), "time": rows["time"].to_numpy(),
                                    "text": texts, "has_text": [bool(t) for t in texts]}))
    table = pd.concat(frames, ignore_index=True)
    logger.info("stimulus: %d TRs, %d with text (%d distinct captions)",
                len(table), int(table.has_text.sum()), table.text[table.has_text].nunique())
    return table


def _segment_stimulus_table(run_timeline: pd.DataFrame, segments: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    tr, runs = float(params["tr"]), {str(k): int(v) for k, v in params["runs"].items()}
    checked = check_segments(segments, "annotation_segments (catalog)", params.get("segment_unit"), None, runs, tr)
    per_tr = segment_text_per_tr(checked, runs, tr)
    table = run_timeline[["run", "tr"]].astype({"run": str}).merge(per_tr, on=["run", "tr"], how="left", validate="1:1")
    table["text"] = table["text"].fillna("")
    table["has_text"] = table["text"].str.len() > 0
    logger.info("stimulus: %d TRs from %d annotation segments, %d with text (%d distinct)", len(table), len(checked),
                int(table.has_text.sum()), table.text[table.has_text].nunique())
    return table[["run", "tr", "time", "text", "has_text"]]


def extract_stimulus_features(videos: RunFileIndex, stimulus: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Low-level features per TR (`vlm_brain.stimuli.features`): frame luminance, contrast and motion, caption words.

    Returns:
        ``run, tr`` and one column per feature, rows in stimulus-table order.
    """
    tr, per_tr = float(params["tr"]), int(params.get("frames_per_tr", 1))
    with_video = videos.root.is_dir()
    if not with_video:
        logger.info("stimulus features: no video folder %s: caption features only (n_words, has_text)", videos.root)
    tables = []
    for run in params["runs"]:
        rows = stimulus[stimulus.run == run]
        parts = [rows[["run", "tr"]].reset_index(drop=True)]
        if with_video:
            path = videos.existing(run, "video")
            parts.append(frame_features(iter_frames(path, frame_times(len(rows), tr, per_tr).ravel()), len(rows),
                                        per_tr))
        parts.append(caption_features(rows.text.tolist()))
        tables.append(pd.concat(parts, axis=1))
    table = pd.concat(tables, ignore_index=True)
    logger.info("stimulus features: %s on %d TRs of %d runs",
                ", ".join(c for c in table.columns if c not in ("run", "tr")), len(table), len(tables))
    return table


def _weights_fingerprint(spec: dict[str, Any]) -> str:
    """Identify the weights: the seed for random ones, the file content for local files."""
    if spec.get("weights", "random") == "random":
        return f"random:{spec.get('seed', 0)}"
    source = spec.get("checkpoint") or spec.get("pretrained") or spec.get("source")
    path = Path(str(source))
    if path.is_file():
        return file_fingerprint(path)
    if path.is_dir():
        return ";".join(f"{p.name}:{file_fingerprint(p)}" for p in sorted(path.iterdir()) if p.is_file())
    return f"hub:{source}"


def extraction_key(name: str, videos: RunFileIndex, stimulus: pd.DataFrame, spec: dict[str, Any],
                   params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Cache key of one model's extraction and the description it hashes.

    It covers the stimuli (video file contents, the per-TR texts), the model spec and
    weights, the parameters that change results (TR, runs, frames per TR, pooling,
    precision) and the project version; not the device or the batch size.
    """
    streams = spec.get("streams")
    image = streams is None or any(s != "text" for s in streams)
    description = {
        "model": name, "spec": dict(spec), "weights": _weights_fingerprint(spec),
        "videos": {run: file_fingerprint(videos.path(run)) if videos.path(run).is_file() else None
                   for run in params["runs"]} if image else None,  # a missing one fails at extraction if needed
        "texts": cache_key({"texts": stimulus[["run", "tr", "text"]].astype(str).values.tolist()}),
        "tr": float(params["tr"]), "runs": dict(params["runs"]), "frames_per_tr": int(params.get("frames_per_tr", 1)),
        "pooling": params["pooling"], "precision": params.get("precision", "fp32"),
        "vlm_brain": vlm_brain.__version__,
    }
    return cache_key(description), description


def extract_model_ans(
    name: str, videos: RunFileIndex, stimulus: pd.DataFrame, spec: dict[str, Any], params: dict[str, Any],
    cache: ArrayCache | None = None,
) -> dict[str, np.ndarray]:
    """AN time series of every stream and layer of one model.

    With a ``cache``, an extraction with unchanged stimuli, model and parameters is
    loaded instead of recomputed (see :func:`extraction_key`).

    Returns:
        {layer name: (n_TRs, n_ANs) float32} with rows in stimulus-table order (all TRs
        of all runs); text-stream rows without text are zeros.
    """
    if spec.get("family") == "wordnet":
        return wordnet_layer(name, spec, params)
    if cache is not None:
        key, description = extraction_key(name, videos, stimulus, spec, params)
        cached = cache.get(key)
        if cached is not None:
            logger.info("%s: unchanged stimuli, weights and parameters; ANs loaded from cache", name)
            return cached
    adapter = build_adapter(name, spec, params.get("device", "auto"), params.get("precision", "fp32"))
    streams = spec.get("streams") or list(adapter.streams)
    unknown = [s for s in streams if s not in adapter.streams]
    if unknown:
        raise ValueError(f"feature_extraction.models.{name}: unknown stream(s) {unknown}; has {list(adapter.streams)}")
    tr, per_tr = float(params["tr"]), int(params.get("frames_per_tr", 1))
    runs = list(params["runs"])
    counts = [int((stimulus.run == run).sum()) for run in runs]

    def movie_frames():
        paths = [videos.existing(run, "video") for run in runs]
        return itertools.chain.from_iterable(
            iter_frames(p, frame_times(n, tr, per_tr).ravel()) for p, n in zip(paths, counts, strict=True)
        )

    out: dict[str, np.ndarray] = {}
    if any(adapter.streams.get(s) == "joint" for s in streams):
        logger.info("%s: %d joint streams, weights %s, on %d TRs (%s)", name,
                    sum(m == "joint" for m in adapter.streams.values()), adapter.weights, len(stimulus), adapter.device)
        joint = extract_joint(adapter, movie_frames(), stimulus.text.tolist(), per_tr,
                              int(params["batch_size"]), params["pooling"])
        out.update({k: v for k, v in joint.items() if k.split(".")[1] in streams})
    for stream in streams:
        if adapter.streams[stream] == "joint":
            continue
        logger.info("%s.%s: %d layers, weights %s, on %d TRs (%s)", name, stream, len(adapter.sites(stream)),
                    adapter.weights, len(stimulus), adapter.device)
        if adapter.streams[stream] == "image":
            ans = extract_images(adapter, stream, movie_frames(), sum(counts) * per_tr, per_tr,
                                 int(params["batch_size"]), params["pooling"])
        else:
            ans, _ = extract_texts(adapter, stream, stimulus.text.tolist(),
                                   int(params["text_batch_size"]), params["pooling"])
        out.update(ans)
    if cache is not None:
        cache.put(key, out, description)
    return out


def wordnet_layer(name: str, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, np.ndarray]:
    """A 'model' whose one layer ``<name>.labels.L00`` is HCP's WordNet labels per TR, read from the HDF5 file.

    ``spec``: ``path`` (the .hdf5), ``features_dataset`` (with ``{run}`` for one dataset
    per run), optional ``names_dataset`` and ``runs_dataset`` (`stimuli.wordnet`).
    """
    from vlm_brain.stimuli.wordnet import wordnet_on_timeline  # noqa: PLC0415

    features = wordnet_on_timeline(spec["path"], {str(k): int(v) for k, v in params["runs"].items()},
                                   spec["features_dataset"], spec.get("names_dataset"), spec.get("runs_dataset"))
    logger.info("%s: %d WordNet categories on %d TRs from %s", name, features.data.shape[1], len(features.data),
                spec["path"])
    return {f"{name}.labels.L00": features.data}


def make_extractor(name: str) -> Callable[..., dict[str, np.ndarray]]:
    """A node function ``extract_{name}_ans`` bound to one model name."""

    def extractor(videos: RunFileIndex, stimulus: pd.DataFrame, spec: dict[str, Any], params: dict[str, Any],
                  cache: ArrayCache):
        return extract_model_ans(name, videos, stimulus, spec, params, cache)

    extractor.__name__ = extractor.__qualname__ = f"extract_{name}_ans"
    extractor.__doc__ = f"AN time series of every stream and layer of {name}."
    return extractor
