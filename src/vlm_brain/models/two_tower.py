"""Two-tower transformers VLMs (CLIP, SigLIP, SigLIP 2, ...): ANs of both towers.

Any ``transformers`` model with a ``vision_model`` and a ``text_model`` sub-module
works. The attention sites of each tower are found by structure, not by path: the
modules with q/k/v projections and an output-projection ``Linear`` (``out_proj`` /
``o_proj``; or BERT-style ``self.query/key/value`` + ``output.dense``), one per encoder
layer, in depth order. SigLIP's attention-pooling head (an ``nn.MultiheadAttention``
after the last layer) is not a layer and is left out.

Pooling per architecture (``cls`` takes one token per item):

- image, CLIP: token 0 is the class token, the one CLIP itself pools.
- image, SigLIP / SigLIP 2: there is no class token (the model pools with its
  attention head); ``cls`` takes patch 0, the top-left patch — prefer ``mean``.
  SigLIP 2 pads images to a fixed number of patches; ``mean`` skips the padding.
- text, CLIP: the EOS token, found by the model's own rule (first ``eos_token_id``;
  the largest id for legacy configs with ``eos_token_id == 2``); texts are padded to
  the longest of the batch (the causal mask makes padding invisible to valid tokens).
- text, SigLIP / SigLIP 2: the last position, which the model pools. As in their
  training, texts are padded to a fixed length (``max_length``) and the tower gets
  ``input_ids`` only (no attention mask), so every text sees the same padding
  whatever its batch; ``mean`` averages the text's own tokens (padding excluded).
- text, other towers: token 0 (BERT-style class token), padded to the longest,
  attention mask passed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoTokenizer,
    CLIPImageProcessor,
    PretrainedConfig,
    Siglip2ImageProcessor,
    SiglipImageProcessor,
)

from vlm_brain.models.base import Batch, ModelAdapter, WeightsError, resolve_device
from vlm_brain.models.capture import AttentionSite, tower_attention
from vlm_brain.models.hf import HashingTokenizer, _missing
from vlm_brain.models.registry import common_arguments

logger = logging.getLogger(__name__)

TextPooling = Literal["eos", "last", "first"]

#: text-tower config model_type -> the token the model pools for its text embedding
TEXT_POOLING: dict[str, TextPooling] = {
    "clip_text_model": "eos",
    "siglip_text_model": "last",
    "siglip2_text_model": "last",
}

TOWERS = {"image": "vision_model", "text": "text_model"}


class TwoTowerAdapter(ModelAdapter):
    """Streams ``image`` (``model.vision_model``) and ``text`` (``model.text_model``).

    Args:
        name: model key in layer names (``{name}.image.L00``...).
        source: hub name or local folder (config, weights, tokenizer, processor).
        config: ``{model_type, **overrides}`` (nested ``vision_config`` /
            ``text_config`` dicts) defining the architecture for random weights
            without any file; takes precedence over ``source``'s config.
        weights: ``random`` (seeded, from the config) or ``pretrained`` (``source``).
        local_files_only: default True: nothing is downloaded.
        tokenizer: tokenizer name/folder (default ``source``; else, with random
            weights, :class:`~vlm_brain.models.hf.HashingTokenizer`).
        max_text_tokens: text length cap (also bounded by the text tower's
            ``max_position_embeddings``).

    ANs of a layer: (batch, tokens, hidden_size) per-head contexts before the
    output projection, heads concatenated; pooled to (batch, hidden_size).
    """

    def __init__(
        self,
        name: str,
        source: str | None = None,
        config: dict[str, Any] | None = None,
        *,
        weights: str = "random",
        seed: int = 0,
        device: str = "auto",
        precision: str = "fp32",
        local_files_only: bool | None = None,
        tokenizer: str | None = None,
        max_text_tokens: int = 64,
    ) -> None:
        dev, dtype = resolve_device(device, precision)
        offline = True if local_files_only is None else bool(local_files_only)
        model, description = _build_model(name, source, config, weights=weights, seed=seed, offline=offline)
        super().__init__(name, description, {"image": "image", "text": "text"}, dev, dtype)
        self.model = model.eval().to(device=dev, dtype=dtype)
        self.attention = {s: tower_attention(name, s, _tower(model, s)) for s in TOWERS}
        vision, text = _tower(model, "image").config, _tower(model, "text").config
        self.text_pooling: TextPooling = TEXT_POOLING.get(getattr(text, "model_type", ""), "first")
        self.max_length = min(int(getattr(text, "max_position_embeddings", max_text_tokens)), int(max_text_tokens))
        self.processor = _image_processor(name, source, vision, weights, offline)
        self.tokenizer = _text_tokenizer(name, source, tokenizer, text, weights=weights, offline=offline,
                                         max_length=self.max_length, pooling=self.text_pooling)

    def sites(self, stream: str) -> list[AttentionSite]:
        return [AttentionSite(self.layer_name(stream, i), a.out_proj, "proj_input")
                for i, a in enumerate(self.attention[stream])]

    def image_batch(self, frames: np.ndarray) -> Batch:
        """(batch, height, width, 3) uint8 -> processor outputs; mask = valid patches (SigLIP 2)."""
        enc = self.processor(images=list(frames), return_tensors="pt")
        inputs = {k: torch.as_tensor(v) for k, v in enc.items()}
        mask = inputs["pixel_attention_mask"].bool() if "pixel_attention_mask" in inputs else None
        return Batch(inputs, mask=mask)

    def text_batch(self, texts: list[str]) -> Batch:
        """Token ids (batch, tokens); mask = the text's tokens; cls_index = the pooled token."""
        enc = self.tokenizer(texts)
        ids, valid = torch.as_tensor(enc["input_ids"]), torch.as_tensor(enc["attention_mask"]).bool()
        inputs = {"input_ids": ids}
        if self.text_pooling != "last":  # SigLIP towers are run without a mask, as trained
            inputs["attention_mask"] = valid.long()
        return Batch(inputs, mask=valid, cls_index=self._pooled_index(ids))

    def _pooled_index(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch,) position of the token the text tower pools for its embedding."""
        if self.text_pooling == "last":
            return torch.full((len(ids),), ids.shape[1] - 1, dtype=torch.long)
        if self.text_pooling == "first":
            return torch.zeros(len(ids), dtype=torch.long)
        eos = _tower(self.model, "text").config.eos_token_id
        if eos == 2:  # CLIP's legacy rule: the largest id
            return ids.argmax(dim=-1)
        return (ids == eos).int().argmax(dim=-1)

    @torch.inference_mode()
    def forward(self, stream: str, batch: Batch) -> None:
        _tower(self.model, stream)(**batch.to(self.device, self.dtype).inputs)


def from_spec(name: str, spec: dict, device: str = "auto", precision: str = "fp32") -> TwoTowerAdapter:
    """``{family: two_tower, source | config, weights, seed, tokenizer, local_files_only,
    max_text_tokens}``."""
    if not spec.get("source") and not spec.get("config"):
        raise ValueError(f"feature_extraction.models.{name}: give `source` (hub name or local folder)"
                         " or `config` ({model_type: siglip, vision_config: {...}, text_config: {...}})")
    return TwoTowerAdapter(name, spec.get("source"), spec.get("config"),
                           local_files_only=spec.get("local_files_only"), tokenizer=spec.get("tokenizer"),
                           max_text_tokens=int(spec.get("max_text_tokens", 64)),
                           **common_arguments(spec, device, precision))


def _tower(model: nn.Module, stream: str) -> nn.Module:
    return getattr(model, TOWERS[stream])


def _build_model(name: str, source: str | None, config: dict | None, *, weights: str, seed: int,
                 offline: bool) -> tuple[nn.Module, str]:
    """(model, description of its weights)."""
    if weights == "random":
        torch.manual_seed(seed)
        model = AutoModel.from_config(_config(name, source, config, offline))
        what = f"{config['model_type']} config" if config else f"architecture of {source}"
        description = f"random (seed {seed}), {what}"
    elif weights == "pretrained":
        if config or not source:
            raise ValueError(f"feature_extraction.models.{name}: weights 'pretrained' load `source`;"
                             " `config` is for random weights only")
        try:
            model = AutoModel.from_pretrained(source, local_files_only=offline)
        except OSError as exc:
            raise _missing(name, source, exc) from exc
        except (RuntimeError, ValueError) as exc:
            raise WeightsError(f"{name}: the weights at {source} do not match the architecture: {str(exc)[:300]}") from exc
        description = f"pretrained {source}"
    else:
        raise ValueError(f"feature_extraction.models.{name}.weights must be 'random' or 'pretrained', got {weights!r}")
    missing = [t for t in TOWERS.values() if not isinstance(getattr(model, t, None), nn.Module)]
    if missing:
        raise WeightsError(f"{name}: {type(model).__name__} has no {' / '.join(missing)}: not a two-tower model")
    return model, description


def _config(name: str, source: str | None, config: dict | None, offline: bool) -> PretrainedConfig:
    """Architecture from ``config`` ({model_type, **overrides}) or from ``source``'s config.json."""
    if config:
        rest = dict(config)
        model_type = rest.pop("model_type", None)
        if not model_type:
            raise ValueError(f"feature_extraction.models.{name}.config: missing `model_type` (clip, siglip, siglip2...)")
        try:
            return AutoConfig.for_model(model_type, **rest)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"feature_extraction.models.{name}.config: {str(exc)[:300]}") from exc
    try:
        return AutoConfig.from_pretrained(source, local_files_only=offline)
    except OSError as exc:
        raise WeightsError(f"{name}: no config for {source!r} (local_files_only={offline}); give a local"
                           " folder with config.json, or `config: {model_type: ..., ...}`") from exc


