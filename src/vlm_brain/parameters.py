"""Checks of every pipeline's parameters, before any data is read; no Kedro imports.

`parameter_problems` returns one line per problem: the parameter, its value and what
is allowed. `vlm_brain.hooks.ParameterHooks` runs it when ``kedro run`` starts, so a
typo fails in a second instead of after the feature extraction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from vlm_brain.encoding.settings import EncodingSettings

MISSING = object()


class ParameterError(ValueError):
    """Invalid parameters; the message lists every problem, one per line."""


class Problems(list):
    """Lines ``<parameter> = <value>: must be <allowed>``."""

    def require(self, ok: bool, name: str, value: Any, allowed: str) -> bool:
        if not ok:
            self.append(f"{name} = {value!r}: must be {allowed}")
        return ok


def is_int(value: Any, minimum: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum)


def is_number(value: Any, low: float | None = None, high: float | None = None, *, open_low: bool = False,
              open_high: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    if low is not None and (value <= low if open_low else value < low):
        return False
    return not (high is not None and (value >= high if open_high else value > high))


def _get(params: Mapping[str, Any], key: str) -> Any:
    value: Any = params
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def _check(problems: Problems, params: Mapping[str, Any], where: str, key: str, ok: Callable[[Any], bool],
           allowed: str) -> None:
    value = _get(params, key)
    if value is not MISSING:
        problems.require(ok(value), f"{where}.{key}", value, allowed)


def _runs(problems: Problems, params: Mapping[str, Any], where: str) -> None:
    runs = _get(params, "runs")
    if runs is MISSING:
        return
    if not isinstance(runs, Mapping) or not runs:
        problems.require(False, f"{where}.runs", runs, "a mapping run name -> TRs, e.g. {tfMRI_MOVIE1_7T_AP: 921}")
        return
    for run, n in runs.items():
        problems.require(is_int(n, 1), f"{where}.runs.{run}", n, "an integer >= 1 (TRs of the run)")


def training_trs(runs: Mapping[str, Any]) -> int:
    """The fewest TRs any leave-one-run-out fold trains on (all runs but the longest)."""
    lengths = [int(n) for n in runs.values() if is_int(n, 1)]
    return sum(lengths) - max(lengths) if lengths else 0


# --------------------------------------------------------------------------- per group
def encoding_problems(params: Mapping[str, Any], runs: Mapping[str, Any] | None = None,
                      where: str = "encoding") -> Problems:
    """The encoding settings (`EncodingSettings`) and the execution keys; with ``runs``
    (run -> TRs), ``sdl.n_atoms`` against the TRs a fold trains on."""
    problems = Problems(EncodingSettings.problems(params, where))
    _check(problems, params, where, "tr", lambda v: is_number(v, 0, open_low=True), "a number of seconds > 0")
    _check(problems, params, where, "target", lambda v: v in ("group", "subjects", "both"),
           "one of group, subjects, both")
    _check(problems, params, where, "n_jobs", lambda v: is_int(v, 1), "an integer >= 1")
    _check(problems, params, where, "cluster.scheduler", lambda v: isinstance(v, str) and bool(v),
           "local, none, or a scheduler address such as tcp://host:8786")
    _check(problems, params, where, "cluster.n_workers", lambda v: v is None or is_int(v, 1),
           "null (one per core) or an integer >= 1")
    _check(problems, params, where, "cluster.retries", lambda v: is_int(v, 0), "an integer >= 0")
    _check(problems, params, where, "cohort.test", lambda v: v in ("t", "sign_flip"), "one of t, sign_flip")
    _check(problems, params, where, "cohort.n_perm", lambda v: is_int(v, 1), "an integer >= 1")
    _check(problems, params, where, "noise_ceiling", lambda v: v in ("auto", "repeat", "loso"),
           "one of auto, repeat, loso")
    from vlm_brain.stimuli.features import FEATURES  # noqa: PLC0415

    _check(problems, params, where, "sign_references",
           lambda v: v is None or (isinstance(v, list) and all(f in FEATURES for f in v)),
           f"null or a list of stimulus features among {', '.join(FEATURES)}")
    n_atoms = _get(params, "sdl.n_atoms")
    if runs and is_int(n_atoms, 1) and 0 < training_trs(runs) < n_atoms:
        problems.append(f"{where}.sdl.n_atoms = {n_atoms!r}: must be at most the TRs a leave-one-run-out fold"
                        f" trains on ({training_trs(runs)} with runs {dict(runs)})")
    return problems


FAMILY_KEYS = {"transformers": ("source",), "two_tower": ("source", "config"), "open_clip": (), "meter": ()}


def feature_extraction_problems(params: Mapping[str, Any], where: str = "feature_extraction") -> Problems:
    """TR, runs, sampling, batching, device, and every model entry (family, weights, source)."""
    from vlm_brain.models.registry import FAMILIES, enabled_models

    problems = Problems()
    _check(problems, params, where, "tr", lambda v: is_number(v, 0, open_low=True), "a number of seconds > 0")
    _runs(problems, params, where)
    _check(problems, params, where, "frames_per_tr", lambda v: is_int(v, 1), "an integer >= 1 (frames per TR)")
    _check(problems, params, where, "segment_unit", lambda v: v in (None, "s", "tr"),
           "s (seconds), tr (TR indices) or null (the segment table's unit column)")
    _check(problems, params, where, "pooling", lambda v: v in ("mean", "cls"), "one of mean, cls")
    _check(problems, params, where, "batch_size", lambda v: is_int(v, 1), "an integer >= 1")
    _check(problems, params, where, "text_batch_size", lambda v: is_int(v, 1), "an integer >= 1")
    _check(problems, params, where, "device", lambda v: isinstance(v, str) and v.split(":")[0] in ("auto", "cpu", "cuda"),
           "auto, cpu, cuda or cuda:<index>")
    _check(problems, params, where, "precision", lambda v: v in ("fp32", "bf16", "fp16"), "one of fp32, bf16, fp16")
    try:
        models = enabled_models(_get(params, "models") if _get(params, "models") is not MISSING else {})
    except ValueError as exc:
        problems.append(str(exc))
        return problems
    for name, spec in models.items():
        key = f"{where}.models.{name}"
        family = spec.get("family")
        if not problems.require(family in FAMILIES, f"{key}.family", family, f"one of {', '.join(sorted(FAMILIES))}"):
            continue
        weights = spec.get("weights", "random")
        problems.require(weights in ("random", "pretrained"), f"{key}.weights", weights, "random or pretrained")
        problems.require(is_int(spec.get("seed", 0), 0), f"{key}.seed", spec.get("seed"), "an integer >= 0")
        needs = FAMILY_KEYS.get(family, ())
        if needs and not any(spec.get(k) for k in needs):
            problems.append(f"{key}: family {family} needs {' or '.join(f'`{k}`' for k in needs)}"
                            " (a hub name or local folder" + (", or a config for random weights)" if len(needs) > 1
                                                              else ")"))
        if family == "wordnet" and not (spec.get("path") and spec.get("features_dataset")):
            problems.append(f"{key}: family wordnet needs `path` (the WordNetFeatures.hdf5 file) and "
                            "`features_dataset` (its dataset of labels; `{run}` in it for one per run)")
        if family == "open_clip" and weights == "pretrained" and not spec.get("pretrained"):
            problems.append(f"{key}: weights pretrained needs `pretrained` (an open_clip tag such as openai,"
                            " or a checkpoint file)")
        if family == "meter" and weights == "pretrained" and not spec.get("checkpoint"):
            problems.append(f"{key}: weights pretrained needs `checkpoint` (the METER .ckpt file)")
    return problems


def fmri_preprocessing_problems(params: Mapping[str, Any], where: str = "fmri_preprocessing") -> Problems:
    problems = Problems()
    _check(problems, params, where, "tr", lambda v: is_number(v, 0, open_low=True), "a number of seconds > 0")
    _runs(problems, params, where)
    _check(problems, params, where, "subjects",
           lambda v: v == "all" or (isinstance(v, list) and bool(v) and all(isinstance(s, str | int) for s in v)),
           'all, or a non-empty list of subject ids, e.g. ["100610", "102311"]')
    _check(problems, params, where, "incomplete_subjects", lambda v: v in ("error", "skip"), "one of error, skip")
    for flag in ("exclude_repeat", "detrend", "standardize"):
        _check(problems, params, where, flag, lambda v: isinstance(v, bool), "true or false")
    _check(problems, params, where, "high_pass", lambda v: v is None or is_number(v, 0, open_low=True),
           "null or a frequency in Hz > 0, e.g. 0.008")
    return problems


def analyses_problems(params: Mapping[str, Any], where: str = "analyses") -> Problems:
    problems = Problems()
    _check(problems, params, where, "stats.n_boot", lambda v: is_int(v, 1), "an integer >= 1")
    _check(problems, params, where, "stats.ci", lambda v: is_number(v, 0, 1, open_low=True, open_high=True),
           "a level in (0, 1), e.g. 0.95")
    _check(problems, params, where, "stats.seed", lambda v: is_int(v, 0), "an integer >= 0")
    _check(problems, params, where, "top_n", lambda v: is_int(v, 1), "an integer >= 1")
    for key in ("predicted_frac_bn", "recovered_frac_bn"):
        _check(problems, params, where, key, lambda v: is_number(v, 0, 1), "a fraction in [0, 1]")
    _check(problems, params, where, "ablation.fractions",
           lambda v: isinstance(v, list) and bool(v) and all(is_number(f, 0, 1, open_high=True) for f in v),
           "a non-empty list of fractions in [0, 1)")
    for key in ("n_repeats", "max_targets"):
        _check(problems, params, where, f"ablation.{key}", lambda v: is_int(v, 1), "an integer >= 1")
    _check(problems, params, where, "ablation.min_bns", lambda v: is_int(v, 0), "an integer >= 0")
    _check(problems, params, where, "spatial_null.n_perm", lambda v: is_int(v, 0),
           "an integer >= 0 (0: independent placement instead of spins), e.g. 1000")
    _check(problems, params, where, "spatial_null.seed", lambda v: is_int(v, 0), "an integer >= 0")
    _check(problems, params, where, "spatial_null.q", lambda v: is_number(v, 0, 1, open_low=True, open_high=True),
           "a false discovery rate in (0, 1), e.g. 0.05")
    _check(problems, params, where, "polarity.reference", lambda v: isinstance(v, str) and bool(v),
           "dominant_an or a stimulus feature of encoding.sign_references, e.g. luminance")
    _check(problems, params, where, "polarity.n_perm", lambda v: is_int(v, 1), "an integer >= 1, e.g. 1000")
    _check(problems, params, where, "polarity.seed", lambda v: is_int(v, 0), "an integer >= 0")
    _check(problems, params, where, "polarity.q", lambda v: is_number(v, 0, 1, open_low=True, open_high=True),
           "a false discovery rate in (0, 1), e.g. 0.05")
    pairs = _get(params, "architecture.pairs")
    if pairs is not MISSING:
        if not isinstance(pairs, Mapping):
            problems.require(False, f"{where}.architecture.pairs", pairs, "a mapping name -> [image stream, text stream]")
        else:
            for name, pair in pairs.items():
                problems.require(isinstance(pair, list) and len(pair) == 2 and all(_is_stream(s) for s in pair),
                                 f"{where}.architecture.pairs.{name}", pair,
                                 "two streams <model>.<stream>, e.g. [clip.image, clip.text]")
            contrast = _get(params, "architecture.contrast")
            if contrast not in (MISSING, None):
                problems.require(isinstance(contrast, list) and len(contrast) == 2
                                 and all(c in pairs for c in contrast), f"{where}.architecture.contrast", contrast,
                                 f"two pair names of architecture.pairs ({', '.join(pairs)})")
    baselines = _get(params, "architecture.baselines")
    if baselines is not MISSING:
        problems.require(isinstance(baselines, list) and all(
            isinstance(b, Mapping) and _is_stream(b.get("vlm")) and _is_stream(b.get("baseline")) for b in baselines),
            f"{where}.architecture.baselines", baselines,
            "a list of {vlm: <model>.<stream>, baseline: <model>.<stream>}")
    return problems


def reporting_problems(params: Mapping[str, Any], where: str = "reporting") -> Problems:
    problems = Problems()
    _check(problems, params, where, "surface_streams", lambda v: isinstance(v, list) and all(_is_stream(s) for s in v),
           "a list of streams <model>.<stream>, e.g. [clip.image, clip.text]")
    _check(problems, params, where, "surface.percentile", lambda v: is_number(v, 0, 100, open_low=True),
           "a percentile in (0, 100], e.g. 99")
    _check(problems, params, where, "surface.borders", lambda v: isinstance(v, bool), "true or false")
    _check(problems, params, where, "surface_viewer_dir",
           lambda v: isinstance(v, str) and bool(v) and not v.startswith(("/", "..")),
           "a folder name relative to report.html, e.g. surface_viewers")
    return problems


def validation_problems(params: Mapping[str, Any], where: str = "validation") -> Problems:
    from vlm_brain.results import parse_layer_name

    problems = Problems(EncodingSettings.problems(params, where))
    for key in ("image_layer", "text_layer"):
        value = _get(params, key)
        if value is not MISSING:
            try:
                parse_layer_name(str(value))
            except ValueError:
                problems.require(False, f"{where}.{key}", value, "a layer name <model>.<stream>.L<index>")
    _check(problems, params, where, "snrs", lambda v: isinstance(v, list) and bool(v)
           and all(is_number(s, 0, open_low=True) for s in v), "a non-empty list of numbers > 0")
    _check(problems, params, where, "n_trs", lambda v: isinstance(v, list) and bool(v)
           and all(n is None or is_int(n, 10) for n in v), "a non-empty list of TRs per run (integers >= 10, or null)")
    for key in ("n_seeds", "n_targets", "n_drivers"):
        _check(problems, params, where, key, lambda v: is_int(v, 1), "an integer >= 1")
    for key in ("frac_image", "frac_text", "overlap", "frac_negative", "min_run_share"):
        _check(problems, params, where, key, lambda v: is_number(v, 0, 1), "a fraction in [0, 1]")
    _check(problems, params, where, "noise_ar", lambda v: is_number(v, 0, 1, open_high=True), "a number in [0, 1)")
    return problems


def demo_problems(params: Mapping[str, Any], where: str = "demo") -> Problems:
    from vlm_brain.simulate import resolve_demo_params

    problems = Problems()
    if not params.get("enabled", False):
        return problems
    try:
        resolve_demo_params({k: v for k, v in params.items() if k not in ("enabled", "root")})
    except ValueError as exc:
        problems.append(str(exc).replace("demo params: ", f"{where}.", 1))
    return problems


def _is_stream(value: Any) -> bool:
    return isinstance(value, str) and value.count(".") == 1 and all(value.split("."))


#: parameter group -> its checks
CHECKS: dict[str, Callable[..., Problems]] = {
    "demo": demo_problems,
    "fmri_preprocessing": fmri_preprocessing_problems,
    "feature_extraction": feature_extraction_problems,
    "encoding": encoding_problems,
    "analyses": analyses_problems,
    "reporting": reporting_problems,
    "validation": validation_problems,
}


def parameter_problems(parameters: Mapping[str, Any]) -> list[str]:
    """Every problem of every parameter group in ``parameters`` (group -> its dict)."""
    problems: list[str] = []
    for group, check in CHECKS.items():
        params = parameters.get(group)
        if params is None:
            continue
        if not isinstance(params, Mapping):
            problems.append(f"{group} = {params!r}: must be a mapping (see conf/base/parameters_{group}.yml)")
            continue
        if group == "encoding":
            runs = _get(parameters.get("feature_extraction") or {}, "runs")
            problems += check(params, runs if isinstance(runs, Mapping) else None)
        else:
            problems += check(params)
    return problems + _polarity_reference_problems(parameters)


def _polarity_reference_problems(parameters: Mapping[str, Any]) -> list[str]:
    """analyses.polarity.reference must be one the layers are encoded with (dominant_an or encoding.sign_references)."""
    reference = _get(parameters.get("analyses") or {}, "polarity.reference")
    references = _get(parameters.get("encoding") or {}, "sign_references")
    if reference is MISSING or not isinstance(reference, str) or references is MISSING:
        return []
    allowed = ["dominant_an", *(references or [])]
    if reference in allowed:
        return []
    return [f"analyses.polarity.reference = {reference!r}: must be dominant_an or a feature of "
            f"encoding.sign_references ({', '.join(allowed)})"]


def check_parameters(parameters: Mapping[str, Any]) -> None:
    """Raise `ParameterError` listing every problem, if there is any."""
    problems = parameter_problems(parameters)
    if problems:
        raise ParameterError(f"{len(problems)} invalid parameter(s) (conf/<env>/parameters*.yml or --params):\n"
                             + "\n".join(f"- {p}" for p in problems))
