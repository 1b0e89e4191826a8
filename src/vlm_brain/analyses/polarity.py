"""Polarity: positively vs negatively responding BNs across layers, and AN loading signs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from collections.abc import Mapping, Sequence

from vlm_brain.analyses.stats import correlation_test
from vlm_brain.encoding.layer import layer_polarity, response_polarity

#: the reference every layer has (row 0 of ``reference_r``): its dominant AN direction
DOMINANT_AN = "dominant_an"


def bn_polarity(bn: np.ndarray, atom_t: np.ndarray, atom_pos: np.ndarray,
                atom_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sign and strength of each BN from its strongest significant atom.

    Returns
    -------
    sign : (G,) int8, +1 / -1 for BNs with a significant atom, 0 otherwise.
    strength : (G,) float, |t| of that atom (0 where sign is 0).

    SDL atoms have no intrinsic sign; ``fit_sparse_dictionary`` orients each atom so
    that its loadings sum to >= 0, so a positive BN rises with the ANs that make up its
    atom.
    """
    sign = layer_polarity(np.asarray(bn, dtype=bool), np.asarray(atom_t), np.asarray(atom_pos, bool),
                          np.asarray(atom_neg, bool))
    significant = np.asarray(atom_pos, bool) | np.asarray(atom_neg, bool)
    strongest = np.where(significant, np.abs(np.asarray(atom_t, dtype=np.float64)), 0.0).max(axis=0)
    strength = np.where(sign != 0, strongest, 0.0)
    return sign, strength


def reference_row(reference: str, sign_references: Sequence[str]) -> int:
    """Row of ``reference_r`` (`encode_layer`) holding the BN signs against ``reference``.

    Row 0 is the layer's dominant AN direction; then the stimulus features of
    ``encoding.sign_references`` in order. An unknown name is an error that lists them.
    """
    names = [DOMINANT_AN, *sign_references]
    if reference not in names:
        raise ValueError(f"analyses.polarity.reference = {reference!r}: not among the references the layers were "
                         f"encoded with ({', '.join(names)}; see encoding.sign_references)")
    return names.index(reference)


def layer_signs(result: Mapping[str, np.ndarray], row: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """BN signs of one encoded layer, their strength, and how they flip together under a change of convention.

    With ``reference_r`` (every layer `encode_layer` encodes): the sign of each BN's
    fitted response relative to reference ``row`` (`reference_row`), strength |r|; one
    convention for the whole layer (the reference's orientation), so the counts come
    as one group. Without it (results made by hand): the strongest significant atom's
    sign (`bn_polarity`), strength |t|, one group per atom (each atom's orientation is
    a convention).

    Returns
    -------
    sign (G,) int8; strength (G,); groups: (n_pos, n_neg) arrays of `polarity_null_test`.
    """
    if "reference_r" in result:
        r = np.asarray(result["reference_r"])[row]
        sign = response_polarity(result["bn"], r)
        strength = np.where(sign != 0, np.abs(r), 0.0)
        return sign, strength, (np.array([int((sign > 0).sum())]), np.array([int((sign < 0).sum())]))
    sign, strength = bn_polarity(result["bn"], result["atom_t"], result["atom_pos"], result["atom_neg"])
    return sign, strength, signs_by_driver(sign, result["atom_t"], result["atom_pos"], result["atom_neg"])


def polarity_by_network(sign: np.ndarray, strength: np.ndarray, labels: pd.Series) -> pd.DataFrame:
    """Per network of `labels` (G,): n_pos, n_neg, t_pos_sum, t_neg_sum (summed |t|), n_grayordinates."""
    frame = pd.DataFrame({"network": np.asarray(labels), "pos": sign > 0, "neg": sign < 0,
                          "t_pos": np.where(sign > 0, strength, 0.0), "t_neg": np.where(sign < 0, strength, 0.0)})
    out = frame.groupby("network", sort=True).agg(
        n_grayordinates=("pos", "size"), n_pos=("pos", "sum"), n_neg=("neg", "sum"),
        t_pos_sum=("t_pos", "sum"), t_neg_sum=("t_neg", "sum")).reset_index()
    return out.astype({"n_pos": int, "n_neg": int})


def mirrored_profiles(table: pd.DataFrame, by: list[str], value_pos: str = "n_pos",
                      value_neg: str = "n_neg") -> pd.DataFrame:
    """Across-layer Pearson r of positive vs negative profiles, per group of `by`.

    `table` has one row per (group, layer). Mirrored trends (one rises where the other
    falls) give r < 0. Columns: *by, r, p, n (layers).
    """
    rows = []
    for key, group in table.sort_values("layer").groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), **correlation_test(group[value_pos], group[value_neg])})
    return pd.DataFrame(rows, columns=[*by, "r", "p", "n"])


def loading_signs(loadings: np.ndarray) -> dict[str, float]:
    """Sign structure of a layer's AN loadings (k, N).

    Returns frac_positive (of non-zero loadings) and frac_bipolar_atoms (atoms with both
    positive and negative loadings, among atoms with any).
    """
    a = np.asarray(loadings)
    nonzero = a[a != 0]
    used = (a != 0).any(axis=1)
    bipolar = (a > 0).any(axis=1) & (a < 0).any(axis=1)
    return {"frac_positive": float(np.mean(nonzero > 0)) if len(nonzero) else float("nan"),
            "frac_bipolar_atoms": float(bipolar[used].mean()) if used.any() else float("nan")}


