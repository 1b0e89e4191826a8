"""Tables and headline numbers of a cohort: group rows, and statistics across subjects."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

#: headline leaves that are a subject's own uncertainty or a setting, not a finding
_NOT_FINDINGS = ("ci_low", "ci_high", "n", "p", "n_boot", "ci", "n_grayordinates", "n_layers", "n_profiles",
                 "predicted_frac_bn", "recovered_frac_bn", "max_fraction", "n_targets", "n_perm", "chance_low",
                 "chance_high", "n_streams_tested", "n_layers_above_chance")


def group_scores(network_scores: pd.DataFrame) -> pd.DataFrame:
    """The rows of the group-mean encodings (all rows of a table without a subject column)."""
    if "subject" not in network_scores:
        return network_scores
    return network_scores[network_scores.subject == "group"].reset_index(drop=True)


def subject_scores(network_scores: pd.DataFrame, subject: str) -> pd.DataFrame:
    """The rows of one subject's encodings, without the subject column (a table of one encoding, like the group's)."""
    return network_scores[network_scores.subject == subject].drop(columns="subject").reset_index(drop=True)


def across_subject_summary(values: Mapping[str, Mapping[str, float]], ci: float = 0.95) -> dict[str, dict]:
    """Each number over subjects: mean, t-distribution CI, one-sample t-test of mean = 0, n.

    Parameters
    ----------
    values : ``{subject: {name: value}}`` (e.g. flattened headline numbers per subject).
        A name missing or non-finite in some subjects is summarised over the others.
    ci : confidence level of the interval.

    Returns
    -------
    ``{name: {"mean", "sd", "ci_low", "ci_high", "t", "p", "n"}}`` over names present in
    >= 2 subjects; p is two-sided, n counts subjects.
    """
    names = sorted({name for per_subject in values.values() for name in per_subject})
    out = {}
    for name in names:
        x = np.array([values[s][name] for s in values if name in values[s]], dtype=float)
        x = x[np.isfinite(x)]
        if len(x) < 2:
            continue
        mean, sd = float(x.mean()), float(x.std(ddof=1))
        half = float(stats.t.ppf(0.5 + ci / 2, len(x) - 1) * sd / np.sqrt(len(x)))
        t = mean / (sd / np.sqrt(len(x))) if sd > 0 else np.nan
        p = float(2 * stats.t.sf(abs(t), len(x) - 1)) if sd > 0 else np.nan
        out[name] = {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half, "t": float(t), "p": p,
                     "n": int(len(x))}
    return out


def finding_numbers(flat: Mapping[str, float]) -> dict[str, float]:
    """The numbers of a flattened headline that are findings (drops CI bounds, n, p and settings)."""
    return {name: value for name, value in flat.items() if name.rsplit("/", 1)[-1] not in _NOT_FINDINGS}
