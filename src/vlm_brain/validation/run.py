"""Run simulated conditions through the real encoding code and measure recovery."""

from __future__ import annotations

import itertools
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from vlm_brain.analyses.redundancy import multi_atom_chance, multi_atom_fraction
from vlm_brain.encoding.layer import encode_layer, layer_polarity, response_polarity
from vlm_brain.encoding.settings import EncodingSettings
from vlm_brain.validation.metrics import condition_metrics
from vlm_brain.validation.simulate import (
    LagPlant,
    crop_runs,
    simulate_bold,
    simulate_feature_bold,
    simulate_lag_bold,
)

logger = logging.getLogger(__name__)


#: how the validation encodes its layers unless its parameters say otherwise (small and fast)
VALIDATION_ENCODING = EncodingSettings(n_atoms=16, sdl_alpha=1.0, sdl_max_iter=5,
                                       alphas=(10.0, 100.0, 1000.0, 10000.0), target_batch_size=4096)


@dataclass(frozen=True)
class ValidationSettings:
    """Everything of a condition except its SNR, data length and seed.

    Attributes
    ----------
    n_targets : simulated grayordinates G.
    frac_image, frac_text, overlap, frac_negative, n_drivers : the planted mapping
        (`vlm_brain.validation.simulate.plant_truth`).
    min_run_share : driver atoms must be present in every run
        (`vlm_brain.validation.simulate.select_drivers`).
    noise_ar : AR(1) coefficient of the BOLD noise.
    encoding : how both layers are encoded (`EncodingSettings`, as in the encoding
        pipeline; its SDL also makes the planted drivers). Its seed is replaced by each
        condition's seed.
    extend_runs : allow data lengths beyond the features' runs (see `crop_runs`).
    blas_threads : BLAS threads while a condition runs (None: leave as is). The
        matrices of a condition are small; on few shared cores threaded BLAS mostly
        spins (a demo-size condition: ~1.5 s with 1 thread, ~10 s with 2).
    """

    n_targets: int = 2000
    frac_image: float = 0.15
    frac_text: float = 0.15
    overlap: float = 0.3
    frac_negative: float = 0.5
    n_drivers: int = 3
    min_run_share: float = 0.4
    noise_ar: float = 0.3
    encoding: EncodingSettings = VALIDATION_ENCODING
    extend_runs: bool = False
    blas_threads: int | None = 1

    @property
    def q(self) -> float:
        return self.encoding.q

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ValidationSettings:
        """Settings from the ``validation`` parameters: the encoding keys (``sdl``, ``alphas``,
        ``q``, ``n_refit``, ...) as in ``encoding``, the others by field name; the rest ignored."""
        defaults = {**VALIDATION_ENCODING.as_dict(), **{"sdl": {"n_atoms": VALIDATION_ENCODING.n_atoms,
                    "alpha": VALIDATION_ENCODING.sdl_alpha, "max_iter": VALIDATION_ENCODING.sdl_max_iter}}}
        merged = {**defaults, **params, "sdl": {**defaults["sdl"], **(params.get("sdl") or {})}}
        encoding = EncodingSettings.from_params(merged, where="validation")
        names = {f.name for f in fields(cls)} - {"encoding"}
        return cls(**{k: v for k, v in params.items() if k in names}, encoding=encoding)

    def simulation_kwargs(self) -> dict[str, Any]:
        keys = ("n_targets", "frac_image", "frac_text", "overlap", "frac_negative", "n_drivers",
                "min_run_share", "noise_ar")
        sdl = {"n_atoms": self.encoding.n_atoms, "sdl_alpha": self.encoding.sdl_alpha,
               "sdl_max_iter": self.encoding.sdl_max_iter}
        return {**{k: getattr(self, k) for k in keys}, **sdl}


