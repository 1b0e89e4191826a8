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
    "wordnet": "vlm_brain.stimuli.wordnet",        # not a network: HCP's WordNet labels per TR as one layer (feature_extraction)
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


def enabled_models(models: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The entries of ``feature_extraction.models`` that run, in YAML order.

    An entry that is ``null`` or has ``enabled: false`` is left out, so that a layer on
    top of ``conf/base`` (``conf/hcp``, ``conf/local``, ``--params``) can drop a model;
    deleting its entry from the YAML does the same.

    Raises:
        ValueError: an entry that is not a mapping with a ``family``, or a name that is
            not an identifier (it names datasets, layers and a Kedro namespace).
    """
    enabled = {}
    for name, spec in (models or {}).items():
        if spec is None or (isinstance(spec, dict) and not spec.get("enabled", True)):
            continue
        if not isinstance(spec, dict) or "family" not in spec:
            raise ValueError(f"feature_extraction.models.{name}: expected a mapping with a `family`"
                             f" (one of {', '.join(sorted(FAMILIES))}), got {spec!r}")
        if not name.isidentifier():
            raise ValueError(f"feature_extraction.models: model name {name!r} must be a Python identifier"
                             " (letters, digits, underscores): it names datasets, layers and a namespace")
        enabled[name] = spec
    return enabled
