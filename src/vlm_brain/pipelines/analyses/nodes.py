"""Nodes of the analyses pipeline: the study's four findings from the encoding results.

Each analysis node returns a tidy table (for figures and further work) and a small dict
of headline statistics, each with its uncertainty (bootstrap CI or test) and n.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from vlm_brain.analyses.architecture import baseline_networks, stream_overlap
from vlm_brain.analyses.overlap import (
    dice,
    dice_independent_test,
    network_fraction_independent_test,
    pairwise_dice,
)
from vlm_brain.analyses.spatial_null import N_CORTEX, network_fraction_test, spin_dice_test, spin_permutations
from vlm_brain.analyses.polarity import (
    loading_signs,
    mirrored_profiles,
    polarity_by_network,
    layer_signs,
    polarity_null_test,
    reference_row,
)
from vlm_brain.analyses.redundancy import (
    ablation_curve,
    atom_bn_maps,
    layer_redundancy,
    normalized_auc,
)
from vlm_brain.analyses.stats import (
    bootstrap_mean_ci,
    correlation_test,
    difference_of_means,
    paired_difference,
)
from vlm_brain.cohort.summary import (
    across_subject_summary,
    finding_numbers,
    group_scores,
    subject_scores,
)
from vlm_brain.cohort.tasks import results_by_subject
from vlm_brain.encoding.settings import EncodingSettings
from vlm_brain.encoding.significance import fdr_bh
from vlm_brain.encoding.temporal import prepare_regressors
from vlm_brain.fmri.networks import (
    DEFAULT_ATLAS,
    UNLABELLED,
    atlas_columns,
    atlas_labels,
    check_atlas,
    primary_atlas,
)
from vlm_brain.results import (
    find_layer,
    iter_layers,
    layer_with_most_bns,
    parse_layer_name,
    plain,
    stream_layers,
)
from vlm_brain.tracking import flatten_numbers
from vlm_brain.validation.metrics import observed_fdr, sensitivity, specificity

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- helpers
#: the headline of a group-level finding when the group mean was not modelled
NO_GROUP = {"available": False, "reason": "encoding.target is 'subjects': the group mean was not modelled; "
            "see across_subjects"}


def _no_group(*empty_tables: Any) -> tuple:
    logger.info("group-level finding skipped: no group-mean encodings (encoding.target: subjects)")
    return (*empty_tables, dict(NO_GROUP))


def _ci_dict(values: np.ndarray, stats_params: dict[str, Any], name: str = "mean") -> dict[str, float]:
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    low, high = bootstrap_mean_ci(finite, int(stats_params["n_boot"]), float(stats_params["ci"]),
                                  int(stats_params["seed"]))
    return {name: float(finite.mean()) if len(finite) else float("nan"), "ci_low": low, "ci_high": high,
            "n": int(len(finite))}


def _atlas_name(params: dict[str, Any]) -> str:
    """``analyses.atlas``: the primary atlas of headlines and top-network tables (default `DEFAULT_ATLAS`)."""
    return str(params.get("atlas") or DEFAULT_ATLAS)


def _network_names(labels: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per atlas column of the labels table, the network name of every target."""
    return {atlas: atlas_labels(labels, atlas) for atlas in atlas_columns(labels)}


