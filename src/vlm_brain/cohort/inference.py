"""Inference across subjects: per grayordinate, is r > 0 in the population of subjects?

Each subject's cross-validated r is Fisher-transformed, z = artanh(r), and tested with
subjects as the unit of observation (n = number of subjects):

* a one-sample t-test of mean z > 0 (n - 1 degrees of freedom);
* a sign-flip permutation test of the same hypothesis (symmetric errors, no normality):
  every subject's z is multiplied by a random +-1 and the mean recomputed. For a fixed
  set of |z| the t statistic is an increasing function of the sum, so this is the
  permutation test of t. All 2^n sign patterns are used when there are at most
  ``n_perm`` of them (exact); its p cannot go below 2^-n (1/8 for 3 subjects);
* Benjamini-Hochberg FDR over grayordinates on the chosen test's p: the cohort BNs.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

from vlm_brain.encoding.significance import fdr_adaptive, fdr_bh

#: |r| is clipped below 1 before artanh
_R_MAX = 1.0 - 1e-7


def fisher_z(r: np.ndarray) -> np.ndarray:
    """artanh(r), with |r| clipped just below 1."""
    return np.arctanh(np.clip(np.asarray(r, dtype=np.float64), -_R_MAX, _R_MAX))


def one_sample_t(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """t and one-sided p (mean > 0) of z (S, G) over subjects; t = 0, p = 1 where z does not vary."""
    z = np.asarray(z, dtype=np.float64)
    if z.shape[0] < 2:
        raise ValueError(f"a test across subjects needs >= 2 subjects, got {z.shape[0]}")
    sd = z.std(axis=0, ddof=1)
    ok = sd > 0
    t = np.where(ok, z.mean(axis=0) / np.where(ok, sd, 1.0) * np.sqrt(z.shape[0]), 0.0)
    p = np.where(ok, stats.t.sf(t, z.shape[0] - 1), 1.0)
    return t, p


def sign_flips(n_subjects: int, n_perm: int, seed: int) -> np.ndarray:
    """(P, S) sign patterns, the identity first: all 2^S if 2^S <= n_perm + 1, else n_perm random ones."""
    if n_subjects <= 20 and 2**n_subjects <= n_perm + 1:
        return np.array(list(itertools.product([1.0, -1.0], repeat=n_subjects)))
    rng = np.random.default_rng(seed)
    random = rng.choice([1.0, -1.0], size=(n_perm, n_subjects))
    return np.vstack([np.ones((1, n_subjects)), random])


def sign_flip_p(z: np.ndarray, n_perm: int = 1000, seed: int = 0, chunk: int = 4096) -> np.ndarray:
    """One-sided sign-flip permutation p of mean z > 0, z (S, G); p = #(flipped sum >= observed) / P.

    The identity pattern is one of the P patterns, so p >= 1 / P.
    """
    z = np.asarray(z, dtype=np.float64)
    flips = sign_flips(z.shape[0], n_perm, seed)
    p = np.empty(z.shape[1])
    for start in range(0, z.shape[1], chunk):
        block = z[:, start:start + chunk]
        sums = flips @ block  # (P, chunk); row 0 is the observed sum
        p[start:start + chunk] = np.mean(sums >= sums[0] - 1e-12 * np.abs(sums[0]), axis=0)
    return p


def across_subjects(r: np.ndarray, bn: np.ndarray, q: float = 0.05, test: str = "t", n_perm: int = 1000,
                    seed: int = 0, fdr: str = "bh") -> dict[str, np.ndarray]:
    """Cohort maps of one layer from per-subject r (S, G) and per-subject BN maps (S, G).

    Returns
    -------
    dict with (G,) arrays: ``mean_r`` (tanh of the mean z), ``t``, ``p_t``, ``p_sign_flip``,
    ``p`` (of ``test``), ``bn`` (BH at ``q`` on ``p``, or its adaptive form with ``fdr="adaptive"``,
    `significance.fdr_adaptive`), ``frac_subjects_bn`` (fraction of
    subjects in which the grayordinate is a BN), and ``n_subjects`` (scalar).
    """
    if test not in ("t", "sign_flip"):
        raise ValueError(f"cohort test must be 't' or 'sign_flip', got {test!r}")
    z = fisher_z(r)
    t, p_t = one_sample_t(z)
    p_flip = sign_flip_p(z, n_perm, seed)
    p = p_t if test == "t" else p_flip
    return {"mean_r": np.tanh(z.mean(axis=0)), "t": t, "p_t": p_t, "p_sign_flip": p_flip, "p": p,
            "bn": fdr_adaptive(p, q)[0] if fdr == "adaptive" else fdr_bh(p, q), "frac_subjects_bn": np.asarray(bn, dtype=bool).mean(axis=0),
            "n_subjects": np.array(z.shape[0])}
