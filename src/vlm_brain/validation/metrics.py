"""Recovery metrics of a planted truth.

Conventions (per layer L, image or text):

- truth_L: grayordinates driven by layer L's atoms; a BN of L there is a true positive.
- A false discovery is a BN where *nothing* was planted. A BN of the image layer on a
  text-only grayordinate is not counted as false: if the two layers' features are
  correlated, the image layer genuinely predicts it (the hypothesis the encoding test
  rejects, "the prediction is unrelated to the data", is false there). Such cross-layer
  detections are what `separation` and the recovered overlap measure.
- sensitivity = TP / |truth_L|; specificity = 1 - FP / |not driven|;
  observed FDR = FP / BNs (0 when there are no BNs, as in the definition of the FDR).
- Pooled metrics sum the counts of both layers.
"""

from __future__ import annotations

import numpy as np

from vlm_brain.analyses.overlap import dice


def _ratio(num: float, den: float, empty: float = float("nan")) -> float:
    return float(num / den) if den else empty


def sensitivity(bn: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of the planted grayordinates that are BNs (NaN if none planted)."""
    bn, truth = np.asarray(bn, bool), np.asarray(truth, bool)
    return _ratio(np.sum(bn & truth), np.sum(truth))


def specificity(bn: np.ndarray, null: np.ndarray) -> float:
    """Fraction of the grayordinates without signal that are not BNs (NaN if none)."""
    bn, null = np.asarray(bn, bool), np.asarray(null, bool)
    return _ratio(np.sum(~bn & null), np.sum(null))


def observed_fdr(bn: np.ndarray, null: np.ndarray) -> float:
    """False BNs / BNs, false = BN where nothing was planted; 0 when there are no BNs."""
    bn, null = np.asarray(bn, bool), np.asarray(null, bool)
    return _ratio(np.sum(bn & null), np.sum(bn), empty=0.0)


def sign_accuracy(polarity: np.ndarray, planted_sign: np.ndarray, true_positive: np.ndarray) -> float:
    """Fraction of true-positive BNs whose polarity is the planted sign.

    A true positive without a significant atom (polarity 0) counts as wrong. NaN when
    there are no true positives.
    """
    tp = np.asarray(true_positive, bool)
    correct = np.asarray(polarity)[tp] == np.asarray(planted_sign)[tp]
    return _ratio(np.sum(correct), np.sum(tp))


def separation(bn_image: np.ndarray, bn_text: np.ndarray, image_only: np.ndarray,
               text_only: np.ndarray) -> float:
    """Modality separation: mean over the two unimodal planted sets of the fraction
    recovered by their own layer and not by the other (NaN if both sets are empty).

    1 = every image-only grayordinate is an image BN and not a text BN, and vice versa;
    0 = none is recovered, or all are recovered by both layers.
    """
    bn_image, bn_text = np.asarray(bn_image, bool), np.asarray(bn_text, bool)
    parts = []
    for own, other, planted in ((bn_image, bn_text, image_only), (bn_text, bn_image, text_only)):
        planted = np.asarray(planted, bool)
        if planted.any():
            parts.append(np.mean((own & ~other)[planted]))
    return float(np.mean(parts)) if parts else float("nan")


def condition_metrics(
    bn_image: np.ndarray,
    bn_text: np.ndarray,
    polarity_image: np.ndarray,
    polarity_text: np.ndarray,
    truth,
    p_image: np.ndarray | None = None,
    p_text: np.ndarray | None = None,
    q: float = 0.05,
) -> dict[str, float]:
    """All recovery metrics of one simulated condition.

    Parameters
    ----------
    bn_image, bn_text : (G,) BN maps of the image and text layers (``encode_layer``'s bn).
    polarity_image, polarity_text : (G,) `layer_polarity` of each layer.
    truth : `vlm_brain.validation.simulate.PlantedTruth`.
    p_image, p_text : (G,) circular-shift p-values, for the uncorrected false-positive
        rate (``p_below_q`` / ``p_below_001``: fraction of not-driven grayordinates with
        p <= q / p <= 0.01, both layers pooled; ~q / ~0.01 when the null is calibrated).

    Returns
    -------
    dict with pooled ``sensitivity``, ``specificity``, ``fdr``, ``sign_accuracy``,
    ``dice`` (mean over layers of planted vs recovered Dice), ``overlap_planted``,
    ``overlap_recovered`` (Dice of the image vs text BN maps), ``overlap_error``
    (recovered - planted), ``separation``, ``p_below_q``, ``p_below_001``, per-layer
    ``sensitivity_image`` ... ``dice_text``, and counts ``n_planted`` (grayordinates
    driven by anything), ``n_planted_image``, ``n_planted_text``, ``n_shared``,
    ``n_bn`` (BNs of both layers), ``n_bn_image``, ``n_bn_text``, ``n_false``,
    ``n_true_positive``.
    """
    null = ~truth.driven
    layers = {"image": (np.asarray(bn_image, bool), np.asarray(polarity_image), truth.image),
              "text": (np.asarray(bn_text, bool), np.asarray(polarity_text), truth.text)}
    out: dict[str, float] = {}
    tp = fp = n_bn = n_truth = n_correct = 0
    for name, (bn, polarity, planted) in layers.items():
        hits = bn & planted
        out[f"sensitivity_{name}"] = sensitivity(bn, planted)
        out[f"fdr_{name}"] = observed_fdr(bn, null)
        out[f"sign_accuracy_{name}"] = sign_accuracy(polarity, truth.sign, hits)
        out[f"dice_{name}"] = dice(planted, bn) if (planted.any() or bn.any()) else float("nan")
        out[f"n_bn_{name}"] = int(bn.sum())
        out[f"n_planted_{name}"] = int(planted.sum())
        tp += int(hits.sum())
        fp += int((bn & null).sum())
        n_bn += int(bn.sum())
        n_truth += int(planted.sum())
        n_correct += int(np.sum(polarity[hits] == truth.sign[hits]))
    out.update(
        sensitivity=_ratio(tp, n_truth),
        specificity=_ratio(2 * int(null.sum()) - fp, 2 * int(null.sum())),
        fdr=_ratio(fp, n_bn, empty=0.0),
        sign_accuracy=_ratio(n_correct, tp),
        dice=float(np.nanmean([out["dice_image"], out["dice_text"]]))
        if np.isfinite([out["dice_image"], out["dice_text"]]).any() else float("nan"),
        overlap_planted=truth.overlap,
        overlap_recovered=dice(layers["image"][0], layers["text"][0])
        if (layers["image"][0].any() or layers["text"][0].any()) else float("nan"),
        separation=separation(layers["image"][0], layers["text"][0], truth.image_only, truth.text_only),
        n_planted=int(truth.driven.sum()),
        n_shared=int(truth.shared.sum()),
        n_bn=n_bn,
        n_false=fp,
        n_true_positive=tp,
    )
    out["overlap_error"] = out["overlap_recovered"] - out["overlap_planted"]
    if p_image is not None and p_text is not None:
        p_null = np.r_[np.asarray(p_image)[null], np.asarray(p_text)[null]]
        out["p_below_q"] = float(np.mean(p_null <= q)) if p_null.size else float("nan")
        out["p_below_001"] = float(np.mean(p_null <= 0.01)) if p_null.size else float("nan")
    return out
