"""Nodes of the reporting pipeline: findings.json, figures and report.html."""

from __future__ import annotations

import html
import io
import logging
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vlm_brain import reporting as rp
from vlm_brain.analyses.polarity import DOMINANT_AN, layer_signs, reference_row
from vlm_brain.cohort.summary import group_scores
from vlm_brain.encoding.settings import EncodingSettings
from vlm_brain.fmri.networks import DEFAULT_ATLAS, NETWORK_ORDER, atlas_title, check_atlas
from vlm_brain.fmri.quality import data_warnings
from vlm_brain.models.registry import enabled_models
from vlm_brain.reporting.html import Section
from vlm_brain.reporting.surface import (
    DEFAULT_PERCENTILE,
    color_limit,
    is_surface_layout,
    surface_skip_reason,
    surface_viewer_html,
    threshold,
)
from vlm_brain.results import (
    find_layer,
    iter_layers,
    layer_with_most_bns,
    parse_layer_name,
    plain,
    stream_layers,
)

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- provenance
def describe_weights(models: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Per model, where its weights come from, e.g. ``random (seed 0)`` or ``pretrained: openai``."""
    out = {}
    for name, spec in enabled_models(models).items():
        if spec.get("family") == "wordnet":  # labels, not a network: no weights
            out[name] = f"annotations: {spec.get('path')}"
        elif spec.get("weights", "random") == "random":
            out[name] = f"RANDOM (seed {spec.get('seed', 0)})"
        else:
            source = spec.get("checkpoint") or spec.get("pretrained") or spec.get("source") or "hub cache"
            out[name] = f"pretrained: {source}"
    return out


def provenance(params: dict[str, Any], demo: dict[str, Any], features: dict[str, Any],
               encoding: dict[str, Any]) -> dict[str, Any]:
    """What ran on which data with which weights and settings."""
    weights = describe_weights(features.get("models", {}))
    sdl = encoding.get("sdl", {})
    return {
        "data": ("demo: simulated fMRI with a planted ground truth" if demo.get("enabled")
                 else "real fMRI"),
        "data_root": params.get("data_root"),
        "runs": {run: int(n) for run, n in features.get("runs", {}).items()},
        "tr_s": features.get("tr"),
        "weights": weights,
        "random_weights": sorted(m for m, w in weights.items() if w.startswith("RANDOM")),
        "encoding": {"target": encoding.get("target"), "sdl_atoms": sdl.get("n_atoms"), "sdl_lambda": sdl.get("alpha"),
                     "sdl_max_iter": sdl.get("max_iter"), "ridge_alphas": encoding.get("alphas"),
                     "cv": "leave-one-run-out", "null_method": encoding.get("null_method"),
                     "n_refit": encoding.get("n_refit"), "fdr_q": encoding.get("q")},
        "vlm_brain_version": version("vlm-brain"),
        "generated_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }


def collect_findings(networks: dict, redundancy: dict, ablation: dict, polarity: dict, architecture: dict,
                     ground_truth: dict, validation: dict | None, subjects: dict | None, quality: pd.DataFrame,
                     params: dict[str, Any], demo: dict[str, Any], features: dict[str, Any],
                     encoding: dict[str, Any]) -> dict[str, Any]:
    """findings.json: provenance, the headline statistics of the four findings, and across subjects.

    ``units`` says what each kind of interval is over: the group-level findings'
    bootstraps resample grayordinates, layers or networks; ``across_subjects`` is over
    subjects.
    """
    subjects = subjects or {"available": False}
    status = quality["status"] if "status" in quality else pd.Series("used", index=quality.index)
    skipped = quality[status == "skipped"]
    cohort = {"n_used": int((status == "used").sum()), "used": quality.subject[status == "used"].astype(str).tolist(),
              "skipped": dict(zip(skipped.subject.astype(str), skipped.get("reason", ""), strict=True))}
    return plain({
        "subjects": cohort,
        "data_warnings": data_warnings(quality),
        "units": {
            "group-level findings": ("percentile bootstrap over the unit each entry's n counts (grayordinates, "
                                     "layers or networks of the group-mean model; ignores spatial autocorrelation)"),
            "across_subjects": (f"subjects (n = {subjects['n_subjects']})" if subjects.get("available")
                                else "not computed (encoding.target: group)"),
        },
        "across_subjects": subjects,
        "provenance": provenance(params, demo, features, encoding),
        "networks": networks,
        "redundancy": {**redundancy, "ablation": ablation},
        "polarity": polarity,
        "architecture": architecture,
        "ground_truth": ground_truth,
        "validation": validation,
    })


# --------------------------------------------------------------------------- figures
#: key of `make_figures`' captions that says why the cortical maps are missing (non-HCP data)
SURFACE_NOTE = "surface maps"
SURFACE_FIGURES = ("surface_r.png", "surface_polarity.png", "surface_ceiling.png")


def report_atlas(params: dict[str, Any], table: pd.DataFrame, where: str = "network_scores") -> str:
    """``reporting.atlas`` (default `DEFAULT_ATLAS`), checked against the atlases of ``table`` (its ``atlas``)."""
    return check_atlas(str(params.get("atlas") or DEFAULT_ATLAS), table["atlas"].unique(), where)


def _stream_table(scores: pd.DataFrame, atlas: str) -> pd.DataFrame:
    table = scores[scores.atlas == atlas]
    return table.assign(stream_label=table.model + "." + table.stream)


def _n_targets(encodings: tuple[dict, ...], default: int = 0) -> int:
    """Targets (grayordinates, parcels, ROIs) per map of the encodings; ``default`` without any."""
    first = next((e for e in encodings if e), None)
    return int(len(next(iter(first.values()))["r"])) if first else default


def cohort_table(cohort: dict[str, dict]) -> pd.DataFrame:
    """Per layer of the cohort maps: stream_label, layer, and two BN fractions (``network``, ``value``)."""
    rows = []
    for layer_name, res in sorted(cohort.items()):
        model, stream, layer = parse_layer_name(layer_name)
        base = {"stream_label": f"{model}.{stream}", "layer": layer}
        rows.append({**base, "network": "cohort BNs (BH across subjects)", COHORT_VALUE: float(np.mean(res["bn"]))})
        rows.append({**base, "network": "BN in >= half the subjects",
                     COHORT_VALUE: float(np.mean(np.asarray(res["frac_subjects_bn"]) >= 0.5))})
    return pd.DataFrame(rows, columns=["stream_label", "layer", "network", COHORT_VALUE])


COHORT_VALUE = "fraction of grayordinates"
VALIDATION_CAPTION = ("Method validation on simulated BOLD with a planted truth: sensitivity, observed FDR and sign"
                      " accuracy of the BNs against the SNR, per data length; dashed: the pass criteria"
                      " (validation.criteria).")


def network_sorted(table: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Rows sorted by ``by`` (default none) then ``network`` in `NETWORK_ORDER` (sensory to
    association; other labels after, alphabetically); the index is reset."""
    rank = {name: i for i, name in enumerate(NETWORK_ORDER)}
    key = table["network"].map(lambda n: (rank.get(n, len(rank)), str(n)))
    out = table.assign(_network_rank=key).sort_values([*(by or []), "_network_rank"], kind="stable")
    return out.drop(columns="_network_rank").reset_index(drop=True)


def networks_text(names: list[str]) -> str:
    """Network names in `NETWORK_ORDER` (others after, alphabetically), comma-separated; 'none' if empty."""
    rank = {name: i for i, name in enumerate(NETWORK_ORDER)}
    return ", ".join(sorted(names, key=lambda n: (rank.get(n, len(rank)), str(n)))) or "none"


def surface_layers(params: dict[str, Any], encodings: tuple[dict, ...]) -> dict[str, tuple[str, int]]:
    """Per stream of ``reporting.surface_streams`` that ran: its layer with the most BNs and the BN count."""
    streams = stream_layers(encodings)
    return {s: layer_with_most_bns(encodings, streams[s]) for s in params["surface_streams"] if s in streams}


def _surface_settings(params: dict[str, Any]) -> tuple[float, bool]:
    surface = params.get("surface") or {}
    return float(surface.get("percentile", DEFAULT_PERCENTILE)), bool(surface.get("borders", True))


def _bn_r(encodings: tuple[dict, ...], name: str) -> np.ndarray:
    """(G,) held-out r of layer ``name`` at its BNs, NaN elsewhere."""
    res = find_layer(encodings, name)
    return threshold(np.asarray(res["r"]), np.asarray(res["bn"]))


def bn_fdr_name(encoding: dict[str, Any]) -> str:
    """How the BNs were selected (``encoding.fdr``), as captions name it."""
    return {"bh": "BH-FDR", "adaptive": "adaptive BH-FDR"}[EncodingSettings.from_params(encoding).fdr]


def make_surface_viewers(params: dict[str, Any], encoding: dict[str, Any], *encodings: dict) -> dict[str, str]:
    """Interactive 3-D viewers (self-contained HTML) of the BN r maps of the surface layers, by layer name."""
    if not any(encodings):
        return {}
    n_targets = _n_targets(encodings)
    if not is_surface_layout(n_targets):
        logger.info("reporting: no surface viewers (%d targets are not HCP grayordinates)", n_targets)
        return {}
    percentile, _ = _surface_settings(params)
    q, bn_fdr = EncodingSettings.from_params(encoding).q, bn_fdr_name(encoding)
    out = {}
    for name, n_bns in surface_layers(params, encodings).values():
        values = _bn_r(encodings, name)
        out[name] = surface_viewer_html(values, f"{name}: held-out r at its {n_bns:,} BNs ({bn_fdr} q = {q:g})",
                                        vmax=color_limit([values], percentile))
    logger.info("reporting: %d interactive surface viewers", len(out))
    return out


def make_figures(network_scores: pd.DataFrame, redundancy_atom_dice: dict[str, np.ndarray],
                 ablation: pd.DataFrame, polarity: pd.DataFrame, overlap: pd.DataFrame, baselines: pd.DataFrame,
                 cohort: dict[str, dict], noise_ceiling: dict[str, np.ndarray], params: dict[str, Any],
                 encoding: dict[str, Any], analyses: dict[str, Any], *encodings: dict
                 ) -> tuple[dict[str, Figure], dict[str, str]]:
    """Every figure of the report, by file name (``*.png``), and its caption; group-level ones only
    with group encodings.

    A caption says what the figure shows, which layers and why, n, and the threshold
    (BNs: BH-FDR at ``encoding.q`` over each layer's grayordinates). Network figures
    show the primary atlas (``reporting.atlas``), networks in `NETWORK_ORDER` (sensory
    to association; other names after). Without HCP grayordinates the cortical maps are
    left out and captions[`SURFACE_NOTE`] says why.
    """
    figures: dict[str, Figure] = {}
    captions: dict[str, str] = {}
    q, bn_fdr = EncodingSettings.from_params(encoding).q, bn_fdr_name(encoding)
    if cohort:
        figures["cohort_bn_profiles.png"] = rp.layer_profiles(cohort_table(cohort), value=COHORT_VALUE,
                                                              legend_title="across subjects", order=NETWORK_ORDER)
        captions["cohort_bn_profiles.png"] = (
            "Across subjects, per stream (panel) and layer (x): the fraction of grayordinates whose Fisher-z r is"
            f" above 0 across subjects (test: encoding.cohort.test; {bn_fdr} at q = {q:g} over grayordinates), and"
            " the fraction that are BNs in at least half of the subjects.")
    if not any(encodings):
        return figures, captions
    group = group_scores(network_scores)
    atlas = report_atlas(params, group)
    networks = atlas_title(atlas)
    scores = _stream_table(group, atlas)
    n_grayordinates = _n_targets(encodings)
    empty = sorted(name for name, _ in iter_layers(encodings) if not np.any(find_layer(encodings, name)["bn"]))
    no_bn = (f" Layers without any BN (no grayordinate passes {bn_fdr} at q = {q:g}) are the blank columns:"
             f" {', '.join(empty)}." if empty else " Every layer has at least one BN.")
    order = NETWORK_ORDER
    figures |= {
        "network_r_heatmaps.png": rp.network_layer_heatmaps(scores, value="r_mean", title="Mean held-out r",
                                                            order=order),
        "network_bn_heatmaps.png": rp.network_layer_heatmaps(scores, value="frac_bn", title="Fraction of BNs",
                                                             order=order),
        "network_layer_profiles.png": rp.layer_profiles(scores, value="frac_bn", order=order),
    }
    model_of = f"the group-mean BOLD, {n_grayordinates:,} grayordinates"
    captions |= {
        "network_r_heatmaps.png": ("Mean held-out Pearson r (leave-one-run-out) of every layer (x) in every"
                                   f" one of the {networks} (y), one panel per stream; {model_of}."),
        "network_bn_heatmaps.png": ("Fraction of each network's grayordinates that are BNs (brain-like neurons:"
                                    f" {bn_fdr} at q = {q:g} over the layer's grayordinates), per layer and stream;"
                                    f" {model_of}." + no_bn),
        "network_layer_profiles.png": ("The same BN fractions as layer profiles: one line per network, one panel per"
                                       f" stream (x: layer index, input to output); {model_of}."),
    }
    best_of = ", ".join(sorted(redundancy_atom_dice)) if redundancy_atom_dice else ""
    if redundancy_atom_dice:
        figures["redundancy_atom_dice.png"] = rp.dice_matrices(
            {name: np.asarray(m) for name, m in sorted(redundancy_atom_dice.items())})
        captions["redundancy_atom_dice.png"] = (
            "Dice overlap between the BN maps of every pair of SDL atoms (atom maps: HAC t of the full refit, BH-FDR at"
            f" q = {q:g} within each atom), in each stream's layer with the most BNs: {best_of}.")
    if len(ablation):
        summary = (ablation.groupby(["layer_name", "condition", "fraction"]).r_mean
                   .agg(r_mean="mean", r_low="min", r_high="max").reset_index())
        figures["redundancy_ablation.png"] = rp.ablation_curves(summary)
        layers = ", ".join(sorted(ablation.layer_name.unique()))
        captions["redundancy_ablation.png"] = (
            "Fault tolerance: mean held-out r of the re-predicted BNs as a growing fraction of the layer's ANs is"
            " removed (x), against removing the same number of shuffled ANs; band = range over repeats"
            f" (analyses.ablation.n_repeats). Layers (each stream's with the most BNs): {layers}.")
    totals = polarity[polarity.network == "all"]
    figures["polarity_profiles.png"] = rp.polarity_profiles(totals[["stream_label", "layer", "n_pos", "n_neg"]])
    captions["polarity_profiles.png"] = (
        "Number of positive and negative BNs per layer (x) and stream (panel). A BN's sign is that of its strongest"
        f" significant atom (BH-FDR at q = {q:g}); {model_of}.")
    if len(overlap):
        figures["architecture_overlap.png"] = rp.overlap_curves(overlap)
        pairs = "; ".join(f"{k}: {a} vs {b}" for k, a, b in overlap[["pair", "image_stream", "text_stream"]]
                          .drop_duplicates().itertuples(index=False))
        captions["architecture_overlap.png"] = (
            "Image vs text BN overlap (Dice of the two streams' BN maps) by relative depth (x: 0 = first layer,"
            f" 1 = last shared layer), per pair of streams ({pairs}). Chance Dice is not 0: two unrelated maps with"
            " BN fractions f1 and f2 overlap by about 2 f1 f2 / (f1 + f2).")
    if len(baselines):
        figures["architecture_baselines.png"] = rp.baseline_comparison(
            baselines[baselines.network != "all compared"], order=NETWORK_ORDER)
        compared = [str(n) for n in pd.unique(baselines.network) if n != "all compared"]
        comparisons = "; ".join(f"{r.comparison} ({r.vlm_layer} vs {r.baseline_layer})" for r in
                                baselines.drop_duplicates("comparison").itertuples())
        captions["architecture_baselines.png"] = (
            "Mean paired difference in held-out r per grayordinate between a VLM stream and a unimodal baseline, in"
            f" the compared networks ({networks_text(compared)}; analyses.architecture.baseline_networks), with 95%"
            f" bootstrap CIs; each stream's best layer: {comparisons}.")

    ceiling = np.asarray((noise_ceiling or {}).get("ceiling", []), dtype=np.float64)
    if np.isfinite(ceiling).any() and scores.r_norm_mean.notna().any():
        figures["network_rnorm_heatmaps.png"] = rp.network_layer_heatmaps(
            scores, value="r_norm_mean", title="Mean r / noise ceiling", order=order)
        captions["network_rnorm_heatmaps.png"] = (
            "Held-out r divided by each grayordinate's noise ceiling (r / ceiling, NaN where the ceiling is below"
            f" 0.1), averaged over each of the {networks} (y), per layer (x) and stream (panel);"
            f" {model_of}.")
    reference = (analyses.get("polarity") or {}).get("reference", DOMINANT_AN)
    row = reference_row(reference, encoding.get("sign_references") or [])
    figures |= surface_figures(params, q, ceiling, encodings, captions, reference, row, bn_fdr)
    logger.info("reporting: %d figures", len(figures))
    return figures, captions


def _reference_text(reference: str) -> str:
    """What a BN's sign is read against, in words."""
    if reference == DOMINANT_AN:
        return "the layer's dominant AN direction: its first principal component, oriented with the mean AN"
    return f"the stimulus feature {reference}"


VIEWS_TEXT = ("lateral and medial views of both hemispheres (inflated HCP 32k fs_LR surface; black lines = borders"
              " of the Cole-Anticevic networks)")


def surface_figures(params: dict[str, Any], q: float, ceiling: np.ndarray, encodings: tuple[dict, ...],
                    captions: dict[str, str], reference: str = DOMINANT_AN, row: int = 0,
                    bn_fdr: str = "adaptive BH-FDR") -> dict[str, Figure]:
    """The cortical maps: r at the BNs and BN polarity of each surface layer, and the noise ceiling.

    BN signs are read against ``reference`` (row ``row`` of ``reference_r``, `layer_signs`).

    Adds each figure's caption to ``captions``. The r colour scale is symmetric, from
    minus to plus the ``reporting.surface.percentile`` of |r| over the BNs shown. Maps
    that are not HCP grayordinates (parcels, ROIs) give no figures: one info log, and
    ``captions[SURFACE_NOTE]`` says why.
    """
    n_targets = _n_targets(encodings, default=len(ceiling))
    reason = surface_skip_reason(n_targets) if n_targets else None
    if reason:
        logger.info("reporting: no cortical surface maps (%d targets are not HCP grayordinates)", n_targets)
        captions[SURFACE_NOTE] = reason
        return {}
    figures: dict[str, Figure] = {}
    percentile, borders = _surface_settings(params)
    best = surface_layers(params, encodings)
    if best:
        maps = {f"{name}: r at the BNs": _bn_r(encodings, name) for name, _ in best.values()}
        top = color_limit(list(maps.values()), percentile)
        figures["surface_r.png"] = rp.surface_maps_figure(maps, vmax=top, borders=borders,
                                                          colorbar_label="held-out Pearson r (BNs only)")
        signs = {}
        for name, _ in best.values():
            res = find_layer(encodings, name)
            signs[f"{name}: BN polarity"] = layer_signs(res, row)[0]
        figures["surface_polarity.png"] = rp.polarity_maps_figure(signs, borders=borders)
        shown = ", ".join(f"{name} ({n:,} BNs)" for name, n in best.values())
        n_total = len(next(iter(maps.values())))
        # the list of layers comes last, after the caption's only ': ' (the end-to-end tests read it)
        captions["surface_r.png"] = (
            f"Held-out Pearson r (leave-one-run-out) on the cortex, thresholded at the BNs ({bn_fdr} at q = {q:g} over"
            f" the layer's {n_total:,} grayordinates; grey = not a BN or medial wall), in {VIEWS_TEXT}. Colour"
            f" scale symmetric, \u00b1{top:.3g} = the {percentile:g}th percentile of |r| over the BNs shown. One row"
            " per stream of reporting.surface_streams, its layer with the most BNs (n = its BNs): " + shown)
        captions["surface_polarity.png"] = (
            f"Sign of each BN ({bn_fdr} at q = {q:g}) on the cortex, in {VIEWS_TEXT}; same layers: {shown}. Red: its"
            f" fitted response rises with the reference ({_reference_text(reference)}); blue: it falls; grey: not"
            " a BN.")
    if np.isfinite(ceiling).any():
        finite = int(np.isfinite(ceiling).sum())
        figures["surface_ceiling.png"] = rp.surface_maps_figure(
            {"noise ceiling": ceiling}, cmap="viridis", symmetric=False, vmin=0.0, percentile=percentile,
            borders=borders, colorbar_label="noise ceiling (max. r)")
        captions["surface_ceiling.png"] = (
            "Noise ceiling per grayordinate: the highest Pearson r a model of the group-mean BOLD can reach, from the"
            " repeated clip (split-half reliability, Spearman-Brown), unthresholded, n ="
            f" {finite:,} grayordinates, in {VIEWS_TEXT}. Colour scale from 0 to the {percentile:g}th percentile"
            " of the ceiling.")
    return figures


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(stat: dict[str, Any], key: str = "mean", digits: int = 2) -> str:
    """``0.42 (95% CI 0.40-0.44, n = 12)``."""
    return (f"{_fmt(stat.get(key), digits)} (95% CI {_fmt(stat.get('ci_low'), digits)} to "
            f"{_fmt(stat.get('ci_high'), digits)}, n = {stat.get('n')})")


def _p(p: Any) -> str:
    if p is None:
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _is_spin(networks_headline: dict) -> bool:
    """Whether the networks finding's chance levels came from spins (HCP grayordinates)."""
    return "spin" in str(networks_headline.get("chance_method", "spin"))


def _summary_section(findings: dict) -> Section:
    """One sentence per finding, with its main number."""
    if findings["networks"].get("available") is False:
        return Section("Summary", ["The group mean was not modelled (encoding.target: subjects): the findings are "
                                   "those across subjects, below."])
    net, red, pol, arch = (findings[k] for k in ("networks", "redundancy", "polarity", "architecture"))
    n_networks = len(net["predicted_networks"]) + len(net["unpredicted_networks"])
    spun = _is_spin(net)
    lines = [f"1. Network prediction: {len(net['predicted_networks'])} of {n_networks} "
             f"{atlas_title(net.get('atlas', DEFAULT_ATLAS))} have more BNs than chance "
             f"({'spatial null' if spun else 'independent placement'}) in at least one stream; not predicted: "
             f"{networks_text(net['unpredicted_networks'])}. By chance: a network's BN fraction is that of the "
             f"{'spun maps' if spun else 'whole map'} ({len(net.get('above_fixed_threshold_networks', []))} of "
             f"{n_networks} reach a fixed 10% anyway)."]
    multi = red["overall"]["multi_atom_fraction"]
    chance = red["overall"].get("multi_atom_chance", {})
    auc = red["ablation"].get("auc_all_layers", {})
    lines.append(f"2. Redundancy: {_ci(multi)} of BNs with a significant atom are driven by >= 2 atoms, against "
                 f"{_fmt(chance.get('mean'))} by chance (atom maps of the same sizes placed independently); "
                 f"ablation AUC {_ci(auc)} (1 = prediction unchanged when ANs are removed; the shuffled control "
                 "shows chance).")
    trends = pol.get("layer_trend", {})
    lines.append(f"3. Polarity: the positive share of BNs changes with depth beyond chance in "
                 f"{pol.get('n_streams_layer_dependent', 0)} of {pol.get('n_streams_tested', len(trends))} streams "
                 "(layer trend against random sign conventions, BH over streams). By chance: positive and negative "
                 "counts are anti-correlated whenever the BN total is constant (their r is reported with its chance "
                 "level).")
    pairs = arch.get("pairs", {})
    if pairs:
        lines.append("4. Architecture: image/text BN overlap (Dice) against its chance level"
                     f" ({'spin test' if spun else 'independent placement'}): " + "; ".join(
            f"{pair} {_fmt(v['dice']['mean'])} vs chance {_fmt(v.get('dice_chance', {}).get('mean'))}, "
            f"{v.get('n_layers_above_chance', 0)} of {v.get('n_layers', 0)} layers above chance"
            for pair, v in pairs.items()) + ".")
    if "contrast" in arch:
        c = arch["contrast"]
        lines.append(f"   The overlap differs by {_fmt(c['diff'])} between "
                     f"{c['pairs'][0]} and {c['pairs'][1]} (95% CI {_fmt(c['ci_low'])} to {_fmt(c['ci_high'])}, "
                     f"{_p(c['p'])}).")
    gt = findings["ground_truth"]
    if gt.get("available"):
        lines.append(f"Ground truth (demo): {gt['networks_agree']} of {gt['n_networks']} networks recovered as "
                     f"planted.")
    return Section("Summary", lines)


_SUBJECT_ROWS = ("/mean", "/r", "/diff", "/r_mean", "/frac_bn", "frac_mirrored")


def _subjects_section(findings: dict) -> Section | None:
    """Across subjects (n = subjects): the findings' numbers per subject, summarised; cohort BNs per layer."""
    h = findings.get("across_subjects") or {}
    if not h.get("available"):
        return None
    paragraphs = [f"Every subject was encoded on its own and analysed like the group mean; each number below is "
                  f"summarised over the {h['n_subjects']} subjects ({', '.join(h['subjects'])}). Interval: "
                  f"{h['interval']}. These intervals are over subjects, unlike the bootstraps of the sections "
                  f"above."]
    tables = []
    for name in ("networks", "redundancy", "polarity", "architecture"):
        rows = [{"number": key, "mean": v["mean"], "ci_low": v["ci_low"], "ci_high": v["ci_high"], "p": v["p"],
                 "n subjects": v["n"]}
                for key, v in h[name].items() if key.endswith(_SUBJECT_ROWS)]
        if rows:
            tables.append((f"{name} (across subjects)", pd.DataFrame(rows)))
    cohort = [{"layer": layer, **v} for layer, v in h.get("cohort_bns", {}).items()]
    if cohort:
        tables.append(("Cohort BNs per layer: BH over grayordinates of the one-sample test of Fisher-z r > 0 across "
                       "subjects, and grayordinates that are BNs in at least half the subjects", pd.DataFrame(cohort)))
    return Section(f"Across subjects (n = {h['n_subjects']})", paragraphs, tables, ["cohort_bn_profiles.png"])


def viewer_links(viewers: dict[str, Any], folder: str) -> str:
    """Trusted HTML: a list of relative links ``{folder}/{layer}.html`` to the interactive viewers."""
    if not viewers:
        return ""
    items = "".join(f'<li><a href="{html.escape(f"{folder}/{name}.html")}">{html.escape(name)}</a></li>'
                    for name in sorted(viewers))
    return ("<p>Interactive 3-D viewers of the same maps (r at the BNs; rotate and zoom; self-contained HTML"
            f" files next to this report, in {html.escape(folder)}/; they open offline):</p><ul>{items}</ul>")


def _networks_section(findings: dict, network_findings: pd.DataFrame, viewers: str = "",
                      atlas: str = DEFAULT_ATLAS, surface_note: str | None = None) -> Section | None:
    """Finding 1: the networks predicted above chance and the top networks of ``atlas`` per stream; ``surface_note``
    (why there are no cortical maps) as the last paragraph."""
    h = findings["networks"]
    if h.get("available") is False:
        return None
    check_atlas(atlas, network_findings["atlas"].unique(), "network_findings")
    chance = ("BNs spread like the observed ones, rotated on the sphere" if _is_spin(h)
              else "the same number of BNs placed at random")
    paragraphs = [
        f"A network counts as predicted when its BN fraction beats chance: {h.get('predicted_definition', '')}; "
        f"chance levels: {h.get('chance_method', '')}. "
        f"Predicted: {networks_text(h['predicted_networks'])}. "
        f"Not predicted: {networks_text(h['unpredicted_networks'])}. "
        f"What chance alone gives: {chance}; a fixed "
        f"{h['predicted_frac_bn']:.0%} rule would have called "
        f"{len(h.get('above_fixed_threshold_networks', []))} networks predicted.",
    ]
    best = "; ".join(f"{stream}: {t['network']} (r = {_fmt(t['r_mean'], 3)}, 95% CI {_fmt(t['ci_low'], 3)} to "
                     f"{_fmt(t['ci_high'], 3)}, n = {t['n']}, BN fraction {_fmt(t['frac_bn'])}, {t['layer']})"
                     for stream, top in h["top_networks"].items() for t in top[:1])
    paragraphs.append(f"Best-predicted network of each stream: {best}. The table lists the top three.")
    paragraphs.append(f"Intervals: {h['uncertainty']}.")
    if surface_note:
        paragraphs.append(surface_note)
    top = network_findings[(network_findings.atlas == atlas) & (network_findings["rank"] <= 3)]
    columns = ["stream_label", "rank", "network", "best_layer", "r_mean", "r_ci_low", "r_ci_high", "frac_bn",
               "frac_bn_chance", "frac_bn_p", "n_grayordinates"]
    table = top[[c for c in columns if c in top]].reset_index(drop=True)
    return Section("Finding 1: artificial neurons predict brain networks", paragraphs,
                   [(f"Top three {atlas_title(atlas)} per stream (at each network's best layer, ranked by r)",
                     table)],
                   ["network_r_heatmaps.png", "network_bn_heatmaps.png", "network_layer_profiles.png", "surface_r.png"],
                   html=viewers)


def _redundancy_section(findings: dict, redundancy_layers: pd.DataFrame) -> Section | None:
    h = findings["redundancy"]
    if h.get("available") is False:
        return None
    o = h["overall"]
    paragraphs = [
        f"BN side: on average over layers, {_ci(o['multi_atom_fraction'])} of the BNs with a significant atom "
        f"are driven by two or more atoms; by chance (the same atom maps placed independently) "
        f"{_ci(o.get('multi_atom_chance', {}))}, an excess of {_ci(o.get('multi_atom_excess', {}))}. The mean "
        f"pairwise Dice overlap of the atoms' BN maps is {_ci(o['atom_dice_mean'])}, by chance "
        f"{_ci(o.get('atom_dice_chance', {}))}.",
        f"AN side: {_ci(o['an_multi_atom_fraction'])} of the ANs that load on an atom load on two or more.",
    ]
    ab = h["ablation"]
    tables = []
    if ab.get("per_layer"):
        paragraphs.append(
            "Fault tolerance: random ANs of each stream's layer with the most BNs are removed, the atoms are "
            "re-estimated from the surviving ANs, the ridge is refitted and held-out r of the layer's BNs is "
            f"measured again ({ab['auc_reference']}). Over streams the area under the curve is "
            f"{_ci(ab['auc_all_layers'])}; the shuffled control (BOLD shifted by half a run) shows chance level.")
        tables.append(("Ablation per layer (AUC: 95% bootstrap over random draws)", pd.DataFrame([
            {"layer": name, "AUC": v["auc"]["mean"], "AUC ci_low": v["auc"]["ci_low"],
             "AUC ci_high": v["auc"]["ci_high"], "draws": v["auc"]["n"], "r intact": v["r_intact"],
             f"r, {v['max_fraction']:.0%} removed": v["r_at_max_fraction"], "r shuffled control": v["r_control_mean"],
             "BNs re-predicted": v["n_targets"]} for name, v in ab["per_layer"].items()])))
    cols = [c for c in ("stream_label", "atom_dice_mean", "atom_dice_chance", "multi_atom_fraction",
                        "multi_atom_chance", "an_support_mean", "an_multi_atom_fraction") if c in redundancy_layers]
    tables.insert(0, ("Mean over layers per stream", redundancy_layers[cols].groupby("stream_label").mean().reset_index()))
    return Section("Finding 2: functional redundancy", paragraphs, tables,
                   ["redundancy_atom_dice.png", "redundancy_ablation.png"])


def _polarity_section(findings: dict, profiles: pd.DataFrame) -> Section | None:
    h = findings["polarity"]
    if h.get("available") is False:
        return None
    np_ = h["network_profiles"]
    trend = h.get("layer_trend", {})
    count = h.get("count_correlation", {})
    parts = [f"{s}: r = {_fmt(v['observed'])} (chance {_fmt(v['chance_low'])} to {_fmt(v['chance_high'])}, "
             f"{_p(v['p'])}, n = {v['n']} layers{', significant' if v['significant'] else ''})"
             for s, v in trend.items()]
    counts = [f"{s}: r = {_fmt(v['observed'])} (chance level {_fmt(v['chance'])}, {_p(v['p'])})"
              for s, v in count.items()]
    paragraphs = [
        f"{h.get('sign', '')}.",
        "Layer-dependent polarity: the across-layer correlation of each stream's positive share of BNs with the "
        f"layer index, against {h.get('null', 'a null')}: " + "; ".join(parts) + ".",
        "What chance alone gives for the count correlation: when each layer has about the same number of BNs, "
        "positive and negative counts are anti-correlated whatever the data. Observed against that chance level: "
        + "; ".join(counts) + ".",
        f"Per stream and network, {_fmt(np_['frac_mirrored'])} of the {np_['n_profiles']} defined profiles are "
        f"mirrored; mean r {_ci(np_['mean_r'])}.",
        f"AN loadings: {_ci(h['loading_frac_positive'])} of non-zero loadings are positive; "
        f"{_ci(h['loading_frac_bipolar_atoms'])} of atoms mix positive and negative loadings.",
    ]
    table = pd.DataFrame([{"stream": s, "layer trend r": v["observed"], "chance low": v["chance_low"],
                           "chance high": v["chance_high"], "p": v["p"], "significant": v["significant"],
                           "layers": v["n"]} for s, v in trend.items()])
    return Section("Finding 3: polarity", paragraphs,
                   [("Positive share of BNs across layers against random sign conventions", table)],
                   ["polarity_profiles.png", "surface_polarity.png"])


def _architecture_section(findings: dict, overlap: pd.DataFrame, baselines: pd.DataFrame) -> Section | None:
    h = findings["architecture"]
    if h.get("available") is False:
        return None
    paragraphs = [f"{pair}: Dice of image- and text-stream BN maps {_ci(v['dice'])}; by chance "
                  f"{_ci(v.get('dice_chance', {}))} (excess {_ci(v.get('dice_excess', {}))}; "
                  f"{v.get('n_layers_above_chance', 0)} of {v.get('n_layers', 0)} layers above chance); modality "
                  f"specificity {_ci(v['specificity'])}." for pair, v in h["pairs"].items()]
    if h["pairs"]:
        paragraphs.append("What chance alone gives: two unrelated maps with BN fractions f1 and f2 overlap by about "
                          "2 f1 f2 / (f1 + f2), smooth maps more variably; " + h["definitions"].get("dice_chance", ""))
    if "contrast" in h:
        c = h["contrast"]
        paragraphs.append(f"{c['pairs'][0]} minus {c['pairs'][1]}: difference in mean Dice {_fmt(c['diff'])} "
                          f"(95% CI {_fmt(c['ci_low'])} to {_fmt(c['ci_high'])}, Mann-Whitney {_p(c['p'])}, "
                          f"n = {c['n'][0]} and {c['n'][1]} layers). The study expects CLIP's towers to overlap "
                          "little and METER's fusion to overlap a lot.")
    for comparison, v in h["baselines"].items():
        paragraphs.append(f"{comparison} in {networks_text(v['networks'])}: mean r difference {_fmt(v['mean_diff'], 3)} "
                          f"(95% CI {_fmt(v['ci_low'], 3)} to {_fmt(v['ci_high'], 3)}, Wilcoxon {_p(v['p'])}, "
                          f"n = {v['n']} grayordinates; {v['vlm_layer']} vs {v['baseline_layer']}).")
    tables = []
    if len(baselines):
        table = baselines[["comparison", "network", "mean_diff", "ci_low", "ci_high", "p", "n"]]
        order = list(pd.unique(table.comparison))
        tables.append(("VLM minus unimodal baseline, per network (paired over grayordinates)",
                       network_sorted(table.assign(_c=table.comparison.map(order.index)), by=["_c"])
                       .drop(columns="_c")))
    return Section("Finding 4: architecture", paragraphs, tables,
                   [f for f, ok in (("architecture_overlap.png", len(overlap)),
                                    ("architecture_baselines.png", len(baselines))) if ok])


def _ground_truth_section(findings: dict, recovery: pd.DataFrame) -> Section | None:
    h = findings["ground_truth"]
    if not h.get("available"):
        return None
    agreement = h["planted_vs_recovered_fraction"]
    paragraphs = [
        f"The demo data were simulated with a known answer. {h['networks_agree']} of {h['n_networks']} networks "
        f"agree with it (planted driven vs recovered, BN fraction >= {h['recovered_frac_bn']:.0%} at the best "
        f"layer of any stream). Planted driven fraction vs recovered BN fraction across networks: "
        f"r = {_fmt(agreement['r'])} ({_p(agreement['p'])}, n = {agreement['n']}).",
        f"Missed: {networks_text(h['missed'])}. Recovered without a planted driver: "
        f"{networks_text(h['false_networks'])}.",
    ]
    for kind, v in h["modality"].items():
        paragraphs.append(f"Networks driven by {kind} content ({networks_text(v['networks'])}): best BN fraction "
                          f"{_fmt(v['image_frac_bn_mean'])} in image-only streams vs "
                          f"{_fmt(v['text_frac_bn_mean'])} in text-only streams.")
    rates = "; ".join(f"{s} ({v['layer']}): sensitivity {_fmt(v['sensitivity'])}, specificity "
                      f"{_fmt(v['specificity'])}, FDR {_fmt(v['fdr'])} (n = {v['n_found']} BNs)"
                      for s, v in h["grayordinates"].items())
    paragraphs.append("Grayordinate level, layer with the most BNs per stream against planted driven "
                      f"grayordinates: {rates}. Each planted driver is one stimulus attribute; a stream recovers "
                      "the grayordinates of the attributes its ANs carry, so sensitivity differs between streams "
                      "(the demo's captions describe the scenes, so text streams also carry visual attributes).")
    table = network_sorted(recovery) if "network" in recovery else recovery
    return Section("Recovered vs planted ground truth (demo)", paragraphs,
                   [("Per network: planted vs recovered", table)], [])


def _validation_section(validation: dict | None, figures: dict[str, bytes]) -> Section | None:
    """The last `kedro run --pipelines validation`: its checks, and power per condition; a note when it
    has not run."""
    if not validation:
        return Section("Method validation: NOT RUN", [
            "Validation not run: there is no data/08_reporting/validation_summary.json, so this report has no "
            "check of the method on simulated BOLD with a planted truth (sensitivity, observed FDR, sign "
            "accuracy). Run `make validation` (= kedro run --pipelines validation; minutes on the demo), then "
            "`kedro run --pipelines reporting` to add it here."])
    checks = validation.get("checks", {})
    paragraphs = [
        f"BOLD simulated from this run's own AN features ({validation.get('image_layer')} and "
        f"{validation.get('text_layer')}) with a planted truth (which atoms drive which grayordinates, with "
        f"which sign and image/text overlap), canonical HRF and AR(1) noise, then recovered with the same "
        f"encoding code; {validation.get('n_rows')} simulations (conditions x seeds {validation.get('seeds')}). "
        f"Overall: {'all checks pass' if validation.get('passed') else 'NOT all checks pass'}.",
    ]
    for name, c in checks.items():
        where = ", ".join(f"{k} {v}" for k, v in c.get("where", {}).items())
        paragraphs.append(f"{'PASS' if c['passed'] else 'FAIL'}: {c['description']} ({where}): "
                          f"{_fmt(c['value'], 3)} {c['comparison']} {_fmt(c['threshold'], 3)} (n = {c['n']}).")
    if "fdr_signal" in checks and not checks["fdr_signal"]["passed"]:
        paragraphs.append(
            "With signal present, grayordinates without a planted driver passed the BN test more often than q "
            "allows: treat BNs, at low SNR especially, as less certain than q says. The prediction-shift null "
            "alone (encoding.null_method: shift) is known to do this with leave-one-run-out predictions; the "
            "default refit null corrects it.")
    overlap = checks.get("overlap_high_snr")
    if overlap and not overlap["passed"] and overlap.get("driver_cross_r2") is not None:
        paragraphs.append(
            f"The recovered image/text overlap exceeds the planted one because the two layers' features are "
            f"correlated (the other layer's atoms explain {_fmt(overlap['driver_cross_r2'])} of each layer's "
            "drivers): a BN map shows what a layer predicts, not what drives the grayordinate.")
    rows = [{"condition": c["condition"], "snr": c["snr"], "TRs per run": c["n_trs"],
             "sensitivity": (c.get("sensitivity") or {}).get("mean"),
             "specificity": (c.get("specificity") or {}).get("mean"),
             "observed FDR": (c.get("fdr") or {}).get("mean"),
             "sign accuracy": (c.get("sign_accuracy") or {}).get("mean"),
             "seeds": c.get("n_seeds")} for c in validation.get("conditions", [])]
    tables = [("Mean over seeds per condition", pd.DataFrame(rows))] if rows else []
    lags = [{"temporal model": e.get("model"), "lag (TRs)": e.get("lag"), "fir_delays": e.get("fir_delays"),
             "sensitivity": (e.get("sensitivity") or {}).get("mean"), "held-out r": (e.get("r_mean") or {}).get("mean"),
             "recovered lag": (e.get("lag_recovered") or {}).get("mean"),
             "BNs within 1 TR": (e.get("frac_at_lag") or {}).get("mean"), "seeds": e.get("n_seeds")}
            for e in validation.get("lag_plant", [])]
    if lags:
        tables.append(("Network-specific lag plant: glover vs FIR (lag 0 = canonical HRF)", pd.DataFrame(lags)))
    names = [n for n in ("validation_power.png",) if n in figures]
    return Section("Method validation (simulations with a planted truth)", paragraphs, tables, names)


QC_COLUMNS = {"subject": "subject", "status": "status", "reason": "reason", "n_runs": "runs",
              "n_kept_trs": "TRs kept", "n_grayordinates": "grayordinates", "n_constant": "constant grayordinates",
              "n_repeat_trs": "TRs of the repeated clip", "n_dropped_trs": "TRs beyond the timeline (dropped)"}


def _quality_section(findings: dict, quality: pd.DataFrame) -> Section:
    """The fMRI QC table of fmri_preprocessing (fmri_qc) and what it means for the results."""
    warnings = findings.get("data_warnings") or []
    paragraphs = ["Per subject, from fmri_preprocessing (data/08_reporting/fmri_qc.csv): the runs used, the TRs kept "
                  "for fitting (rest and, by default, the repeated clip dropped), grayordinates, grayordinates that "
                  "are constant (all zero: no signal), TRs of the repeated clip (for the noise ceiling) and TRs of "
                  "the run files beyond the stimulus timeline.",
                  ("Data warnings: " + "; ".join(warnings) + ".") if warnings else "No data warnings."]
    table = quality[[c for c in QC_COLUMNS if c in quality]].rename(columns=QC_COLUMNS)
    if "reason" in table and not table["reason"].astype(str).str.len().any():
        table = table.drop(columns="reason")
    return Section("Data quality (QC)", paragraphs, [("fMRI quality control per subject", table)])


def ceiling_table(network_scores: pd.DataFrame, atlas: str = DEFAULT_ATLAS) -> pd.DataFrame:
    """Per network of ``atlas`` (in `NETWORK_ORDER`): grayordinates, mean noise ceiling, and the best
    mean r / ceiling over the group-mean model's layers with the layer and its mean r."""
    scores = _stream_table(group_scores(network_scores), atlas)
    scores = scores[scores.r_norm_mean.notna()]
    if scores.empty:
        return pd.DataFrame()
    best = scores.loc[scores.groupby("network").r_norm_mean.idxmax()]
    table = pd.DataFrame({
        "network": best.network, "grayordinates": best.n_grayordinates, "mean ceiling": best.ceiling_mean,
        "best mean r / ceiling": best.r_norm_mean, "mean r there": best.r_mean,
        "layer": best.stream_label + ".L" + best.layer.astype(int).map("{:02d}".format)})
    return network_sorted(table)


def _ceiling_section(network_scores: pd.DataFrame, figures: dict[str, bytes], atlas: str = DEFAULT_ATLAS) -> Section:
    """The noise-ceiling map, and r / ceiling per network of ``atlas``."""
    table = ceiling_table(network_scores, atlas)
    if table.empty:
        return Section("Noise ceiling and r / ceiling", [
            "No noise ceiling: the repeated clip is missing or too short (see the QC table), so r / ceiling is "
            "not defined."])
    paragraphs = [
        "The noise ceiling is the highest held-out r a perfect model of the stimulus could reach at a grayordinate, "
        "given its noise: the split-half reliability of the group-mean response to the repeated clip, "
        "Spearman-Brown corrected. r / ceiling (network_scores.r_norm_mean) says how much of the explainable "
        "signal a layer predicts; it is NaN where the ceiling is below 0.1 and can exceed 1 by estimation noise.",
    ]
    return Section("Noise ceiling and r / ceiling", paragraphs,
                   [(f"Per network ({atlas_title(atlas)}): mean noise ceiling and the best mean r / ceiling over"
                     " all layers", table)],
                   [n for n in ("surface_ceiling.png", "network_rnorm_heatmaps.png") if n in figures])


def render_report(findings: dict, network_findings: pd.DataFrame, redundancy_layers: pd.DataFrame,
                  polarity_profiles: pd.DataFrame, overlap: pd.DataFrame, baselines: pd.DataFrame,
                  recovery: pd.DataFrame, figures: dict[str, Any], captions: dict[str, str], validation: dict | None,
                  quality: pd.DataFrame, network_scores: pd.DataFrame, viewers: dict[str, Any] | None,
                  params: dict[str, Any]) -> str:
    """report.html: one page stating each finding with its numbers (figures embedded; the interactive
    surface viewers linked relative to it, in ``reporting.surface_viewer_dir``). Network tables show
    ``reporting.atlas``; without cortical maps (non-HCP data) Finding 1 says why."""
    atlas = str(params.get("atlas") or DEFAULT_ATLAS)
    surface_note = (captions or {}).get(SURFACE_NOTE)
    pngs = {(name if name.endswith(".png") else f"{name}.png"): _png_bytes(image) for name, image in figures.items()}
    prov = findings["provenance"]
    banner = []
    if prov["random_weights"]:
        banner.append(f"RANDOM WEIGHTS ({', '.join(prov['random_weights'])}): these numbers test the pipeline, "
                      "not the models.")
    if prov["data"].startswith("demo"):
        banner.append("SIMULATED DATA: the demo dataset, not fMRI of people.")
    meta = {"data": prov["data"], "data root": str(prov["data_root"]),
            "runs": ", ".join(f"{r} ({n} TRs)" for r, n in prov["runs"].items()),
            "subjects": (f"{findings['subjects']['n_used']} used"
                         + (f"; {len(findings['subjects']['skipped'])} left out (incomplete_subjects: skip): "
                            + "; ".join(f"{s}: {why}" for s, why in findings["subjects"]["skipped"].items())
                            if findings["subjects"]["skipped"] else "")),
            **({"data warnings": "; ".join(findings["data_warnings"])} if findings.get("data_warnings") else {}),
            **{f"weights: {m}": w for m, w in prov["weights"].items()},
            **{f"encoding: {k}": str(v) for k, v in prov["encoding"].items()},
            "vlm-brain": prov["vlm_brain_version"], "generated (UTC)": prov["generated_utc"]}
    sections = [s for s in (
        _summary_section(findings),
        _quality_section(findings, quality),
        _networks_section(findings, network_findings,
                          viewer_links(viewers or {}, params.get("surface_viewer_dir", "surface_viewers")),
                          atlas, surface_note),
        _redundancy_section(findings, redundancy_layers),
        _polarity_section(findings, polarity_profiles),
        _architecture_section(findings, overlap, baselines),
        _ceiling_section(network_scores, pngs, atlas) if findings["networks"].get("available") is not False else None,
        _subjects_section(findings),
        _ground_truth_section(findings, recovery),
        _validation_section(validation, pngs),
    ) if s is not None]
    skipped = set(SURFACE_FIGURES) if surface_note else set()  # said in Finding 1
    for section in sections:
        missing = [name for name in section.figures if name not in pngs and name not in skipped]
        if missing:
            logger.warning("report: figures %s of section %r were not made; left out", missing, section.title)
        section.figures = [name for name in section.figures if name in pngs]
    used = {name for s in sections for name in s.figures}
    captions = {**(captions or {}), "validation_power.png": VALIDATION_CAPTION}
    html = rp.render_report(params["title"], sections, {k: v for k, v in pngs.items() if k in used},
                            banner=" ".join(banner) or None, meta=meta, captions=captions)
    logger.info("report: %d sections, %d figures, %.1f kB", len(sections), len(used), len(html) / 1024)
    return html


def _png_bytes(image: Any) -> bytes:
    """PNG bytes of a loaded figure (a PIL image, or a loader of one, as PartitionedDataset gives)."""
    image = image() if callable(image) else image
    if isinstance(image, bytes):
        return image
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
