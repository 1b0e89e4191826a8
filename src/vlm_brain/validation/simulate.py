"""Simulated BOLD with a planted truth, built on a model's own AN features.

The truth is planted in the space the study measures: the SDL atoms of a layer. For
each of the two layers (one image-stream, one text-stream) the dictionary is fitted
exactly as `vlm_brain.encoding.layer.encode_layer` refits it on all runs (same
prepared regressors, atoms, L1 penalty, iterations and seed), and the ``n_drivers``
atoms carrying the most loading energy among those present in every run drive the
BOLD (`select_drivers`). Grayordinates fall in four
sets:

- ``image_only``: driven by one image atom;
- ``text_only``: driven by one text atom;
- ``shared``: driven by one image atom and one text atom (the planted overlap);
- ``none``: noise only.

Each driven grayordinate has one sign (+1 or -1) applied to everything that drives it,
so its response to its driving atom(s) is positive or negative, which is what
`layer_polarity` reads back. The signal is the HRF-convolved driver time courses (the
regressors come from `prepare_regressors`: Glover HRF within runs, excluded TRs
dropped, z-scored per run), scaled to unit variance; AR(1) noise is scaled to variance
1 / snr on every grayordinate (sample variances over the kept TRs, so the realised SNR
is the requested one), then the data are z-scored per run like cleaned fMRI.

The two layers' features need not be independent (a movie's captions describe what is
on screen): ``cross_r2`` says how much of each layer's drivers the other layer's atoms
explain. The more they share, the more the text layer also predicts image-driven
grayordinates (and vice versa), which raises the recovered image/text BN overlap above
the planted one: the BN maps say what a layer predicts, not what drives a grayordinate.

Two further plants: stimulus features driving their own sets with a positive response
(`simulate_feature_bold`), and networks answering their own atom with the canonical HRF
delayed by a network-specific lag (`simulate_lag_bold`), for the temporal models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlm_brain.encoding._validation import run_slices
from vlm_brain.encoding.ridge import standardize_train
from vlm_brain.encoding.sdl import atom_timecourses, fit_layer_dictionary
from vlm_brain.encoding.simulation import ar1
from vlm_brain.encoding.temporal import (
    convolve_hrf,
    delay_per_run,
    glover_kernel,
    prepare_regressors,
    standardized_full,
    zscore_per_run,
)

#: fewest kept (fitted) TRs a simulated run may have
MIN_KEPT_PER_RUN = 10


# --------------------------------------------------------------------------- data length
def crop_runs(
    runs: np.ndarray, keep: np.ndarray, n_trs: int | None, extend: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a shorter (or longer) timeline with ``n_trs`` TRs in every run.

    Shorter: the first ``n_trs`` TRs of each run (rest and excluded TRs included, with
    their keep flags). Longer than a run: refused unless ``extend``, in which case the
    run continues into the following runs' TRs (cyclically, then repeating the whole
    timeline), so a synthetic run of HCP length (~900 TRs) can be built from short
    features; the features then repeat after the full timeline's length.

    Parameters
    ----------
    runs, keep : (T_full,) run labels (contiguous) and kept-for-fitting flags.
    n_trs : TRs per simulated run (full timeline, before exclusion); None keeps the runs
        as they are.
    extend : allow ``n_trs`` beyond a run's length (see above).

    Returns
    -------
    rows : (n_runs * n_trs,) indices into the full timeline.
    runs_new : labels 0..n_runs-1 of the simulated runs.
    keep_new : keep flags of the selected rows.
    """
    runs = np.asarray(runs)
    keep = np.asarray(keep, dtype=bool)
    slices = run_slices(runs)
    if len(slices) < 2:
        raise ValueError(f"the features have {len(slices)} run(s); leave-one-run-out needs >= 2")
    lengths = [s.stop - s.start for s in slices]
    if n_trs is None:
        rows = np.arange(len(runs))
        labels = np.repeat(np.arange(len(slices)), lengths)
    else:
        n_trs = int(n_trs)
        if n_trs < 1:
            raise ValueError(f"n_trs (validation.n_trs) must be >= 1, got {n_trs}")
        if n_trs > min(lengths) and not extend:
            raise ValueError(
                f"n_trs={n_trs} (validation.n_trs) is longer than the shortest run of the "
                f"features ({min(lengths)} TRs; runs have {lengths}); use shorter lengths "
                "or set validation.extend_runs: true to continue each run into the next ones"
            )
        picked = []
        for j, s in enumerate(slices):
            if n_trs <= lengths[j]:
                picked.append(np.arange(s.start, s.start + n_trs))
                continue
            order = np.concatenate([np.arange(slices[(j + i) % len(slices)].start,
                                              slices[(j + i) % len(slices)].stop)
                                    for i in range(len(slices))])
            picked.append(np.resize(order, n_trs))  # np.resize repeats when too short
        rows = np.concatenate(picked)
        labels = np.repeat(np.arange(len(slices)), n_trs)
    keep_new = keep[rows]
    kept = np.bincount(labels[keep_new], minlength=len(slices))
    if kept.min() < MIN_KEPT_PER_RUN:
        raise ValueError(
            f"n_trs={n_trs} (validation.n_trs) leaves {kept.min()} kept TRs in a run "
            f"(kept per run: {kept.tolist()}); at least {MIN_KEPT_PER_RUN} are needed"
        )
    return rows, labels, keep_new