def _image_processor(name: str, source: str | None, vision: PretrainedConfig, weights: str, offline: bool):
    """The model's image processor (from ``source``), else one sized from the vision config."""
    if source:
        try:
            return AutoImageProcessor.from_pretrained(source, local_files_only=offline)
        except (OSError, ValueError) as exc:
            if weights == "pretrained":
                raise WeightsError(f"{name}: no image processor files for {source}: {str(exc)[:200]}") from exc
    return default_image_processor(vision)


def default_image_processor(vision: PretrainedConfig):
    """Mean/std 0.5 processor at the tower's resolution: SigLIP 2 patchifies to
    ``num_patches`` patches; CLIP resizes the short side and center-crops; others
    resize to an ``image_size`` square."""
    half = [0.5, 0.5, 0.5]
    model_type = getattr(vision, "model_type", "")
    if model_type == "siglip2_vision_model":
        return Siglip2ImageProcessor(patch_size=vision.patch_size, max_num_patches=vision.num_patches)
    side = int(vision.image_size)
    if model_type == "clip_vision_model":
        return CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side},
                                  image_mean=half, image_std=half)
    return SiglipImageProcessor(size={"height": side, "width": side}, image_mean=half, image_std=half)


def _text_tokenizer(name: str, source: str | None, tokenizer: str | None, text: PretrainedConfig, *,
                    weights: str, offline: bool, max_length: int,
                    pooling: TextPooling) -> Callable[[list[str]], dict]:
    """texts -> {input_ids, attention_mask} (batch, tokens); fixed length for ``last`` pooling."""
    padding = "max_length" if pooling == "last" else True
    for candidate in (tokenizer, source):
        if not candidate:
            continue
        try:
            tok = AutoTokenizer.from_pretrained(candidate, local_files_only=offline)
        except (OSError, ValueError):
            continue
        return lambda texts: tok(texts, padding=padding, truncation=True, max_length=max_length,
                                 return_attention_mask=True, return_tensors="pt")
    if weights == "pretrained":
        raise WeightsError(f"{name}: no tokenizer files for {source} (and `tokenizer` {tokenizer!r});"
                           " download them with the weights")
    logger.info("%s: no tokenizer files; using the offline hashing tokenizer (random weights)", name)
    hashing = _hashing_tokenizer(name, text, max_length, pooling)
    if pooling != "last":
        return hashing
    return lambda texts: _pad_to(hashing(texts), max_length, hashing.pad)


