"""The analyses and reporting nodes (no Kedro) on parcel data with their own atlas: no cortical maps, said why."""

import html
import logging

import numpy as np
import pandas as pd
import pytest

from tests.analyses import non_hcp_case as case
from vlm_brain import reporting as rp
from vlm_brain.pipelines.analyses import nodes as analyses
from vlm_brain.pipelines.reporting import nodes as reporting

REPORTING = {"title": "parcels", "data_root": "data/01_raw/parcels", "atlas": "network",
             "surface_streams": ["clip.image", "clip.text"], "surface": {"percentile": 99, "borders": True},
             "surface_viewer_dir": "surface_viewers"}
ENCODING = {"q": 0.05}
QUALITY = pd.DataFrame({"subject": ["p1"], "status": ["used"], "reason": [""], "n_runs": [2], "n_kept_trs": [20],
                        "n_grayordinates": [case.N], "n_constant": [0], "n_repeat_trs": [6], "n_dropped_trs": [0]})


@pytest.fixture(scope="module")
def run():
    """Every analyses and reporting node on the 30-parcel case; their outputs by name."""
    encoded = case.encodings()
    labels, params, ceiling = case.labels(), case.analyses_params(), np.full(case.N, 0.5)
    out = {"encodings": encoded, "network_scores": case.scores(encoded, ceiling)}
    out["network_findings"], networks = analyses.analyse_networks(out["network_scores"], labels, params, *encoded)
    out["redundancy_layers"], out["atom_dice"], redundancy = analyses.analyse_redundancy(params, *encoded)
    timeline = pd.DataFrame({"run": np.repeat(["r1", "r2"], 10), "keep": True})
    out["ablation"], ablation = analyses.ablate_layers(
        timeline, {"bold": np.zeros((20, case.N), np.float32)}, params, {"tr": 1.0}, {}, {}, *encoded)
    out["polarity_layers"], out["polarity_profiles"], polarity = analyses.analyse_polarity(labels, params, {}, *encoded)
    out["overlap"], out["baselines"], architecture = analyses.analyse_architecture(labels, params, *encoded)
    out["recovery"], truth = analyses.compare_with_ground_truth(None, out["network_scores"], params, *encoded)
    quality = QUALITY
    out["findings"] = reporting.collect_findings(
        networks, redundancy, ablation, polarity, architecture, truth, None, None, quality, REPORTING,
        {"enabled": False}, {"runs": {"r1": 10, "r2": 10}, "tr": 1.0, "models": {}}, ENCODING)
    out["figures"], out["captions"] = reporting.make_figures(
        out["network_scores"], out["atom_dice"], out["ablation"], out["polarity_layers"], out["overlap"],
        out["baselines"], {}, {"ceiling": ceiling}, REPORTING, ENCODING, params, *encoded)
    out["viewers"] = reporting.make_surface_viewers(REPORTING, ENCODING, *encoded)
    pngs = {name: rp.figure_to_png(figure) for name, figure in out["figures"].items()}
    out["html"] = reporting.render_report(
        out["findings"], out["network_findings"], out["redundancy_layers"], out["polarity_profiles"],
        out["overlap"], out["baselines"], out["recovery"], pngs, out["captions"], None, quality,
        out["network_scores"], out["viewers"], REPORTING)
    return out


def test_network_rows_and_headlines_use_the_data_atlas(run):
    assert set(run["network_scores"].atlas) == {"network"}
    top = run["network_findings"][run["network_findings"]["rank"] <= 3]
    assert set(top.atlas) == {"network"} and set(top.network) == set(case.NETWORKS)
    assert run["findings"]["networks"]["atlas"] == "network"
    assert run["findings"]["networks"]["top_networks"]["clip.text"][0]["network"] == "Lang"


def test_figures_without_cortical_maps_and_a_note_why(run):
    assert not any(name.startswith("surface_") for name in run["figures"])
    assert {"network_r_heatmaps.png", "network_bn_heatmaps.png", "architecture_baselines.png"} <= set(run["figures"])
    assert run["viewers"] == {}
    note = run["captions"][reporting.SURFACE_NOTE]
    assert "30 targets" in note and "not HCP grayordinates" in note
    assert "networks of atlas 'network'" in run["captions"]["network_r_heatmaps.png"]
    assert "Lang, Vis" in run["captions"]["architecture_baselines.png"]


def test_report_names_the_data_networks_and_says_why_no_surface(run):
    page = run["html"]
    assert "Cortical surface maps and interactive viewers are not drawn: the data have 30 targets" in page
    assert html.escape("Top three networks of atlas 'network' per stream") in page
    assert "surface_r.png" not in page and "surface_viewers/" not in page
    assert "of 3 " + html.escape("networks of atlas 'network'") in page  # the summary counts the data's networks
    assert "independent placement" in page and "rotated on the sphere" not in page
    for network in case.NETWORKS:
        assert f"<td>{network}</td>" in page


def test_no_missing_figure_warning_for_the_skipped_maps(run, caplog):
    with caplog.at_level(logging.WARNING):
        reporting.render_report(
            run["findings"], run["network_findings"], run["redundancy_layers"], run["polarity_profiles"],
            run["overlap"], run["baselines"], run["recovery"], {}, run["captions"], None,
            QUALITY, run["network_scores"], {}, REPORTING)
    assert "surface_" not in caplog.text


def test_unknown_report_atlas_is_an_error(run):
    params = {**REPORTING, "atlas": "ca_network"}
    with pytest.raises(ValueError, match=r"atlas 'ca_network' .* not an atlas of network_scores; its atlases: network"):
        reporting.make_figures(run["network_scores"], {}, pd.DataFrame(), run["polarity_layers"], pd.DataFrame(),
                               pd.DataFrame(), {}, {}, params, ENCODING, case.analyses_params(), *run["encodings"])
    with pytest.raises(ValueError, match="not an atlas of network_findings"):
        reporting._networks_section(run["findings"], run["network_findings"], atlas="ca_network")