# --------------------------------------------------------------------------- null of the polarity finding
def signs_by_driver(sign: np.ndarray, atom_t: np.ndarray, atom_pos: np.ndarray,
                    atom_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per atom, the positive and negative BNs it drives (it is their strongest significant atom).

    Parameters
    ----------
    sign : (G,) BN signs of `bn_polarity` (+1, -1, 0).
    atom_t, atom_pos, atom_neg : (k, G) the layer's atom maps.

    Returns
    -------
    n_pos, n_neg : (k,) int counts; they sum to the layer's signed BNs. An atom's
    orientation is a convention: flipping it swaps its two counts and nothing else.
    """
    significant = np.asarray(atom_pos, bool) | np.asarray(atom_neg, bool)
    driver = np.argmax(np.where(significant, np.abs(np.asarray(atom_t, dtype=np.float64)), -np.inf), axis=0)
    k = significant.shape[0]
    sign = np.asarray(sign)
    return (np.bincount(driver[sign > 0], minlength=k), np.bincount(driver[sign < 0], minlength=k))


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row of y (P, L) with x (L,) or with the rows of x (P, L).

    A constant row has no association: r = 0 (not NaN), so a flat profile counts as
    "no trend" in the observed statistic and in the null alike.
    """
    x = np.broadcast_to(x, y.shape)
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    denom = np.sqrt((xc**2).sum(axis=-1) * (yc**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 1e-12, (xc * yc).sum(axis=-1) / np.where(denom > 1e-12, denom, 1.0), 0.0)


def polarity_null_test(layers: list[int], driver_counts: list[tuple[np.ndarray, np.ndarray]], n_perm: int = 1000,
                       seed: int = 0) -> dict[str, dict[str, float]]:
    """Polarity statistics of one stream against random atom orientations.

    Every sign group of every layer (an atom, or the layer's reference: `layer_signs`)
    is flipped with probability 1/2, independently: each layer keeps its BN total and
    which BNs share a convention; only the sign convention is redrawn. Two statistics, across the stream's layers:

    * ``trend``: Pearson r of each layer's positive share n_pos / (n_pos + n_neg) with
      the layer index, the layer-dependent polarity the study asks about; it does not
      follow from the per-layer total. Two-sided p.
    * ``count_r``: Pearson r of the positive and negative counts (the "mirrored
      profiles"). With a near constant total it is close to -1 whatever the data; the
      null shows how close. One-sided p (more negative than chance).

    Parameters
    ----------
    layers : (L,) layer indices.
    driver_counts : per layer, the (n_pos, n_neg) counts of its sign groups (`layer_signs`).

    Returns
    -------
    {"trend": ..., "count_r": ...}, each with observed, chance (null mean), chance_low
    and chance_high (the null's 2.5 and 97.5 percentiles), p, n (layers with a signed
    BN) and n_perm. Observed is NaN (p NaN) with fewer than 3 such layers.
    """
    rng = np.random.default_rng(seed)
    used = [i for i, (pos, neg) in enumerate(driver_counts) if pos.sum() + neg.sum() > 0]
    depth = np.asarray(layers, dtype=np.float64)[used]
    observed_pos = np.array([driver_counts[i][0].sum() for i in used], dtype=np.float64)
    total = np.array([driver_counts[i][0].sum() + driver_counts[i][1].sum() for i in used], dtype=np.float64)
    null_pos = np.empty((n_perm, len(used)))
    for column, i in enumerate(used):
        pos, neg = (np.asarray(c, dtype=np.float64) for c in driver_counts[i])
        flip = rng.random((n_perm, len(pos))) < 0.5
        null_pos[:, column] = np.where(flip, neg, pos).sum(axis=1)
    out = {}
    for name, observed, null, sided in (
        ("trend", _pearson_rows(depth, (observed_pos / total)[None])[0] if len(used) >= 3 else np.nan,
         _pearson_rows(depth, null_pos / total), "two"),
        ("count_r", _pearson_rows(observed_pos, (total - observed_pos)[None])[0] if len(used) >= 3 else np.nan,
         _pearson_rows(null_pos, total - null_pos), "less"),
    ):
        finite = null[np.isfinite(null)]
        if not np.isfinite(observed) or finite.size == 0:
            p = float("nan")
        elif sided == "two":
            p = (1 + np.sum(np.abs(finite) >= abs(observed) - 1e-12)) / (1 + finite.size)
        else:
            p = (1 + np.sum(finite <= observed + 1e-12)) / (1 + finite.size)
        low, high = np.percentile(finite, [2.5, 97.5]) if finite.size else (np.nan, np.nan)
        out[name] = {"observed": float(observed), "chance": float(finite.mean()) if finite.size else float("nan"),
                     "chance_low": float(low), "chance_high": float(high), "p": float(p), "n": len(used),
                     "n_perm": int(finite.size)}
    return out
