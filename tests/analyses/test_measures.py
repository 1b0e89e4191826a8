"""The analysis measures on small hand-built inputs with known answers."""

import numpy as np
import pandas as pd
import pytest

from vlm_brain.analyses.architecture import modality_specificity, stream_overlap
from vlm_brain.analyses.overlap import dice, pairwise_dice
from vlm_brain.analyses.polarity import bn_polarity, loading_signs, mirrored_profiles, polarity_by_network
from vlm_brain.analyses.redundancy import (an_support, layer_redundancy, multi_atom_fraction,
                                           normalized_auc)
from vlm_brain.analyses.stats import bootstrap_mean_ci, correlation_test, paired_difference


def test_dice_of_two_maps_with_known_overlap():
    a = np.array([1, 1, 1, 0, 0], bool)
    b = np.array([0, 1, 1, 1, 0], bool)
    assert dice(a, b) == pytest.approx(2 * 2 / (3 + 3))
    assert dice(a, a) == 1.0 and dice(a, ~a) == 0.0
    assert np.isnan(dice(np.zeros(4, bool), np.zeros(4, bool)))
    with pytest.raises(ValueError, match="shape"):
        dice(a, b[:4])


def test_pairwise_dice_matches_dice():
    rng = np.random.default_rng(0)
    maps = rng.random((5, 200)) < 0.3
    maps[4] = False
    matrix = pairwise_dice(maps)
    for i in range(4):
        for j in range(4):
            assert matrix[i, j] == pytest.approx(dice(maps[i], maps[j]))
    assert np.isnan(matrix[4, 4]) and matrix[4, 0] == 0.0
    np.testing.assert_allclose(np.diag(matrix)[:4], 1.0)


