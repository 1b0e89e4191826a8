"""Nodes of the feature_extraction pipeline."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from vlm_brain.datasets.fmri import RunFileIndex
from vlm_brain.models.extract import extract_images, extract_texts
from vlm_brain.models.registry import build_adapter
from vlm_brain.stimuli.text import check_caption_coverage, read_captions, text_per_tr
from vlm_brain.stimuli.video import frame_times, iter_frames

logger = logging.getLogger(__name__)


def build_stimulus_table(
    run_timeline: pd.DataFrame, captions: RunFileIndex, clip_table: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """Per (run, TR): the text shown (caption covering the TR midpoint) and whether any.

    Returns:
        ``run, tr, time, text, has_text``, rows in ``run_timeline`` order.
    """
    tr = float(params["tr"])
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


def extract_model_ans(
    name: str, videos: RunFileIndex, stimulus: pd.DataFrame, spec: dict[str, Any], params: dict[str, Any]
) -> dict[str, np.ndarray]:
    """AN time series of every stream and layer of one model.

    Returns:
        {layer name: (n_TRs, n_ANs) float32} with rows in stimulus-table order (all TRs
        of all runs); text-stream rows without text are zeros.
    """
    adapter = build_adapter(name, spec, params.get("device", "auto"), params.get("precision", "fp32"))
    streams = spec.get("streams") or list(adapter.streams)
    tr, per_tr = float(params["tr"]), int(params.get("frames_per_tr", 1))
    runs = list(params["runs"])
    out: dict[str, np.ndarray] = {}
    for stream in streams:
        if stream not in adapter.streams:
            raise ValueError(f"feature_extraction.models.{name}: unknown stream {stream!r}; has {list(adapter.streams)}")
        logger.info("%s.%s: %d layers, weights %s, on %d TRs (%s)", name, stream, len(adapter.sites(stream)),
                    adapter.weights, len(stimulus), adapter.device)
        if adapter.streams[stream] == "image":
            paths = [videos.existing(run, "video") for run in runs]
            counts = [int((stimulus.run == run).sum()) for run in runs]
            frames = itertools.chain.from_iterable(
                iter_frames(p, frame_times(n, tr, per_tr).ravel()) for p, n in zip(paths, counts, strict=True)
            )
            ans = extract_images(adapter, stream, frames, sum(counts) * per_tr, per_tr,
                                 int(params["batch_size"]), params["pooling"])
        else:
            ans, _ = extract_texts(adapter, stream, stimulus.text.tolist(),
                                   int(params["text_batch_size"]), params["pooling"])
        out.update(ans)
    return out


def make_extractor(name: str) -> Callable[..., dict[str, np.ndarray]]:
    """A node function ``extract_{name}_ans`` bound to one model name."""

    def extractor(videos: RunFileIndex, stimulus: pd.DataFrame, spec: dict[str, Any], params: dict[str, Any]):
        return extract_model_ans(name, videos, stimulus, spec, params)

    extractor.__name__ = extractor.__qualname__ = f"extract_{name}_ans"
    extractor.__doc__ = f"AN time series of every stream and layer of {name}."
    return extractor
