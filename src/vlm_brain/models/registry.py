"""Build a model adapter from its parameters (one entry of feature_extraction.models)."""

from __future__ import annotations

from typing import Any

from vlm_brain.models.base import ModelAdapter


def build_adapter(name: str, spec: dict[str, Any], device: str = "auto", precision: str = "fp32") -> ModelAdapter:
    """``spec["family"]`` selects the adapter: ``open_clip`` or ``transformers``."""
    family = spec.get("family")
    common = {"weights": spec.get("weights", "random"), "seed": int(spec.get("seed", 0)),
              "device": device, "precision": precision}
    if family == "open_clip":
        from vlm_brain.models.clip import ClipAdapter

        return ClipAdapter(name, spec.get("architecture", "ViT-B-32"), pretrained=spec.get("pretrained"), **common)
    if family == "transformers":
        from vlm_brain.models.hf import HFEncoderAdapter

        if "source" not in spec:
            raise ValueError(f"feature_extraction.models.{name}: missing `source` (hub name or local directory)")
        return HFEncoderAdapter(name, spec["source"], local_files_only=spec.get("local_files_only"),
                                tokenizer=spec.get("tokenizer"), **common)
    if family == "meter":
        from vlm_brain.models.meter import MeterAdapter

        return MeterAdapter(name, checkpoint=spec.get("checkpoint"), tokenizer=spec.get("tokenizer"),
                            image_size=int(spec.get("image_size", 288)),
                            max_text_len=int(spec.get("max_text_len", 50)), **common)
    raise ValueError(
        f"feature_extraction.models.{name}: unknown family {family!r}; use 'open_clip' or 'transformers'"
    )
