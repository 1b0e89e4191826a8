"""The model-adapter interface shared by every model family."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from vlm_brain.models.capture import AttentionSite
from vlm_brain.results import layer_name

logger = logging.getLogger(__name__)

Modality = Literal["image", "text", "joint"]


class WeightsError(RuntimeError):
    """Weights that cannot be loaded; the message says where they were looked for."""


@dataclass
class Batch:
    """Model inputs of one batch plus what pooling needs.

    Attributes:
        inputs: keyword arguments of the stream's forward call.
        mask: (batch, tokens) bool, valid tokens (None = all tokens valid).
        cls_index: (batch,) position of the token used by ``cls`` pooling.
    """

    inputs: dict[str, torch.Tensor]
    mask: torch.Tensor | None = None
    cls_index: torch.Tensor | None = None
    tokens: dict[str, tuple[torch.Tensor | None, torch.Tensor | None]] = field(default_factory=dict)

    def to(self, device: torch.device, dtype: torch.dtype) -> Batch:
        moved = {
            k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
            for k, v in self.inputs.items()
        }
        return Batch(moved, self.mask, self.cls_index, self.tokens)


@dataclass
class ModelAdapter(ABC):
    """What the extractor needs to know about one model: the interface of every family.

    Subclasses fill ``streams`` (stream name -> modality) and implement ``sites`` and
    ``forward``, plus the batch builder of each modality they have: ``image_batch`` /
    ``text_batch``, or ``joint_batch`` for models that see a frame and its text together
    (``forward(None, batch)`` then runs every stream at once). ``weights`` is a
    human-readable description of the weights, logged and reported ("random (seed 0)"
    or the path). A family is registered in `vlm_brain.models.registry.FAMILIES`.
    """

    name: str
    weights: str
    streams: dict[str, Modality] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32

    @abstractmethod
    def sites(self, stream: str) -> list[AttentionSite]:
        """The attention modules of ``stream`` whose ANs are recorded, in depth order."""

    def image_batch(self, frames: np.ndarray) -> Batch:
        """(batch, height, width, 3) uint8 RGB frames -> model inputs."""
        raise NotImplementedError

    def text_batch(self, texts: list[str]) -> Batch:
        raise NotImplementedError

    def joint_batch(self, frames: np.ndarray, texts: list[str]) -> Batch:
        """Frames and their texts fed together (streams of modality ``joint``)."""
        raise NotImplementedError

    @abstractmethod
    def forward(self, stream: str | None, batch: Batch) -> None:
        """Run the model on ``batch`` (recorders hooked on the sites collect the ANs)."""

    def layer_name(self, stream: str, index: int) -> str:
        """``clip.image.L03`` (:func:`vlm_brain.results.layer_name`)."""
        return layer_name(self.name, stream, index)


def resolve_device(device: str = "auto", precision: str = "fp32") -> tuple[torch.device, torch.dtype]:
    """``auto`` picks CUDA when available; bf16/fp16 only on CUDA (CPU falls back to fp32)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("device %s requested but no GPU is available; using cpu", device)
        device = "cpu"
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision must be one of {list(dtypes)}, got {precision!r}")
    dtype = dtypes[precision]
    if device == "cpu" and dtype != torch.float32:
        logger.warning("precision %s is for GPUs; using fp32 on cpu", precision)
        dtype = torch.float32
    return torch.device(device), dtype
