"""Recovery metrics on hand-made maps."""

import numpy as np
import pytest

from vlm_brain.validation.metrics import (
    condition_metrics,
    observed_fdr,
    sensitivity,
    separation,
    sign_accuracy,
    specificity,
)
from vlm_brain.validation.simulate import PlantedTruth, no_truth

B = lambda s: np.array([c == "1" for c in s])  # noqa: E731


def test_counting_metrics_by_hand():
    bn, planted = B("11100100"), B("11110000")
    assert sensitivity(bn, planted) == 3 / 4
    assert specificity(bn, ~planted) == 3 / 4            # 1 false (index 5) of 4 without signal
    assert observed_fdr(bn, ~planted) == 1 / 4           # 1 false of 4 BNs
    assert observed_fdr(B("0000"), B("1111")) == 0.0     # no BNs: FDR 0 by definition
    assert np.isnan(sensitivity(bn, B("00000000")))
    polarity, sign = np.array([1, -1, 0, 1]), np.array([1, 1, 1, 1])
    assert sign_accuracy(polarity, sign, B("1110")) == 1 / 3   # polarity 0 counts as wrong
    assert np.isnan(sign_accuracy(polarity, sign, B("0000")))


def test_separation_by_hand():
    image_only, text_only = B("1100"), B("0011")
    # image-only: [own only, both]; text-only: [own only, none]
    assert separation(B("1100"), B("0110"), image_only, text_only) == pytest.approx((0.5 + 0.5) / 2)
    assert separation(B("1100"), B("0011"), image_only, text_only) == 1.0
    assert np.isnan(separation(B("1100"), B("0011"), B("0000"), B("0000")))


def test_condition_metrics_by_hand():
    # 8 grayordinates: 0-1 image only, 2-3 shared, 4-5 text only, 6-7 nothing
    image, text = B("11110000"), B("00111100")
    sign = np.array([1, -1, 1, -1, 1, 1, 0, 0], dtype=np.int8)
    truth = PlantedTruth(image, text, sign, np.where(image, 0, -1), np.where(text, 0, -1))
    bn_image, bn_text = B("11100010"), B("00011100")
    pol_image = np.array([1, 1, 1, 0, 0, 0, 1, 0])     # index 1 wrong sign
    pol_text = np.array([0, 0, 0, -1, 1, 1, 0, 0])
    p = np.array([0.001, 0.001, 0.001, 0.5, 0.5, 0.5, 0.01, 0.2])
    m = condition_metrics(bn_image, bn_text, pol_image, pol_text, truth, p, p, q=0.05)
    assert m["sensitivity_image"] == 3 / 4 and m["sensitivity_text"] == 3 / 4 and m["sensitivity"] == 6 / 8
    assert m["fdr_image"] == 1 / 4 and m["fdr_text"] == 0 and m["fdr"] == 1 / 7 and m["n_false"] == 1
    assert m["specificity"] == 3 / 4                      # 1 false of 2 layers x 2 null grayordinates
    assert m["sign_accuracy_image"] == 2 / 3 and m["sign_accuracy_text"] == 1 and m["sign_accuracy"] == 5 / 6
    assert m["dice_image"] == pytest.approx(2 * 3 / 8) and m["dice_text"] == pytest.approx(2 * 3 / 7)
    assert m["overlap_planted"] == pytest.approx(2 * 2 / 8)
    assert m["overlap_recovered"] == pytest.approx(0.0)   # the two BN maps do not intersect
    assert m["overlap_error"] == pytest.approx(-0.5)
    assert m["separation"] == 1.0
    assert m["p_below_q"] == 0.5 and m["p_below_001"] == 0.5  # null p: 0.01 and 0.2, twice
    assert (m["n_planted"], m["n_shared"], m["n_bn"], m["n_true_positive"]) == (6, 2, 7, 6)


def test_metrics_of_a_pure_noise_condition():
    truth = no_truth(5)
    zero = np.zeros(5, int)
    quiet = condition_metrics(B("00000"), B("00000"), zero, zero, truth)
    assert quiet["fdr"] == 0 and quiet["specificity"] == 1 and np.isnan(quiet["sensitivity"])
    loud = condition_metrics(B("01000"), B("00000"), zero, zero, truth)
    assert loud["fdr"] == 1 and loud["specificity"] == 0.9