def run_condition(
    image_ans: np.ndarray,
    text_ans: np.ndarray,
    runs: np.ndarray,
    keep: np.ndarray,
    tr: float,
    *,
    snr: float,
    n_trs: int | None,
    seed: int,
    null: bool = False,
    settings: ValidationSettings | None = None,
) -> dict[str, Any]:
    """Simulate one condition, encode both layers with `encode_layer`, score recovery.

    Parameters
    ----------
    image_ans, text_ans : (T_full, N) AN time series of an image-stream and a
        text-stream layer, rows aligned with `runs` / `keep`.
    runs, keep : (T_full,) run labels and kept flags of the features' timeline.
    tr : repetition time in seconds.
    snr : signal-to-noise variance ratio of driven grayordinates (ignored if `null`).
    n_trs : TRs per simulated run (first TRs of each run, see `crop_runs`); None: all.
    seed : seeds the planted sets, the noise, the SDL and the circular-shift null.
    null : pure noise (features independent of the BOLD).

    Returns
    -------
    One row: condition ("signal" / "null"), snr (0 under the null), n_trs, seed,
    n_runs, n_kept (fitted TRs), q, the metrics of `condition_metrics`, driver_cross_r2
    (how much of each layer's drivers the other layer's atoms explain), realised_snr
    (median over driven grayordinates), r_planted / r_other (median held-out r of
    driven / not-driven grayordinates, both layers), multi_atom_{image,text} and
    multi_atom_chance_{image,text} (the redundancy measure and its chance level on
    each layer's BNs: the plant gives every grayordinate one driver per layer), seconds.
    """
    settings = settings or ValidationSettings()
    if settings.blas_threads is not None:
        with threadpool_limits(limits=int(settings.blas_threads)):
            return _run_condition(image_ans, text_ans, runs, keep, tr, snr=snr, n_trs=n_trs, seed=seed,
                                  null=null, settings=settings)
    return _run_condition(image_ans, text_ans, runs, keep, tr, snr=snr, n_trs=n_trs, seed=seed, null=null,
                          settings=settings)


def _run_condition(image_ans, text_ans, runs, keep, tr, *, snr, n_trs, seed, null, settings):
    start = time.perf_counter()
    rows, runs_sim, keep_sim = crop_runs(runs, keep, n_trs, extend=settings.extend_runs)
    image = np.asarray(image_ans[rows], dtype=np.float32)
    text = np.asarray(text_ans[rows], dtype=np.float32)
    sim = simulate_bold(image, text, runs_sim, keep_sim, tr, snr=0.0 if null else snr, seed=seed,
                        null=null, **settings.simulation_kwargs())
    encoded = {}
    for name, ans in (("image", image), ("text", text)):
        encoded[name] = encode_layer(ans, sim.y, runs_sim, keep_sim, tr, settings.encoding, seed=seed)
    polarity = {name: layer_polarity(res["bn"], res["atom_t"], res["atom_pos"], res["atom_neg"])
                for name, res in encoded.items()}
    metrics = condition_metrics(encoded["image"]["bn"], encoded["text"]["bn"], polarity["image"],
                                polarity["text"], sim.truth, encoded["image"]["p"], encoded["text"]["p"],
                                q=settings.q)
    driven = sim.truth.driven
    redundancy = {}
    for name, res in encoded.items():  # every planted grayordinate has one driver per layer: no redundancy
        maps = np.asarray(res["atom_pos"]) | np.asarray(res["atom_neg"])
        redundancy[f"multi_atom_{name}"] = multi_atom_fraction(maps, res["bn"])
        redundancy[f"multi_atom_chance_{name}"] = multi_atom_chance(maps, res["bn"])
    r_all = np.r_[encoded["image"]["r"][sim.truth.image], encoded["text"]["r"][sim.truth.text]]
    r_null = np.r_[encoded["image"]["r"][~driven], encoded["text"]["r"][~driven]]
    row = {
        "condition": "null" if null else "signal",
        "snr": 0.0 if null else float(snr),
        "n_trs": int(n_trs) if n_trs is not None else int(np.bincount(runs_sim).max()),
        "seed": int(seed),
        "n_runs": int(len(np.unique(runs_sim))),
        "n_kept": int(len(sim.runs_kept)),
        "q": float(settings.q),
        **metrics,
        **redundancy,
        "driver_cross_r2": sim.cross_r2,
        "realised_snr": float(np.median(sim.realised_snr[driven])) if driven.any() else 0.0,
        "r_planted": float(np.median(r_all)) if r_all.size else float("nan"),
        "r_other": float(np.median(r_null)) if r_null.size else float("nan"),
        "seconds": time.perf_counter() - start,
    }
    logger.info("validation %s snr=%g n_trs=%s seed=%d: sensitivity %.3f, FDR %.3f, sign %.3f, "
                "overlap %.3f (planted %.3f), %.1f s", row["condition"], row["snr"], row["n_trs"], seed,
                row["sensitivity"], row["fdr"], row["sign_accuracy"], row["overlap_recovered"],
                row["overlap_planted"], row["seconds"])
    return row


