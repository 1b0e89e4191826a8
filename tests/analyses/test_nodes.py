"""The analyses nodes on constructed encoding results with known answers."""

import numpy as np
import pandas as pd
import pytest

from vlm_brain.pipelines.analyses import nodes

G = 40
LABELS = pd.DataFrame({"ca_network": ["Visual1"] * 10 + ["Language"] * 10 + ["Posterior-Multimodal"] * 10
                       + ["Somatomotor"] * 10,
                       "yeo7": ["Visual"] * 10 + ["Default"] * 30})
STATS = {"n_boot": 200, "ci": 0.95, "seed": 0}
NULL = {"n_perm": 0, "seed": 0, "q": 0.05}  # G = 40: no sphere, independent placement


def layer(bn, r=None, pos=None, neg=None, k=2, loadings=None):
    bn = np.asarray(bn, bool)
    pos = np.zeros((k, G), bool) if pos is None else pos
    neg = np.zeros((k, G), bool) if neg is None else neg
    t = np.where(pos, 5.0, 0.0) + np.where(neg, -5.0, 0.0)
    return {"bn": bn, "r": np.where(bn, 0.5, 0.0) if r is None else r, "atom_t": t, "atom_pos": pos,
            "atom_neg": neg, "loadings": np.eye(k, 6) if loadings is None else loadings}


def mask(*networks):
    return LABELS.ca_network.isin(networks).to_numpy()


def test_architecture_overlap_clip_disjoint_meter_identical():
    visual, language = mask("Visual1"), mask("Language")
    shared = mask("Visual1", "Language")
    clip = {f"clip.image.L0{i}": layer(visual) for i in range(3)} | {f"clip.text.L0{i}": layer(language) for i in range(3)}
    meter = ({f"meter.fusion_image_cross.L0{i}": layer(shared) for i in range(3)}
             | {f"meter.fusion_text_cross.L0{i}": layer(shared) for i in range(3)})
    params = {"stats": STATS, "spatial_null": NULL, "architecture": {
        "pairs": {"CLIP": ["clip.image", "clip.text"], "METER": ["meter.fusion_image_cross", "meter.fusion_text_cross"]},
        "contrast": ["METER", "CLIP"], "baseline_networks": ["Language"], "baselines": []}}
    overlap, baselines, headline = nodes.analyse_architecture(LABELS, params, clip, meter)
    by_pair = overlap.groupby("pair").dice.mean()
    assert by_pair["CLIP"] == 0.0 and by_pair["METER"] == 1.0
    assert overlap[overlap.pair == "CLIP"].specificity.eq(1.0).all()
    assert overlap[overlap.pair == "METER"].specificity.eq(0.0).all()
    assert headline["contrast"]["diff"] == pytest.approx(1.0) and headline["contrast"]["n"] == [3, 3]
    assert list(overlap[overlap.pair == "CLIP"].depth) == [0.0, 0.5, 1.0]
    assert baselines.empty


def test_baseline_comparison_paired_difference():
    language = mask("Language")
    r_vlm = np.where(language, 0.4, 0.0) + np.linspace(0, 0.01, G)
    r_base = np.where(language, 0.3, 0.0) + np.linspace(0, 0.01, G)
    clip = {"clip.text.L00": layer(language, r=r_vlm)}
    roberta = {"roberta.text.L00": layer(language, r=r_base), "roberta.text.L01": layer(language, r=r_base - 0.1)}
    params = {"stats": STATS, "spatial_null": NULL, "architecture": {"pairs": {}, "baseline_networks": ["Language"],
                                               "baselines": [{"vlm": "clip.text", "baseline": "roberta.text"}]}}
    _, baselines, headline = nodes.analyse_architecture(LABELS, params, clip, roberta)
    row = baselines[baselines.network == "Language"].iloc[0]
    assert row.mean_diff == pytest.approx(0.1) and row.n == 10 and row.baseline_layer == "roberta.text.L00"
    assert headline["baselines"]["clip.text vs roberta.text"]["mean_diff"] == pytest.approx(0.1)