def _hashing_tokenizer(name: str, text: PretrainedConfig, max_length: int, pooling: TextPooling) -> HashingTokenizer:
    """Hashing tokenizer with the text config's vocab and special ids (defaults 0/1/2 if
    undefined or outside the vocabulary; CLIP needs its EOS id, so that one is checked)."""
    vocab = int(text.vocab_size)
    ids = {}
    for key, default in (("bos_token_id", 0), ("pad_token_id", 1), ("eos_token_id", 2)):
        value = getattr(text, key, None)
        if isinstance(value, int) and 0 <= value < vocab:
            ids[key] = value
        elif key == "eos_token_id" and pooling == "eos":
            raise WeightsError(f"{name}: text_config.eos_token_id={value!r} is not in the vocabulary"
                               f" (vocab_size {vocab}); CLIP pools its EOS token: set text_config.eos_token_id")
        else:
            ids[key] = default
    if pooling == "eos" and ids["eos_token_id"] == 2:
        logger.warning("%s: eos_token_id 2 is CLIP's legacy rule (the model pools the largest token id, a hashed"
                       " word here, not the EOS); set text_config.eos_token_id to another id", name)
    return HashingTokenizer(vocab, ids["bos_token_id"], ids["pad_token_id"], ids["eos_token_id"], max_length)


def _pad_to(enc: dict[str, torch.Tensor], length: int, pad: int) -> dict[str, torch.Tensor]:
    """Right-pad ``input_ids`` (with ``pad``) and ``attention_mask`` (with 0) to ``length`` tokens."""
    extra = length - enc["input_ids"].shape[1]
    return {"input_ids": nn.functional.pad(enc["input_ids"], (0, extra), value=pad),
            "attention_mask": nn.functional.pad(enc["attention_mask"], (0, extra), value=0)}


__all__ = ["TwoTowerAdapter", "default_image_processor", "from_spec"]