def run_grid(
    image_ans: np.ndarray,
    text_ans: np.ndarray,
    runs: np.ndarray,
    keep: np.ndarray,
    tr: float,
    *,
    snrs: list[float],
    n_trs: list[int | None],
    seeds: list[int],
    null: bool = True,
    settings: ValidationSettings | None = None,
) -> pd.DataFrame:
    """Every (snr, n_trs, seed) signal condition, plus a pure-noise condition per
    (n_trs, seed) when `null`; one row per condition and seed (see `run_condition`)."""
    settings = settings or ValidationSettings()
    jobs = [(float(s), n, int(seed), False) for n, s, seed in itertools.product(n_trs, snrs, seeds)]
    if null:
        jobs += [(0.0, n, int(seed), True) for n, seed in itertools.product(n_trs, seeds)]
    logger.info("validation: %d conditions x seeds (G=%d, refit null %d draws x %d grayordinates, q=%g)",
                len(jobs), settings.n_targets, settings.encoding.n_refit, settings.encoding.refit_targets, settings.q)
    table = pd.DataFrame([
        run_condition(image_ans, text_ans, runs, keep, tr, snr=snr, n_trs=n, seed=seed, null=is_null,
                      settings=settings)
        for snr, n, seed, is_null in jobs
    ])
    return table


def run_feature_condition(
    image_ans: np.ndarray, text_ans: np.ndarray, features: dict[str, np.ndarray], runs: np.ndarray, keep: np.ndarray,
    tr: float, *, snr: float, n_trs: int | None, seed: int, settings: ValidationSettings | None = None,
    frac_per_feature: float = 0.15,
) -> list[dict[str, Any]]:
    """Plant stimulus features (uniformly positive responses), encode both layers, read BN signs against them.

    Each feature drives its own set (`simulate_feature_bold`); each layer is encoded with
    the features as ``references``. Per layer and feature one row: condition
    ("stimulus"), layer ("image" / "text"), feature, snr, n_trs, seed, n_planted,
    sensitivity (planted grayordinates recovered as BNs), n_detected, positive_fraction
    (of the detected ones, those whose sign relative to the feature is +1; NaN when
    none is detected), fdr (BNs outside every set / BNs), seconds.
    """
    settings = settings or ValidationSettings()
    limits = threadpool_limits(limits=int(settings.blas_threads)) if settings.blas_threads is not None else nullcontext()
    with limits:
        start = time.perf_counter()
        rows_sim, runs_sim, keep_sim = crop_runs(runs, keep, n_trs, extend=settings.extend_runs)
        cropped = {name: np.asarray(values, dtype=np.float64)[rows_sim] for name, values in features.items()}
        plant = simulate_feature_bold(cropped, runs_sim, keep_sim, tr, snr=snr, n_targets=settings.n_targets,
                                      frac_per_feature=frac_per_feature, noise_ar=settings.noise_ar, seed=seed)
        driven = np.any(np.column_stack(list(plant.sets.values())), axis=1)
        out = []
        for layer, ans in (("image", image_ans), ("text", text_ans)):
            res = encode_layer(np.asarray(ans[rows_sim], dtype=np.float32), plant.y, runs_sim, keep_sim, tr,
                               settings.encoding, cropped, seed=seed)
            bn = np.asarray(res["bn"], dtype=bool)
            for row, (name, mask) in enumerate(plant.sets.items(), start=1):
                sign = response_polarity(bn, res["reference_r"][row])
                detected = bn & mask
                out.append({"condition": "stimulus", "layer": layer, "feature": name, "snr": float(snr),
                            "n_trs": int(n_trs) if n_trs is not None else int(np.bincount(runs_sim).max()),
                            "seed": int(seed), "n_planted": int(mask.sum()),
                            "sensitivity": float(detected.sum() / mask.sum()), "n_detected": int(detected.sum()),
                            "positive_fraction": float(np.mean(sign[detected] > 0)) if detected.any() else np.nan,
                            "fdr": float((bn & ~driven).sum() / bn.sum()) if bn.any() else 0.0,
                            "seconds": time.perf_counter() - start})
        for row in out:
            logger.info("validation stimulus plant %s -> %s layer, snr=%g seed=%d: %d of %d detected, %.3f positive",
                        row["feature"], row["layer"], snr, seed, row["n_detected"], row["n_planted"],
                        row["positive_fraction"])
        return out


def settings_dict(settings: ValidationSettings) -> dict[str, Any]:
    """The settings as plain JSON-able values."""
    out = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name != "encoding"}
    return {**out, **settings.encoding.as_dict()}


