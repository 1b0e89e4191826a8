"""Architecture: image- vs text-stream BN maps, modality specificity, VLM vs unimodal baselines."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np

from vlm_brain.analyses.overlap import dice

logger = logging.getLogger(__name__)


def modality_specificity(r_image: np.ndarray, r_text: np.ndarray) -> np.ndarray:
    """Per grayordinate (r_image - r_text) / (|r_image| + |r_text|), in [-1, 1].

    +1: only the image stream predicts it; -1: only the text stream; 0: both equally.
    Negative r counts as no prediction (clipped to 0); NaN where both are <= 0.
    """
    a = np.clip(np.asarray(r_image, dtype=np.float64), 0, None)
    b = np.clip(np.asarray(r_text, dtype=np.float64), 0, None)
    total = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (a - b) / total, np.nan)


def stream_overlap(bn_image: np.ndarray, bn_text: np.ndarray, r_image: np.ndarray,
                   r_text: np.ndarray) -> dict[str, float]:
    """Overlap of two streams' BN maps at one layer.

    Returns dice; n_image, n_text, n_both (BN counts); specificity (mean |modality
    specificity index| over the union of BNs: 1 = every BN belongs to one stream only,
    0 = both streams predict every BN equally).
    """
    bn_image, bn_text = np.asarray(bn_image, bool), np.asarray(bn_text, bool)
    union = bn_image | bn_text
    msi = modality_specificity(r_image, r_text)[union]
    msi = msi[np.isfinite(msi)]
    return {"dice": dice(bn_image, bn_text), "n_image": int(bn_image.sum()), "n_text": int(bn_text.sum()),
            "n_both": int((bn_image & bn_text).sum()),
            "specificity": float(np.mean(np.abs(msi))) if len(msi) else float("nan")}


def baseline_networks(wanted: Sequence[str], present: Iterable[str], atlas: str) -> list[str]:
    """The networks of ``wanted`` (``analyses.architecture.baseline_networks``) that ``atlas`` has.

    Networks the atlas lacks are left out with a warning; none at all is a ValueError
    that lists the atlas's networks.
    """
    have = sorted(set(map(str, present)))
    kept = [n for n in wanted if n in have]
    missing = [n for n in wanted if n not in have]
    if not kept:
        raise ValueError(f"analyses.architecture.baseline_networks = {list(wanted)}: none is a network of atlas "
                         f"{atlas!r}, which has: {', '.join(have) or 'none'}")
    if missing:
        logger.warning("architecture: baseline networks %s are not in atlas %r; compared in %s only",
                       ", ".join(missing), atlas, ", ".join(kept))
    return kept
