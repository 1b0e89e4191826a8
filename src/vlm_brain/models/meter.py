"""METER adapter: every attention module of the CLIP tower, RoBERTa tower and fusion.

One forward pass (frame + caption) records 47 attention modules, all of modality
``joint``:

==================== ======================================================= =========
stream               module (AN site)                                        tokens
==================== ======================================================= =========
image (L00..L10)     vit_model.visual.transformer.resblocks.{i}.attn (mha)    image
text (L00..L11)      text_transformer.encoder.layer.{i}.attention.output.dense text
fusion_text_self     cross_modal_text_layers.{i}.attention.output.dense       text
fusion_text_cross    cross_modal_text_layers.{i}.crossattention.output.dense  text
fusion_image_self    cross_modal_image_layers.{i}.attention.output.dense      image
fusion_image_cross   cross_modal_image_layers.{i}.crossattention.output.dense image
==================== ======================================================= =========

The ``*.output.dense`` sites record their input: the concatenated per-head context of
``*.self`` (AN index = head * 64 + j). Text-side sites pool over the caption's valid
(non-padding) tokens, image-side sites over all image tokens (CLS + patches).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from vlm_brain.models.base import Batch, ModelAdapter, WeightsError, resolve_device
from vlm_brain.models.capture import AttentionSite
from vlm_brain.models.hf import HashingTokenizer
from vlm_brain.models.meter_model import (
    CLIP_MEAN,
    CLIP_STD,
    MeterConfig,
    MeterModel,
    MeterOutput,
    empty_meter,
    init_random_,
    resize_position_embedding,
)
from vlm_brain.models.meter_weights import (
    KNOWN_UNUSED_KEYS,
    load_meter,
    prepare_state_dict,
    read_checkpoint,
)

logger = logging.getLogger(__name__)

__all__ = [
    "KNOWN_UNUSED_KEYS", "STREAMS", "MeterAdapter", "MeterConfig", "MeterModel", "MeterOutput",
    "image_transform", "load_meter", "prepare_state_dict", "random_meter", "read_checkpoint",
    "resize_position_embedding",
]

STREAMS = ("image", "text", "fusion_text_self", "fusion_text_cross", "fusion_image_self", "fusion_image_cross")
DEFAULT_TOKENIZERS = ("roberta-base", "FacebookAI/roberta-base")


def random_meter(config: MeterConfig | None = None, seed: int = 0) -> MeterModel:
    """METER with seeded random weights (same architecture as the checkpoints)."""
    return init_random_(empty_meter(config or MeterConfig()), seed).eval()


def image_transform(size: int) -> transforms.Compose:
    """METER's CLIP preprocessing: shorter side to ``size`` (bicubic), center crop, CLIP mean/std."""
    return transforms.Compose([
        transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(size),
        transforms.ToTensor(),
        transforms.Normalize(CLIP_MEAN, CLIP_STD),
    ])