# --------------------------------------------------------------------------- network-specific lags
def lag_rows(res: dict[str, np.ndarray], plant: LagPlant, model: str, lag_tolerance: int = 1) -> list[dict[str, Any]]:
    """Per network, what one temporal model recovers of a `LagPlant`.

    Parameters
    ----------
    res : `encode_layer` output of the plant's data with temporal model ``model``.
    lag_tolerance : TRs; ``frac_at_lag`` counts the BNs within it of the planted delay.

    Returns
    -------
    One row per network: model, network, lag (planted, TRs), n_planted, sensitivity (its
    grayordinates that are BNs), r_mean (mean held-out r over them), and for FIR
    lag_recovered (median over the network's BNs of its driving atom's strongest delay,
    `atom_delay`, minus the canonical HRF's peak delay; NaN without BNs) and frac_at_lag;
    NaN for the other models.
    """
    bn = np.asarray(res["bn"], dtype=bool)
    rows = []
    for i, lag in enumerate(plant.lags):
        members = plant.members(i)
        hits = bn & members
        recovered = frac = float("nan")
        if "atom_delay" in res and hits.any():
            delay = np.asarray(res["atom_delay"])[plant.atoms[i], hits].astype(np.int64) - plant.peak_delay
            recovered = float(np.median(delay))
            frac = float(np.mean(np.abs(delay - lag) <= lag_tolerance))
        rows.append({"model": model, "network": int(i), "lag": int(lag), "n_planted": int(members.sum()),
                     "sensitivity": float(hits.sum() / members.sum()),
                     "r_mean": float(np.mean(np.asarray(res["r"])[members])),
                     "lag_recovered": recovered, "frac_at_lag": frac})
    return rows


def run_lag_condition(
    ans: np.ndarray, runs: np.ndarray, keep: np.ndarray, tr: float, *, lags: list[int], models: list[str],
    snr: float, n_trs: int | None, seed: int, settings: ValidationSettings | None = None,
    frac_per_network: float = 0.1, fir_delays: int | None = None, lag_tolerance: int = 1,
) -> list[dict[str, Any]]:
    """Networks answering one layer's atoms with network-specific lags, encoded with each temporal model.

    `simulate_lag_bold` plants the networks (Glover HRF delayed by ``lags[i]`` TRs); the
    real `encode_layer` encodes the layer once per model of ``models`` (glover, none,
    fir; FIR with ``fir_delays``, default the encoding's). One row per (model, network),
    see `lag_rows`, plus condition ("lag"), snr, n_trs, seed, n_kept, fir_delays, fdr
    (BNs outside every network / BNs, per model) and seconds (the model's encoding time
    plus its share of the simulation, split over its rows).
    """
    settings = settings or ValidationSettings()
    limits = threadpool_limits(limits=int(settings.blas_threads)) if settings.blas_threads is not None else nullcontext()
    with limits:
        start = time.perf_counter()
        rows_sim, runs_sim, keep_sim = crop_runs(runs, keep, n_trs, extend=settings.extend_runs)
        layer = np.asarray(ans[rows_sim], dtype=np.float32)
        sdl = settings.simulation_kwargs()
        plant = simulate_lag_bold(layer, runs_sim, keep_sim, tr, lags=lags, snr=snr, n_targets=settings.n_targets,
                                  frac_per_network=frac_per_network, min_run_share=settings.min_run_share,
                                  noise_ar=settings.noise_ar, n_atoms=sdl["n_atoms"], sdl_alpha=sdl["sdl_alpha"],
                                  sdl_max_iter=sdl["sdl_max_iter"], seed=seed)
        simulated = time.perf_counter() - start
        delays = settings.encoding.fir_delays if fir_delays is None else int(fir_delays)
        out = []
        for model in models:
            began = time.perf_counter()
            res = encode_layer(layer, plant.y, runs_sim, keep_sim, tr, settings.encoding, seed=seed,
                               temporal_model=model, fir_delays=delays)
            if model == "fir" and not np.allclose(res["loadings"], plant.loadings, atol=1e-5):
                logger.warning("validation lag plant: encode_layer's FIR dictionary differs from the planted one; "
                               "lag_recovered reads the planted atom indices")
            bn = np.asarray(res["bn"], dtype=bool)
            rows = lag_rows(res, plant, model, lag_tolerance)
            seconds = (time.perf_counter() - began + simulated / len(models)) / len(rows)
            for row in rows:
                row.update(condition="lag", snr=float(snr), seed=int(seed), n_kept=int(len(plant.runs_kept)),
                           n_trs=int(n_trs) if n_trs is not None else int(np.bincount(runs_sim).max()),
                           fir_delays=delays if model == "fir" else 0,
                           fdr=float((bn & (plant.network < 0)).sum() / bn.sum()) if bn.any() else 0.0,
                           seconds=seconds)
                logger.info("validation lag plant, %s, network %d (lag %d TRs), seed %d: sensitivity %.3f, r %.3f, "
                            "recovered lag %s", model, row["network"], row["lag"], seed, row["sensitivity"],
                            row["r_mean"], row["lag_recovered"])
            out.extend(rows)
        return out
