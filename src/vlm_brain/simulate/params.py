"""Parameters of the demo dataset: defaults, validation and a stable hash.

User parameters (from YAML) are merged over :data:`DEFAULT_DEMO_PARAMS`:
``runs`` is replaced as a whole, the ``video``, ``design`` and ``bold`` sections
are merged key by key. Unknown keys and bad values raise :class:`ValueError`
naming the parameter (e.g. ``demo params: design.clip_s ...``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_DEMO_PARAMS: dict[str, Any] = {
    "seed": 20251016,
    "n_subjects": 3,
    "tr": 1.0,
    "runs": {
        "tfMRI_MOVIE1_7T_AP": 100,
        "tfMRI_MOVIE2_7T_PA": 100,
        "tfMRI_MOVIE3_7T_PA": 100,
        "tfMRI_MOVIE4_7T_AP": 100,
    },
    "include_subcortical": False,
    "video": {"width": 160, "height": 120, "fps": 8},
    "design": {
        "rest_start_s": 8,
        "rest_between_s": 5,
        "rest_end_s": 5,
        "repeat_s": 12,
        "clip_s": [20, 35],
        "scene_s": [3, 6],
    },
    "bold": {
        "signal_to_noise": 0.6,
        "ar1": 0.4,
        "drift_percent": 1.0,
        "baseline": 10000.0,
        "subject_gain_sd": 0.1,
        "driven_fraction": 0.6,
    },
}

_SECTIONS = ("video", "design", "bold")
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _fail(name: str, message: str) -> ValueError:
    return ValueError(f"demo params: {name} {message}")


def _number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
    strict_max: bool = False,
) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        raise _fail(name, f"must be a finite number, got {value!r}")
    value = float(value)
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        raise _fail(
            name, f"must be {'>' if strict_min else '>='} {minimum}, got {value}"
        )
    if maximum is not None and (value >= maximum if strict_max else value > maximum):
        raise _fail(
            name, f"must be {'<' if strict_max else '<='} {maximum}, got {value}"
        )
    return value


def _integer(value: Any, name: str, *, minimum: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != int(value)
    ):
        raise _fail(name, f"must be an integer, got {value!r}")
    if int(value) < minimum:
        raise _fail(name, f"must be >= {minimum}, got {value}")
    return int(value)


def _range(value: Any, name: str) -> list[float]:
    is_pair = isinstance(value, Sequence) and not isinstance(value, str | bytes)
    if not is_pair or len(value) != 2:
        raise _fail(name, f"must be a [min, max] pair of seconds, got {value!r}")
    low = _number(value[0], f"{name}[0]", minimum=0.0, strict_min=True)
    high = _number(value[1], f"{name}[1]", minimum=low)
    return [low, high]


def _merge(params: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = copy.deepcopy(DEFAULT_DEMO_PARAMS)
    if params is None:
        return merged
    if not isinstance(params, Mapping):
        raise _fail("params", f"must be a mapping, got {type(params).__name__}")
    for key, value in params.items():
        if key not in merged:
            raise _fail(str(key), f"is not a known parameter (known: {sorted(merged)})")
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise _fail(key, f"must be a mapping, got {value!r}")
            for sub_key, sub_value in value.items():
                if sub_key not in merged[key]:
                    raise _fail(
                        f"{key}.{sub_key}",
                        f"is not a known parameter (known: {sorted(merged[key])})",
                    )
                merged[key][sub_key] = copy.deepcopy(sub_value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check_run_fits(name: str, n_trs: int, tr: float, design: dict[str, Any]) -> None:
    needed = (
        design["rest_start_s"]
        + design["clip_s"][0]
        + design["rest_between_s"]
        + design["repeat_s"]
        + design["rest_end_s"]
    )
    if n_trs * tr < needed - 1e-9:
        raise _fail(
            f"runs.{name}",
            f"lasts {n_trs} TRs x {tr} s = {n_trs * tr:g} s, too short for rest_start_s"
            f" + one clip of clip_s[0] + rest_between_s + repeat_s + rest_end_s"
            f" = {needed:g} s",
        )


def resolve_demo_params(params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``params`` over the defaults, validate and normalise the types.

    Returns a new JSON-serialisable dict (ints as int, seconds as float, ranges as
    ``[min, max]`` lists). Raises ValueError naming the first bad parameter.
    """
    p = _merge(params)
    out: dict[str, Any] = {
        "seed": _integer(p["seed"], "seed", minimum=0),
        "n_subjects": _integer(p["n_subjects"], "n_subjects", minimum=1),
        "tr": _number(p["tr"], "tr", minimum=0.0, strict_min=True),
    }
    if out["n_subjects"] > 99:
        raise _fail(
            "n_subjects", f"must be <= 99 (ids demo01..demo99), got {out['n_subjects']}"
        )
    if not isinstance(p["runs"], Mapping) or not p["runs"]:
        raise _fail(
            "runs", f"must be a non-empty mapping run name -> n_trs, got {p['runs']!r}"
        )
    runs: dict[str, int] = {}
    for name, n_trs in p["runs"].items():
        if not isinstance(name, str) or not _RUN_NAME.match(name):
            raise _fail("runs", f"has a bad run name {name!r} (letters, digits, _ . -)")
        runs[name] = _integer(n_trs, f"runs.{name}", minimum=1)
    out["runs"] = runs
    if not isinstance(p["include_subcortical"], bool):
        raise _fail(
            "include_subcortical",
            f"must be true or false, got {p['include_subcortical']!r}",
        )
    out["include_subcortical"] = p["include_subcortical"]

    video = {
        "width": _integer(p["video"]["width"], "video.width", minimum=16),
        "height": _integer(p["video"]["height"], "video.height", minimum=16),
        "fps": _integer(p["video"]["fps"], "video.fps", minimum=1),
    }
    for key in ("width", "height"):
        if video[key] % 2:
            raise _fail(
                f"video.{key}", f"must be even (yuv420p video), got {video[key]}"
            )
    if video["width"] < 0.4 * video["height"]:
        raise _fail(
            "video.width", f"must be >= 0.4 x video.height, got {video['width']}"
        )
    out["video"] = video

    d = p["design"]
    design = {
        key: _number(d[key], f"design.{key}", minimum=0.0)
        for key in ("rest_start_s", "rest_between_s", "rest_end_s")
    }
    design["repeat_s"] = _number(
        d["repeat_s"], "design.repeat_s", minimum=0.0, strict_min=True
    )
    design["clip_s"] = _range(d["clip_s"], "design.clip_s")
    design["scene_s"] = _range(d["scene_s"], "design.scene_s")
    for key in ("repeat_s", "clip_s", "scene_s"):
        shortest = design[key] if key == "repeat_s" else design[key][0]
        if shortest * video["fps"] < 1:
            raise _fail(
                f"design.{key}", f"is shorter than one video frame (1/{video['fps']} s)"
            )
    out["design"] = design

    b = p["bold"]
    out["bold"] = {
        "signal_to_noise": _number(
            b["signal_to_noise"], "bold.signal_to_noise", minimum=0.0
        ),
        "ar1": _number(b["ar1"], "bold.ar1", minimum=0.0, maximum=1.0, strict_max=True),
        "drift_percent": _number(b["drift_percent"], "bold.drift_percent", minimum=0.0),
        "baseline": _number(
            b["baseline"], "bold.baseline", minimum=0.0, strict_min=True
        ),
        "subject_gain_sd": _number(
            b["subject_gain_sd"], "bold.subject_gain_sd", minimum=0.0
        ),
        "driven_fraction": _number(
            b["driven_fraction"],
            "bold.driven_fraction",
            minimum=0.0,
            maximum=1.0,
            strict_min=True,
        ),
    }
    for name, n_trs in runs.items():
        _check_run_fits(name, n_trs, out["tr"], design)
    return out


def demo_params_hash(params: Mapping[str, Any] | None) -> str:
    """Stable sha256 (hex) of the resolved, JSON-normalised parameters.

    Parameters equal after merging with the defaults and type normalisation (e.g.
    ``{}`` and :data:`DEFAULT_DEMO_PARAMS`, or ``tr: 1`` and ``tr: 1.0``) hash alike.
    """
    resolved = resolve_demo_params(params)
    text = json.dumps(
        resolved, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