# --------------------------------------------------------------------------- planted truth
@dataclass(frozen=True)
class PlantedTruth:
    """What drives each grayordinate.

    Attributes
    ----------
    image, text : (G,) bool, driven by an image-layer / text-layer atom.
    sign : (G,) int8, +1 / -1 on driven grayordinates, 0 elsewhere.
    image_driver, text_driver : (G,) int, index (0..n_drivers-1) of the driving atom
        among the layer's drivers, -1 where not driven by that layer.
    """

    image: np.ndarray
    text: np.ndarray
    sign: np.ndarray
    image_driver: np.ndarray
    text_driver: np.ndarray

    @property
    def n_targets(self) -> int:
        return int(self.image.size)

    @property
    def shared(self) -> np.ndarray:
        return self.image & self.text

    @property
    def image_only(self) -> np.ndarray:
        return self.image & ~self.text

    @property
    def text_only(self) -> np.ndarray:
        return self.text & ~self.image

    @property
    def driven(self) -> np.ndarray:
        return self.image | self.text

    @property
    def overlap(self) -> float:
        """Planted Dice of the image-driven and text-driven sets (NaN if both empty)."""
        total = int(self.image.sum() + self.text.sum())
        return float(2 * self.shared.sum() / total) if total else float("nan")

    def labels(self) -> np.ndarray:
        """(G,) set name per grayordinate: image_only, text_only, shared or none."""
        out = np.full(self.n_targets, "none", dtype=object)
        out[self.image_only] = "image_only"
        out[self.text_only] = "text_only"
        out[self.shared] = "shared"
        return out


def no_truth(n_targets: int) -> PlantedTruth:
    """The truth of a pure-noise condition: nothing is driven."""
    empty = np.zeros(n_targets, dtype=bool)
    none = np.full(n_targets, -1, dtype=np.int64)
    return PlantedTruth(empty, empty.copy(), np.zeros(n_targets, np.int8), none, none.copy())