def test_polarity_mirrored_across_layers():
    """Positive BNs grow with depth while negative BNs shrink: r = -1."""
    encoding = {}
    for i in range(4):
        pos = np.zeros((2, G), bool)
        neg = np.zeros((2, G), bool)
        pos[0, : 5 + 5 * i] = True           # 5, 10, 15, 20 positive BNs
        neg[1, 20 : 20 + 20 - 5 * i] = True  # 20, 15, 10, 5 negative BNs
        encoding[f"clip.image.L0{i}"] = layer(pos[0] | neg[1], pos=pos, neg=neg,
                                              loadings=np.array([[1.0, 1, 0], [0, -1, 2]]))
    table, profiles, headline = nodes.analyse_polarity(
        LABELS, {"stats": STATS, "polarity": {"reference": "dominant_an", "n_perm": 200, "seed": 0, "q": 0.05}}, {},
        encoding)
    assert headline["all_bns"]["clip.image"]["r"] == pytest.approx(-1.0)
    assert headline["all_bns"]["clip.image"]["n"] == 4
    totals = table[table.network == "all"].sort_values("layer")
    assert list(totals.n_pos) == [5, 10, 15, 20] and list(totals.n_neg) == [20, 15, 10, 5]
    assert headline["loading_frac_positive"]["mean"] == pytest.approx(3 / 4)
    assert headline["loading_frac_bipolar_atoms"]["mean"] == pytest.approx(1 / 2)


def test_networks_best_layer_and_interval():
    r0 = np.where(mask("Visual1"), 0.2, 0.0)
    r1 = np.zeros(G)
    r1[:10] = 0.4 + np.linspace(-0.05, 0.05, 10)  # Visual1
    encoding = {"vit.image.L00": layer(mask("Visual1"), r=r0), "vit.image.L01": layer(mask("Visual1"), r=r1)}
    rows = []
    for name, res in encoding.items():
        for atlas in ("ca_network", "yeo7"):
            for network, idx in LABELS.groupby(atlas).indices.items():
                rows.append({"model": "vit", "stream": "image", "layer": int(name[-1]), "layer_name": name,
                             "atlas": atlas, "network": network, "n_grayordinates": len(idx),
                             "r_mean": res["r"][idx].mean(), "frac_bn": res["bn"][idx].mean()})
    params = {"stats": STATS, "spatial_null": NULL, "predicted_frac_bn": 0.1, "top_n": 2}
    table, headline = nodes.analyse_networks(pd.DataFrame(rows), LABELS, params, encoding)
    v1 = table[(table.atlas == "ca_network") & (table.network == "Visual1")].iloc[0]
    assert v1.best_layer == 1 and v1["rank"] == 1 and v1.r_mean == pytest.approx(0.4)
    assert v1.r_ci_low < 0.4 < v1.r_ci_high and v1.r_ci_high - v1.r_ci_low < 0.06
    assert headline["predicted_networks"] == ["Visual1"]
    assert headline["top_networks"]["vit.image"][0]["network"] == "Visual1"


def test_redundancy_multi_atom_bns():
    pos = np.zeros((3, G), bool)
    pos[0, :10] = True
    pos[1, 5:15] = True     # overlaps atom 0 on 5 grayordinates
    encoding = {"clip.image.L00": layer(pos.any(axis=0), pos=pos, k=3)}
    table, matrices, headline = nodes.analyse_redundancy({"stats": STATS}, encoding)
    row = table.iloc[0]
    assert row.multi_atom_fraction == pytest.approx(5 / 15)
    assert matrices["clip.image.L00"][0, 1] == pytest.approx(0.5)
    assert headline["overall"]["multi_atom_fraction"]["n"] == 1


def test_ground_truth_comparison():
    truth = pd.DataFrame({"grayordinate": np.arange(G), "network": LABELS.ca_network,
                          "driven": mask("Visual1", "Language"),
                          "modality": np.where(mask("Visual1"), "visual", np.where(mask("Language"), "text", "none")),
                          "sign": mask("Visual1", "Language").astype(int)})
    found = mask("Visual1")
    encoding = {"clip.image.L00": layer(found)}
    scores = pd.DataFrame([{"model": "clip", "stream": "image", "layer": 0, "layer_name": "clip.image.L00",
                            "atlas": "ca_network", "network": n, "frac_bn": float(found[mask(n)].mean())}
                           for n in ("Visual1", "Language", "Posterior-Multimodal", "Somatomotor")])
    table, headline = nodes.compare_with_ground_truth(truth, scores, {"recovered_frac_bn": 0.1}, encoding)
    assert headline["missed"] == ["Language"] and headline["false_networks"] == []
    assert headline["networks_agree"] == 3 and headline["n_networks"] == 4
    rates = headline["grayordinates"]["clip.image"]
    assert rates["sensitivity"] == 0.5 and rates["specificity"] == 1.0 and rates["fdr"] == 0.0
    assert nodes.compare_with_ground_truth(None, scores, {"recovered_frac_bn": 0.1}, encoding)[1] == {"available": False}
