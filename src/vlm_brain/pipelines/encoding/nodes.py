"""Nodes of the encoding pipeline (thin wrappers over vlm_brain.encoding)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from vlm_brain.encoding.ceiling import noise_ceiling, normalized_r
from vlm_brain.encoding.layer import encode_layer, layer_polarity

logger = logging.getLogger(__name__)

ATLASES = ("ca_network", "yeo7")


def _target(fmri_group: dict[str, np.ndarray], params: dict[str, Any]) -> np.ndarray:
    if params.get("target", "group") != "group":
        raise ValueError(f"encoding.target: only 'group' (the mean over subjects) is supported, got {params['target']!r}")
    return np.asarray(fmri_group["bold"], dtype=np.float32)


def encode_model_layers(
    name: str, ans: dict[str, np.ndarray], run_timeline: pd.DataFrame, fmri_group: dict[str, np.ndarray],
    params: dict[str, Any],
) -> dict[str, Callable[[], dict[str, np.ndarray]]]:
    """Per layer of one model, a lazy entry computed by :func:`encode_layer` while saving.

    Entries are computed while the dataset saves them, so memory holds one layer's
    results at a time (a few with ``n_jobs`` > 1 worker processes), whatever the number
    of layers.
    """
    y = _target(fmri_group, params)
    runs = run_timeline["run"].to_numpy()
    keep = run_timeline["keep"].to_numpy()
    sdl = params["sdl"]
    layers = sorted(ans)
    if not layers:
        raise ValueError(f"{name}: no AN layers to encode")
    for layer in layers:
        if len(ans[layer]) != len(run_timeline):
            raise ValueError(f"{layer}: {len(ans[layer])} TRs of ANs but the run timeline has {len(run_timeline)}")
    logger.info("%s: encoding %d layers (k=%d atoms, lambda=%g, %s null, q=%g) against %d grayordinates x %d TRs",
                name, len(layers), sdl["n_atoms"], sdl["alpha"], params.get("null_method", "refit"), params["q"],
                y.shape[1], y.shape[0])

    settings = dict(
        n_atoms=int(sdl["n_atoms"]), sdl_alpha=float(sdl["alpha"]), sdl_max_iter=int(sdl["max_iter"]),
        alphas=np.asarray(params["alphas"], dtype=float), q=float(params["q"]), max_lag=int(params.get("max_lag", 20)),
        seed=int(params["seed"]), backend=params["backend"], target_batch_size=int(params["target_batch_size"]),
        raw_model=bool(params.get("raw_an_model", False)),
        null_method=params.get("null_method", "refit"), n_refit=int(params.get("n_refit", 100)),
        refit_targets=int(params.get("refit_targets", 250)),
    )
    tr = float(params["tr"])
    n_jobs = int(params.get("n_jobs", 1))
    if n_jobs == 1:
        def one(layer: str, i: int) -> dict[str, np.ndarray]:
            logger.info("encoding %s (%d/%d)", layer, i, len(layers))
            return encode_layer(np.asarray(ans[layer]), y, runs, keep, tr, **settings)

        return {layer: (lambda layer=layer, i=i: one(layer, i)) for i, layer in enumerate(layers, start=1)}
    return _parallel_entries(name, layers, ans, y, runs, keep, tr, settings, n_jobs)


def _encode_named(layer: str, *args, **kwargs) -> tuple[str, dict[str, np.ndarray]]:
    import numba

    numba.set_num_threads(1)  # one compiled-kernel thread per worker process, as joblib does for BLAS
    return layer, encode_layer(*args, **kwargs)


def _parallel_entries(name, layers, ans, y, runs, keep, tr, settings, n_jobs):
    """Lazy entries backed by `n_jobs` worker processes (joblib), results in layer order.

    Workers get one BLAS thread each and the fMRI as a shared memory map; the entries
    are read in order while saving, so at most the results not yet saved (a few layers)
    are held in memory.
    """
    from joblib import Parallel, delayed

    logger.info("%s: %d layers in %d parallel processes", name, len(layers), n_jobs)
    results = Parallel(n_jobs=n_jobs, return_as="generator", max_nbytes="1M")(
        delayed(_encode_named)(layer, np.asarray(ans[layer]), y, runs, keep, tr, **settings) for layer in layers
    )
    done: dict[str, dict[str, np.ndarray]] = {}

    def get(layer: str, i: int) -> dict[str, np.ndarray]:
        while layer not in done:
            finished, result = next(results)
            done[finished] = result
        logger.info("encoded %s (%d/%d)", layer, i, len(layers))
        return done.pop(layer)

    return {layer: (lambda layer=layer, i=i: get(layer, i)) for i, layer in enumerate(layers, start=1)}


def make_encoder(name: str) -> Callable[..., dict]:
    """A node function ``encode_{name}`` bound to one model name."""

    def encoder(ans, run_timeline, fmri_group, params):
        return encode_model_layers(name, ans, run_timeline, fmri_group, params)

    encoder.__name__ = encoder.__qualname__ = f"encode_{name}"
    encoder.__doc__ = f"Encoding results of every layer of {name} (see encode_model_layers)."
    return encoder


def compute_noise_ceiling(fmri_group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-grayordinate ceiling on r from the repeated clip (split-half, Spearman-Brown)."""
    repeat = np.asarray(fmri_group["repeat"], dtype=np.float32)
    if repeat.shape[0] < 2 or repeat.shape[1] < 3:
        logger.warning("noise ceiling: the repeated clip is missing or too short (%s); ceiling set to NaN", repeat.shape)
        return {"ceiling": np.full(repeat.shape[-1], np.nan, dtype=np.float32)}
    if repeat.shape[0] % 2:
        logger.warning("noise ceiling: %d repeats; split-half uses the first %d", repeat.shape[0], repeat.shape[0] - 1)
        repeat = repeat[: repeat.shape[0] - 1]
    ceiling = noise_ceiling(repeat)
    logger.info("noise ceiling: median %.3f over %d grayordinates (%d repeats of %d TRs)",
                float(np.median(ceiling)), len(ceiling), repeat.shape[0], repeat.shape[1])
    return {"ceiling": ceiling}


