"""Encoding results as the analyses and the report read them; no Kedro imports.

A model's encoding is ``{layer name: {"r", "p", "bn", ...}}``. Layer names are
``<model>.<stream>.L<index>`` (``clip.image.L03``): formatted and parsed here only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np


class LayerName(NamedTuple):
    """The parts of a layer name: ``clip.image.L03`` -> ("clip", "image", 3)."""

    model: str
    stream: str
    index: int

    @property
    def stream_name(self) -> str:
        """``clip.image``"""
        return f"{self.model}.{self.stream}"

    def __str__(self) -> str:
        return f"{self.model}.{self.stream}.L{self.index:02d}"


def layer_name(model: str, stream: str, index: int) -> str:
    """``("clip", "image", 3)`` -> ``clip.image.L03``."""
    return str(LayerName(model, stream, index))


def parse_layer_name(name: str) -> LayerName:
    """``clip.image.L03`` -> ``LayerName("clip", "image", 3)``; a clear error for anything else."""
    parts = name.split(".")
    if len(parts) != 3 or not parts[2].startswith("L") or not parts[2][1:].isdigit() or not all(parts[:2]):
        raise ValueError(f"{name!r} is not a layer name of the form <model>.<stream>.L<index>, e.g. clip.image.L03")
    return LayerName(parts[0], parts[1], int(parts[2][1:]))


def plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars and arrays to Python types, NaN and inf to None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def iter_layers(encodings: tuple[dict, ...]) -> Iterator[tuple[str, dict]]:
    """(layer name, results) of every layer of every model, in name order."""
    for encoding in encodings:
        for name in sorted(encoding):
            yield name, encoding[name]


def stream_layers(encodings: tuple[dict, ...]) -> dict[str, list[str]]:
    """``{"clip.image": ["clip.image.L00", ...], ...}`` with layers in depth order."""
    streams: dict[str, list[str]] = {}
    for name, _ in iter_layers(encodings):
        streams.setdefault(parse_layer_name(name).stream_name, []).append(name)
    return {s: sorted(names, key=lambda n: parse_layer_name(n).index) for s, names in streams.items()}


def find_layer(encodings: tuple[dict, ...], name: str) -> dict:
    """The results of layer ``name`` in whichever model's encoding holds it."""
    for encoding in encodings:
        if name in encoding:
            return encoding[name]
    raise KeyError(name)


def layer_with_most_bns(encodings: tuple[dict, ...], names: list[str]) -> tuple[str, int]:
    """Of the layers ``names``, the one with the most BNs, and its BN count."""
    counts = {name: int(np.sum(find_layer(encodings, name)["bn"])) for name in names}
    best = max(names, key=counts.__getitem__)
    return best, counts[best]
