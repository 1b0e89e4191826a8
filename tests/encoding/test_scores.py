"""network_rows scores every atlas of the labels table, whatever the data's atlases are."""

import numpy as np
import pandas as pd
import pytest

from vlm_brain.encoding.scores import SCORE_COLUMNS, network_rows


def _layer(r: list[float], bn: list[bool]) -> dict[str, np.ndarray]:
    t = np.where(bn, 5.0, 0.0)[None, :]
    return {"r": np.asarray(r), "bn": np.asarray(bn), "atom_t": t, "atom_pos": t > 4, "atom_neg": t < -4}


def test_rows_for_each_atlas_column_of_parcel_labels():
    labels = pd.DataFrame({"grayordinate": np.arange(5), "structure": "parcel",
                           "network": ["Vis", "Vis", "Lang", None, "none"], "roi": [7, 7, 8, 8, 9]})
    layer = _layer([0.4, 0.2, 0.1, 0.0, 0.3], [True, False, False, False, True])
    table = network_rows(labels, np.full(5, 0.5), {"roberta.text.L02": layer}, "group")
    assert list(table.columns) == SCORE_COLUMNS
    assert sorted(set(table.atlas)) == ["network", "roi"]  # bookkeeping columns are not atlases
    by = table.set_index(["atlas", "network"])
    assert sorted(by.loc["network"].index) == ["Lang", "Vis"]  # missing and "none" labels: no row
    assert by.loc[("network", "Vis"), "r_mean"] == pytest.approx(0.3)
    assert by.loc[("roi", "9"), "frac_bn"] == 1.0 and by.loc[("roi", "7"), "n_grayordinates"] == 2  # names as text
    assert table.network.map(type).eq(str).all()
