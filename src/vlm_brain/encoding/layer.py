"""Encode one layer end to end: SDL atoms -> CV ridge -> null -> atom maps.

All of it runs on sufficient statistics (`vlm_brain.encoding.engine`): the data are
read once per batch of grayordinates and multiplied with the stacked designs of the
leave-one-run-out folds and of the full refit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

import numba
import numpy as np
from scipy import special, stats

from vlm_brain.encoding._kernels import keep_at_least, lag_products, model_lag_products, row_exceedances, run_sums
from vlm_brain.encoding._validation import check_time_series, count_non_finite, run_slices
from vlm_brain.encoding.engine import (
    BlockStats,
    Design,
    HacFactor,
    block_stats,
    cross_validated_scores,
    fitted_values_t,
    hac_t,
    ridge_weights_eigen,
    run_transposes,
    select_alphas,
    shift_spread,
    sum_over_runs,
)
from vlm_brain.encoding.ridge import (
    _check_alphas,
    _target_batches,
    cross_validate_encoding,
    raw_regressors,
    resolve_backend,
    standardize_train,
)
from vlm_brain.encoding.sdl import (
    atom_timecourses,
    data_spectrum,
    fit_layer_dictionary,
    fit_sparse_loadings,
)
from vlm_brain.encoding.folds import check_folds, cv_folds, mask_patterns, present_mask
from vlm_brain.encoding.settings import EncodingSettings
from vlm_brain.encoding.significance import fdr_adaptive, fdr_bh, lagged_gram
from vlm_brain.encoding.temporal import check_keep, fir_design, prepare_regressors, standardized_full

logger = logging.getLogger(__name__)



def encode_layer(
    ans: np.ndarray,
    y: np.ndarray,
    runs_full: np.ndarray,
    keep: np.ndarray,
    tr: float,
    settings: EncodingSettings | None = None,
    references: Mapping[str, np.ndarray] | None = None,
    return_predictions: bool = False,
    folds: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    **changes: Any,
) -> dict[str, np.ndarray]:
    """Everything the study measures for one layer.

    Args:
        ans: (T_full, N) AN time series of all TRs of all runs (timeline order).
        y: (T_kept, G) fMRI of the kept TRs, cleaned and z-scored per run; NaN marks a
            missing TR of a target (below).
        runs_full, keep: (T_full,) scan ("run") label and kept-for-fitting flag per TR
            (keep None: every TR). A scan is one continuous acquisition: the HRF, FIR
            delays, lag and z-scoring of the regressors run within it.
        tr: repetition time (s).
        settings: how the layer is encoded (`EncodingSettings`; default: its defaults);
            ``changes`` override single fields, e.g. ``encode_layer(..., n_atoms=16)``.
        references: {name: (T_full,) time course} of stimulus features (e.g. frame
            luminance, `vlm_brain.stimuli.features`) that BN signs are read against;
            prepared like the ANs (HRF, kept TRs, z-scored per run).
        return_predictions: also return ``predictions`` (T_kept, G) float32, the held-out
            prediction of every TR (run r's rows from the model fitted on the other runs),
            whose pooled Pearson r with y is ``r`` (NaN at missing values).
        folds: (T_full,) cross-validation fold of each TR, each a scan or a contiguous
            part of one (`folds.check_folds`); None: ``settings.folds_per_scan``
            contiguous parts of every scan (`folds.cv_folds`; 1 = leave one scan out).
            Lag windows and circular shifts run within each fold's segment.
        mask: (T_kept, G) bool, True where a target's TR is present (None: all; NaN in
            y is missing either way). A missing value changes neither the fit, nor the
            score, nor the null: targets sharing a pattern of missing TRs are fitted
            together on their present rows (the dictionaries, which depend on the ANs
            only, are shared); a fold left with < 2 present TRs drops out for them.

    ``settings.null_method`` says how held-out r becomes a p-value. Both standardise r
    by the spread of r over circular shifts of each run's predictions (computed, not
    sampled: lag-window products up to ``max_lag``). "refit" (default) then compares the
    standardised statistic with the whole model refitted on stimuli shifted circularly
    in every run (``n_refit`` draws on ``refit_targets`` grayordinates, alpha re-selected
    each time): permutation p-values, and a generalized Pareto tail beyond the null's
    99th percentile (`tail_p_values`), so p has no resolution floor; "shift" reads p
    from the standard Gaussian (too liberal with leave-one-run-out predictions; kept for
    comparison). ``max_lag`` is also the lag window of the HAC t-maps.

    Returns:
        ``r`` (G,) held-out Pearson r of the atom model (leave-one-run-out, SDL fitted
        on the training runs only); ``p`` (G,) p-values (continuous, no resolution
        floor); ``bn`` (G,) FDR discoveries at q (the layer's BNs): Benjamini-Hochberg,
        or with ``settings.fdr = "adaptive"`` its adaptive form (`fdr_adaptive`), whose
        estimate of the share of null grayordinates is ``fdr_pi0`` (1,) (1 with BH); ``alpha`` (G,)
        median chosen ridge alpha over folds; ``atoms`` (T_kept, k) and ``loadings``
        (k, N) of the SDL refitted on all runs, ``reconstruction_error`` (1,);
        ``atom_t``, ``atom_pos``, ``atom_neg`` (k, G): HAC t maps of the full refit
        and their significant positive / negative grayordinates; ``null_calibration``
        (4,): the refit null's tail (`tail_p_values`: threshold, GPD shape and scale,
        tail probability; NaN with "shift"); ``reference_r`` (1 + n_references, G):
        Pearson r over the kept TRs of each grayordinate's fitted response (full refit)
        with the layer's dominant AN direction (row 0, `dominant_an_direction`), then
        with each of ``references`` in order; a BN's sign relative to a reference is
        the sign of its r (`response_polarity`); with ``raw_model``, ``raw_r`` (G,) of
        all N ANs as regressors (himalaya RidgeCV) and its ``raw_p`` (G,)
        (`raw_model_p_values`).
    """
    settings = settings or EncodingSettings()
    if changes:
        settings = settings.replace(**changes)
    alphas = _check_alphas(settings.alphas)
    backend = resolve_backend(settings.backend)
    n_atoms, sdl_alpha, sdl_max_iter, seed = settings.n_atoms, settings.sdl_alpha, settings.sdl_max_iter, settings.seed
    q, max_lag, target_batch_size = settings.q, settings.max_lag, settings.target_batch_size
    y = check_time_series(y, "y", allow_nan=True)
    keep = check_keep(keep, runs_full)
    fir = settings.temporal_model == "fir"
    fold_full = cv_folds(runs_full, keep, settings.folds_per_scan) if folds is None else check_folds(folds, runs_full)
    fold_kept = np.asarray(fold_full)[keep]
    if len(fold_kept) != len(y):
        raise ValueError(f"features have {len(fold_kept)} kept TRs but the fMRI has {len(y)}; timelines differ")
    slices = run_slices(fold_kept)
    if len(slices) < 3:
        raise ValueError(f"cross-validation with an inner split needs >= 3 folds, got {len(slices)}; with fewer "
                         "scans, split each into contiguous folds (encoding.folds_per_scan, e.g. 2)")
    refit = settings.null_method == "refit"
    if refit and settings.n_refit * min(settings.refit_targets, y.shape[1]) < 10 * MIN_EXCEEDANCES:
        raise ValueError(f"the refit null would have at most {settings.n_refit} draws x "
                         f"{min(settings.refit_targets, y.shape[1])} grayordinates; its fitted tail needs >= "
                         f"{10 * MIN_EXCEEDANCES} (raise encoding.n_refit or encoding.refit_targets)")

    def data_side():  # one pass over the data: per-fold sums (reused by the fit) that also reveal NaN / inf
        sums = None if mask is not None else fold_sums(y, slices)
        present = _present(y, mask, sums)
        # the null's targets are chosen before the fit: its draws run beside the full refit's SDL
        return sums, present, null_targets(y, settings.refit_targets, seed, present) if refit else None

    def stimulus_side():  # the regressors, and the time courses BN signs are read against
        x = prepare_regressors(ans, runs_full, keep, tr, "none" if fir else settings.temporal_model, settings.lag)[0]
        # with FIR the signs are read in BOLD time: the dominant AN direction of the HRF-convolved ANs
        x_signs = prepare_regressors(ans, runs_full, keep, tr, "glover", settings.lag)[0] if fir else x
        return x, reference_timecourses(x_signs, ans, runs_full, keep, tr, references,
                                        "glover" if fir else settings.temporal_model, settings.lag)

    (y_sums, present, targets), (x, reference) = _in_parallel([data_side, stimulus_side])
    started = time.perf_counter()
    expand = None
    if fir:  # the atoms' time courses on every TR, delayed within runs, then the kept rows
        x_full = standardized_full(ans, runs_full, keep, settings.lag)

        def expand(loadings: np.ndarray) -> np.ndarray:
            return fir_design(atom_timecourses(x_full, loadings), runs_full, keep, settings.fir_delays)
    matmul = _matmul(backend)
    groups = [(None, slice(None))] if present is None else mask_patterns(present)
    if present is not None:
        logger.info("%d targets have missing TRs, in %d patterns: each pattern fitted on its present TRs",
                    int((~present.all(axis=0)).sum()), len(groups) - int(groups[0][0].all()))
    null_parts = []  # (columns of y, (n_draws, n) held-out r) per group with null targets
    if refit:
        def null_jobs(folds_only: LayerDesigns) -> list:
            jobs = []
            for rows, cols in groups:
                local = np.flatnonzero(np.isin(np.arange(y.shape[1])[cols], targets))
                if local.size:
                    sub, sub_slices, _, used = _restricted(folds_only, slices, fold_kept, rows, max_lag)
                    group_jobs = null_draw_jobs(sub, _block(y, used, cols), sub_slices, alphas, local,
                                                settings.n_refit, seed, target_batch_size, matmul, alongside=1)
                    null_parts.append((np.arange(y.shape[1])[cols][local], len(group_jobs)))
                    jobs += group_jobs
            return jobs

        layer, null_r = fit_layer_designs(x, slices, n_atoms, sdl_alpha, sdl_max_iter, seed, max_lag, expand,
                                          alongside=null_jobs)
    else:
        layer = LayerDesigns.fit(x, slices, n_atoms, sdl_alpha, sdl_max_iter, seed, max_lag, expand)
    logger.debug("SDL of %d folds and the full refit: %.1f s", len(slices), time.perf_counter() - started)
    predictions = np.empty(y.shape, dtype=np.float32) if return_predictions else None
    parts = [_restricted(layer, slices, fold_kept, rows, max_lag) for rows, _ in groups]
    groups = [(part[3], cols) for part, (_, cols) in zip(parts, groups, strict=True)]  # rows actually used
    # one group (no missing TRs): its results as they are; else each group's into the whole (G,) arrays
    fit = None if present is None else TargetFit.empty(y.shape[1], len(slices), layer.full.width, reference.shape[1])
    for (rows, cols), (sub, sub_slices, kept_folds, _) in zip(groups, parts, strict=True):
        sub_y = _block(y, rows, cols)
        whole = isinstance(cols, slice)  # no missing TRs: the data and the output as they are
        sub_predictions = predictions if whole or predictions is None else np.empty(sub_y.shape, dtype=np.float32)
        part = _fit_targets(sub, sub_y, sub_slices, alphas, max_lag, target_batch_size, matmul,
                            reference if rows is None else reference[rows], sub_predictions,
                            sums=y_sums if present is None else None)
        if fit is None:
            fit = part
        else:
            fit.assign(cols, part, kept_folds)
        if not whole and predictions is not None:
            predictions[:, cols] = np.nan
            predictions[(slice(None), cols) if rows is None else np.ix_(rows, cols)] = sub_predictions
    def layer_side():  # the layer's p-values and BNs
        z = np.divide(fit.r - fit.mean, fit.sd, out=np.full(fit.r.shape, -np.inf), where=fit.sd > 0)
        if refit:
            z_null, done = [], 0
            for columns, n_jobs in null_parts:
                z_null.append(standardized_null(np.concatenate(null_r[done:done + n_jobs]), fit.part(columns)))
                done += n_jobs
            p, calibration = tail_p_values(z, np.concatenate(z_null))
        else:
            p, calibration = stats.norm.sf(z), np.full(4, np.nan)
        bn, pi0 = fdr_adaptive(p, q) if settings.fdr == "adaptive" else (fdr_bh(p, q), 1.0)
        return p, calibration, bn, pi0

    def atom_side():  # the atom maps: BH within each atom's map
        atom_t, atom_delay, n_tests = fit.atom_t, None, 1
        if fir:  # per atom, its strongest delay; its p Bonferroni-corrected for the delays tried
            by_delay = atom_t.reshape(settings.fir_delays + 1, n_atoms, -1)
            best = np.argmax(np.abs(by_delay), axis=0)
            atom_t = np.take_along_axis(by_delay, best[None], axis=0)[0]
            atom_delay, n_tests = best.astype(np.int8), settings.fir_delays + 1
        return atom_t, atom_delay, atom_discoveries(atom_t, fit.dof, q, n_tests)

    (p, calibration, bn, pi0), (atom_t, atom_delay, significant) = _in_parallel([layer_side, atom_side])
    out = {
        "r": fit.r, "p": p, "bn": bn, "fdr_pi0": np.array([pi0]),
        "alpha": np.nanmedian(np.where(fit.alpha_index >= 0, alphas[fit.alpha_index], np.nan), axis=0),
        "atoms": layer.atoms, "loadings": layer.loadings,
        "reconstruction_error": np.array([layer.reconstruction_error]),
        "atom_t": atom_t.astype(np.float32), "atom_pos": significant & (atom_t > 0),
        "atom_neg": significant & (atom_t < 0), "null_calibration": calibration,
        "reference_r": fit.reference_r.astype(np.float32),
    }
    if atom_delay is not None:
        out["atom_delay"] = atom_delay
    if predictions is not None:
        out["predictions"] = predictions
    if settings.raw_model:
        if present is not None:
            raise ValueError("the raw-AN comparison model (encoding.raw_an_model) does not handle missing TRs; "
                             "turn it off for data with NaN or a mask")
        out["raw_r"] = cross_validate_encoding(x, y, fold_kept, raw_regressors(), alphas=alphas, backend=backend,
                                               target_batch_size=target_batch_size).r
        out["raw_p"] = raw_model_p_values(x, y, slices, fold_kept, out["raw_r"], alphas, settings)
    logger.debug("layer encoded in %.1f s", time.perf_counter() - started)
    return out


@dataclass
class LayerDesigns:
    """The regressors of every leave-one-run-out fold and of the full refit of one layer.

    Attributes
    ----------
    stacked : (T, (R + 1) k) float32, fold f's standardised atom time courses for all
        rows (fold f's SDL is fitted on the runs other than f), then the full refit's.
    folds : R `Design` of the folds; full : the full refit's `Design`; hac : the full
        refit's `HacFactor`.
    atoms (T, k), loadings (k, N), reconstruction_error : the full refit's SDL.
    Before the full refit exists (`fit_layer_designs`' ``alongside``), ``stacked`` holds
    the folds' columns only and the full refit's attributes are None.
    """

    stacked: np.ndarray
    folds: list[Design]
    full: Design | None
    hac: HacFactor | None
    atoms: np.ndarray | None
    loadings: np.ndarray | None
    reconstruction_error: float

    @property
    def full_regressors(self) -> np.ndarray:
        return self.stacked[:, self.full.columns]

    @property
    def fold_stacked(self) -> np.ndarray:
        """(T, R k) the folds' regressors."""
        return self.stacked[:, : self.folds[-1].columns.stop]

    def fold_regressors(self, f: int) -> np.ndarray:
        return self.stacked[:, self.folds[f].columns]

    @classmethod
    def fit(cls, x: np.ndarray, slices: list[slice], n_atoms: int, sdl_alpha: float, sdl_max_iter: int,
            seed: int, max_lag: int, expand=None) -> LayerDesigns:
        """SDL per fold from the sum of its training runs' AN Gram blocks, then the full SDL (`fit_layer_designs`)."""
        return fit_layer_designs(x, slices, n_atoms, sdl_alpha, sdl_max_iter, seed, max_lag, expand)[0]


def fit_layer_designs(x: np.ndarray, slices: list[slice], n_atoms: int, sdl_alpha: float, sdl_max_iter: int,
                      seed: int, max_lag: int, expand=None, alongside=None) -> tuple[LayerDesigns, list]:
    """`LayerDesigns` of one layer, and the results of the jobs run ``alongside`` its last SDL.

    The R fold dictionaries are independent small problems: they run in parallel threads,
    each with one BLAS and one numba thread (`_in_parallel`). The full refit's SDL then
    runs beside ``alongside(folds_only)``, jobs (callables) that need only the folds'
    designs (``folds_only``: a `LayerDesigns` without the full refit), e.g. the refit
    null's draws, instead of alone on idle cores. ``expand(loadings)`` gives a design's
    regressors (T, width) from its loadings (default: the atom time courses of x; FIR:
    delayed copies of them, `temporal.fir_design`).

    Returns:
        (designs, [result of each job of ``alongside``, in order]).
    """
    x64 = np.asarray(x, dtype=np.float64)
    expand = expand or (lambda loadings: atom_timecourses(x64, loadings))
    grams = [x64[s].T @ x64[s] for s in slices]
    train_rows = [np.concatenate([np.arange(slices[r].start, slices[r].stop) for r in range(len(slices)) if r != f])
                  for f in range(len(slices))]

    def fold_loadings(f: int) -> np.ndarray:
        varying = np.ptp(x[train_rows[f]], axis=0) > 0
        if varying.sum() < n_atoms:
            raise ValueError(f"fold holding out run {f}: only {int(varying.sum())} ANs vary over the training "
                             f"runs, fewer than n_atoms={n_atoms}")
        gram, spectrum = None, None
        if len(train_rows[f]) < varying.sum():  # fewer TRs than ANs: the T x T side is cheaper
            spectrum = data_spectrum(x64[np.ix_(train_rows[f], varying)])
        else:
            gram = sum(grams[r] for r in range(len(slices)) if r != f)[np.ix_(varying, varying)]
        loadings = np.zeros((n_atoms, x.shape[1]), dtype=np.float32)
        loadings[:, varying] = fit_sparse_loadings(gram, n_atoms, sdl_alpha, seed, sdl_max_iter,
                                                   n_samples=len(train_rows[f]), spectrum=spectrum)
        return loadings

    def full_design():  # (the full refit's dictionary, its regressors (T, width) float32)
        dictionary = fit_layer_dictionary(x, n_atoms, sdl_alpha, seed, max_iter=sdl_max_iter, gram=sum(grams))
        timecourses = expand(dictionary.loadings)
        return dictionary, np.asarray(standardize_train(timecourses, timecourses[:0])[0], dtype=np.float32)

    def fold_design(f: int) -> np.ndarray:  # (T, width) float32: fold f's regressors, its training statistics
        timecourses = expand(fold_loadings(f))
        return np.asarray(standardize_train(timecourses[train_rows[f]], timecourses)[1], dtype=np.float32)

    fold_jobs = [lambda f=f: fold_design(f) for f in range(len(slices))]
    if alongside is None:  # all R + 1 fits side by side
        *designs, (dictionary, full) = _in_parallel(fold_jobs + [full_design])
    else:
        designs = _in_parallel(fold_jobs)
    width = designs[0].shape[1]
    columns = [slice(i * width, (i + 1) * width) for i in range(len(slices) + 1)]
    folds = [Design.from_regressors(designs[f], slices, columns[f]) for f in range(len(slices))]
    results = []
    if alongside is not None:
        jobs = alongside(LayerDesigns(stacked=np.hstack(designs), folds=folds, full=None, hac=None, atoms=None,
                                      loadings=None, reconstruction_error=float("nan")))
        (dictionary, full), *results = _in_parallel([full_design] + jobs)
    designs.append(full)
    runs = np.concatenate([np.full(s.stop - s.start, i) for i, s in enumerate(slices)])
    hac = HacFactor(lagged_gram(designs[-1], runs, max_lag), len(runs))
    layer = LayerDesigns(stacked=np.hstack(designs), folds=folds,
                         full=Design.from_regressors(designs[-1], slices, columns[-1]), hac=hac,
                         atoms=dictionary.atoms, loadings=dictionary.loadings,
                         reconstruction_error=dictionary.reconstruction_error)
    return layer, results


def _block(y: np.ndarray, rows: np.ndarray | None, cols) -> np.ndarray:
    """y's rows (bool, None: all) and columns (a slice: a view)."""
    if rows is None:
        return y[:, cols]
    return y[np.ix_(rows, cols)]


def fold_sums(y: np.ndarray, slices: list[slice]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-fold sums and sums of squares (R, G) float64 of y (T, G), in one pass over it.

    None unless y is C-ordered float32 / float64 (read in place, never copied whole).
    """
    if not (y.flags.c_contiguous and y.dtype in (np.float32, np.float64)):
        return None
    return run_sums(y, np.array([s.start for s in slices]), np.array([s.stop for s in slices]))


def _present(y: np.ndarray, mask: np.ndarray | None,
             sums: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray | None:
    """(T, G) present values (`folds.present_mask`), None when all are; inf is an error, not missing.

    ``sums``: `fold_sums` of y, if known. A NaN or inf makes its column's sums
    non-finite, so all finite sums mean every value is finite and y need not be read
    again; otherwise the values are counted (finite float64 data beyond ~1e154 has
    non-finite sums of squares: only the exact count is then paid).
    """
    if mask is None and sums is not None and np.isfinite(sums[0]).all() and np.isfinite(sums[1]).all():
        return None
    if mask is None and not count_non_finite(y):
        return None
    if np.isinf(y).any():
        raise ValueError(f"y (shape {y.shape}) contains {int(np.isinf(y).sum())} infinite values; "
                         "mark missing TRs with NaN")
    present = present_mask(y, mask)
    if present is not None and not present.any(axis=0).all():
        empty = np.flatnonzero(~present.any(axis=0))
        raise ValueError(f"{len(empty)} targets (e.g. column {int(empty[0])}) have no present TR; drop them")
    return present


def _restricted(layer: LayerDesigns, slices: list[slice], fold_kept: np.ndarray, rows: np.ndarray | None,
                max_lag: int) -> tuple[LayerDesigns, list[slice], np.ndarray, np.ndarray | None]:
    """(designs, fold slices, indices of the folds kept, rows used) on the present ``rows`` (None: all).

    Folds with < 2 present rows drop out (their designs and rows); >= 3 must remain.
    """
    if rows is None or rows.all():
        return layer, slices, np.arange(len(slices)), None
    counts = np.array([int(rows[s].sum()) for s in slices])
    kept_folds = np.flatnonzero(counts >= 2)
    if len(kept_folds) < 3:
        raise ValueError(f"targets missing all but {int(rows.sum())} TRs keep {len(kept_folds)} folds with >= 2 "
                         "present TRs; cross-validation needs >= 3: drop these targets or use more folds")
    use = rows & np.isin(np.arange(len(rows)), np.concatenate([np.arange(slices[f].start, slices[f].stop)
                                                                for f in kept_folds]))
    sub_slices = run_slices(fold_kept[use])
    columns = [layer.folds[f].columns for f in kept_folds] + ([] if layer.full is None else [layer.full.columns])
    stacked = np.hstack([layer.stacked[use, c] for c in columns])
    width = layer.folds[0].width
    new = [slice(i * width, (i + 1) * width) for i in range(len(columns))]
    folds = [Design.from_regressors(stacked[:, c], sub_slices, c) for c in new[: len(kept_folds)]]
    full, hac = None, None
    if layer.full is not None:
        full = Design.from_regressors(stacked[:, new[-1]], sub_slices, new[-1])
        blocks = np.concatenate([np.full(s.stop - s.start, i) for i, s in enumerate(sub_slices)])
        hac = HacFactor(lagged_gram(stacked[:, new[-1]], blocks, max_lag), len(blocks))
    sub = LayerDesigns(stacked=stacked, folds=folds, full=full, hac=hac, atoms=layer.atoms,
                       loadings=layer.loadings, reconstruction_error=layer.reconstruction_error)
    return sub, sub_slices, kept_folds, use


@dataclass
class TargetFit:
    """Per-target results of `_fit_targets` (G = all grayordinates)."""

    r: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    alpha_index: np.ndarray
    atom_t: np.ndarray
    dof: np.ndarray
    reference_r: np.ndarray

    @classmethod
    def empty(cls, n_targets: int, n_folds: int, k: int, m: int) -> TargetFit:
        return cls(r=np.empty(n_targets), mean=np.empty(n_targets), sd=np.empty(n_targets),
                   alpha_index=np.full((n_folds, n_targets), -1, dtype=np.int64), atom_t=np.empty((k, n_targets)),
                   dof=np.empty(n_targets), reference_r=np.empty((m, n_targets)))

    def assign(self, cols, part: TargetFit, folds: np.ndarray) -> None:
        """Set targets ``cols`` from ``part``, fitted on ``folds`` (fold indices; the others stay -1)."""
        for name in ("r", "mean", "sd", "dof"):
            getattr(self, name)[cols] = getattr(part, name)
        self.atom_t[:, cols], self.reference_r[:, cols] = part.atom_t, part.reference_r
        alpha_index = self.alpha_index[:, cols]
        alpha_index[folds] = part.alpha_index
        self.alpha_index[:, cols] = alpha_index

    def part(self, cols) -> TargetFit:
        """The targets ``cols`` (r, mean, sd: what the null needs)."""
        return TargetFit(r=self.r[cols], mean=self.mean[cols], sd=self.sd[cols], alpha_index=self.alpha_index[:, cols],
                         atom_t=self.atom_t[:, cols], dof=self.dof[cols], reference_r=self.reference_r[:, cols])


def _fit_targets(layer: LayerDesigns, y, slices, alphas, max_lag, batch_size, matmul,
                 reference: np.ndarray, predictions: np.ndarray | None = None,
                 sums: tuple[np.ndarray, np.ndarray] | None = None) -> TargetFit:
    """Cross-validated r, its shift spread, and the full refit's HAC t, batch by batch of targets.

    Per batch: the data's per-run sums, the stacked cross-products, the k-space algebra,
    and one compiled pass for all lagged products, which forms the full refit's fitted
    values and the folds' held-out predictions 256 targets x one run at a time
    (`model_lag_products`; with another backend, as two k x T products first); a
    C-contiguous ``y`` of the working dtype is read in place (the batch is not copied).
    Batches run side by side, one per core with its own buffers (`_in_parallel`): the
    k-space algebra between the products is single-threaded numpy, so one batch per
    core keeps both cores busy (~15% faster than one batch at a time on 2 cores).
    ``reference`` (T, m) z-scored time courses: the correlation of each fitted response
    with each follows from k-space products (the fitted values are X b with X centred:
    cov = b'X'ref, var = b'X'X b). ``predictions`` (T, G), if given, receives the held-out
    predictions. ``sums``: y's per-fold sums and sums of squares (R, G) (`fold_sums`), if
    already known (else computed batch by batch).
    """
    n_targets = y.shape[1]
    out = TargetFit.empty(n_targets, len(slices), layer.full.width, reference.shape[1])
    full_x = layer.full_regressors.astype(np.float64)
    full_gram = full_x.T @ full_x
    reference_cross = full_x.T @ reference  # (k, m)
    reference_norm = np.sqrt(np.sum(reference**2, axis=0))  # (m,)
    batches = _target_batches(n_targets, batch_size, max(1, numba.get_num_threads()))
    all_runs = range(len(slices))
    starts, stops = np.array([s.start for s in slices]), np.array([s.stop for s in slices])
    dtype = np.float64 if y.dtype == np.float64 else np.float32
    in_place = isinstance(y, np.ndarray) and y.dtype == dtype and y.flags.c_contiguous
    width = min(batch_size, n_targets)
    n_samples = y.shape[0]
    local = threading.local()  # each worker's buffers, reused from batch to batch: no page faults per batch

    fused = matmul is None  # numpy: fitted values and predictions formed inside the lag kernel, never stored whole
    transposed = run_transposes(layer.stacked, slices, dtype)  # for every batch's cross-products
    held_out_x = [layer.fold_regressors(f)[rows] for f, rows in enumerate(slices)]

    def fit_batch(i: int, cols: slice) -> None:
        if not hasattr(local, "copy"):
            local.buffers = None if fused else [np.empty((width, n_samples), dtype=dtype) for _ in range(2)]
            local.copy = None if in_place else np.empty(n_samples * width, dtype=dtype)
            local.cross = np.empty((len(slices), layer.stacked.shape[1], width), dtype=dtype)
        n = cols.stop - cols.start
        if in_place:
            data, first = np.asarray(y), cols.start
        else:  # another dtype or layout: the batch copied once, C-contiguous
            data, first = local.copy[: n_samples * n].reshape(n_samples, n), 0
            data[...] = y[:, cols]
        if sums is None:
            y_sum, y_sq = run_sums(data, starts, stops, slice(first, first + n))
        else:
            y_sum, y_sq = sums[0][:, cols], sums[1][:, cols]
        stats_ = block_stats(layer.stacked, data[:, first:first + n], slices, matmul, sums=(y_sum, y_sq),
                             transposed=transposed,
                             out=local.cross)
        full_total = sum_over_runs(stats_.cross[:, layer.full.columns], list(all_runs))
        chosen = alphas[select_alphas(layer.full, stats_, all_runs, alphas, cross_total=full_total)]
        v, w = ridge_weights_eigen(layer.full, all_runs, full_total, chosen)
        coefficients = v @ w
        scores = cross_validated_scores(layer.folds, stats_, alphas, keep_weights=True)
        if fused:
            data_lags, residual_lags, predicted_lags = model_lag_products(
                data, scores.weights, held_out_x, coefficients, layer.full_regressors, starts, stops, max_lag,
                first_column=first, predictions=predictions, prediction_column=cols.start)
        else:  # another backend's products: (G, T) fitted values and predictions, then the lag kernel
            predicted_t = local.buffers[0][:n]
            for f, rows in enumerate(slices):
                fitted_values_t(scores.weights[f], held_out_x[f], matmul, dtype, out=predicted_t[:, rows])
            fitted_t = fitted_values_t(coefficients, layer.full_regressors, matmul, dtype, out=local.buffers[1][:n])
            data_lags, residual_lags, predicted_lags = lag_products(data, fitted_t, predicted_t, starts, stops,
                                                                    max_lag, first_column=first)
            if predictions is not None:
                predictions[:, cols] = predicted_t.T
        out.r[cols], out.mean[cols] = scores.r, scores.mean
        out.sd[cols] = shift_spread(scores.denom, predicted_lags, data_lags, stats_.n)
        out.alpha_index[:, cols] = scores.alpha_index
        out.atom_t[:, cols], out.dof[cols] = hac_t(layer.hac, coefficients, chosen, residual_lags)
        fitted_norm = np.sqrt(np.maximum(np.einsum("kg,kg->g", full_gram @ coefficients, coefficients), 0.0))
        denom = fitted_norm[None, :] * reference_norm[:, None]
        out.reference_r[:, cols] = np.divide(reference_cross.T @ coefficients, denom,
                                             out=np.zeros(denom.shape), where=denom > 0)
        if len(batches) > 1:
            logger.debug("targets %d-%d done (batch %d/%d)", cols.start, cols.stop, i, len(batches))

    # batches write disjoint columns of the outputs: they run side by side, one per core
    _in_parallel([lambda i=i, cols=cols: fit_batch(i, cols) for i, cols in enumerate(batches, start=1)])
    return out


def raw_model_p_values(x: np.ndarray, y: np.ndarray, slices: list[slice], folds: np.ndarray, r: np.ndarray,
                       alphas: np.ndarray, settings: EncodingSettings) -> np.ndarray:
    """(G,) p-values of the raw-AN model's held-out r, from refits on shifted stimuli.

    As `refit_null` for the atom model: each of ``n_refit`` draws shifts every fold's
    stimulus circularly by its own offset (the same as shifting the data against it) and
    redoes the whole cross-validation, alpha selection included, on ``refit_targets``
    grayordinates; all draws go through one himalaya fit as extra targets. p comes from
    the pooled null of r with its fitted tail (`tail_p_values`); r is not standardised
    per grayordinate here (the raw model has no closed-form shift spread).
    """
    targets = null_targets(y, settings.refit_targets, settings.seed)
    lengths = np.array([s.stop - s.start for s in slices])
    offsets = np.random.default_rng(settings.seed + 1).integers(0, lengths, size=(settings.n_refit, len(slices)))
    y_sub = np.asarray(y[:, targets], dtype=np.float32)
    shifted = np.hstack([np.vstack([np.roll(y_sub[s], -shift[j], axis=0) for j, s in enumerate(slices)])
                         for shift in offsets])
    null = cross_validate_encoding(x, shifted, folds, raw_regressors(), alphas=alphas, backend=settings.backend,
                                   target_batch_size=settings.target_batch_size).r
    return tail_p_values(r, null)[0]


def null_targets(y: np.ndarray, max_targets: int, seed: int, present: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of <= ``max_targets`` columns of y (T, G) whose signal varies over their present TRs.

    A seeded random subset: the first ``max_targets`` columns of a seeded permutation
    that are not constant (``present`` (T, G) bool: the TRs to judge by; NaN is missing
    either way). Only the columns tried are read.
    """
    if max_targets < 1:
        raise ValueError(f"refit_targets must be >= 1, got {max_targets}")
    order = np.random.default_rng(seed).permutation(y.shape[1])
    chosen, block = [], 2 * max_targets
    for start in range(0, len(order), block):
        tried = order[start:start + block]
        columns = np.sort(tried)  # read in column order
        values = np.asarray(y[:, columns], dtype=np.float64)
        valid = np.isfinite(values) if present is None else present[:, columns] & np.isfinite(values)
        varies = np.where(valid, values, -np.inf).max(axis=0) > np.where(valid, values, np.inf).min(axis=0)
        chosen.extend(tried[np.isin(tried, columns[varies])][: max_targets - len(chosen)])  # permutation order
        if len(chosen) == max_targets:
            break
    if not chosen:
        raise ValueError("no grayordinate has a non-constant signal: the refit null cannot be computed")
    return np.sort(np.array(chosen, dtype=np.int64))


def null_draw_jobs(layer: LayerDesigns, y, slices, alphas, targets: np.ndarray, n_draws: int, seed: int,
                   batch_size: int, matmul, alongside: int = 0) -> list:
    """The refit null's draws in chunks, as independent jobs; each returns (n_chunk, n) held-out r.

    For each draw every run's stimulus is shifted circularly by its own random offset,
    in every fold, for training and held-out runs alike; alphas are re-selected and the
    pooled r recomputed. Shifting run r's stimulus by s leaves its Gram blocks as they
    are and turns X_r'Y_r into X_r' roll(Y_r, -s) = roll(X_r', s) Y_r: the small designs are
    rolled, not the data, and a draw is the same computation on these cross-products (the
    per-run sums of the data are those of the unshifted targets); only the folds' designs
    are needed. Chunks hold <= batch_size columns (draws x ``targets``, columns of y) and,
    with ``alongside`` other jobs, fill whole rounds of `_in_parallel`'s workers.
    """
    if n_draws < 1:
        raise ValueError(f"n_refit must be >= 1, got {n_draws}")
    targets = np.asarray(targets)
    y_sub = np.asarray(y[:, targets], dtype=np.float64 if y.dtype == np.float64 else np.float32)  # (T, n)
    lengths = np.array([s.stop - s.start for s in slices])
    offsets = np.random.default_rng(seed + 1).integers(0, lengths, size=(n_draws, len(slices)))
    transposed = run_transposes(layer.fold_stacked, slices, y_sub.dtype)  # run j's designs (K, T_j)
    runs_y = [np.ascontiguousarray(y_sub[s]) for s in slices]
    sums = (np.stack([r.sum(axis=0, dtype=np.float64) for r in runs_y]),  # a shift within a run keeps them
            np.stack([np.einsum("tg,tg->g", r, r, dtype=np.float64) for r in runs_y]))
    n_chunks = -(-n_draws // max(1, batch_size // len(targets)))  # <= batch_size columns per chunk, even
    workers = max(1, numba.get_num_threads())
    n_chunks = min(n_draws, -(-(n_chunks + alongside) // workers) * workers - alongside)  # no lone last job

    def null_r(chunk: np.ndarray) -> np.ndarray:
        n, n_designs = len(targets), transposed[0].shape[0]
        cross = np.empty((len(slices), n_designs, len(chunk) * n), dtype=y_sub.dtype)  # draw d: columns d n ..
        for j, design in enumerate(transposed):
            # X_j' roll(Y_j, -s) = roll(X_j', s) Y_j: the designs rolled, every draw of the chunk in one product
            length = design.shape[1]
            rolled = np.empty((len(chunk), n_designs, length), dtype=design.dtype)
            for d, shift in enumerate(chunk):  # np.roll(design, s, axis=1), written in place
                s = int(shift[j]) % length
                rolled[d, :, s:], rolled[d, :, :s] = design[:, :length - s], design[:, length - s:]
            product = np.asarray((matmul or np.matmul)(rolled.reshape(-1, design.shape[1]), runs_y[j]))
            cross[j] = product.reshape(len(chunk), n_designs, n).transpose(1, 0, 2).reshape(n_designs, -1)
        stats = BlockStats(cross=cross, y_sum=np.tile(sums[0], len(chunk)), y_sq=np.tile(sums[1], len(chunk)),
                           n=lengths)
        return cross_validated_scores(layer.folds, stats, alphas).r.reshape(len(chunk), n)

    return [lambda chunk=chunk: null_r(chunk) for chunk in np.array_split(offsets, max(1, n_chunks))]


def standardized_null(r: np.ndarray, fit: TargetFit) -> np.ndarray:
    """(n_draws * n,) null r (n_draws, n) of targets ``fit`` standardised like the observed r, by their
    shift mean and spread; targets with no spread (a constant prediction) are left out."""
    ok = fit.sd > 0
    return ((r[:, ok] - fit.mean[ok]) / fit.sd[ok]).ravel()


def refit_null(layer: LayerDesigns, y, slices, alphas, fit: TargetFit, n_draws: int, max_targets: int, seed: int,
               batch_size: int, matmul, targets: np.ndarray | None = None) -> np.ndarray:
    """Standardised r of the whole cross-validated model refitted on shifted stimuli (`null_draw_jobs`).

    Each draw's r of grayordinate g is standardised like the observed one, by g's shift
    mean and spread (`standardized_null`).

    Returns
    -------
    z_null : (n_draws * n,) standardised null statistics over ``n`` <= ``max_targets``
        grayordinates (a seeded random subset of the non-constant ones, `null_targets`),
        or over ``targets`` (columns of y) when given.
    """
    targets = null_targets(y, max_targets, seed) if targets is None else np.asarray(targets)
    r = np.concatenate(_in_parallel(null_draw_jobs(layer, y, slices, alphas, targets, n_draws, seed, batch_size,
                                                   matmul)))
    return standardized_null(r, fit.part(targets))


def _bh_candidates(t: np.ndarray, dof: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, |t|) of the entries of t (k, G), dof (G,), that BH at q can discover in their row.

    A p-value is never below that of its |t| at the largest dof (the t tail is heavier
    for fewer degrees of freedom). BH at q over a row's m tests makes D discoveries, all
    with p <= q D / m; so with c the count of |t| whose largest-dof p is <= q c / m,
    iterated down from c = m (it stays >= D: induction), only those c can be discoveries.
    Candidates come row by row (np.nonzero's order).
    """
    n_tests, largest_dof = t.shape[1], np.max(dof)
    bound = stats.t.isf(q / 2, largest_dof) * (1 - 1e-12)
    starts, cols, values = row_exceedances(t, bound)  # c = m: p <= q (compiled passes, no (k, G) temporaries)
    starts, count = starts[:-1], np.diff(starts)
    for _ in range(100):  # c only decreases, a few passes over the candidates left
        level = np.maximum(q * count / n_tests, 1e-300)
        bound = np.where(count > 0, stats.t.isf(level / 2, largest_dof) * (1 - 1e-12), np.inf)
        fewer = count.copy()
        keep_at_least(starts, fewer, cols, values, bound)
        if np.array_equal(fewer, count):
            break
        count = fewer
    kept = np.concatenate([np.arange(a, a + c) for a, c in zip(starts, count, strict=True)])
    return np.repeat(np.arange(t.shape[0]), count), cols[kept], values[kept]


def _student_p(dofs: np.ndarray, abs_t: np.ndarray) -> np.ndarray:
    """Two-sided Student p of |t| ``abs_t`` with ``dofs``, in parallel chunks (~0.4 us each)."""
    parts = np.array_split(np.arange(abs_t.size), max(1, min(8, abs_t.size // 100_000)))
    return 2.0 * np.concatenate(_in_parallel([lambda part=part: special.stdtr(dofs[part], -abs_t[part])
                                              for part in parts]))


def atom_discoveries(t: np.ndarray, dof: np.ndarray, q: float, n_tests: int = 1) -> np.ndarray:
    """(k, G) bool: BH at q within each row (atom map) of the Student p of t (k, G), dof (G,), each
    Bonferroni-corrected for ``n_tests`` (min(n_tests p, 1)).

    Equal to ``fdr_bh`` (axis=1) of every entry's min(n_tests p, 1) (tested), from the
    candidates alone (`_bh_candidates`): no (k, G) array of p-values is formed. A row's c
    candidates are all discoveries when each has p <= q c / m; those whose |t| passes that
    level even at the smallest dof need no p, so p is computed for the few near it (or,
    when one of them fails, for the row's candidates, and BH decides).
    """
    q_each = q / n_tests
    rows, cols, values = _bh_candidates(t, dof, q_each)
    n, smallest_dof = t.shape[1], np.min(dof)
    found = np.zeros(t.shape, dtype=bool)
    starts = np.searchsorted(rows, np.arange(t.shape[0] + 1))
    counts = np.diff(starts)
    sure_bound = np.where(counts > 0, stats.t.isf(np.maximum(q_each * counts / n, 1e-300) / 2, smallest_dof), np.inf)
    unsure = values < sure_bound[rows] * (1 + 1e-12)
    p_unsure = np.minimum(_student_p(dof[cols[unsure]], values[unsure]) * n_tests, 1.0)
    failed = np.zeros(t.shape[0], dtype=bool)
    np.logical_or.at(failed, rows[unsure], p_unsure > (q * counts / n)[rows[unsure]])
    for row in range(t.shape[0]):
        columns = cols[starts[row]:starts[row + 1]]
        if not failed[row]:  # D = c: every candidate is a discovery
            found[row, columns] = True
            continue
        row_p = np.minimum(_student_p(dof[columns], values[starts[row]:starts[row + 1]]) * n_tests, 1.0)
        ranked = np.sort(row_p)
        below = np.flatnonzero(ranked <= q * np.arange(1, ranked.size + 1) / n)
        if below.size:  # BH: every p up to the largest p_(i) <= q i / m
            found[row, columns[row_p <= ranked[below[-1]]]] = True
    return found


#: the fewest null exceedances `tail_p_values` fits a tail to; the null needs 10x as many values
MIN_EXCEEDANCES = 250


def tail_p_values(z: np.ndarray, z_null: np.ndarray, tail_fraction: float = 0.01,
                  min_exceedances: int = MIN_EXCEEDANCES) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p of statistics ``z`` against a null sample, with a fitted tail.

    Below the null's upper ``tail_fraction`` quantile u, p = (1 + #(null >= z)) / (1 + n)
    (the permutation p-value). Above it the empirical p has no resolution left, and
    p = P(null > u) * S(z - u) with S the survival function of a generalized Pareto
    distribution fitted by maximum likelihood to the null's exceedances of u (Winkler
    et al. 2016, as in FSL PALM); it joins the empirical p at u. A fitted shape < 0 (a
    tail with an end point, beyond which p would be 0) is replaced by the exponential
    tail (shape 0), which is conservative for Gaussian-like nulls.

    Returns
    -------
    p : (G,) float64; tail : (4,) threshold u, GPD shape, GPD scale, P(null > u).
    """
    z_null = np.sort(np.asarray(z_null, dtype=np.float64)[np.isfinite(z_null)])
    n = z_null.size
    n_tail = max(min_exceedances, int(tail_fraction * n))
    if n < 10 * n_tail:
        raise ValueError(f"the refit null has {n} finite values; need >= {10 * n_tail} "
                         "(raise encoding.n_refit or encoding.refit_targets)")
    threshold = z_null[n - n_tail - 1]
    excess = z_null[n - n_tail:] - threshold
    shape, _, scale = stats.genpareto.fit(excess, floc=0.0)
    if shape < 0:  # a bounded tail would give p = 0 beyond its end: never assume lighter than exponential
        shape, scale = 0.0, float(excess.mean())
    z = np.asarray(z, dtype=np.float64)
    n_exceed = n - np.searchsorted(z_null, z - 1e-12, side="left")
    p = (1.0 + n_exceed) / (1.0 + n)
    above = z > threshold
    share = (1.0 + n_tail) / (1.0 + n)
    p[above] = share * stats.genpareto.sf(z[above] - threshold, shape, 0.0, scale)
    return np.maximum(p, np.finfo(float).tiny), np.array([threshold, shape, scale, share])


def _in_parallel(jobs: list) -> list:
    """Results of independent jobs (callables), in order, on the caller's numba threads.

    Jobs (the SDL fits, batches of targets, chunks of null draws) run side by side, each
    with one BLAS and one numba thread, so the cores are not oversubscribed (numpy and
    the compiled kernels release the GIL). Jobs that do not fill a last round of workers
    (the 5th of 5 on 2 cores) share the idle cores as BLAS threads: a lone SDL fit runs
    its products on 2 threads (~25% faster here), while running numba and BLAS threads
    at once only makes them spin against each other.
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    def single_threaded(job):
        numba.set_num_threads(1)  # per calling thread
        return job()

    threads = max(1, numba.get_num_threads())  # the caller's thread budget
    workers = min(len(jobs), threads)
    if workers <= 1:
        return [job() for job in jobs]
    full = len(jobs) - len(jobs) % workers
    results = []
    with ThreadPoolExecutor(workers) as pool:
        with threadpool_limits(limits=1):
            results += list(pool.map(single_threaded, jobs[:full]))
        if full < len(jobs):
            with threadpool_limits(limits=max(1, threads // (len(jobs) - full))):
                results += list(pool.map(single_threaded, jobs[full:]))
    return results


def _matmul(backend: str):
    """a @ b on the himalaya backend (numpy in, numpy out), or numpy's for "numpy"."""
    if backend == "numpy":
        return None
    import importlib

    bk = importlib.import_module(f"himalaya.backend.{backend}")  # the module, not himalaya's global state

    def matmul(a, b):
        return bk.to_numpy(bk.matmul(bk.asarray(a), bk.asarray(b)))

    return matmul


def dominant_an_direction(x: np.ndarray) -> np.ndarray:
    """(T,) the layer's dominant AN direction: the first principal component of the prepared ANs x (T, N).

    Oriented so that its loadings sum to >= 0, i.e. it correlates positively with the
    mean AN time course (the same convention as the SDL atoms, but for one pattern that
    does not depend on the dictionary). Scaled to unit variance; zeros if x is constant.
    """
    from scipy.sparse.linalg import eigsh  # noqa: PLC0415

    x = np.asarray(x, dtype=np.float64)
    gram = x.T @ x
    if not np.any(gram):
        return np.zeros(len(x))
    if gram.shape[0] > 2:
        _, vector = eigsh(gram, k=1, which="LA", v0=np.ones(gram.shape[0]))
    else:
        vector = np.linalg.eigh(gram)[1][:, -1:]
    vector = vector[:, 0] * (1.0 if vector[:, 0].sum() >= 0 else -1.0)
    component = x @ vector
    component -= component.mean()
    sd = component.std()
    return component / sd if sd > 0 else np.zeros(len(x))


def reference_timecourses(x: np.ndarray, ans: np.ndarray, runs_full: np.ndarray, keep: np.ndarray, tr: float,
                          references: Mapping[str, np.ndarray] | None, temporal_model: str = "glover",
                          lag: int = 0) -> np.ndarray:
    """(T_kept, 1 + n_references) z-scored time courses BN signs are read against.

    Column 0: `dominant_an_direction` of the prepared ANs x; then each reference
    (T_full,) prepared like the ANs (`prepare_regressors` with the same temporal model
    and lag, kept TRs, z-scored per run) and z-scored over the kept TRs (constant ones
    stay 0).
    """
    columns = [dominant_an_direction(x)]
    if references:
        named = np.column_stack([np.asarray(v, dtype=np.float64) for v in references.values()])
        if named.shape[0] != len(ans):
            raise ValueError(f"references have {named.shape[0]} TRs but the ANs {len(ans)}; both must cover "
                             "every TR of the run timeline")
        prepared, _ = prepare_regressors(named, runs_full, keep, tr, temporal_model, lag)
        prepared = prepared.astype(np.float64) - prepared.mean(axis=0)
        sd = prepared.std(axis=0)
        columns += list(np.divide(prepared, sd, out=np.zeros_like(prepared), where=sd > 0).T)
    return np.column_stack(columns)


def response_polarity(bn: np.ndarray, reference_r: np.ndarray) -> np.ndarray:
    """Sign of each BN relative to a reference: that of the r of its fitted response with it (+1, -1; 0 if no BN)."""
    return np.where(np.asarray(bn, dtype=bool), np.sign(np.asarray(reference_r)), 0).astype(np.int8)


def layer_polarity(bn: np.ndarray, atom_t: np.ndarray, atom_pos: np.ndarray, atom_neg: np.ndarray) -> np.ndarray:
    """Sign of each BN: that of its strongest significant atom (+1, -1; 0 if none or not a BN)."""
    significant = atom_pos | atom_neg
    strength = np.where(significant, np.abs(atom_t), -np.inf)
    best = np.argmax(strength, axis=0)
    has = significant.any(axis=0) & bn
    sign = np.sign(atom_t[best, np.arange(atom_t.shape[1])])
    return np.where(has, sign, 0).astype(np.int8)