def _layer_index(layer_name: str) -> tuple[str, str, int]:
    model, stream, layer = layer_name.split(".")
    return model, stream, int(layer.lstrip("L"))


def score_networks(labels: pd.DataFrame, ceiling: dict[str, np.ndarray], *encodings: dict) -> pd.DataFrame:
    """Per (model, stream, layer, atlas, network): the tidy table of the study.

    Columns: model, stream, layer, layer_name, atlas, network, n_grayordinates, r_mean,
    r_median, r_norm_mean (r / ceiling, grayordinates with a ceiling >= 0.1), frac_bn,
    n_bn_pos, n_bn_neg (BNs whose strongest significant atom is positive / negative),
    ceiling_mean.
    """
    ceil = np.asarray(ceiling["ceiling"])
    rows = []
    for encoding in encodings:
        for layer_name, res in encoding.items():
            model, stream, layer = _layer_index(layer_name)
            r, bn = np.asarray(res["r"]), np.asarray(res["bn"], dtype=bool)
            if len(r) != len(labels):
                raise ValueError(f"{layer_name}: {len(r)} grayordinates but {len(labels)} labels")
            sign = layer_polarity(bn, np.asarray(res["atom_t"]), np.asarray(res["atom_pos"], bool),
                                  np.asarray(res["atom_neg"], bool))
            r_norm = normalized_r(r, ceil)
            for atlas in ATLASES:
                for network, index in labels.groupby(atlas).indices.items():
                    if network == "none":
                        continue
                    norm = r_norm[index]
                    rows.append({
                        "model": model, "stream": stream, "layer": layer, "layer_name": layer_name,
                        "atlas": atlas, "network": network, "n_grayordinates": len(index),
                        "r_mean": float(r[index].mean()), "r_median": float(np.median(r[index])),
                        "r_norm_mean": float(np.nanmean(norm)) if np.isfinite(norm).any() else np.nan,
                        "frac_bn": float(bn[index].mean()), "n_bn_pos": int((sign[index] > 0).sum()),
                        "n_bn_neg": int((sign[index] < 0).sum()), "ceiling_mean": float(np.nanmean(ceil[index])),
                    })
    table = pd.DataFrame(rows)
    logger.info("network scores: %d rows (%d layers)", len(table), table.layer_name.nunique() if len(table) else 0)
    return table