class MeterAdapter(ModelAdapter):
    """METER (CLIP-ViT-B/16 + RoBERTa, co-attention fusion) as a joint frame + text model.

    Args:
        weights: ``random`` (seeded) or ``pretrained`` (``checkpoint`` = official Lightning .ckpt).
        checkpoint: path of the METER CLIP16-RoBERTa checkpoint (pretrained weights).
        tokenizer: local roberta-base tokenizer directory (default: the Hugging Face cache,
            offline); random weights fall back to the hashing tokenizer when none is found;
            ``"hashing"`` forces the offline hashing tokenizer (tests, small vocabularies).
        image_size: resolution the model runs at (multiple of 16); position embeddings of
            a checkpoint trained at another resolution are resized bicubically.
        max_text_len: captions are padded / truncated to this many tokens (METER: 50).
        config: architecture override (tests use small widths); default the released model.
    """

    def __init__(
        self,
        name: str = "meter",
        weights: str = "random",
        checkpoint: str | None = None,
        seed: int = 0,
        tokenizer: str | None = None,
        image_size: int = 288,
        max_text_len: int = 50,
        device: str = "auto",
        precision: str = "fp32",
        config: MeterConfig | None = None,
    ) -> None:
        dev, dtype = resolve_device(device, precision)
        base = config or MeterConfig()
        config = MeterConfig(**{**base.__dict__, "image_size": int(image_size)})
        if max_text_len + config.pad_token_id + 1 > config.text_positions:
            raise ValueError(f"meter: max_text_len {max_text_len} exceeds the text positions ({config.text_positions})")
        if weights == "pretrained":  # the checkpoint first: it is what a user fetches first
            if not checkpoint:
                raise WeightsError("meter: weights 'pretrained' needs `checkpoint`: the path of an official"
                                   " METER CLIP16-RoBERTa Lightning .ckpt (GitHub releases of zdou0830/METER)")
            if not Path(checkpoint).is_file():
                raise WeightsError(f"meter: checkpoint {checkpoint} does not exist. Download an official METER "
                                   "CLIP16-RoBERTa .ckpt (GitHub releases of zdou0830/METER, e.g. "
                                   "meter_clip16_288_roberta_pretrain.ckpt) to that path, or set `checkpoint`")
        text_tokenizer = _tokenizer(tokenizer, weights, config, int(max_text_len))  # cheap: fail fast
        arch = f"METER CLIP16-RoBERTa {config.image_size}px" if base == MeterConfig(image_size=base.image_size) \
            else f"METER {config}"
        if weights == "random":
            model = random_meter(config, seed)
            description = f"random (seed {seed}), {arch}"
        elif weights == "pretrained":
            model, _ = load_meter(checkpoint, config)
            description = f"pretrained checkpoint {checkpoint}, {arch}"
        else:
            raise ValueError(f"meter: weights must be 'random' or 'pretrained', got {weights!r}")
        super().__init__(name, description, dict.fromkeys(STREAMS, "joint"), dev, dtype)
        self.config = config
        self.max_text_len = int(max_text_len)
        self.model = model.eval().to(device=dev, dtype=dtype)
        self.preprocess = image_transform(config.image_size)
        self.tokenizer = text_tokenizer

    # ------------------------------------------------------------------ sites

    def sites(self, stream: str) -> list[AttentionSite]:
        m = self.model
        if stream == "image":
            blocks = m.vit_model.visual.transformer.resblocks
            return [AttentionSite(self.layer_name(stream, i), b.attn, "mha", "image") for i, b in enumerate(blocks)]
        if stream == "text":
            modules, tokens = [layer.attention for layer in m.text_transformer.encoder.layer], "text"
        elif stream.startswith("fusion_") and stream in STREAMS:
            _, side, kind = stream.split("_")
            layers = m.cross_modal_text_layers if side == "text" else m.cross_modal_image_layers
            modules = [layer.attention if kind == "self" else layer.crossattention for layer in layers]
            tokens = side
        else:
            raise ValueError(f"meter: unknown stream {stream!r}; streams are {list(STREAMS)}")
        return [AttentionSite(self.layer_name(stream, i), a.output.dense, "proj_input", tokens)
                for i, a in enumerate(modules)]

    def all_sites(self) -> list[AttentionSite]:
        return [site for stream in STREAMS for site in self.sites(stream)]

    # ----------------------------------------------------------------- inputs

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask) padded / truncated to ``max_text_len`` tokens."""
        enc = self.tokenizer(list(texts))
        ids = torch.as_tensor(enc["input_ids"], dtype=torch.long)
        mask = torch.as_tensor(enc["attention_mask"], dtype=torch.long)
        n, length = ids.shape
        if length > self.max_text_len:
            ids, mask = ids[:, : self.max_text_len].clone(), mask[:, : self.max_text_len].clone()
        elif length < self.max_text_len:
            pad = self.max_text_len - length
            ids = torch.cat([ids, torch.full((n, pad), self.config.pad_token_id, dtype=torch.long)], dim=1)
            mask = torch.cat([mask, torch.zeros((n, pad), dtype=torch.long)], dim=1)
        return ids, mask

    def joint_batch(self, frames: np.ndarray, texts: list[str]) -> Batch:
        if len(frames) != len(texts):
            raise ValueError(f"meter: {len(frames)} frames but {len(texts)} texts")
        pixels = torch.stack([self.preprocess(Image.fromarray(np.asarray(f, dtype=np.uint8))) for f in frames])
        ids, mask = self.tokenize(texts)
        zeros = torch.zeros(len(texts), dtype=torch.long)
        tokens = {"image": (None, zeros), "text": (mask.bool(), zeros)}
        return Batch({"pixel_values": pixels, "input_ids": ids, "attention_mask": mask}, tokens=tokens)

    @torch.inference_mode()
    def forward(self, stream: str | None, batch: Batch) -> MeterOutput:
        """Runs the whole model once (all streams); ``stream`` is ignored."""
        batch = batch.to(self.device, self.dtype)
        return self.model(**batch.inputs)


def from_spec(name: str, spec: dict, device: str = "auto", precision: str = "fp32") -> MeterAdapter:
    """``{family: meter, weights, checkpoint, tokenizer, image_size, max_text_len, seed}``."""
    from vlm_brain.models.registry import common_arguments

    return MeterAdapter(name, checkpoint=spec.get("checkpoint"), tokenizer=spec.get("tokenizer"),
                        image_size=int(spec.get("image_size", 288)), max_text_len=int(spec.get("max_text_len", 50)),
                        **common_arguments(spec, device, precision))


def _tokenizer(tokenizer: str | None, weights: str, config: MeterConfig, max_len: int):
    from transformers import AutoTokenizer

    if tokenizer == "hashing":
        if weights == "pretrained":
            logger.warning("meter: hashing tokenizer with pretrained weights: text ids are not RoBERTa's")
        return HashingTokenizer(config.vocab_size, 0, config.pad_token_id, 2, max_len)
    candidates = (tokenizer,) if tokenizer else DEFAULT_TOKENIZERS
    errors = []
    for candidate in candidates:
        try:
            tok = AutoTokenizer.from_pretrained(candidate, local_files_only=True)
        except (OSError, ValueError) as exc:
            errors.append(f"{candidate}: {type(exc).__name__}")
            continue
        if len(tok) > config.vocab_size:
            raise WeightsError(f"meter: tokenizer {candidate} has {len(tok)} tokens, the model {config.vocab_size}")
        logger.info("meter: tokenizer from %s", candidate)
        return lambda texts: tok(texts, padding="max_length", truncation=True, max_length=max_len)
    where = f"`tokenizer` {tokenizer!r}" if tokenizer else "the Hugging Face cache (roberta-base)"
    if weights == "pretrained":
        raise WeightsError(
            f"meter: no roberta-base tokenizer files in {where} ({'; '.join(errors)}). METER checkpoints"
            " do not include them: download once (`hf download roberta-base --include '*.json' '*.txt'`)"
            " or set `tokenizer` to a local directory holding vocab.json and merges.txt."
        )
    (logger.warning if tokenizer else logger.info)(
        "meter: no roberta-base tokenizer files in %s; using the offline hashing tokenizer (random weights)", where)
    return HashingTokenizer(config.vocab_size, 0, config.pad_token_id, 2, max_len)

