"""A small non-HCP case: 30 parcels with their own atlas (``network``: 3 networks), two layers per stream."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlm_brain.encoding.scores import network_rows

N = 30
NETWORKS = ("Vis", "Aud", "Lang")  # not Cole-Anticevic names
STATS = {"n_boot": 100, "ci": 0.95, "seed": 0}


def labels() -> pd.DataFrame:
    """The labels table of parcel data: bookkeeping columns, then the data's own atlas ``network``."""
    return pd.DataFrame({"grayordinate": np.arange(N), "hcp_index": -1, "structure": "parcel",
                         "network": np.repeat(NETWORKS, N // len(NETWORKS))})


def in_network(*names: str) -> np.ndarray:
    return np.isin(labels().network.to_numpy(), names)


def layer(bn: np.ndarray, r_bn: float, seed: int, k: int = 2) -> dict[str, np.ndarray]:
    """One layer's results: r_bn at its BNs (small noise elsewhere), BNs driven by atom 0 (+) or 1 (-)."""
    rng = np.random.default_rng(seed)
    bn = np.asarray(bn, bool)
    atom_t = rng.normal(0, 0.5, (k, N))
    atom_t[0, bn] = 5.0
    atom_t[1, bn & (np.arange(N) % 3 == 0)] = -6.0
    return {"r": np.where(bn, r_bn, 0.0) + rng.normal(0, 0.01, N), "bn": bn, "atom_t": atom_t,
            "atom_pos": atom_t > 4, "atom_neg": atom_t < -4, "loadings": np.eye(k, 6)}


def encodings() -> tuple[dict, dict]:
    """(clip, vit): clip.image predicts Vis, clip.text Lang, vit.image Vis a little less."""
    vis, lang = in_network("Vis"), in_network("Lang")
    clip = {"clip.image.L00": layer(vis, 0.3, 0), "clip.image.L01": layer(vis, 0.5, 1),
            "clip.text.L00": layer(lang, 0.2, 2), "clip.text.L01": layer(lang, 0.4, 3)}
    vit = {"vit.image.L00": layer(vis, 0.2, 4), "vit.image.L01": layer(vis, 0.3, 5)}
    return clip, vit


def scores(encoded: tuple[dict, ...], ceiling: np.ndarray) -> pd.DataFrame:
    """network_scores of the group-mean model, as the encoding pipeline writes them."""
    return pd.concat([network_rows(labels(), ceiling, e, "group") for e in encoded], ignore_index=True)


def analyses_params(atlas: str = "network", baseline_networks: list[str] | None = None) -> dict:
    return {
        "atlas": atlas, "stats": STATS, "top_n": 2, "predicted_frac_bn": 0.1, "recovered_frac_bn": 0.1,
        "spatial_null": {"n_perm": 1000, "seed": 0, "q": 0.05},  # 30 parcels: no sphere, hypergeometric
        "polarity": {"reference": "dominant_an", "n_perm": 50, "seed": 0, "q": 0.05},
        "ablation": {"fractions": [0.0, 0.5], "n_repeats": 1, "max_targets": 10, "min_bns": 10**6, "seed": 0},
        "architecture": {"pairs": {"CLIP towers": ["clip.image", "clip.text"]}, "contrast": None,
                         "baseline_networks": baseline_networks or ["Language", "Lang", "Vis"],
                         "baselines": [{"vlm": "clip.image", "baseline": "vit.image"}]},
    }
