"""CLIP (open_clip): image and text towers, ANs from every nn.MultiheadAttention."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image

from vlm_brain.models.base import Batch, ModelAdapter, WeightsError, resolve_device
from vlm_brain.models.capture import AttentionSite

logger = logging.getLogger(__name__)


class ClipAdapter(ModelAdapter):
    """Streams ``image`` (visual tower) and ``text`` (text tower) of an open_clip model.

    Text pooling uses the tokens up to and including the end-of-text token (the
    causal mask makes later padding tokens irrelevant); ``cls`` pooling takes the
    end-of-text token, which CLIP itself uses as the text embedding.
    """

    def __init__(
        self,
        name: str = "clip",
        architecture: str = "ViT-B-32",
        weights: str = "random",
        pretrained: str | None = None,
        seed: int = 0,
        device: str = "auto",
        precision: str = "fp32",
    ) -> None:
        dev, dtype = resolve_device(device, precision)
        if weights == "random":
            torch.manual_seed(seed)
            model = open_clip.create_model(
                architecture, pretrained=None, pretrained_image=False, pretrained_text=False
            )
            description = f"random (seed {seed}), architecture {architecture}"
        elif weights == "pretrained":
            model = _load_pretrained(architecture, pretrained)
            description = f"pretrained {architecture} from {pretrained}"
        else:
            raise ValueError(f"clip: weights must be 'random' or 'pretrained', got {weights!r}")
        super().__init__(name, description, {"image": "image", "text": "text"}, dev, dtype)
        self.model = model.eval().to(device=dev, dtype=dtype)
        cfg = self.model.visual.preprocess_cfg
        self.preprocess = open_clip.image_transform(
            cfg["size"], is_train=False, mean=cfg["mean"], std=cfg["std"],
            resize_mode=cfg["resize_mode"], interpolation=cfg["interpolation"],
        )
        self.tokenizer = open_clip.get_tokenizer(architecture)

    def sites(self, stream: str) -> list[AttentionSite]:
        blocks = (self.model.visual.transformer if stream == "image" else self.model.transformer).resblocks
        return [AttentionSite(self.layer_name(stream, i), b.attn, "mha") for i, b in enumerate(blocks)]

    def image_batch(self, frames: np.ndarray) -> Batch:
        pixels = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames])
        return Batch({"image": pixels})

    def text_batch(self, texts: list[str]) -> Batch:
        ids = self.tokenizer(texts)
        eot = ids.argmax(dim=-1)  # the end-of-text token has the largest id
        mask = torch.arange(ids.shape[1])[None, :] <= eot[:, None]
        return Batch({"text": ids}, mask=mask, cls_index=eot)

    @torch.inference_mode()
    def forward(self, stream: str, batch: Batch) -> None:
        batch = batch.to(self.device, self.dtype)
        if stream == "image":
            self.model.encode_image(batch.inputs["image"])
        else:
            self.model.encode_text(batch.inputs["text"])


def from_spec(name: str, spec: dict, device: str = "auto", precision: str = "fp32") -> ClipAdapter:
    """``{family: open_clip, architecture, weights, pretrained (tag or file), seed}``."""
    from vlm_brain.models.registry import common_arguments

    return ClipAdapter(name, spec.get("architecture", "ViT-B-32"), pretrained=spec.get("pretrained"),
                       **common_arguments(spec, device, precision))


def _load_pretrained(architecture: str, pretrained: str | None) -> torch.nn.Module:
    if not pretrained:
        raise WeightsError("clip: weights 'pretrained' needs `pretrained`: an open_clip tag (e.g. 'openai') or a checkpoint file")
    if not Path(pretrained).is_file() and cached_weights(architecture, pretrained) is None:
        raise _missing(architecture, pretrained, FileNotFoundError("not in the Hugging Face or open_clip cache"))
    try:
        return open_clip.create_model(architecture, pretrained=pretrained)
    except RuntimeError as exc:
        if Path(pretrained).is_file():
            raise WeightsError(f"clip: the weights in {pretrained} do not match architecture {architecture}: {str(exc)[:300]}") from exc
        raise _missing(architecture, pretrained, exc) from exc
    except Exception as exc:  # hub errors when offline
        raise _missing(architecture, pretrained, exc) from exc


def cached_weights(architecture: str, tag: str) -> str | None:
    """The local file open_clip would load for ``tag`` of ``architecture``, or None; no network.

    open_clip takes a tag's weights from the Hugging Face hub cache (its ``hf_hub``
    entry, the safetensors file preferred) or, for URL-only tags, from ``~/.cache/clip``.
    Looking there first makes a missing download an immediate error instead of
    minutes of HTTP retries.
    """
    import os

    from huggingface_hub import try_to_load_from_cache

    cfg = open_clip.get_pretrained_cfg(architecture, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(architecture)
        raise WeightsError(f"clip: {tag!r} is not an open_clip pretrained tag of {architecture} "
                           f"(known: {', '.join(tags) or 'none'}), nor a checkpoint file")
    if cfg.get("file"):
        return cfg["file"] if Path(cfg["file"]).is_file() else None
    if cfg.get("hf_hub"):
        model_id, filename = os.path.split(cfg["hf_hub"])
        filename = filename or "open_clip_pytorch_model.bin"
        names = [filename[: filename.rfind(".")] + ".safetensors", filename]
        if filename == "open_clip_pytorch_model.bin":
            names.insert(0, "open_clip_model.safetensors")
        for name in names:
            path = try_to_load_from_cache(model_id, name)
            if isinstance(path, str):
                return path
    if cfg.get("url"):
        path = Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"])
        if path.is_file():
            return str(path)
    return None


def _missing(architecture: str, pretrained: str, exc: Exception) -> WeightsError:
    return WeightsError(
        f"clip: pretrained weights {pretrained!r} for {architecture} are not available offline"
        f" ({type(exc).__name__}: {str(exc)[:200]}). Download them once on a machine with"
        f" internet (python -c \"import open_clip; open_clip.create_model('{architecture}',"
        f" pretrained='{pretrained}')\" fills the Hugging Face cache), or point `pretrained`"
        " at a local checkpoint file."
    )
