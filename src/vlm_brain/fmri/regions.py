"""Labels of region targets (parcels, ROIs): the target names and the data's own labels table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: the labels-table columns of region targets that are not atlases
REGION_COLUMNS = ("grayordinate", "hcp_index", "structure")


def label_regions(names: list[str], labels: str | Path | None = None) -> pd.DataFrame:
    """One row per target, in data order, in the layout of `networks.label_grayordinates`.

    Columns: ``grayordinate`` (column in the data), ``hcp_index`` (-1: not HCP
    grayordinates), ``structure`` ("region"), ``region`` (the target's own name: an
    atlas with one network per target) and the label columns of ``labels``
    (`timecourses.read_target_labels`; e.g. ``network``), which become atlases too.
    """
    from vlm_brain.fmri.timecourses import read_target_labels  # noqa: PLC0415

    table = pd.DataFrame({"grayordinate": np.arange(len(names)), "hcp_index": -1, "structure": "region",
                          "region": list(names)})
    if labels is None:
        return table
    extra = read_target_labels(labels, names)
    clash = sorted(set(extra.columns) & {*REGION_COLUMNS, "region"} - {"target"})
    if clash:
        raise ValueError(f"{labels}: label column(s) {clash} are reserved; rename them (e.g. roi_{clash[0]})")
    return pd.concat([table, extra.drop(columns="target")], axis=1)
