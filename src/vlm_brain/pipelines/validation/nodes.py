"""Nodes of the validation pipeline (thin wrappers over vlm_brain.validation)."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vlm_brain.encoding.temporal import TEMPORAL_MODELS
from vlm_brain.validation.run import (
    ValidationSettings,
    run_feature_condition,
    run_grid,
    run_lag_condition,
    settings_dict,
)

logger = logging.getLogger(__name__)

#: metrics summarised per condition (mean, min, max over seeds)
SUMMARY_METRICS = (
    "sensitivity", "specificity", "fdr", "sign_accuracy", "dice", "overlap_planted",
    "overlap_recovered", "overlap_error", "separation", "p_below_q", "p_below_001", "n_bn", "n_planted",
    "driver_cross_r2", "r_planted", "r_other", "multi_atom_image", "multi_atom_chance_image", "multi_atom_text",
    "multi_atom_chance_text", "seconds",
)


def _settings(params: dict[str, Any]) -> ValidationSettings:
    return ValidationSettings.from_params(params)


def _seeds(params: dict[str, Any], n_seeds: int | None = None, key: str = "n_seeds") -> list[int]:
    n_seeds = int(params.get("n_seeds", 3) if n_seeds is None else n_seeds)
    if n_seeds < 1:
        raise ValueError(f"validation.{key} must be >= 1, got {n_seeds}")
    first = int(params.get("seed", 0))
    return list(range(first, first + n_seeds))


def _layer(ans: tuple[dict[str, np.ndarray], ...], name: str, key: str) -> np.ndarray:
    for features in ans:
        if name in features:
            return np.asarray(features[name], dtype=np.float32)
    raise ValueError(f"validation.{key}={name!r} is not a layer of the AN features; "
                     f"available: {sorted(n for f in ans for n in f)}")


def simulate_and_recover(
    run_timeline: pd.DataFrame, params: dict[str, Any], stimulus_features: pd.DataFrame | None,
    *an_timeseries: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Plant a truth on one image and one text layer, recover it with `encode_layer`.

    One row per (condition, snr, n_trs, seed); see `vlm_brain.validation.run.run_condition`
    for the columns (plus ``image_layer`` and ``text_layer``). With
    ``validation.stimulus_plant.features``, also the stimulus-feature plant at the
    highest SNR and longest data: one row per (layer, feature, seed) of
    `run_feature_condition` (condition "stimulus"). With ``validation.lag_plant.lags``,
    also the network-specific lag plant on one layer at that SNR and length: one row per
    (temporal model, network, seed) of `run_lag_condition` (condition "lag").
    """
    image = _layer(an_timeseries, params["image_layer"], "image_layer")
    text = _layer(an_timeseries, params["text_layer"], "text_layer")
    for name, layer in ((params["image_layer"], image), (params["text_layer"], text)):
        if len(layer) != len(run_timeline):
            raise ValueError(f"{name}: {len(layer)} TRs of ANs but the run timeline has {len(run_timeline)}")
    settings = _settings(params)
    snrs = [float(s) for s in params["snrs"]]
    if not snrs or min(snrs) <= 0:
        raise ValueError(f"validation.snrs must be a non-empty list of positive numbers, got {snrs}")
    n_trs = [None if n is None else int(n) for n in params["n_trs"]]
    lagged = params.get("lag_plant") or {}
    lag_options = _lag_options(lagged, params) if lagged.get("lags") else None
    table = run_grid(image, text, run_timeline["run"].to_numpy(), run_timeline["keep"].to_numpy(bool),
                     float(params["tr"]), snrs=snrs, n_trs=n_trs, seeds=_seeds(params),
                     null=bool(params.get("include_null", True)), settings=settings)
    plant = params.get("stimulus_plant") or {}
    if plant.get("features"):
        table = pd.concat([table, _stimulus_plant(image, text, run_timeline, stimulus_features, plant, snrs, n_trs,
                                                  settings, params)], ignore_index=True)
    if lag_options:
        table = pd.concat([table, _lag_plant(image, text, run_timeline, lag_options, snrs, n_trs, settings, params)],
                          ignore_index=True)
    table.insert(0, "image_layer", params["image_layer"])
    table.insert(1, "text_layer", params["text_layer"])
    logger.info("validation: %d rows, %.0f s of simulation and encoding", len(table), table.seconds.sum())
    return table


