"""Model families: ``feature_extraction.models.<name>.family`` -> the adapter that runs it.

Each family module exposes ``from_spec(name, spec, device, precision)``; a family is
added here by one line. Modules are imported only when their family is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from vlm_brain.models.base import ModelAdapter

#: family name -> module whose ``from_spec`` builds its adapter
FAMILIES: dict[str, str] = {
    "open_clip": "vlm_brain.models.clip",          # open_clip CLIP models (image + text towers)
    "transformers": "vlm_brain.models.hf",         # one-tower transformers encoders (ViT, BERT, RoBERTa, ...)
    "two_tower": "vlm_brain.models.two_tower",     # transformers VLMs with a vision and a text tower (CLIP, SigLIP, ...)
    "meter": "vlm_brain.models.meter",             # METER co-attention VLM
}


def build_adapter(name: str, spec: dict[str, Any], device: str = "auto", precision: str = "fp32") -> ModelAdapter:
    """The adapter of model ``name``, from its parameters (``spec["family"]`` selects it)."""
    family = spec.get("family")
    if family not in FAMILIES:
        raise ValueError(f"feature_extraction.models.{name}.family: unknown family {family!r};"
                         f" use one of {', '.join(sorted(FAMILIES))}")
    module = importlib.import_module(FAMILIES[family])
    return module.from_spec(name, spec, device, precision)


def common_arguments(spec: dict[str, Any], device: str, precision: str) -> dict[str, Any]:
    """Arguments every adapter takes: weights (``random`` or ``pretrained``), seed, device, precision."""
    return {"weights": spec.get("weights", "random"), "seed": int(spec.get("seed", 0)),
            "device": device, "precision": precision}
