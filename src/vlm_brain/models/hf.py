"""ViT, RoBERTa and other transformers encoders (BERT-style text, ViT-style image)."""

from __future__ import annotations

import logging
import re
import zlib
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
)

from vlm_brain.models.base import Batch, ModelAdapter, WeightsError, resolve_device
from vlm_brain.models.capture import AttentionSite, tower_attention

logger = logging.getLogger(__name__)

# Architectures of the study's default checkpoints, so that `weights: random` needs
# no download. Values are the public configs of these checkpoints.
BUILTIN_CONFIGS: dict[str, tuple[str, dict]] = {
    "google/vit-base-patch16-224-in21k": ("vit", {}),
    "google/vit-base-patch16-224": ("vit", {}),
    "roberta-base": ("roberta", {"vocab_size": 50265, "max_position_embeddings": 514,
                                 "type_vocab_size": 1, "layer_norm_eps": 1e-5,
                                 "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}),
    "FacebookAI/roberta-base": ("roberta", {"vocab_size": 50265, "max_position_embeddings": 514,
                                            "type_vocab_size": 1, "layer_norm_eps": 1e-5,
                                            "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}),
    "bert-base-uncased": ("bert", {}),
}

class HashingTokenizer:
    """Deterministic offline word tokenizer for text models with random weights.

    Words (lower-cased, split on non-alphanumerics) map to ids by CRC32 hashing into
    the model's vocabulary; ``bos``/``eos`` wrap the text and ``pad`` fills the batch.
    Used only when no tokenizer files are available: with random weights any fixed
    injective-enough mapping exercises the model the same way.
    """

    def __init__(self, vocab_size: int, bos: int = 0, pad: int = 1, eos: int = 2, max_length: int = 128):
        self.vocab_size, self.bos, self.pad, self.eos, self.max_length = vocab_size, bos, pad, eos, max_length
        self._reserved = {bos, pad, eos}

    def word_id(self, word: str) -> int:
        i = 4 + zlib.crc32(word.encode()) % (self.vocab_size - 4)
        return i if i not in self._reserved else 4

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        rows = [[self.bos] + [self.word_id(w) for w in re.findall(r"[a-z0-9]+", t.lower())][: self.max_length - 2] + [self.eos]
                for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class HFEncoderAdapter(ModelAdapter):
    """One stream (``image`` or ``text``) of a transformers encoder.

    Args:
        name: model key in layer names (``vit``, ``roberta``, ...).
        source: hub name or local directory of the checkpoint.
        weights: ``pretrained`` (from the hub cache or ``source`` directory, offline
            with HF_HUB_OFFLINE=1 or ``local_files_only``) or ``random`` (seeded).
        tokenizer: tokenizer name/directory for text models with random weights
            (default: ``source`` if its files are local, else :class:`HashingTokenizer`).
    """

    def __init__(
        self,
        name: str,
        source: str,
        weights: str = "random",
        seed: int = 0,
        device: str = "auto",
        precision: str = "fp32",
        local_files_only: bool | None = None,
        tokenizer: str | None = None,
        max_text_tokens: int = 128,
    ) -> None:
        dev, dtype = resolve_device(device, precision)
        # The project never downloads at run time: weights come from the local
        # Hugging Face cache or a directory unless local_files_only is set to false.
        offline = True if local_files_only is None else bool(local_files_only)
        if weights == "random":
            config = _config(source, offline)
            torch.manual_seed(seed)
            model = AutoModel.from_config(config)
            description = f"random (seed {seed}), architecture of {source}"
        elif weights == "pretrained":
            try:
                model = AutoModel.from_pretrained(source, local_files_only=offline)
            except OSError as exc:
                raise _missing(name, source, exc) from exc
            except (RuntimeError, ValueError) as exc:
                raise WeightsError(f"{name}: the weights at {source} do not match the architecture: {str(exc)[:300]}") from exc
            config = model.config
            description = f"pretrained {source}"
        else:
            raise ValueError(f"{name}: weights must be 'random' or 'pretrained', got {weights!r}")
        modality = "image" if hasattr(config, "image_size") and hasattr(config, "num_channels") else "text"
        super().__init__(name, description, {modality: modality}, dev, dtype)
        self.model = model.eval().to(device=dev, dtype=dtype)
        self.modality = modality
        self.attention = tower_attention(name, modality, self.model)  # by structure, one per layer
        if modality == "image":
            self.processor = _image_processor(source, weights, offline)
        else:
            self.tokenizer = _tokenizer(source, tokenizer, weights, offline, config, max_text_tokens)

    def sites(self, stream: str) -> list[AttentionSite]:
        return [AttentionSite(self.layer_name(stream, i), a.out_proj, "proj_input") for i, a in enumerate(self.attention)]

    def image_batch(self, frames: np.ndarray) -> Batch:
        pixels = self.processor(images=list(frames), return_tensors="pt")["pixel_values"]
        return Batch({"pixel_values": pixels})

    def text_batch(self, texts: list[str]) -> Batch:
        enc = self.tokenizer(texts)
        enc = {k: torch.as_tensor(v) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        return Batch(enc, mask=enc["attention_mask"].bool(), cls_index=torch.zeros(len(texts), dtype=torch.long))

    @torch.inference_mode()
    def forward(self, stream: str, batch: Batch) -> None:
        self.model(**batch.to(self.device, self.dtype).inputs)


def from_spec(name: str, spec: dict, device: str = "auto", precision: str = "fp32") -> HFEncoderAdapter:
    """``{family: transformers, source (hub name or local folder), weights, seed, tokenizer,
    local_files_only, max_text_tokens}``."""
    from vlm_brain.models.registry import common_arguments

    if "source" not in spec:
        raise ValueError(f"feature_extraction.models.{name}: missing `source` (hub name or local directory)")
    return HFEncoderAdapter(name, spec["source"], local_files_only=spec.get("local_files_only"),
                            tokenizer=spec.get("tokenizer"), max_text_tokens=int(spec.get("max_text_tokens", 128)),
                            **common_arguments(spec, device, precision))


def _config(source: str, offline: bool) -> PretrainedConfig:
    if source in BUILTIN_CONFIGS:
        model_type, overrides = BUILTIN_CONFIGS[source]
        return AutoConfig.for_model(model_type, **overrides)
    try:
        return AutoConfig.from_pretrained(source, local_files_only=offline)
    except OSError as exc:
        raise WeightsError(
            f"no architecture for {source!r}: for random weights give a local model"
            f" directory with a config.json, or one of {sorted(BUILTIN_CONFIGS)}"
        ) from exc


def _image_processor(source: str, weights: str, offline: bool):
    try:
        return AutoImageProcessor.from_pretrained(source, local_files_only=offline)
    except OSError:
        if weights == "pretrained":
            raise
        from transformers import ViTImageProcessor

        logger.info("%s: no image processor files; using ViT defaults (224 px, mean/std 0.5)", source)
        return ViTImageProcessor()


def _tokenizer(source: str, tokenizer: str | None, weights: str, offline: bool, config, max_tokens: int):
    for candidate in (tokenizer, source):
        if not candidate:
            continue
        try:
            tok = AutoTokenizer.from_pretrained(candidate, local_files_only=offline)
            return lambda texts: tok(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        except (OSError, ValueError):
            continue
    if weights == "pretrained":
        raise WeightsError(f"no tokenizer files for {source} (and `tokenizer` {tokenizer!r}); download them with the weights")
    logger.info("%s: no tokenizer files; using the offline hashing tokenizer (random weights)", source)
    return HashingTokenizer(config.vocab_size, getattr(config, "bos_token_id", 0) or 0,
                            getattr(config, "pad_token_id", 1) or 1, getattr(config, "eos_token_id", 2) or 2,
                            max_tokens)


def _missing(name: str, source: str, exc: Exception) -> WeightsError:
    where = "the local directory" if Path(source).exists() else "the Hugging Face cache"
    reason = " ".join(str(exc).split())[:200]
    return WeightsError(
        f"{name}: pretrained weights {source!r} not found in {where} ({reason})."
        f" Download them once with internet access (`hf download {source}`) or set"
        " `source` to a local directory holding config.json and the weights."
    )
