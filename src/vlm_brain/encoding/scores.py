"""The study's tidy table: per (layer, atlas, network), how well and where a layer predicts BOLD."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlm_brain.encoding.ceiling import normalized_r
from vlm_brain.encoding.layer import layer_polarity
from vlm_brain.fmri.networks import UNLABELLED, atlas_columns, atlas_labels
from vlm_brain.results import parse_layer_name

SCORE_COLUMNS = ["subject", "model", "stream", "layer", "layer_name", "atlas", "network", "n_grayordinates", "r_mean",
                 "r_median", "r_norm_mean", "frac_bn", "n_bn_pos", "n_bn_neg", "ceiling_mean"]


def _network_indices(names: np.ndarray) -> dict[str, np.ndarray]:
    """Positions of each labelled network's targets (`UNLABELLED` left out), networks sorted."""
    return {str(n): np.flatnonzero(names == n) for n in np.unique(names.astype(str)) if n != UNLABELLED}


def network_rows(labels: pd.DataFrame, ceil: np.ndarray, encoding: dict, subject: str) -> pd.DataFrame:
    """Network scores of one encoding (``{layer_name: results}``) of ``subject``, for every
    atlas of ``labels`` (`atlas_columns`; targets labelled `UNLABELLED` are left out).

    Columns: subject, model, stream, layer, layer_name, atlas, network, n_grayordinates,
    r_mean, r_median, r_norm_mean (r / ceiling, grayordinates with a ceiling >= 0.1),
    frac_bn, n_bn_pos, n_bn_neg (BNs whose strongest significant atom is positive /
    negative), ceiling_mean.
    """
    groups = {atlas: _network_indices(atlas_labels(labels, atlas)) for atlas in atlas_columns(labels)}
    rows = []
    for layer_name, res in encoding.items():
        model, stream, layer = parse_layer_name(layer_name)
        r, bn = np.asarray(res["r"]), np.asarray(res["bn"], dtype=bool)
        if len(r) != len(labels):
            raise ValueError(f"{layer_name}: {len(r)} grayordinates but {len(labels)} labels")
        sign = layer_polarity(bn, np.asarray(res["atom_t"]), np.asarray(res["atom_pos"], bool),
                              np.asarray(res["atom_neg"], bool))
        r_norm = normalized_r(r, ceil)
        for atlas, networks in groups.items():
            for network, index in networks.items():
                norm = r_norm[index]
                rows.append({
                    "subject": subject, "model": model, "stream": stream, "layer": layer, "layer_name": layer_name,
                    "atlas": atlas, "network": network, "n_grayordinates": len(index),
                    "r_mean": float(r[index].mean()), "r_median": float(np.median(r[index])),
                    "r_norm_mean": float(np.nanmean(norm)) if np.isfinite(norm).any() else np.nan,
                    "frac_bn": float(bn[index].mean()), "n_bn_pos": int((sign[index] > 0).sum()),
                    "n_bn_neg": int((sign[index] < 0).sum()), "ceiling_mean": float(np.nanmean(ceil[index])),
                })
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