def _stimulus_plant(image, text, run_timeline, stimulus_features, plant, snrs, n_trs, settings, params) -> pd.DataFrame:
    names = list(plant["features"])
    if stimulus_features is None:
        raise ValueError("validation.stimulus_plant.features needs the stimulus_features table (feature_extraction)")
    unknown = [n for n in names if n not in stimulus_features.columns]
    if unknown:
        raise ValueError(f"validation.stimulus_plant.features: unknown feature(s) {unknown}; stimulus_features has "
                         f"{[c for c in stimulus_features.columns if c not in ('run', 'tr')]}")
    if len(stimulus_features) != len(run_timeline):
        raise ValueError(f"stimulus_features has {len(stimulus_features)} rows, the run timeline {len(run_timeline)}")
    features = {n: stimulus_features[n].to_numpy(dtype=np.float64) for n in names}
    snr = float(plant.get("snr") or max(snrs))
    longest = None if None in n_trs else max(n_trs)
    rows = [row for seed in _seeds(params) for row in run_feature_condition(
        image, text, features, run_timeline["run"].to_numpy(), run_timeline["keep"].to_numpy(bool),
        float(params["tr"]), snr=snr, n_trs=longest, seed=seed, settings=settings,
        frac_per_feature=float(plant.get("frac_per_feature", 0.15)))]
    return pd.DataFrame(rows)