def test_multi_atom_fraction_and_support():
    # atoms x grayordinates: g0 by atoms 0 and 1, g1 by atom 0 only, g2 by none, g3 by all
    maps = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1]], bool)
    bn = np.array([1, 1, 1, 1], bool)
    assert multi_atom_fraction(maps, bn) == pytest.approx(2 / 3)
    assert multi_atom_fraction(maps, np.array([0, 1, 0, 0], bool)) == 0.0
    loadings = np.array([[1.0, 0, 2, 0], [0, 0, -1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(an_support(loadings), [2, 1, 0])
    stats = layer_redundancy(bn, maps[:2] & True, np.zeros_like(maps[:2]), loadings[:2])
    assert stats["n_bn"] == 4 and stats["n_atoms_with_bn"] == 2
    assert stats["atom_dice_mean"] == pytest.approx(2 * 2 / (3 + 2))
    assert stats["an_multi_atom_fraction"] == pytest.approx(1 / 2)  # AN 2 loads on both atoms, AN 0 on one
    assert stats["loading_dice_mean"] == pytest.approx(2 * 1 / (2 + 1))


def test_normalized_auc_reference_curves():
    f = [0.0, 0.25, 0.5, 0.75, 1.0]
    assert normalized_auc(f, [0.4] * 5) == pytest.approx(1.0)
    assert normalized_auc(f, [0.4 * (1 - x) for x in f]) == pytest.approx(0.5)
    assert normalized_auc(f[::-1], [0.4 * (1 - x) for x in f][::-1]) == pytest.approx(0.5)  # order-free
    assert np.isnan(normalized_auc(f, [0.0] * 5))


def test_mirrored_profiles_give_minus_one_and_parallel_plus_one():
    layers = np.arange(6)
    table = pd.DataFrame({"stream": ["a"] * 6 + ["b"] * 6, "layer": np.r_[layers, layers],
                          "n_pos": np.r_[layers, layers] * 10,
                          "n_neg": np.r_[50 - layers * 10, layers * 3 + 1]})
    out = mirrored_profiles(table, ["stream"]).set_index("stream")
    assert out.loc["a", "r"] == pytest.approx(-1.0) and out.loc["b", "r"] == pytest.approx(1.0)
    assert out.loc["a", "n"] == 6


def test_bn_polarity_uses_the_strongest_significant_atom():
    atom_t = np.array([[5.0, -2.0, 9.0, 1.0], [-7.0, 3.0, 1.0, -4.0]])
    pos = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], bool)   # atom 0 at g0, atom 1 at g1 (t=9 not significant)
    neg = np.array([[0, 0, 0, 0], [1, 0, 0, 1]], bool)
    bn = np.array([1, 1, 1, 0], bool)
    sign, strength = bn_polarity(bn, atom_t, pos, neg)
    np.testing.assert_array_equal(sign, [-1, 1, 0, 0])  # g3 has a significant atom but is no BN
    np.testing.assert_allclose(strength, [7.0, 3.0, 0.0, 0.0])
    counts = polarity_by_network(sign, strength, pd.Series(["A", "A", "B", "B"])).set_index("network")
    assert counts.loc["A", "n_pos"] == 1 and counts.loc["A", "n_neg"] == 1 and counts.loc["B", "n_pos"] == 0
    assert counts.loc["A", "t_neg_sum"] == 7.0 and counts.loc["A", "n_grayordinates"] == 2


def test_loading_signs():
    loadings = np.array([[1.0, -1, 0], [2, 3, 0], [0, 0, 0]])
    out = loading_signs(loadings)
    assert out["frac_positive"] == pytest.approx(3 / 4)
    assert out["frac_bipolar_atoms"] == pytest.approx(1 / 2)


def test_modality_specificity_index():
    msi = modality_specificity(np.array([0.5, 0.3, 0.2, -0.1, 0.0]), np.array([0.0, 0.3, -0.2, -0.3, 0.4]))
    np.testing.assert_allclose(msi[:3], [1.0, 0.0, 1.0])
    assert np.isnan(msi[3]) and msi[4] == -1.0
    image = np.array([1, 1, 0, 0], bool)
    out = stream_overlap(image, np.array([0, 1, 1, 0], bool), np.array([0.5, 0.4, 0.0, 0]),
                         np.array([0.0, 0.4, 0.3, 0]))
    assert out["dice"] == pytest.approx(0.5) and out["n_both"] == 1
    assert out["specificity"] == pytest.approx(2 / 3)


def test_paired_difference_and_bootstrap():
    rng = np.random.default_rng(1)
    b = rng.normal(0.2, 0.1, 500)
    out = paired_difference(b + 0.05 + rng.normal(0, 0.01, 500), b)
    assert out["ci_low"] < 0.05 < out["ci_high"] and out["ci_high"] - out["ci_low"] < 0.01
    assert out["p"] < 1e-10 and out["n"] == 500
    null = paired_difference(b + rng.normal(0, 0.01, 500), b)
    assert null["ci_low"] < 0 < null["ci_high"]
    # coverage: the 95% interval of a normal mean contains the truth in most of 40 repeats
    hits = sum(lo <= 1.0 <= hi for lo, hi in (bootstrap_mean_ci(rng.normal(1.0, 1.0, 50), 500, seed=s)
                                              for s in range(40)))
    assert hits >= 34
    assert np.isnan(bootstrap_mean_ci([1.0])[0])


def test_correlation_test_edge_cases():
    assert correlation_test([1, 2, 3, 4], [2, 4, 6, 8])["r"] == pytest.approx(1.0)
    assert np.isnan(correlation_test([1, 1, 1], [1, 2, 3])["r"])
    assert correlation_test([1, 2, np.nan, 4, 5], [1, 2, 3, 4, 6])["n"] == 4


def test_difference_of_means_of_independent_samples():
    from vlm_brain.analyses.stats import difference_of_means

    rng = np.random.default_rng(2)
    out = difference_of_means(rng.normal(0.8, 0.05, 12), rng.normal(0.5, 0.05, 6), n_boot=500)
    assert out["ci_low"] < out["diff"] < out["ci_high"] and 0.25 < out["diff"] < 0.35
    assert out["ci_low"] > 0.2 and out["p"] < 0.01 and out["n"] == [12, 6]
    assert np.isnan(difference_of_means([1.0], [1.0, 2.0])["diff"])