def plant_truth(
    n_targets: int,
    frac_image: float,
    frac_text: float,
    overlap: float,
    frac_negative: float,
    n_drivers: int,
    rng: np.random.Generator,
) -> PlantedTruth:
    """Random grayordinate sets of the requested sizes, overlap and signs.

    ``round(frac_image * G)`` grayordinates are image-driven and ``round(frac_text * G)``
    text-driven; ``round(overlap * min(n_image, n_text))`` of them are driven by both
    (with equal set sizes, ``overlap`` is the planted Dice). ``round(frac_negative *
    n_driven)`` driven grayordinates are negative. Drivers are assigned in turn so each
    atom drives about the same number of grayordinates.
    """
    for name, value in (("frac_image", frac_image), ("frac_text", frac_text),
                        ("overlap", overlap), ("frac_negative", frac_negative)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if n_drivers < 1:
        raise ValueError(f"n_drivers must be >= 1, got {n_drivers}")
    n_image, n_text = round(frac_image * n_targets), round(frac_text * n_targets)
    n_shared = round(overlap * min(n_image, n_text))
    n_driven = n_image + n_text - n_shared
    if n_driven > n_targets:
        raise ValueError(
            f"{n_image} image-driven + {n_text} text-driven - {n_shared} shared = {n_driven} "
            f"grayordinates do not fit in n_targets={n_targets}; lower frac_image / frac_text"
        )
    order = rng.permutation(n_targets)
    shared = order[:n_shared]
    image_only = order[n_shared:n_image]
    text_only = order[n_image:n_driven]
    image = np.zeros(n_targets, dtype=bool)
    text = np.zeros(n_targets, dtype=bool)
    image[np.r_[shared, image_only]] = True
    text[np.r_[shared, text_only]] = True

    sign = np.zeros(n_targets, dtype=np.int8)
    driven = np.flatnonzero(image | text)
    sign[driven] = 1
    sign[rng.choice(driven, size=round(frac_negative * driven.size), replace=False)] = -1

    def assign(mask: np.ndarray) -> np.ndarray:
        out = np.full(n_targets, -1, dtype=np.int64)
        idx = np.flatnonzero(mask)
        out[idx] = rng.permutation(np.arange(idx.size) % n_drivers)
        return out

    return PlantedTruth(image=image, text=text, sign=sign,
                        image_driver=assign(image), text_driver=assign(text))


# --------------------------------------------------------------------------- drivers
@dataclass(frozen=True)
class LayerAtoms:
    """A layer's SDL atoms as `encode_layer` refits them on all runs.

    Attributes
    ----------
    regressors : (T_kept, k) float64 standardised atom time courses (the atom model's
        regressors of the full refit).
    loadings : (k, N) AN loadings.
    energy : (k,) loading norm of each atom (the AN variance it carries).
    run_share : (k, n_runs) fraction of each atom regressor's sum of squares in each
        run (1 / n_runs each for a pattern spread evenly over the runs).
    """

    regressors: np.ndarray
    loadings: np.ndarray
    energy: np.ndarray
    run_share: np.ndarray


def layer_atoms(x: np.ndarray, n_atoms: int, sdl_alpha: float, sdl_max_iter: int, seed: int,
                runs: np.ndarray | None = None) -> LayerAtoms:
    """The dictionary `encode_layer` fits on all runs (the same `fit_layer_dictionary` call).

    Parameters
    ----------
    x : (T_kept, N) prepared regressors of the layer (`prepare_regressors` output).
    runs : (T_kept,) run labels of the rows (one run if None), for ``run_share``.
    """
    loadings = fit_layer_dictionary(x, n_atoms, sdl_alpha, seed, max_iter=sdl_max_iter).loadings
    regressors, _ = standardize_train(atom_timecourses(x, loadings), x[:0, :n_atoms])
    regressors = np.asarray(regressors, dtype=np.float64)
    slices = run_slices(np.zeros(len(x)) if runs is None else np.asarray(runs))
    power = np.stack([(regressors[rows] ** 2).sum(axis=0) for rows in slices], axis=1)  # (k, n_runs)
    total = power.sum(axis=1, keepdims=True)
    run_share = np.divide(power, total, out=np.zeros_like(power), where=total > 0)
    return LayerAtoms(regressors=regressors, loadings=loadings, energy=np.linalg.norm(loadings, axis=1),
                      run_share=run_share)


def explained_by(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(k_a,) R^2 of each column of ``a`` regressed on all columns of ``b`` (least squares)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    coef, *_ = np.linalg.lstsq(b, a, rcond=None)
    total = (a * a).sum(axis=0)
    residual = ((a - b @ coef) ** 2).sum(axis=0)
    return np.divide(total - residual, total, out=np.zeros_like(total), where=total > 0)


def select_drivers(atoms: LayerAtoms, n_drivers: int, min_run_share: float = 0.4) -> np.ndarray:
    """Atom indices of a layer's drivers, in decreasing order of loading norm.

    The drivers are the ``n_drivers`` atoms with the largest loading norm (the dominant
    patterns of the layer) among those present in every run: at least ``min_run_share``
    times the even share (1 / n_runs) of the atom's variance in each run (0.4 with 4
    runs: >= 10 % in every run). A pattern (almost) absent from a run cannot be learned
    when that run is held out, so leave-one-run-out cross-validation could not recover a
    signal planted on it whatever the method; if too few atoms qualify, the most evenly
    spread of the rest complete the set.
    """
    k = atoms.energy.size
    if not 1 <= n_drivers <= k:
        raise ValueError(f"n_drivers must be between 1 and n_atoms ({k}), got {n_drivers}")
    used = np.flatnonzero(atoms.energy > 0)
    if used.size < n_drivers:
        raise ValueError(f"the layer's SDL has {used.size} atoms with loadings, fewer than n_drivers={n_drivers}")
    n_runs = atoms.run_share.shape[1]
    spread = atoms.run_share[used].min(axis=1) * n_runs  # 1 = perfectly even
    by_energy = used[np.argsort(-atoms.energy[used], kind="stable")]
    good = [i for i in by_energy if spread[np.searchsorted(used, i)] >= min_run_share]
    if len(good) < n_drivers:
        rest = [i for i in used[np.argsort(-spread, kind="stable")] if i not in good]
        good += rest[: n_drivers - len(good)]
    chosen = np.array(good[:n_drivers], dtype=np.int64)
    return chosen[np.argsort(-atoms.energy[chosen], kind="stable")]


# --------------------------------------------------------------------------- BOLD
@dataclass(frozen=True)
class SimulatedBold:
    """Simulated fMRI of the kept TRs and what was planted in it.

    Attributes
    ----------
    y : (T_kept, G) float32 data, z-scored per run (what `encode_layer` takes).
    signal : (T_kept, G) noiseless signal (0 on non-driven grayordinates), unit variance
        on driven ones.
    noise : (T_kept, G) AR(1) noise, variance 1 / snr (unit variance under the null).
    runs_kept : (T_kept,) run labels of the kept TRs.
    truth : the planted mapping.
    image_atoms, text_atoms : (n_drivers,) atom indices of the drivers in each layer's
        refitted SDL (empty under the null).
    snr : the requested signal-to-noise variance ratio (0 under the null).
    image_loadings, text_loadings : (k, N) loadings of each layer's dictionary (None
        under the null): `encode_layer`'s refit must find the same ones.
    cross_r2 : mean R^2 of each layer's drivers explained by the other layer's atoms
        (NaN under the null): how separable the planted image and text signals are.
    """

    y: np.ndarray
    signal: np.ndarray
    noise: np.ndarray
    runs_kept: np.ndarray
    truth: PlantedTruth
    image_atoms: np.ndarray
    text_atoms: np.ndarray
    snr: float
    image_loadings: np.ndarray | None = None
    text_loadings: np.ndarray | None = None
    cross_r2: float = float("nan")

    @property
    def realised_snr(self) -> np.ndarray:
        """(G,) var(signal) / var(noise) per grayordinate (0 where not driven)."""
        return self.signal.var(axis=0) / self.noise.var(axis=0)


def simulate_bold(
    image_ans: np.ndarray,
    text_ans: np.ndarray,
    runs: np.ndarray,
    keep: np.ndarray,
    tr: float,
    *,
    snr: float,
    n_targets: int = 2000,
    frac_image: float = 0.15,
    frac_text: float = 0.15,
    overlap: float = 0.3,
    frac_negative: float = 0.5,
    n_drivers: int = 3,
    min_run_share: float = 0.4,
    noise_ar: float = 0.3,
    n_atoms: int = 16,
    sdl_alpha: float = 1.0,
    sdl_max_iter: int = 5,
    seed: int = 0,
    null: bool = False,
) -> SimulatedBold:
    """BOLD driven by chosen atoms of an image layer and a text layer, plus AR(1) noise.

    Parameters
    ----------
    image_ans, text_ans : (T, N_image) / (T, N_text) AN time series of the simulated
        timeline (all TRs of all runs, e.g. rows picked by `crop_runs`).
    runs, keep : (T,) run labels and kept flags of that timeline.
    tr : repetition time in seconds.
    snr : signal-to-noise variance ratio on driven grayordinates (> 0).
    n_targets : G, number of simulated grayordinates.
    frac_image, frac_text, overlap, frac_negative, n_drivers : see `plant_truth`.
    min_run_share : drivers are present in every run, see `select_drivers`.
    noise_ar : AR(1) coefficient of the noise (restarted in each run).
    n_atoms, sdl_alpha, sdl_max_iter, seed : the SDL settings `encode_layer` will be
        called with (the drivers are atoms of that same dictionary); ``seed`` also seeds
        the planted sets and the noise.
    null : pure noise: no signal, features independent of the BOLD.
    """
    rng = np.random.default_rng([seed, 7919])
    x_image, runs_kept = prepare_regressors(image_ans, runs, keep, tr)
    n_kept = len(runs_kept)
    noise = ar1(n_kept, n_targets, noise_ar, rng, runs_kept)
    noise -= noise.mean(axis=0)
    if null:
        noise /= noise.std(axis=0)
        empty = np.zeros(0, dtype=np.int64)
        return SimulatedBold(y=zscore_per_run(noise, runs_kept), signal=np.zeros((n_kept, n_targets)),
                             noise=noise, runs_kept=runs_kept, truth=no_truth(n_targets),
                             image_atoms=empty, text_atoms=empty.copy(), snr=0.0)
    if snr <= 0:
        raise ValueError(f"snr must be > 0 (use null=True for pure noise), got {snr}")
    x_text, _ = prepare_regressors(text_ans, runs, keep, tr)
    truth = plant_truth(n_targets, frac_image, frac_text, overlap, frac_negative, n_drivers, rng)
    sdl = (n_atoms, sdl_alpha, sdl_max_iter, seed)
    image_layer = layer_atoms(x_image, *sdl, runs=runs_kept)
    text_layer = layer_atoms(x_text, *sdl, runs=runs_kept)
    image_atoms = select_drivers(image_layer, n_drivers, min_run_share)
    text_atoms = select_drivers(text_layer, n_drivers, min_run_share)
    image_drivers = image_layer.regressors[:, image_atoms]
    text_drivers = text_layer.regressors[:, text_atoms]
    cross_r2 = float(np.mean(np.r_[
        explained_by(image_drivers, text_layer.regressors[:, text_layer.energy > 0]),
        explained_by(text_drivers, image_layer.regressors[:, image_layer.energy > 0])]))

    signal = np.zeros((n_kept, n_targets))
    for mask, which, drivers in ((truth.image, truth.image_driver, image_drivers),
                                 (truth.text, truth.text_driver, text_drivers)):
        idx = np.flatnonzero(mask)
        signal[:, idx] += drivers[:, which[idx]]
    driven = truth.driven
    signal[:, driven] -= signal[:, driven].mean(axis=0)
    std = signal[:, driven].std(axis=0)
    if np.any(std == 0):
        raise ValueError("a planted signal is constant over the kept TRs (image and text drivers cancel)")
    signal[:, driven] *= truth.sign[driven] / std
    noise /= noise.std(axis=0) * np.where(driven, np.sqrt(snr), 1.0)
    y = zscore_per_run(signal + noise, runs_kept)
    return SimulatedBold(y=y, signal=signal, noise=noise, runs_kept=runs_kept, truth=truth,
                         image_atoms=image_atoms, text_atoms=text_atoms, snr=float(snr),
                         image_loadings=image_layer.loadings, text_loadings=text_layer.loadings,
                         cross_r2=cross_r2)


# --------------------------------------------------------------------------- stimulus-feature plant
@dataclass
class FeaturePlant:
    """BOLD driven by stimulus features, each with a uniformly positive response on its own set.

    Attributes
    ----------
    y : (T_kept, G) float32 data, z-scored per run.
    runs_kept : (T_kept,) run labels of the kept TRs.
    sets : {feature: (G,) bool} the grayordinates it drives (disjoint sets).
    """

    y: np.ndarray
    runs_kept: np.ndarray
    sets: dict[str, np.ndarray]


def simulate_feature_bold(features: dict[str, np.ndarray], runs: np.ndarray, keep: np.ndarray, tr: float, *,
                          snr: float, n_targets: int = 2000, frac_per_feature: float = 0.15, noise_ar: float = 0.3,
                          seed: int = 0) -> FeaturePlant:
    """Each feature drives its own random set of grayordinates, all with a positive response.

    The truth lives in the stimulus, not in any model's atoms: the signal of feature f's
    set is f convolved with the HRF (`prepare_regressors`: Glover HRF within runs,
    excluded TRs dropped, z-scored per run), unit variance, plus AR(1) noise of variance
    1 / snr; the rest is noise only. A BN of such a set whose sign is read against f
    (`encode_layer`'s ``references``) should be positive, whatever the model.

    Parameters
    ----------
    features : {name: (T,) time course over the simulated timeline (all TRs)}.
    runs, keep, tr : that timeline (see `simulate_bold`).
    snr : signal-to-noise variance ratio on driven grayordinates (> 0).
    frac_per_feature : fraction of the G grayordinates each feature drives.
    """
    if snr <= 0:
        raise ValueError(f"snr must be > 0, got {snr}")
    if frac_per_feature * len(features) > 1:
        raise ValueError(f"{len(features)} features x frac_per_feature {frac_per_feature} exceed all grayordinates")
    rng = np.random.default_rng([seed, 104729])
    names = list(features)
    drivers, runs_kept = prepare_regressors(np.column_stack([features[n] for n in names]), runs, keep, tr)
    if np.any(drivers.std(axis=0) == 0):
        constant = [n for n, sd in zip(names, drivers.std(axis=0), strict=True) if sd == 0]
        raise ValueError(f"stimulus feature(s) {constant} are constant over the kept TRs: nothing to plant")
    order = rng.permutation(n_targets)
    per_set = int(round(frac_per_feature * n_targets))
    sets = {}
    signal = np.zeros((len(runs_kept), n_targets))
    for j, name in enumerate(names):
        mask = np.zeros(n_targets, dtype=bool)
        mask[order[j * per_set:(j + 1) * per_set]] = True
        sets[name] = mask
        driver = drivers[:, j] - drivers[:, j].mean()
        signal[:, mask] = (driver / driver.std())[:, None]
    driven = np.any(np.column_stack(list(sets.values())), axis=1)
    noise = ar1(len(runs_kept), n_targets, noise_ar, rng, runs_kept)
    noise -= noise.mean(axis=0)
    noise /= noise.std(axis=0) * np.where(driven, np.sqrt(snr), 1.0)
    return FeaturePlant(y=zscore_per_run(signal + noise, runs_kept).astype(np.float32), runs_kept=runs_kept,
                        sets=sets)


# --------------------------------------------------------------------------- network-specific lags
def hrf_peak_delay(tr: float) -> int:
    """TRs from an impulse to the peak of the canonical Glover HRF (5 at TR 1 s)."""
    return int(np.argmax(glover_kernel(tr)))


def delayed_hrf_response(timecourses: np.ndarray, runs: np.ndarray, tr: float, lag: int) -> np.ndarray:
    """(T, n) Glover HRF responses to (T, n) full-timeline time courses, delayed by ``lag`` TRs within runs.

    The response keeps the canonical shape (rise, peak, undershoot) and peaks ``lag`` TRs
    later than the canonical one: a network that integrates longer, or whose
    hemodynamics are slower. Nothing crosses a run start.
    """
    return delay_per_run(convolve_hrf(timecourses, runs, tr).astype(np.float64), runs, int(lag))


@dataclass(frozen=True)
class LagPlant:
    """BOLD of networks that answer their atom with a delayed canonical HRF.

    Attributes
    ----------
    y : (T_kept, G) float32 data, z-scored per run.
    runs_kept : (T_kept,) run labels of the kept TRs.
    network : (G,) int, network index 0..n-1 of each grayordinate, -1 where not driven.
    lags : (n,) int, each network's planted lag (TRs after the canonical HRF).
    atoms : (n,) int, each network's driving atom in the stimulus-time dictionary (the
        dictionary `encode_layer` refits with ``temporal_model: fir``).
    loadings : (k, N) loadings of that dictionary.
    peak_delay : TRs from stimulus to the canonical HRF's peak; a network's response
        peaks ``peak_delay + lag`` TRs after the stimulus (FIR's expected strongest delay).
    """

    y: np.ndarray
    runs_kept: np.ndarray
    network: np.ndarray
    lags: np.ndarray
    atoms: np.ndarray
    loadings: np.ndarray
    peak_delay: int

    def members(self, i: int) -> np.ndarray:
        """(G,) bool, the grayordinates of network ``i``."""
        return self.network == i


def simulate_lag_bold(ans: np.ndarray, runs: np.ndarray, keep: np.ndarray, tr: float, *, lags: list[int],
                      snr: float, n_targets: int = 2000, frac_per_network: float = 0.1, min_run_share: float = 0.4,
                      noise_ar: float = 0.3, n_atoms: int = 16, sdl_alpha: float = 1.0, sdl_max_iter: int = 5,
                      seed: int = 0) -> LagPlant:
    """Network i: its own atom of one layer, through the Glover HRF delayed by ``lags[i]`` TRs, plus AR(1) noise.

    The atoms are those of the layer's stimulus-time dictionary (ANs z-scored per run, no
    HRF: what `encode_layer` fits with ``temporal_model: fir``; same SDL settings and seed),
    the ``len(lags)`` drivers of `select_drivers`. Each atom's time course on the full
    timeline (rest included, `standardized_full`) is convolved with the canonical HRF and
    delayed within runs (`delayed_hrf_response`), so a lag of 0 is the canonical truth of
    the main plant. Signals have unit variance over the kept TRs, noise 1 / snr on driven
    grayordinates and 1 elsewhere; the data are z-scored per run.

    Parameters
    ----------
    ans : (T, N) AN time series of the simulated timeline (all TRs).
    runs, keep : (T,) run labels and kept flags; tr : repetition time (s).
    lags : one lag (TRs >= 0) per network.
    frac_per_network : fraction of the G grayordinates in each (disjoint) network.
    """
    lags_arr = np.asarray(lags, dtype=np.int64)
    if lags_arr.ndim != 1 or lags_arr.size < 1 or np.any(lags_arr < 0):
        raise ValueError(f"lags must be a non-empty list of integer TRs >= 0, got {lags}")
    if snr <= 0:
        raise ValueError(f"snr must be > 0, got {snr}")
    per_network = int(round(frac_per_network * n_targets))
    if per_network < 1 or per_network * lags_arr.size > n_targets:
        raise ValueError(f"{lags_arr.size} networks x frac_per_network {frac_per_network} of {n_targets} "
                         "grayordinates: each needs >= 1 grayordinate and all must fit")
    rng = np.random.default_rng([seed, 15485863])
    x, runs_kept = prepare_regressors(ans, runs, keep, tr, "none")
    layer = layer_atoms(x, n_atoms, sdl_alpha, sdl_max_iter, seed, runs=runs_kept)
    atoms = select_drivers(layer, lags_arr.size, min_run_share)
    timecourses = atom_timecourses(standardized_full(ans, runs, keep), layer.loadings)[:, atoms]
    network = np.full(n_targets, -1, dtype=np.int64)
    order = rng.permutation(n_targets)
    signal = np.zeros((len(runs_kept), n_targets))
    for i, lag in enumerate(lags_arr):
        response = delayed_hrf_response(timecourses[:, i:i + 1], runs, tr, int(lag))[np.asarray(keep), 0]
        response -= response.mean()
        if response.std() == 0:
            raise ValueError(f"network {i}'s response (atom {atoms[i]}, lag {lag}) is constant over the kept TRs")
        members = order[i * per_network:(i + 1) * per_network]
        network[members] = i
        signal[:, members] = (response / response.std())[:, None]
    noise = ar1(len(runs_kept), n_targets, noise_ar, rng, runs_kept)
    noise -= noise.mean(axis=0)
    noise /= noise.std(axis=0) * np.where(network >= 0, np.sqrt(snr), 1.0)
    return LagPlant(y=zscore_per_run(signal + noise, runs_kept).astype(np.float32), runs_kept=runs_kept,
                    network=network, lags=lags_arr, atoms=atoms, loadings=layer.loadings,
                    peak_delay=hrf_peak_delay(tr))