def _lag_options(plant: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The checked settings of ``validation.lag_plant`` (read before anything runs)."""
    layer = plant.get("layer", "image")
    if layer not in ("image", "text"):
        raise ValueError(f"validation.lag_plant.layer must be image or text, got {layer!r}")
    models = list(plant.get("models") or ["glover", "fir"])
    unknown = [m for m in models if m not in TEMPORAL_MODELS]
    if unknown:
        raise ValueError(f"validation.lag_plant.models: unknown temporal model(s) {unknown}; "
                         f"allowed: {', '.join(TEMPORAL_MODELS)}")
    lags = plant["lags"]
    if any(not isinstance(lag, int) or isinstance(lag, bool) or lag < 0 for lag in lags):
        raise ValueError(f"validation.lag_plant.lags must be integer TRs >= 0, got {lags}")
    fir_delays = plant.get("fir_delays")
    return {"layer": layer, "models": models, "lags": [int(lag) for lag in lags],
            "fir_delays": None if fir_delays is None else int(fir_delays),
            "frac_per_network": float(plant.get("frac_per_network", 0.1)),
            "seeds": _seeds(params, plant.get("n_seeds"), "lag_plant.n_seeds"),
            "snr": None if plant.get("snr") is None else float(plant["snr"])}


def _lag_plant(image, text, run_timeline, options, snrs, n_trs, settings, params) -> pd.DataFrame:
    """The rows of `run_lag_condition` for every seed of ``validation.lag_plant`` (``options``: `_lag_options`)."""
    longest = None if None in n_trs else max(n_trs)
    rows = [row for seed in options["seeds"] for row in run_lag_condition(
        image if options["layer"] == "image" else text, run_timeline["run"].to_numpy(),
        run_timeline["keep"].to_numpy(bool), float(params["tr"]), lags=options["lags"], models=options["models"],
        snr=options["snr"] or max(snrs), n_trs=longest, seed=seed, settings=settings,
        frac_per_network=options["frac_per_network"], fir_delays=options["fir_delays"],
        lag_tolerance=int(params.get("criteria", {}).get("lag_tolerance", 1)))]
    return pd.DataFrame(rows).assign(layer=options["layer"])


# --------------------------------------------------------------------------- summary
def _json_number(value: Any) -> Any:
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def _stats(values: pd.Series) -> dict[str, Any]:
    values = values.astype(float)
    finite = values[np.isfinite(values)]
    if finite.empty:
        return {"mean": None, "min": None, "max": None}
    return {"mean": _json_number(finite.mean()), "min": _json_number(finite.min()),
            "max": _json_number(finite.max())}


def _check(description: str, where: dict[str, Any], value: float, threshold: float,
           comparison: str, n: int) -> dict[str, Any]:
    if not math.isfinite(value):
        passed = False
    else:
        passed = value >= threshold if comparison == ">=" else value <= threshold
    return {"description": description, "where": where, "value": _json_number(value),
            "threshold": _json_number(threshold), "comparison": comparison, "n": int(n),
            "passed": bool(passed)}


def summarise_validation(metrics: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """Per condition the mean / min / max over seeds, and the stated criteria.

    Schema::

        {"image_layer", "text_layer", "q", "n_rows", "seeds": [...],
         "settings": {...ValidationSettings, "snrs", "n_trs"},
         "criteria": {"sensitivity_min", "sign_accuracy_min", "fdr_tolerance",
                      "overlap_tolerance"},
         "conditions": [{"condition": "signal" | "null", "snr", "n_trs", "n_kept",
                         "n_seeds", "<metric>": {"mean", "min", "max"}, ...}],
         "stimulus_plant": [{"layer", "feature", ...}],
         "lag_plant": [{"model", "network", "lag", "layer", "snr", "n_trs", "fir_delays",
                        "n_seeds", "n_planted", "<metric>": {"mean", "min", "max"}}],
         "lag_plant_canonical": {"<model>": {"network", "sensitivity", "r_mean"}},  # lag 0
         "checks": {"<name>": {"description", "where", "value", "threshold",
                               "comparison", "n", "passed"}},  # + overlap: driver_cross_r2
         "passed": bool, "runtime_s": float}

    Checks: at the highest SNR and longest data, mean sensitivity >= sensitivity_min,
    mean sign accuracy >= sign_accuracy_min and |mean recovered - planted image/text
    overlap| <= overlap_tolerance (with ``driver_cross_r2``, the share of each layer's
    drivers the other layer's atoms explain: correlated streams inflate the recovered
    overlap); mean observed FDR <= q + fdr_tolerance over every pure-noise row (all
    lengths and seeds) and in the worst signal condition (mean over seeds). Lag plant
    (rows of condition "lag"): FIR's mean recovered lag within lag_tolerance TRs of the
    planted one in every network (``lag_recovered_fir``), and FIR's mean held-out r at
    least lag_r_gain_min above glover's in every network with lag > 0
    (``lag_fir_beats_glover``); the lag-0 network (the canonical HRF truth) is reported
    per model in ``lag_plant_canonical``. NaN is written null.
    """
    criteria = params.get("criteria", {})
    q = float(params["q"])
    rows = []
    stimulus = metrics[metrics.condition == "stimulus"] if "condition" in metrics else metrics.iloc[:0]
    lagged = metrics[metrics.condition == "lag"] if "condition" in metrics else metrics.iloc[:0]
    for (condition, snr, n_trs), group in metrics[~metrics.condition.isin(["stimulus", "lag"])].groupby(
            ["condition", "snr", "n_trs"], sort=True):
        entry = {"condition": condition, "snr": _json_number(snr), "n_trs": int(n_trs),
                 "n_kept": _json_number(group.n_kept.mean()), "n_seeds": int(group.seed.nunique())}
        entry.update({m: _stats(group[m]) for m in SUMMARY_METRICS if m in group})
        rows.append(entry)

    signal = metrics[metrics.condition == "signal"]
    null = metrics[metrics.condition == "null"]
    checks = {}
    if len(signal):
        top = signal[(signal.snr == signal.snr.max()) & (signal.n_trs == signal.n_trs.max())]
        where = {"condition": "signal", "snr": _json_number(top.snr.iloc[0]), "n_trs": int(top.n_trs.iloc[0])}
        checks["sensitivity_high_snr"] = _check(
            "mean sensitivity (planted grayordinates recovered as BNs) at the highest SNR and longest data",
            where, float(top.sensitivity.mean()), float(criteria.get("sensitivity_min", 0.9)), ">=", len(top))
        checks["sign_accuracy_high_snr"] = _check(
            "mean sign accuracy (layer_polarity = planted sign) of true-positive BNs at the highest SNR",
            where, float(top.sign_accuracy.mean()), float(criteria.get("sign_accuracy_min", 0.95)), ">=", len(top))
        checks["overlap_high_snr"] = _check(
            "|mean recovered - planted| Dice of the image vs text BN maps at the highest SNR",
            where, float(np.abs(top.overlap_recovered.mean() - top.overlap_planted.mean())),
            float(criteria.get("overlap_tolerance", 0.1)), "<=", len(top))
        checks["overlap_high_snr"]["driver_cross_r2"] = _json_number(top.driver_cross_r2.mean())
        if "multi_atom_image" in top:
            excess = np.nanmean(np.r_[top.multi_atom_image - top.multi_atom_chance_image,
                                      top.multi_atom_text - top.multi_atom_chance_text])
            checks["redundancy_single_driver"] = _check(
                "a plant without shared drivers (one driving atom per grayordinate and layer) yields no redundancy "
                "finding: mean excess of the BNs with >= 2 significant atoms over its chance level, highest SNR",
                where, float(excess), float(criteria.get("redundancy_excess_max", 0.05)), "<=", len(top))
        by_condition = signal.groupby(["snr", "n_trs"]).fdr.mean()
        worst_snr, worst_n = by_condition.idxmax()
        checks["fdr_signal"] = _check(
            "worst signal condition's mean observed FDR over seeds (BNs where nothing was planted / BNs)",
            {"condition": "signal", "snr": _json_number(worst_snr), "n_trs": int(worst_n)},
            float(by_condition.max()), q + float(criteria.get("fdr_tolerance", 0.05)), "<=",
            int(((signal.snr == worst_snr) & (signal.n_trs == worst_n)).sum()))
    if len(null):
        checks["fdr_null"] = _check(
            "mean observed FDR over the pure-noise conditions (features independent of the BOLD)",
            {"condition": "null"}, float(null.fdr.mean()), q + float(criteria.get("fdr_tolerance", 0.05)),
            "<=", len(null))
    stimulus_rows = []
    if len(stimulus):
        detect_min = float(criteria.get("stimulus_detect_min", 0.2))
        positive_min = float(criteria.get("stimulus_positive_min", 0.9))
        for (layer, feature), group in stimulus.groupby(["layer", "feature"], sort=True):
            stimulus_rows.append({"layer": layer, "feature": feature, "snr": _json_number(group.snr.iloc[0]),
                                  "n_trs": int(group.n_trs.iloc[0]), "n_seeds": int(group.seed.nunique()),
                                  "sensitivity": _stats(group.sensitivity),
                                  "positive_fraction": _stats(group.positive_fraction), "fdr": _stats(group.fdr)})
        detecting = [r for r in stimulus_rows if (r["sensitivity"]["mean"] or 0) >= detect_min]
        worst = min(detecting, key=lambda r: r["positive_fraction"]["mean"] or 0.0) if detecting else None
        checks["stimulus_sign_positive"] = _check(
            "stimulus-feature plant (uniformly positive responses): the lowest mean fraction of positive BNs (sign "
            f"read against the planted feature) over the layers and features that detect it (sensitivity >= "
            f"{detect_min:g})",
            {"condition": "stimulus", "layer": worst["layer"] if worst else None,
             "feature": worst["feature"] if worst else None},
            float(worst["positive_fraction"]["mean"]) if worst else float("nan"), positive_min, ">=",
            int(len(stimulus)))
    lag_entries, lag_canonical = _lag_entries(lagged)
    checks.update(_lag_checks(lag_entries, criteria))
    summary = {
        "image_layer": str(metrics.image_layer.iloc[0]) if "image_layer" in metrics and len(metrics) else None,
        "text_layer": str(metrics.text_layer.iloc[0]) if "text_layer" in metrics and len(metrics) else None,
        "q": q,
        "n_rows": int(len(metrics)),
        "seeds": sorted(int(s) for s in metrics.seed.unique()),
        "settings": {**settings_dict(_settings(params)), "snrs": [float(s) for s in params["snrs"]],
                     "n_trs": [None if n is None else int(n) for n in params["n_trs"]]},
        "criteria": {"sensitivity_min": float(criteria.get("sensitivity_min", 0.9)),
                     "sign_accuracy_min": float(criteria.get("sign_accuracy_min", 0.95)),
                     "fdr_tolerance": float(criteria.get("fdr_tolerance", 0.05)),
                     "overlap_tolerance": float(criteria.get("overlap_tolerance", 0.1)),
                     "redundancy_excess_max": float(criteria.get("redundancy_excess_max", 0.05)),
                     "stimulus_detect_min": float(criteria.get("stimulus_detect_min", 0.2)),
                     "stimulus_positive_min": float(criteria.get("stimulus_positive_min", 0.9)),
                     "lag_tolerance": float(criteria.get("lag_tolerance", 1)),
                     "lag_r_gain_min": float(criteria.get("lag_r_gain_min", 0.05))},
        "conditions": rows,
        "stimulus_plant": stimulus_rows,
        "lag_plant": lag_entries,
        "lag_plant_canonical": lag_canonical,
        "checks": checks,
        "passed": bool(checks) and all(c["passed"] for c in checks.values()),
        "runtime_s": _json_number(metrics.seconds.sum()) if "seconds" in metrics else None,
    }
    for name, check in checks.items():
        logger.info("validation check %s: %s %s %s -> %s", name, check["value"], check["comparison"],
                    check["threshold"], "pass" if check["passed"] else "FAIL")
    return summary


def _lag_entries(lagged: pd.DataFrame) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per (model, network) of the lag plant: its lag and the stats over seeds of sensitivity, r_mean,
    lag_recovered and frac_at_lag; and, per model, those of the lag-0 network (the canonical HRF truth)."""
    entries = []
    if lagged.empty:
        return entries, {}
    for (model, network), group in lagged.groupby(["model", "network"], sort=True):
        entries.append({"model": model, "network": int(network), "lag": int(group.lag.iloc[0]),
                        "layer": str(group.layer.iloc[0]) if "layer" in group else None,
                        "snr": _json_number(group.snr.iloc[0]), "n_trs": int(group.n_trs.iloc[0]),
                        "fir_delays": int(group.fir_delays.iloc[0]), "n_seeds": int(group.seed.nunique()),
                        "n_planted": int(group.n_planted.iloc[0]),
                        **{m: _stats(group[m]) for m in ("sensitivity", "r_mean", "lag_recovered", "frac_at_lag",
                                                          "fdr")}})
    canonical = {e["model"]: {"network": e["network"], "sensitivity": e["sensitivity"], "r_mean": e["r_mean"]}
                 for e in entries if e["lag"] == 0}
    return entries, canonical


def _lag_checks(entries: list[dict[str, Any]], criteria: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """FIR recovers every network's lag; FIR's held-out r beats glover's in every lagged network."""
    def mean(entry: dict[str, Any], key: str) -> float:
        value = entry[key]["mean"]
        return float("nan") if value is None else float(value)

    fir = {e["network"]: e for e in entries if e["model"] == "fir"}
    glover = {e["network"]: e for e in entries if e["model"] == "glover"}
    checks = {}
    if fir:
        errors = {n: abs(mean(e, "lag_recovered") - e["lag"]) for n, e in fir.items()}
        worst = max(errors, key=lambda n: errors[n] if math.isfinite(errors[n]) else math.inf)
        checks["lag_recovered_fir"] = _check(
            "network-specific lag plant (Glover HRF delayed by each network's lag): the largest |mean over seeds of "
            "FIR's recovered lag - planted lag| over the networks (recovered: median strongest delay of the driving "
            "atom at the network's BNs, minus the canonical HRF's peak delay; TRs)",
            {"condition": "lag", "model": "fir", "network": worst, "lag": fir[worst]["lag"]},
            float(errors[worst]), float(criteria.get("lag_tolerance", 1)), "<=",
            sum(e["n_seeds"] for e in fir.values()))
    lagged = [n for n in fir if n in glover and fir[n]["lag"] > 0]
    if lagged:
        gains = {n: mean(fir[n], "r_mean") - mean(glover[n], "r_mean") for n in lagged}
        worst = min(gains, key=lambda n: gains[n] if math.isfinite(gains[n]) else -math.inf)
        checks["lag_fir_beats_glover"] = _check(
            "network-specific lag plant: the smallest gain of FIR's over glover's mean held-out r (mean over the "
            "network's grayordinates and seeds) over the lagged networks (lag > 0)",
            {"condition": "lag", "network": worst, "lag": fir[worst]["lag"]}, float(gains[worst]),
            float(criteria.get("lag_r_gain_min", 0.05)), ">=", sum(fir[n]["n_seeds"] for n in lagged))
    return checks


# --------------------------------------------------------------------------- figure
def _mean_range(group: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    stats = group.groupby("snr")[metric].agg(["mean", "min", "max"]).sort_index()
    x = stats.index.to_numpy(float)
    return x, stats["mean"].to_numpy(), (stats["mean"] - stats["min"]).to_numpy(), \
        (stats["max"] - stats["mean"]).to_numpy()


def plot_validation_power(metrics: pd.DataFrame, params: dict[str, Any]) -> Figure:
    """Sensitivity, observed FDR and recovered image/text overlap against SNR.

    One line per data length (TRs per run), mean over seeds with min-max error bars;
    the FDR panel has a dashed line at q and the pure-noise conditions at the left
    ("noise"); the overlap panel a dashed line at the planted overlap.
    """
    q = float(params["q"])
    signal = metrics[metrics.condition == "signal"]
    null = metrics[metrics.condition == "null"]
    lengths = sorted(metrics.n_trs.unique())
    colors = [f"C{i}" for i in range(len(lengths))]
    fig = Figure(figsize=(14, 4.6), layout="constrained")
    axes = fig.subplots(1, 3)
    snrs = sorted(signal.snr.unique()) if len(signal) else [1.0]
    noise_x = min(snrs) / 3

    for i, (color, n) in enumerate(zip(colors, lengths, strict=True)):
        rows = signal[signal.n_trs == n]
        kept = int(round(metrics[metrics.n_trs == n].n_kept.mean()))
        label = f"{n} TRs/run ({kept} fitted TRs)"
        if len(rows):
            for ax, metric in zip(axes, ("sensitivity", "fdr", "overlap_recovered"), strict=True):
                x, mean, low, high = _mean_range(rows, metric)
                ax.errorbar(x, mean, yerr=[low, high], marker="o", color=color, capsize=3, label=label)
        nulls = null[null.n_trs == n]
        if len(nulls):
            dodge = noise_x * 1.12 ** (i - (len(lengths) - 1) / 2)  # side by side, not on top
            axes[1].errorbar([dodge], [nulls.fdr.mean()], yerr=[[nulls.fdr.mean() - nulls.fdr.min()],
                                                                   [nulls.fdr.max() - nulls.fdr.mean()]],
                             marker="s", color=color, capsize=3, linestyle="none")

    n_seeds = metrics.seed.nunique()
    axes[0].set(title="Sensitivity (planted BNs recovered)", ylabel="sensitivity", ylim=(-0.02, 1.02))
    axes[0].axhline(float(params.get("criteria", {}).get("sensitivity_min", 0.9)), color="grey",
                    linestyle=":", linewidth=1, label="criterion")
    axes[1].axhline(q, color="black", linestyle="--", linewidth=1.2, label=f"nominal q = {q:g}")
    axes[1].set(title="Observed FDR (false BNs / BNs)", ylabel="observed FDR",
                ylim=(-0.01, max(0.2, 1.1 * float(metrics.fdr.max()) if len(metrics) else 0.2)))
    if len(signal):
        planted = float(signal.overlap_planted.mean())
        axes[2].axhline(planted, color="black", linestyle="--", linewidth=1.2, label=f"planted = {planted:.2f}")
    axes[2].set(title="Image/text BN overlap (Dice)", ylabel="recovered Dice(image BNs, text BNs)",
                ylim=(-0.02, 1.02))
    for i, ax in enumerate(axes):
        ax.set_xscale("log")
        ticks = ([noise_x] if i == 1 and len(null) else []) + list(snrs)
        ax.set_xticks(ticks, (["noise"] if i == 1 and len(null) else []) + [f"{s:g}" for s in snrs])
        ax.minorticks_off()
        ax.set_xlabel("SNR (signal / noise variance)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    layers = f"{metrics.image_layer.iloc[0]} + {metrics.text_layer.iloc[0]}" if "image_layer" in metrics and len(metrics) else ""
    fig.suptitle(f"Validation on planted truth ({layers}; {int(params.get('n_targets', 0))} grayordinates, "
                 f"{n_seeds} seeds, mean and min-max)", fontsize=12)
    return fig
