"""The settings of the encoding of one layer: one typed, validated configuration.

`EncodingSettings` is what `vlm_brain.encoding.layer.encode_layer` does with a layer.
The ``encoding`` parameters (and the validation's) are read into it by
:meth:`EncodingSettings.from_params`, once, at the node boundary; every problem is
reported at once, one line each, naming the parameter, its value and what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlm_brain.encoding.temporal import TEMPORAL_MODELS

#: ridge penalties tried per grayordinate when none are given (1 to 1e7)
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(0, 7, 15))
SUPPORTED_BACKENDS = ("numpy", "torch", "torch_cuda")
NULL_METHODS = ("refit", "shift")
FDR_METHODS = ("bh", "adaptive")

#: field -> its key in the parameters (``sdl.n_atoms`` is nested in the YAML)
PARAMETER_KEYS = {
    "n_atoms": "sdl.n_atoms", "sdl_alpha": "sdl.alpha", "sdl_max_iter": "sdl.max_iter", "alphas": "alphas",
    "q": "q", "seed": "seed", "backend": "backend", "target_batch_size": "target_batch_size",
    "raw_model": "raw_an_model", "null_method": "null_method", "n_refit": "n_refit",
    "refit_targets": "refit_targets", "max_lag": "max_lag", "temporal_model": "temporal_model", "lag": "lag",
    "fir_delays": "fir_delays", "folds_per_scan": "folds_per_scan", "fdr": "fdr",
}


@dataclass(frozen=True)
class EncodingSettings:
    """How one layer is encoded (`encode_layer`).

    Attributes:
        n_atoms, sdl_alpha, sdl_max_iter: sparse dictionary learning: k atoms, L1
            penalty (scikit-learn convention), alternating passes.
        alphas: ridge penalties, one chosen per grayordinate by inner CV.
        q: Benjamini-Hochberg FDR level of the BNs and the atom maps, in (0, 1).
        seed: seeds the SDL initialisation and the null's shifts.
        backend: himalaya backend of the large products (numpy, torch, torch_cuda).
        target_batch_size: grayordinates per batch (bounds memory; one batch per core at a time).
        raw_model: also fit all N ANs as regressors (comparison model).
        null_method: ``refit`` (calibrated against refits on shifted stimuli) or ``shift``.
        n_refit, refit_targets: draws and grayordinates of the refit null.
        max_lag: lag window (TRs) of the HAC t-maps and of the prediction-shift spread.
        temporal_model, lag: how ANs become BOLD-time regressors (`prepare_regressors`):
            ``glover`` HRF, ``none`` (data already lag-shifted) or ``fir`` (each atom at
            delays 0 .. ``fir_delays`` TRs), after a global lag in TRs.
        folds_per_scan: cross-validation folds per scan, contiguous parts of it (1 =
            leave one scan out; `vlm_brain.encoding.folds.cv_folds`).
        fdr: how BNs are selected from p: ``bh`` (Benjamini-Hochberg at q) or
            ``adaptive`` (Storey-Taylor-Siegmund adaptive BH, `significance.fdr_adaptive`).
    """

    n_atoms: int = 64
    sdl_alpha: float = 1.0
    sdl_max_iter: int = 100
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    q: float = 0.05
    seed: int = 0
    backend: str = "numpy"
    target_batch_size: int = 4096
    raw_model: bool = False
    null_method: str = "refit"
    n_refit: int = 100
    refit_targets: int = 250
    max_lag: int = 20
    temporal_model: str = "glover"
    lag: int = 0
    fir_delays: int = 6
    folds_per_scan: int = 1
    fdr: str = "adaptive"

    def __post_init__(self) -> None:
        problems = settings_problems(dataclasses.asdict(self))
        if problems:
            raise ValueError("invalid encoding settings:\n" + "\n".join(f"- {p}" for p in problems))

    @classmethod
    def from_params(cls, params: dict[str, Any], where: str = "encoding") -> EncodingSettings:
        """Settings from the ``encoding`` parameters (keys of `PARAMETER_KEYS`; other keys are
        ignored, missing ones take the defaults). ``where`` prefixes the parameter names in errors."""
        problems = cls.problems(params, where)
        if problems:
            raise ValueError(f"invalid {where} parameters:\n" + "\n".join(f"- {p}" for p in problems))
        return cls(**_coerced(_values(params)))

    @staticmethod
    def problems(params: dict[str, Any], where: str = "encoding") -> list[str]:
        """One line per invalid setting in the parameters ``params`` (as `from_params` reads them)."""
        return settings_problems(_values(params), where)

    def replace(self, **changes: Any) -> EncodingSettings:
        """A copy with some fields changed (validated again)."""
        unknown = sorted(set(changes) - set(PARAMETER_KEYS))
        if unknown:
            raise TypeError(f"unknown encoding setting(s) {unknown}; known: {sorted(PARAMETER_KEYS)}")
        return dataclasses.replace(self, **_coerced(changes))

    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples), for logs, hashes and JSON."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


class _Missing:
    pass


_MISSING = _Missing()


def _values(params: dict[str, Any]) -> dict[str, Any]:
    """field -> value of the settings present in the parameters (``sdl`` nested)."""
    values: dict[str, Any] = {}
    for name, key in PARAMETER_KEYS.items():
        head, _, tail = key.partition(".")
        value = params.get(head, _MISSING)
        if tail:
            value = value.get(tail, _MISSING) if isinstance(value, dict) else _MISSING
        if value is not _MISSING:
            values[name] = value
    return values


def _coerced(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "alphas" in out:
        out["alphas"] = tuple(float(a) for a in np.ravel(np.asarray(out["alphas"], dtype=float)))
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def settings_problems(values: dict[str, Any], where: str | None = None) -> list[str]:
    """One line per invalid value among ``values`` (field -> value); empty when all are valid."""
    def name(field: str) -> str:
        return f"{where}.{PARAMETER_KEYS[field]}" if where else field

    checks = {
        "n_atoms": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "sdl_alpha": (lambda v: _is_number(v) and v > 0, "a number > 0"),
        "sdl_max_iter": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "q": (lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1), e.g. 0.05"),
        "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        "backend": (lambda v: v in SUPPORTED_BACKENDS, f"one of {', '.join(SUPPORTED_BACKENDS)}"),
        "target_batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "raw_model": (lambda v: isinstance(v, bool | np.bool_), "true or false"),
        "null_method": (lambda v: v in NULL_METHODS, f"one of {', '.join(NULL_METHODS)}"),
        "fdr": (lambda v: v in FDR_METHODS, f"one of {', '.join(FDR_METHODS)}"),
        "n_refit": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "refit_targets": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "max_lag": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        "temporal_model": (lambda v: v in TEMPORAL_MODELS, f"one of {', '.join(TEMPORAL_MODELS)}"),
        "lag": (lambda v: _is_int(v) and v >= 0, "an integer number of TRs >= 0"),
        "fir_delays": (lambda v: _is_int(v) and v >= 0, "an integer number of TRs >= 0, e.g. 6"),
        "folds_per_scan": (lambda v: _is_int(v) and v >= 1, "an integer >= 1 (2: each scan split in halves)"),
        "alphas": (_valid_alphas, "a non-empty list of positive numbers, e.g. [10.0, 100.0, 1000.0]"),
    }
    problems = []
    for field, value in values.items():
        ok, allowed = checks[field]
        if not ok(value):
            problems.append(f"{name(field)} = {value!r}: must be {allowed}")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool) \
        and bool(np.isfinite(value))


def _valid_alphas(value: Any) -> bool:
    try:
        alphas = np.ravel(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        return False
    return alphas.size > 0 and bool(np.all(np.isfinite(alphas))) and bool(np.all(alphas > 0))