class ChanceLevels:
    """Chance levels of map statistics: spin tests on HCP grayordinates, independent placement otherwise.

    ``params``: ``analyses.spatial_null`` (n_perm, seed). Spins need the fs_LR sphere,
    so maps of 59,412 or 91,282 grayordinates get spin tests (cortex only) and any
    other size (a non-HCP dataset, the small test cases) the hypergeometric test of
    independently placed maps, which ignores spatial autocorrelation; ``method`` says
    which was used.
    """

    def __init__(self, params: dict[str, Any], n_grayordinates: int):
        self.spatial = n_grayordinates in (N_CORTEX, 91_282) and int(params["n_perm"]) > 0
        self.n_perm, self.seed = int(params["n_perm"]), int(params["seed"])
        self._perms = None

    @property
    def method(self) -> str:
        return (f"spin test on the fs_LR 32k sphere, cortex only ({self.n_perm} rotations, seed {self.seed})"
                if self.spatial else "independent placement (hypergeometric; no sphere for these grayordinates)")

    @property
    def perms(self) -> np.ndarray:
        if self._perms is None:
            logger.info("chance levels: %d spin permutations (seed %d)", self.n_perm, self.seed)
            self._perms = spin_permutations(self.n_perm, self.seed)
        return self._perms

    def dice(self, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
        return spin_dice_test(a, b, self.perms) if self.spatial else dice_independent_test(a, b)

    def network_fractions(self, bn: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
        if self.spatial:
            return network_fraction_test(bn, labels, self.perms)
        return network_fraction_independent_test(bn, labels)


# --------------------------------------------------------------------------- 1. networks
def analyse_networks(network_scores: pd.DataFrame, labels: pd.DataFrame, params: dict[str, Any],
                     *encodings: dict) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Finding 1: which networks each stream predicts, at its best layer per network.

    Table (one row per stream, atlas, network): best_layer, r_mean at that layer with a
    bootstrap CI over the network's grayordinates, frac_bn, n_grayordinates, rank
    within the stream. Headline: per stream, the top networks of the primary atlas
    (``analyses.atlas``, a column of ``labels``), and the networks with a BN fraction
    above chance in any stream.
    """
    if not any(encodings):
        return _no_group(pd.DataFrame())
    atlas = primary_atlas(labels, _atlas_name(params))
    stats_params = params["stats"]
    network_scores = group_scores(network_scores)
    check_atlas(atlas, network_scores.atlas.unique(), "network_scores (run the encoding pipeline again?)")
    names = _network_names(labels)
    scores = network_scores.assign(stream_label=network_scores.model + "." + network_scores.stream)
    best = scores.loc[scores.groupby(["stream_label", "atlas", "network"]).r_mean.idxmax()]
    rows = []
    for row in best.itertuples():
        r = np.asarray(find_layer(encodings, row.layer_name)["r"])[names[row.atlas] == row.network]
        ci = _ci_dict(r, stats_params, "r_mean")
        rows.append({"model": row.model, "stream": row.stream, "stream_label": row.stream_label,
                     "atlas": row.atlas, "network": row.network, "best_layer": int(row.layer),
                     "best_layer_name": row.layer_name, "r_mean": row.r_mean, "r_ci_low": ci["ci_low"],
                     "r_ci_high": ci["ci_high"], "frac_bn": row.frac_bn, "n_grayordinates": int(row.n_grayordinates)})
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby(["stream_label", "atlas"]).r_mean.rank(ascending=False, method="first").astype(int)
    table = table.sort_values(["stream_label", "atlas", "rank"]).reset_index(drop=True)
    table, chance_method = _with_network_chance(table, names, encodings, params)

    threshold = float(params["predicted_frac_bn"])
    ca = table[table.atlas == atlas]
    significant = ca[ca.frac_bn_significant]
    naive = ca[ca.frac_bn >= threshold]
    headline = {
        "atlas": atlas,
        "top_networks": {
            stream: [{"network": r.network, "layer": r.best_layer_name, "r_mean": r.r_mean,
                      "ci_low": r.r_ci_low, "ci_high": r.r_ci_high, "frac_bn": r.frac_bn, "n": r.n_grayordinates}
                     for r in group.nsmallest(int(params["top_n"]), "rank").itertuples()]
            for stream, group in ca.groupby("stream_label")
        },
        "predicted_networks": sorted(significant.network.unique().tolist()),
        "unpredicted_networks": sorted(set(ca.network) - set(significant.network)),
        "chance": {f"{r.stream_label}/{r.network}": {
            "observed": r.frac_bn, "chance": r.frac_bn_chance, "p": r.frac_bn_p, "n": r.n_grayordinates,
            "layer": r.best_layer_name} for r in ca.itertuples()},
        "chance_method": chance_method,
        "predicted_definition": ("a network is predicted when, at its best layer (highest mean r) in some stream, "
                                 "its BN fraction exceeds the chance level (p of the chance_method, BH over the "
                                 f"streams x networks tested at q = {float(params['spatial_null']['q']):g})"),
        "above_fixed_threshold_networks": sorted(naive.network.unique().tolist()),
        "predicted_frac_bn": threshold,
        "n_layers": int(scores.layer_name.nunique()),
        "n_grayordinates": int(len(labels)),
        "uncertainty": "95% percentile bootstrap over the network's grayordinates (ignores spatial autocorrelation)",
    }
    logger.info("networks: predicted (BN fraction above chance in some stream): %s",
                ", ".join(headline["predicted_networks"]) or "none")
    return table, plain(headline)


def _with_network_chance(table: pd.DataFrame, names: dict[str, np.ndarray], encodings: tuple[dict, ...],
                         params: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """The table with frac_bn_chance, frac_bn_p and frac_bn_significant (BH over the rows of each atlas); the method.

    ``names``: per atlas, the network of every target (`_network_names`).
    """
    chance = ChanceLevels(params["spatial_null"], len(next(iter(names.values()))))
    tests = {}
    for layer_name, atlas in table[["best_layer_name", "atlas"]].drop_duplicates().itertuples(index=False):
        bn = np.asarray(find_layer(encodings, layer_name)["bn"], dtype=bool)
        tests[layer_name, atlas] = chance.network_fractions(bn, names[atlas]).set_index("network")
    looked_up = [tests[row.best_layer_name, row.atlas].loc[row.network] for row in table.itertuples()]
    table = table.assign(frac_bn_chance=[t.chance_fraction for t in looked_up], frac_bn_p=[t.p for t in looked_up])
    q = float(params["spatial_null"]["q"])
    table["frac_bn_significant"] = False
    for _, rows in table.groupby("atlas").groups.items():
        table.loc[rows, "frac_bn_significant"] = fdr_bh(table.loc[rows, "frac_bn_p"].to_numpy(dtype=float), q)
    return table, chance.method


# --------------------------------------------------------------------------- 2. redundancy
def analyse_redundancy(params: dict[str, Any], *encodings: dict
                       ) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, Any]]:
    """Finding 2, BN and AN side: atom-map Dice, multi-atom BNs, AN support, per layer.

    Returns the per-layer table, the (k, k) atom Dice matrix of each stream's layer with
    the most BNs, and headlines (per stream, the mean over layers with a bootstrap CI).
    """
    if not any(encodings):
        return _no_group(pd.DataFrame(), {})
    rows = []
    for layer_name, res in iter_layers(encodings):
        model, stream, layer = parse_layer_name(layer_name)
        rows.append({"model": model, "stream": stream, "stream_label": f"{model}.{stream}", "layer": layer,
                     "layer_name": layer_name,
                     **layer_redundancy(np.asarray(res["bn"]), np.asarray(res["atom_pos"]),
                                        np.asarray(res["atom_neg"]), np.asarray(res["loadings"]))})
    table = pd.DataFrame(rows)
    matrices = {}
    for stream, group in table.groupby("stream_label"):
        layer_name = group.loc[group.n_bn.idxmax(), "layer_name"]
        res = find_layer(encodings, layer_name)
        matrices[layer_name] = pairwise_dice(atom_bn_maps(res["atom_pos"], res["atom_neg"])).astype(np.float32)
    stats_params = params["stats"]
    table["multi_atom_excess"] = table.multi_atom_fraction - table.multi_atom_chance
    table["atom_dice_excess"] = table.atom_dice_mean - table.atom_dice_chance
    compared = ("atom_dice_mean", "atom_dice_chance", "atom_dice_excess", "multi_atom_fraction",
                "multi_atom_chance", "multi_atom_excess")
    headline = {
        "per_stream": {
            stream: {metric: _ci_dict(group[metric], stats_params)
                     for metric in (*compared, "an_support_mean", "an_multi_atom_fraction")}
            for stream, group in table.groupby("stream_label")
        },
        "overall": {metric: _ci_dict(table[metric], stats_params) for metric in (*compared, "an_multi_atom_fraction")},
        "chance": ("*_chance: the same measure for atom maps of the same sizes placed independently of each other "
                   "(multi-atom: Poisson-binomial over the BNs; Dice: 2 m_i m_j / (G (m_i + m_j))); *_excess = "
                   "observed - chance, per layer. Redundancy beyond chance means an excess above 0."),
        "uncertainty": "95% bootstrap over layers",
    }
    overall = headline["overall"]["multi_atom_fraction"]
    logger.info("redundancy: %.2f of BNs with a significant atom have >= 2, chance %.2f (mean over %d layers)",
                overall["mean"], headline["overall"]["multi_atom_chance"]["mean"], overall["n"])
    return table, matrices, plain(headline)


def ablate_layers(run_timeline: pd.DataFrame, fmri_group: dict[str, np.ndarray], params: dict[str, Any],
                  encoding_params: dict[str, Any], *ans_and_encodings: dict) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Finding 2, fault tolerance: ablation curves of each stream's layer with the most BNs.

    ``ans_and_encodings``: the AN time series of every model, then their encodings (same
    order). Targets are the layer's BNs (at most ``max_targets``, drawn at random).
    """
    half = len(ans_and_encodings) // 2
    ans, encodings = ans_and_encodings[:half], ans_and_encodings[half:]
    if not any(encodings):
        return _no_group(pd.DataFrame())
    cfg, enc = params["ablation"], encoding_params
    y_all = np.asarray(fmri_group["bold"], dtype=np.float32)
    runs_full, keep = run_timeline["run"].to_numpy(), run_timeline["keep"].to_numpy()
    rng = np.random.default_rng(int(cfg["seed"]))
    temporal = EncodingSettings.from_params(enc)  # how the layers' ANs became regressors
    curves = []
    for stream, names in stream_layers(encodings).items():
        layer_name, n_bn = layer_with_most_bns(encodings, names)
        if n_bn < int(cfg["min_bns"]):
            logger.info("ablation: %s skipped (best layer has %d BNs < %d)", stream, n_bn, cfg["min_bns"])
            continue
        res = find_layer(encodings, layer_name)
        bns = np.flatnonzero(np.asarray(res["bn"]))
        if len(bns) > int(cfg["max_targets"]):
            bns = np.sort(rng.choice(bns, size=int(cfg["max_targets"]), replace=False))
        x, runs = prepare_regressors(np.asarray(find_layer(ans, layer_name)), runs_full, keep, float(enc["tr"]),
                                     temporal.temporal_model, temporal.lag)
        logger.info("ablation: %s (%d BNs, %d targets, %d fractions x %d repeats)", layer_name, n_bn,
                    len(bns), len(cfg["fractions"]), cfg["n_repeats"])
        curve = ablation_curve(x, y_all[:, bns], runs, np.asarray(res["loadings"]), cfg["fractions"],
                               int(cfg["n_repeats"]), enc["alphas"], int(cfg["seed"]), enc["backend"])
        curves.append(curve.assign(stream_label=stream, layer_name=layer_name, n_targets=len(bns)))
    table = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(
        columns=["condition", "fraction", "repeat", "n_ans_kept", "r_mean", "stream_label", "layer_name", "n_targets"])
    headline = {"per_layer": {}, "uncertainty": "95% bootstrap over random ablation draws"}
    for layer_name, group in table.groupby("layer_name"):
        intact = group[(group.condition == "ablation") & (group.fraction == 0)].r_mean.mean()
        aucs = []
        for repeat in sorted(group[group.fraction > 0].repeat.unique()):
            g = group[(group.condition == "ablation") & ((group.repeat == repeat) & (group.fraction > 0))]
            aucs.append(normalized_auc([0.0, *g.fraction], [intact, *g.r_mean]))
        control = group[group.condition == "shuffled control"].r_mean
        headline["per_layer"][layer_name] = {
            "auc": _ci_dict(np.asarray(aucs), params["stats"]), "r_intact": float(intact),
            "r_control_mean": float(control.mean()),
            "r_at_max_fraction": float(group[(group.condition == "ablation")
                                             & (group.fraction == group.fraction.max())].r_mean.mean()),
            "max_fraction": float(group.fraction.max()), "n_targets": int(group.n_targets.iloc[0]),
        }
    aucs = [v["auc"]["mean"] for v in headline["per_layer"].values()]
    headline["auc_all_layers"] = _ci_dict(np.asarray(aucs), params["stats"])
    headline["auc_reference"] = "1 = no loss; 0.5 = linear decline to r = 0 at the largest fraction"
    return table, plain(headline)


# --------------------------------------------------------------------------- 3. polarity
def analyse_polarity(labels: pd.DataFrame, params: dict[str, Any], encoding_params: dict[str, Any],
                     *encodings: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Finding 3: positive vs negative BNs per layer and network, and their mirroring.

    Returns the per (layer, atlas, network) counts and summed |t| (plus network "all"),
    for every atlas of ``labels``, the across-layer correlation of positive and negative
    profiles per (stream, atlas, network) and headlines (network profiles: those of the
    primary atlas, ``analyses.atlas``).
    """
    if not any(encodings):
        return _no_group(pd.DataFrame(), pd.DataFrame())
    atlas = primary_atlas(labels, _atlas_name(params))
    names = _network_names(labels)
    reference = params["polarity"]["reference"]
    row = reference_row(reference, encoding_params.get("sign_references") or [])
    rows, signs, drivers = [], [], {}
    for layer_name, res in iter_layers(encodings):
        model, stream, layer = parse_layer_name(layer_name)
        sign, strength, groups = layer_signs(res, row)
        drivers.setdefault(f"{model}.{stream}", []).append((layer, groups))
        base = {"model": model, "stream": stream, "stream_label": f"{model}.{stream}", "layer": layer,
                "layer_name": layer_name}
        for name, networks in names.items():
            by_net = polarity_by_network(sign, strength, networks)
            by_net = by_net[by_net.network != UNLABELLED]
            rows += [{**base, "atlas": name, **r} for r in by_net.to_dict("records")]
        rows.append({**base, "atlas": "all", "network": "all", "n_grayordinates": len(sign),
                     "n_pos": int((sign > 0).sum()), "n_neg": int((sign < 0).sum()),
                     "t_pos_sum": float(strength[sign > 0].sum()), "t_neg_sum": float(strength[sign < 0].sum())})
        signs.append({**base, **loading_signs(res["loadings"])})
    table = pd.DataFrame(rows)
    profiles = mirrored_profiles(table, ["stream_label", "atlas", "network"])
    loadings = pd.DataFrame(signs)
    stats_params = params["stats"]
    totals = profiles[profiles.network == "all"]
    nets = profiles[(profiles.atlas == atlas) & profiles.r.notna()]
    null = params["polarity"]
    n_perm, seed, q = int(null["n_perm"]), int(null["seed"]), float(null["q"])
    tests = {stream: polarity_null_test([layer for layer, _ in layers], [counts for _, counts in layers], n_perm, seed)
             for stream, layers in sorted(drivers.items())}
    trend_p = np.array([t["trend"]["p"] for t in tests.values()])
    tested = np.isfinite(trend_p)
    significant = fdr_bh(trend_p, q) if len(trend_p) else np.zeros(0, dtype=bool)  # NaN: not a test
    layer_trend = {stream: {**t["trend"], "significant": bool(sig)}
                   for (stream, t), sig in zip(tests.items(), significant, strict=True)}
    headline = {
        "atlas": atlas,
        "layer_trend": layer_trend,
        "n_streams_layer_dependent": int(significant.sum()),
        "n_streams_tested": int(tested.sum()),
        "count_correlation": {stream: t["count_r"] for stream, t in tests.items()},
        "sign": (f"A BN's sign is that of the correlation of its fitted response with the reference {reference!r} "
                 "(dominant_an: the layer's first principal component of its ANs, oriented with the mean AN; or a "
                 "stimulus feature of encoding.sign_references); layers encoded without references: the strongest "
                 "significant atom's sign"),
        "reference": reference,
        "null": (f"each sign convention of each layer (the reference's orientation; per atom for atom signs) flipped "
                 f"with probability 1/2 ({n_perm} draws, seed {seed}): keeps every layer's BN total and which BNs "
                 "share a convention, redraws only the convention"),
        "all_bns": {r.stream_label: {"r": r.r, "p": r.p, "n": int(r.n)} for r in totals.itertuples()},
        "network_profiles": {"mean_r": _ci_dict(nets.r, stats_params),
                             "frac_mirrored": float(np.mean(nets.r < 0)) if len(nets) else float("nan"),
                             "n_profiles": int(len(nets))},
        "bn_counts": {s: {"n_pos": int(g.n_pos.sum()), "n_neg": int(g.n_neg.sum())}
                      for s, g in table[table.network == "all"].groupby("stream_label")},
        "loading_frac_positive": _ci_dict(loadings.frac_positive, stats_params),
        "loading_frac_bipolar_atoms": _ci_dict(loadings.frac_bipolar_atoms, stats_params),
        "definition": ("layer_trend: Pearson r across layers of the positive share n_pos / (n_pos + n_neg) with the "
                       "layer index, p two-sided against the atom-flip null, significant after BH over streams at "
                       f"q = {q:g}; count_correlation: r of the positive and negative counts (mirrored trends: r < 0) "
                       "against the same null (one-sided), since a near constant total makes it negative by "
                       "construction; all_bns: the same r with its naive p from the t distribution (n = layers), "
                       "kept for comparison"),
    }
    logger.info("polarity: %d of %d streams with a layer-dependent positive share (sign-convention null, BH q = %g)",
                headline["n_streams_layer_dependent"], headline["n_streams_tested"], q)
    table = table.merge(loadings[["layer_name", "frac_positive", "frac_bipolar_atoms"]], on="layer_name")
    return table, profiles, plain(headline)


# --------------------------------------------------------------------------- 4. architecture
def _dice_columns(test: dict[str, float]) -> dict[str, float]:
    """Overlap-table columns of a chance test: dice_tested, dice_chance, dice_null_sd, dice_p."""
    return {"dice_tested": test["dice"], "dice_chance": test["chance"], "dice_null_sd": test["null_sd"],
            "dice_p": test["p"]}


def _best_layer(encodings: tuple[dict, ...], names: list[str], mask: np.ndarray) -> str:
    return max(names, key=lambda n: float(np.mean(np.asarray(find_layer(encodings, n)["r"])[mask])))


def _encoded_baselines(specs: list[dict[str, str]], streams: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(vlm, baseline) streams of ``architecture.baselines`` that were both encoded; others skipped with a warning."""
    pairs = []
    for spec in specs:
        vlm, base = spec["vlm"], spec["baseline"]
        if vlm in streams and base in streams:
            pairs.append((vlm, base))
        else:
            logger.warning("architecture: %s vs %s skipped (not encoded)", vlm, base)
    return pairs


def analyse_architecture(labels: pd.DataFrame, params: dict[str, Any], *encodings: dict
                         ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Finding 4: image vs text BN overlap per layer, specificity, VLMs vs unimodal baselines.

    Overlap table (pair, layer): Dice of the two streams' BN maps, BN counts, mean
    |modality specificity| and the correlation of their network BN-fraction profiles.
    Baseline table (comparison, network): paired difference in r per grayordinate
    between the VLM stream's and the baseline's best layers (best = highest mean r over
    the compared networks: those of ``architecture.baseline_networks`` that the primary
    atlas ``analyses.atlas`` has), bootstrap CI and Wilcoxon test.
    """
    if not any(encodings):
        return _no_group(pd.DataFrame(), pd.DataFrame())
    cfg, stats_params = params["architecture"], params["stats"]
    streams = stream_layers(encodings)
    atlas = primary_atlas(labels, _atlas_name(params))
    networks = atlas_labels(labels, atlas)
    chance = ChanceLevels(params["spatial_null"], len(labels))
    rows = []
    for pair, (image_stream, text_stream) in cfg["pairs"].items():
        if image_stream not in streams or text_stream not in streams:
            logger.warning("architecture: pair %r skipped (%s or %s not encoded)", pair, image_stream, text_stream)
            continue
        image = {parse_layer_name(n).index: n for n in streams[image_stream]}
        text = {parse_layer_name(n).index: n for n in streams[text_stream]}
        shared = sorted(set(image) & set(text))
        for layer in shared:
            a, b = find_layer(encodings, image[layer]), find_layer(encodings, text[layer])
            bn_a, bn_b = np.asarray(a["bn"], bool), np.asarray(b["bn"], bool)
            nets = [n for n in np.unique(networks) if n != UNLABELLED]
            frac_a = [bn_a[networks == n].mean() for n in nets]
            frac_b = [bn_b[networks == n].mean() for n in nets]
            rows.append({"pair": pair, "image_stream": image_stream, "text_stream": text_stream, "layer": layer,
                         "depth": shared.index(layer) / max(len(shared) - 1, 1),
                         **stream_overlap(bn_a, bn_b, np.asarray(a["r"]), np.asarray(b["r"])),
                         **_dice_columns(chance.dice(bn_a, bn_b)),
                         "profile_r": correlation_test(frac_a, frac_b)["r"]})
    overlap = pd.DataFrame(rows)

    specs = _encoded_baselines(cfg["baselines"], streams)
    target_networks = baseline_networks(cfg["baseline_networks"], networks, atlas) if specs else []
    mask = np.isin(networks, target_networks)
    comparisons = []
    for vlm, base in specs:
        vlm_layer, base_layer = _best_layer(encodings, streams[vlm], mask), _best_layer(encodings, streams[base], mask)
        r_vlm = np.asarray(find_layer(encodings, vlm_layer)["r"], dtype=float)
        r_base = np.asarray(find_layer(encodings, base_layer)["r"], dtype=float)
        for network in [*target_networks, "all compared"]:
            sel = mask if network == "all compared" else networks == network
            comparisons.append({"comparison": f"{vlm} vs {base}", "vlm": vlm, "baseline": base,
                                "network": network, "vlm_layer": vlm_layer, "baseline_layer": base_layer,
                                **paired_difference(r_vlm[sel], r_base[sel], int(stats_params["n_boot"]),
                                                    float(stats_params["ci"]), int(stats_params["seed"]))})
    baselines = pd.DataFrame(comparisons)

    headline: dict[str, Any] = {"atlas": atlas, "pairs": {}, "baselines": {}}
    for pair, group in overlap.groupby("pair", sort=False) if len(overlap) else []:
        significant = fdr_bh(group.dice_p.to_numpy(dtype=float), float(params["spatial_null"]["q"]))
        headline["pairs"][pair] = {"dice": _ci_dict(group.dice, stats_params),
                                   "dice_chance": _ci_dict(group.dice_chance, stats_params),
                                   "dice_excess": _ci_dict(group.dice_tested - group.dice_chance, stats_params),
                                   "n_layers_above_chance": int(significant.sum()),
                                   "n_layers": int(len(group)),
                                   "specificity": _ci_dict(group.specificity, stats_params)}
    contrast = cfg.get("contrast")
    if contrast and len(overlap) and set(contrast) <= set(overlap.pair):
        a = overlap[overlap.pair == contrast[0]].dice.dropna().to_numpy()
        b = overlap[overlap.pair == contrast[1]].dice.dropna().to_numpy()
        headline["contrast"] = {"pairs": list(contrast), **difference_of_means(
            a, b, int(stats_params["n_boot"]), float(stats_params["ci"]), int(stats_params["seed"]))}
    for row in baselines[baselines.network == "all compared"].itertuples() if len(baselines) else []:
        headline["baselines"][row.comparison] = {"networks": target_networks, "mean_diff": row.mean_diff,
                                                 "ci_low": row.ci_low, "ci_high": row.ci_high, "p": row.p,
                                                 "n": row.n, "vlm_layer": row.vlm_layer,
                                                 "baseline_layer": row.baseline_layer}
    headline["definitions"] = {
        "dice": "Dice of the image- and text-stream BN maps at the same layer; CI: bootstrap over layers",
        "dice_chance": ("the Dice expected by chance (dice_tested: the Dice the test saw, the cortex only with spins); "
                        f"method: {chance.method}; a layer is above chance when its p passes BH over the pair's "
                        f"layers at q = {float(params['spatial_null']['q']):g}; dice_excess = tested Dice - chance"),
        "specificity": "mean |(r_image - r_text) / (r_image + r_text)| over BNs of either stream (r < 0 -> 0)",
        "baselines": "mean over grayordinates of r(VLM best layer) - r(baseline best layer); Wilcoxon signed-rank",
    }
    return overlap, baselines, plain(headline)


# --------------------------------------------------------------------------- ground truth
def compare_with_ground_truth(ground_truth: pd.DataFrame | None, network_scores: pd.DataFrame,
                              params: dict[str, Any], *encodings: dict) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Recovered vs planted truth, for data with a known answer (the demo); empty otherwise.

    ``ground_truth``: per grayordinate ``network`` (a network of the primary atlas,
    ``analyses.atlas``), ``driven``, ``modality`` (visual, text, both, none) and ``sign``
    (+1, -1, 0), or None when the data has none.

    Table, per network: planted driven fraction and modality, the best BN fraction of
    any stream (and of image and text streams), and whether it counts as recovered (BN
    fraction >= ``recovered_frac_bn``). Headline: network-level agreement (accuracy,
    correlation of planted vs recovered fractions), and grayordinate-level sensitivity,
    specificity and FDR of the BNs of each stream's best layer.
    """
    if ground_truth is None or len(ground_truth) == 0 or not any(encodings):
        return pd.DataFrame({"network": pd.Series(dtype=str)}), {"available": False}
    threshold = float(params["recovered_frac_bn"])
    network_scores = group_scores(network_scores)
    atlas = check_atlas(_atlas_name(params), network_scores.atlas.unique(), "network_scores")
    ca = network_scores[network_scores.atlas == atlas]
    image = ca[ca.stream == "image"]  # single-modality streams (fusion streams see both inputs)
    text = ca[ca.stream == "text"]
    rows = []
    for network, truth in ground_truth.groupby("network"):
        planted = float(truth.driven.mean())
        modalities = sorted(set(truth.modality[truth.driven]) - {"none"})
        best = ca[ca.network == network]
        rows.append({"network": network, "planted_frac": planted, "planted_modality": "+".join(modalities) or "none",
                     "planted_signs": "/".join(sorted({"+" if s > 0 else "-" for s in truth.sign[truth.driven]})),
                     "best_frac_bn": float(best.frac_bn.max()) if len(best) else float("nan"),
                     "best_layer": best.loc[best.frac_bn.idxmax(), "layer_name"] if len(best) else "",
                     "image_frac_bn": float(image[image.network == network].frac_bn.max()),
                     "text_frac_bn": float(text[text.network == network].frac_bn.max())})
    table = pd.DataFrame(rows)
    table["planted_driven"] = table.planted_frac > 0
    table["recovered"] = table.best_frac_bn >= threshold
    table["agrees"] = table.planted_driven == table.recovered

    driven = ground_truth.sort_values("grayordinate").driven.to_numpy()
    per_stream = {}
    for stream, names in stream_layers(encodings).items():
        best_name, _ = layer_with_most_bns(encodings, names)
        bn = np.asarray(find_layer(encodings, best_name)["bn"], bool)
        if len(bn) != len(driven):
            raise ValueError(f"ground truth has {len(driven)} grayordinates but {best_name} has {len(bn)}")
        per_stream[stream] = {"layer": best_name, **detection_rates(bn, driven)}
    modality = {}
    for kind in ("visual", "text"):
        nets = table[table.planted_modality == kind]
        modality[kind] = {"networks": nets.network.tolist(),
                          "image_frac_bn_mean": float(nets.image_frac_bn.mean()) if len(nets) else float("nan"),
                          "text_frac_bn_mean": float(nets.text_frac_bn.mean()) if len(nets) else float("nan")}
    agreement = correlation_test(table.planted_frac, table.best_frac_bn)
    headline = {
        "available": True,
        "recovered_frac_bn": threshold,
        "networks_agree": int(table.agrees.sum()), "n_networks": int(len(table)),
        "network_accuracy": float(table.agrees.mean()),
        "planted_vs_recovered_fraction": agreement,
        "planted_driven": sorted(table.network[table.planted_driven]),
        "recovered": sorted(table.network[table.recovered]),
        "missed": sorted(table.network[table.planted_driven & ~table.recovered]),
        "false_networks": sorted(table.network[~table.planted_driven & table.recovered]),
        "grayordinates": per_stream,
        "modality": modality,
    }
    logger.info("ground truth: %d/%d networks agree (planted vs recovered BN fraction r = %.2f)",
                headline["networks_agree"], headline["n_networks"], agreement["r"])
    return table, plain(headline)


def detection_rates(found: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Sensitivity, specificity and false-discovery rate of a boolean detection map, with counts."""
    found, truth = np.asarray(found, bool), np.asarray(truth, bool)
    return {"sensitivity": sensitivity(found, truth), "specificity": specificity(found, ~truth),
            "fdr": observed_fdr(found, ~truth), "n_found": int(found.sum()), "n_true": int(truth.sum()),
            "dice": dice(found, truth)}


# --------------------------------------------------------------------------- across subjects
SUBJECT_FINDINGS = ("networks", "redundancy", "polarity", "architecture")


def analyse_subjects(manifest: pd.DataFrame, cache, cohort: dict[str, dict], network_scores: pd.DataFrame,
                     labels: pd.DataFrame, params: dict[str, Any], encoding_params: dict[str, Any]) -> dict[str, Any]:
    """The four findings per subject, summarised across subjects (n = subjects).

    Each subject's encodings go through the same analyses as the group mean; every
    number of their headlines (without their own CIs, n and p) is then summarised over
    subjects by its mean, a t-distribution CI and a one-sample t-test of mean = 0
    (`vlm_brain.cohort.summary.across_subject_summary`). The ablation and the ground
    truth are group-level only. ``cohort``: per layer, the cohort BN counts of
    `infer_across_subjects`. ``{"available": False}`` without per-subject encodings.
    """
    if manifest is None or len(manifest) == 0:
        return {"available": False}
    numbers: dict[str, dict[str, dict[str, float]]] = {name: {} for name in SUBJECT_FINDINGS}
    by_subject = results_by_subject(manifest, cache.root)
    subjects = sorted(by_subject)
    for subject in subjects:
        encoding = by_subject[subject]
        headlines = {
            "networks": analyse_networks(subject_scores(network_scores, subject), labels, params, encoding)[1],
            "redundancy": analyse_redundancy(params, encoding)[2],
            "polarity": analyse_polarity(labels, params, encoding_params, encoding)[2],
            "architecture": analyse_architecture(labels, params, encoding)[2],
        }
        for name, headline in headlines.items():
            numbers[name][subject] = finding_numbers(flatten_numbers(headline))
        logger.info("findings of subject %s computed (%d layers)", subject, len(encoding))
    ci = float(params["stats"]["ci"])
    out: dict[str, Any] = {
        "available": True, "unit": "subjects", "n_subjects": len(subjects), "subjects": subjects,
        "interval": (f"{ci:.0%} t-distribution CI of the mean over subjects; p: two-sided one-sample t-test of "
                     "mean = 0 over subjects (n = subjects)"),
        **{name: across_subject_summary(numbers[name], ci) for name in SUBJECT_FINDINGS},
    }
    out["cohort_bns"] = {layer: {"n_bn": int(np.sum(res["bn"])), "frac_bn": float(np.mean(res["bn"])),
                                 "n_bn_in_half_the_subjects": int(np.sum(np.asarray(res["frac_subjects_bn"]) >= 0.5)),
                                 "n_subjects": int(np.asarray(res["n_subjects"]))}
                         for layer, res in sorted(cohort.items())}
    return plain(out)
