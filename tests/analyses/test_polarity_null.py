"""The polarity finding against random atom orientations: planted layer trends found, none invented."""

import numpy as np
import pandas as pd
import pytest

from vlm_brain.analyses.polarity import bn_polarity, polarity_null_test, signs_by_driver
from vlm_brain.pipelines.analyses import nodes

N_LAYERS, N_ATOMS, PER_ATOM = 12, 24, 25
G = N_ATOMS * PER_ATOM + 50  # 50 grayordinates are never BNs
STATS = {"n_boot": 100, "ci": 0.95, "seed": 0}
PARAMS = {"stats": STATS, "polarity": {"reference": "dominant_an", "n_perm": 1000, "seed": 0, "q": 0.05}}
LABELS = pd.DataFrame({"ca_network": np.where(np.arange(G) < G // 2, "Visual1", "Language"),
                       "yeo7": np.where(np.arange(G) < G // 2, "Visual", "Default")})


def planted_layer(positive_share: float, rng: np.random.Generator, mixed: bool) -> dict:
    """A layer whose atom a drives grayordinates a*PER_ATOM..: every driven one is a BN (constant total).

    mixed: each atom drives positive and negative BNs in the proportion `positive_share`;
    otherwise each atom is positive (probability `positive_share`) or negative as a whole.
    """
    atom_t = np.zeros((N_ATOMS, G))
    for a in range(N_ATOMS):
        cols = slice(a * PER_ATOM, (a + 1) * PER_ATOM)
        if mixed:
            signs = np.where(rng.permutation(PER_ATOM) < round(positive_share * PER_ATOM), 1.0, -1.0)
        else:
            signs = np.full(PER_ATOM, 1.0 if rng.random() < positive_share else -1.0)
        atom_t[a, cols] = 6.0 * signs
    pos, neg = atom_t > 0, atom_t < 0
    return {"bn": pos.any(axis=0) | neg.any(axis=0), "r": np.full(G, 0.3), "atom_t": atom_t, "atom_pos": pos,
            "atom_neg": neg, "loadings": np.eye(N_ATOMS, 8)}


def stream(shares, seed: int, mixed: bool, name: str = "clip.image") -> dict:
    rng = np.random.default_rng(seed)
    return {f"{name}.L{i:02d}": planted_layer(share, rng, mixed) for i, share in enumerate(shares)}


def test_signs_by_driver_counts_each_atoms_bns():
    atom_t = np.array([[5.0, -6.0, 1.0, 0.0], [-7.0, 3.0, 4.0, 0.0]])
    pos, neg = atom_t > 2, atom_t < -2
    sign, _ = bn_polarity(np.array([1, 1, 1, 0], bool), atom_t, pos, neg)
    n_pos, n_neg = signs_by_driver(sign, atom_t, pos, neg)
    # g0: atom 1 (|-7|) negative; g1: atom 0 (|-6|) negative; g2: atom 1 positive; g3 no BN
    np.testing.assert_array_equal(n_pos, [0, 1])
    np.testing.assert_array_equal(n_neg, [1, 1])


def test_no_layer_dependence_is_not_significant_and_the_count_correlation_is_chance():
    """Constant total, orientations drawn independently of depth: count r is -1 by construction, like its null."""
    rejections = 0
    for seed in range(20):
        encoding = stream([0.5] * N_LAYERS, seed, mixed=False)
        _, _, headline = nodes.analyse_polarity(LABELS, PARAMS, {}, encoding)
        rejections += headline["layer_trend"]["clip.image"]["significant"]
        count = headline["count_correlation"]["clip.image"]
        assert count["observed"] == pytest.approx(-1.0) and count["chance"] == pytest.approx(-1.0)
        assert count["p"] > 0.5
        assert headline["all_bns"]["clip.image"]["r"] == pytest.approx(-1.0)  # what the naive test reported
    assert rejections <= 3  # 5% expected of 20; a calibrated test rarely exceeds 3


def test_mirrored_layer_trend_is_significant():
    shares = np.linspace(0.1, 0.9, N_LAYERS)
    _, _, headline = nodes.analyse_polarity(LABELS, PARAMS, {}, stream(shares, 0, mixed=True))
    trend = headline["layer_trend"]["clip.image"]
    assert trend["observed"] > 0.99 and trend["p"] < 0.01 and trend["significant"]
    assert abs(trend["chance"]) < 0.1 and trend["chance_high"] < 0.9 and trend["n"] == N_LAYERS
    assert headline["n_streams_layer_dependent"] == 1 and headline["n_streams_tested"] == 1


def test_a_trend_carried_by_whole_atoms_is_within_chance_when_few_atoms_drive_it():
    """Signs that only follow atom orientations (1 atom per layer) cannot be told from a convention."""
    one_atom = {name: {**res, "atom_t": res["atom_t"][:1], "atom_pos": res["atom_pos"][:1],
                       "atom_neg": res["atom_neg"][:1], "bn": res["atom_pos"][0] | res["atom_neg"][0]}
                for name, res in stream(np.linspace(0.1, 0.9, N_LAYERS), 1, mixed=False).items()}
    _, _, headline = nodes.analyse_polarity(LABELS, PARAMS, {}, one_atom)
    trend = headline["layer_trend"]["clip.image"]
    assert trend["chance_high"] > 0.4  # a single flip per layer swings the share from 0 to 1
    assert not trend["significant"] or trend["p"] > 0.01


def test_polarity_null_test_statistics_by_hand():
    # two layers only: nothing to correlate
    counts = [(np.array([3, 0]), np.array([0, 2])), (np.array([1, 1]), np.array([1, 0]))]
    out = polarity_null_test([0, 1], counts, n_perm=50)
    assert np.isnan(out["trend"]["observed"]) and np.isnan(out["trend"]["p"]) and out["trend"]["n"] == 2
    # a layer without any signed BN is left out of n
    counts = [(np.array([4]), np.array([0])), (np.array([2]), np.array([2])), (np.array([0]), np.array([4])),
              (np.array([0]), np.array([0]))]
    out = polarity_null_test([0, 1, 2, 3], counts, n_perm=200, seed=3)
    assert out["trend"]["n"] == 3
    assert out["trend"]["observed"] == pytest.approx(-1.0)  # shares 1, 0.5, 0 over layers 0, 1, 2
    assert out["trend"]["n_perm"] <= 200
    # one atom per layer: every draw is a +-1 trend or a flat share; |observed| = 1 is reached often
    assert 0.1 < out["trend"]["p"] <= 1.0


def reference_layer(positive_share: float, n_bn: int = 400) -> dict:
    """A layer with signs read against a reference: n_bn BNs, the first share of them positive."""
    bn = np.zeros(G, bool)
    bn[:n_bn] = True
    r = np.where(np.arange(G) < round(positive_share * n_bn), 0.5, -0.5)
    return {"bn": bn, "r": np.full(G, 0.3), "reference_r": np.vstack([r, -r]).astype(np.float32),
            "atom_t": np.zeros((2, G)), "atom_pos": np.zeros((2, G), bool), "atom_neg": np.zeros((2, G), bool),
            "loadings": np.eye(2, 8)}


def test_reference_signs_a_flat_share_is_no_finding_and_a_mirrored_one_is():
    rng = np.random.default_rng(0)
    rejections = 0
    for _ in range(20):  # same positive share at every layer, up to binomial noise
        shares = np.clip(0.7 + 0.03 * rng.standard_normal(N_LAYERS), 0, 1)
        encoding = {f"vit.image.L{i:02d}": reference_layer(s) for i, s in enumerate(shares)}
        _, _, headline = nodes.analyse_polarity(LABELS, PARAMS, {}, encoding)
        rejections += headline["layer_trend"]["vit.image"]["significant"]
    assert rejections <= 3
    encoding = {f"vit.image.L{i:02d}": reference_layer(s) for i, s in enumerate(np.linspace(0.1, 0.9, N_LAYERS))}
    table, _, headline = nodes.analyse_polarity(LABELS, PARAMS, {}, encoding)
    trend = headline["layer_trend"]["vit.image"]
    assert trend["observed"] > 0.99 and trend["p"] < 0.01 and trend["significant"]
    assert headline["reference"] == "dominant_an"
    # the second row is another reference: the opposite signs, the opposite trend
    other = {"stats": STATS, "polarity": {**PARAMS["polarity"], "reference": "luminance"}}
    _, _, flipped = nodes.analyse_polarity(LABELS, other, {"sign_references": ["luminance"]}, encoding)
    assert flipped["layer_trend"]["vit.image"]["observed"] < -0.99
    totals = table[table.network == "all"].sort_values("layer")
    assert (totals.n_pos + totals.n_neg == 400).all()


def test_unknown_reference_is_named():
    encoding = {"vit.image.L00": reference_layer(0.5)}
    with pytest.raises(ValueError, match="luminance.*sign_references"):
        nodes.analyse_polarity(LABELS, {**PARAMS, "polarity": {**PARAMS["polarity"], "reference": "luminance"}},
                               {"sign_references": []}, encoding)
