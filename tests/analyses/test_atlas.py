"""The analyses on data with their own atlas (non-HCP parcels): the primary atlas is a parameter."""

import logging

import numpy as np
import pytest

from tests.analyses import non_hcp_case as case
from vlm_brain.analyses.architecture import baseline_networks
from vlm_brain.pipelines.analyses import nodes


@pytest.fixture(scope="module")
def encoded():
    return case.encodings()


@pytest.fixture(scope="module")
def scores(encoded):
    return case.scores(encoded, np.full(case.N, 0.5))


def test_network_scores_use_the_atlas_of_the_labels(scores):
    assert set(scores.atlas) == {"network"}
    assert set(scores.network) == set(case.NETWORKS)
    assert scores.n_grayordinates.eq(10).all()


def test_networks_headline_names_the_data_networks(scores, encoded):
    table, headline = nodes.analyse_networks(scores, case.labels(), case.analyses_params(), *encoded)
    assert headline["atlas"] == "network" and set(table.atlas) == {"network"}
    assert "independent placement" in headline["chance_method"]
    top = {stream: [t["network"] for t in tops] for stream, tops in headline["top_networks"].items()}
    assert top["clip.image"][0] == "Vis" and top["clip.text"][0] == "Lang" and top["vit.image"][0] == "Vis"
    assert headline["predicted_networks"] == ["Lang", "Vis"] and headline["unpredicted_networks"] == ["Aud"]


def test_polarity_and_architecture_read_the_primary_atlas(encoded, caplog):
    params = case.analyses_params()
    table, profiles, headline = nodes.analyse_polarity(case.labels(), params, {}, *encoded)
    assert set(table.atlas) == {"network", "all"} and headline["atlas"] == "network"
    assert set(profiles.atlas) == {"network", "all"} and set(profiles.network) == {*case.NETWORKS, "all"}
    with caplog.at_level(logging.WARNING):
        overlap, baselines, arch = nodes.analyse_architecture(case.labels(), params, *encoded)
    assert "Language" in caplog.text  # a baseline network the atlas lacks: skipped with a warning
    assert overlap.dice.eq(0.0).all() and arch["atlas"] == "network"
    assert baselines.network.tolist() == ["Lang", "Vis", "all compared"]
    assert arch["baselines"]["clip.image vs vit.image"]["networks"] == ["Lang", "Vis"]


def test_baseline_networks_none_in_the_atlas_is_an_error():
    with pytest.raises(ValueError, match=r"none is a network of atlas 'network', which has: Aud, Lang, Vis"):
        baseline_networks(["Language", "Default"], case.labels().network, "network")
    assert baseline_networks(["Lang", "Default"], case.labels().network, "network") == ["Lang"]
    params = case.analyses_params(baseline_networks=["Language"])
    with pytest.raises(ValueError, match="baseline_networks"):
        nodes.analyse_architecture(case.labels(), params, *case.encodings())


def test_unknown_primary_atlas_is_an_error_listing_the_columns(scores, encoded):
    params = case.analyses_params(atlas="ca_network")  # the HCP default, on parcel data
    message = r"atlas 'ca_network' .* the labels table \(columns: grayordinate, hcp_index, structure, network\)"
    with pytest.raises(ValueError, match=message):
        nodes.analyse_networks(scores, case.labels(), params, *encoded)
    with pytest.raises(ValueError, match="its atlases: network"):
        nodes.analyse_polarity(case.labels(), params, {}, *encoded)
    with pytest.raises(ValueError, match="its atlases: network"):
        nodes.analyse_architecture(case.labels(), params, *encoded)
    with pytest.raises(ValueError, match="not an atlas of network_scores"):
        nodes.compare_with_ground_truth(case.labels().assign(driven=True), scores, params, *encoded)
