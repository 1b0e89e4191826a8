"""Chance levels of the redundancy measures: hand cases and random placements."""

import numpy as np
import pytest

from vlm_brain.analyses.overlap import pairwise_dice
from vlm_brain.analyses.redundancy import (
    layer_redundancy,
    mean_offdiagonal,
    multi_atom_chance,
    multi_atom_fraction,
    pairwise_dice_chance,
)


def test_multi_atom_chance_by_hand():
    maps = np.array([[1, 1, 0, 0], [0, 1, 1, 0]], bool)  # each atom covers half of the 4 BNs
    # P(>= 1) = 1 - 0.25, P(= 1) = 2 * 0.5 * 0.5: chance = 0.25 / 0.75
    assert multi_atom_chance(maps, np.ones(4, bool)) == pytest.approx(1 / 3)
    assert np.isnan(multi_atom_chance(np.zeros((2, 4), bool), np.ones(4, bool)))
    # one atom only: a second driver cannot occur
    assert multi_atom_chance(maps[:1], np.ones(4, bool)) == 0.0


def test_chance_levels_match_independently_placed_maps():
    rng = np.random.default_rng(0)
    n_bn, sizes = 2_000, [900, 400, 150, 1200, 60]
    bn = np.ones(n_bn, bool)
    observed_multi, observed_dice = [], []
    for _ in range(200):
        maps = np.zeros((len(sizes), n_bn), bool)
        for j, m in enumerate(sizes):
            maps[j, rng.choice(n_bn, m, replace=False)] = True
        observed_multi.append(multi_atom_fraction(maps, bn))
        observed_dice.append(mean_offdiagonal(pairwise_dice(maps)))
    assert np.mean(observed_multi) == pytest.approx(multi_atom_chance(maps, bn), abs=0.005)
    assert np.mean(observed_dice) == pytest.approx(mean_offdiagonal(pairwise_dice_chance(maps)), abs=0.005)


def test_single_drivers_fall_below_chance_and_shared_drivers_above():
    n = 600
    bn = np.ones(n, bool)
    disjoint = np.zeros((3, n), bool)
    for j in range(3):
        disjoint[j, j * 200:(j + 1) * 200] = True  # every BN has exactly one driver
    shared = np.zeros((3, n), bool)
    shared[:, :200] = True  # the same 200 BNs driven by all three atoms
    single = layer_redundancy(bn, disjoint, np.zeros_like(disjoint), np.eye(3, 5))
    assert single["multi_atom_fraction"] == 0.0 and single["multi_atom_chance"] > 0.3
    assert single["atom_dice_mean"] == 0.0 and single["atom_dice_chance"] == pytest.approx(1 / 3)
    many = layer_redundancy(bn, shared, np.zeros_like(shared), np.eye(3, 5))
    assert many["multi_atom_fraction"] == 1.0 and many["multi_atom_chance"] < 0.7
    assert many["atom_dice_mean"] == 1.0 and many["atom_dice_chance"] == pytest.approx(1 / 3)
