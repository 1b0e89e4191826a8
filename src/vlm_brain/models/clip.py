"""open_clip models (CLIP, SigLIP, ...): image and text towers, ANs of every self-attention.

Attention modules are found by type, so any open_clip architecture works: the
``nn.MultiheadAttention`` of open_clip's own transformers (ANs recomputed from its
inputs, `vlm_brain.models.capture.multihead_context`) and the attention blocks of timm
trunks (SigLIP's image tower; ANs are the input of their output projection).
"""

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

    Text pooling follows the model's own text pooling (``text_pool_type``): with
    ``argmax`` (CLIP) the valid tokens are those up to and including the end-of-text
    token (the causal mask makes later padding irrelevant) and ``cls`` takes that
    token; with ``last`` (SigLIP) the valid tokens are the non-padding ones and ``cls``
    takes the last position, which the model pools; with ``first``, the first token.
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
        self.tokenizer, self.pad_id = _text_tokenizer(architecture, weights, self.model)
        self.text_pool = _text_pool_type(self.model)
        self._sites = {stream: attention_sites(tower) for stream, tower in _towers(self.model).items()}
        for stream, found in self._sites.items():
            if not found:
                raise WeightsError(f"{name}: no attention modules found in the {stream} tower of {architecture}")

    def sites(self, stream: str) -> list[AttentionSite]:
        return [AttentionSite(self.layer_name(stream, i), module, kind)
                for i, (module, kind) in enumerate(self._sites[stream])]

    def image_batch(self, frames: np.ndarray) -> Batch:
        pixels = torch.stack([self.preprocess(Image.fromarray(f)) for f in frames])
        return Batch({"image": pixels})

    def text_batch(self, texts: list[str]) -> Batch:
        ids = self.tokenizer(texts)
        positions = torch.arange(ids.shape[1])[None, :]
        if self.text_pool == "argmax":  # the end-of-text token has the largest id; CLIP pools it
            pooled = ids.argmax(dim=-1)
            mask = positions <= pooled[:, None]
        else:
            mask = ids != self.pad_id
            pooled = torch.full((len(ids),), ids.shape[1] - 1 if self.text_pool == "last" else 0)
        return Batch({"text": ids}, mask=mask, cls_index=pooled)

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


def _towers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The image and text towers: ``visual``, and ``text`` (CustomTextCLIP) or the rest of the model (CLIP)."""
    if hasattr(model, "text"):
        return {"image": model.visual, "text": model.text}
    text = torch.nn.ModuleDict({n: m for n, m in model.named_children() if n != "visual"})
    return {"image": model.visual, "text": text}


def attention_sites(tower: torch.nn.Module) -> list[tuple[torch.nn.Module, str]]:
    """(module, capture kind) of every self-attention of a tower, in forward order.

    ``nn.MultiheadAttention`` -> ``mha``; a timm-style attention block (``qkv`` and
    ``proj`` linear layers, ``num_heads``, no norm between the heads and ``proj``) ->
    its ``proj``, kind ``proj_input``. Attention pooling heads (one query, not one per
    token) are neither and are left out.
    """
    found = []
    for _, module in tower.named_modules():
        if isinstance(module, torch.nn.MultiheadAttention):
            found.append((module, "mha"))
        elif (isinstance(getattr(module, "qkv", None), torch.nn.Linear)
              and isinstance(getattr(module, "proj", None), torch.nn.Linear) and hasattr(module, "num_heads")):
            if not isinstance(getattr(module, "norm", torch.nn.Identity()), torch.nn.Identity):
                raise WeightsError(f"{type(module).__name__} normalises the heads' context before its projection;"
                                   " its ANs would not be the per-head context")
            found.append((module.proj, "proj_input"))
    return found


def _text_pool_type(model: torch.nn.Module) -> str:
    pool = getattr(model, "text_pool_type", None) or getattr(getattr(model, "text", None), "pool_type", "argmax")
    if pool not in ("argmax", "last", "first"):
        raise WeightsError(f"text pooling {pool!r} of this open_clip model is not supported (argmax, last, first)")
    return pool


def _text_tokenizer(architecture: str, weights: str, model: torch.nn.Module):
    """open_clip's tokenizer of ``architecture`` and its padding id.

    Architectures with a Hugging Face tokenizer (SigLIP) need its files in the hub
    cache; with random weights and no files, the offline hashing tokenizer stands in,
    padded to the model's context length.
    """
    config = open_clip.get_model_config(architecture) or {}
    text_cfg = config.get("text_cfg", {})
    hf_name = text_cfg.get("hf_tokenizer_name")
    if not hf_name:  # open_clip's bundled BPE tokenizer: always offline
        return open_clip.get_tokenizer(architecture), 0
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(hf_name, local_files_only=True)  # the cache only, never the network
    except LocalEntryNotFoundError as exc:
        if weights == "pretrained":
            raise WeightsError(f"clip: the tokenizer of {architecture} ({hf_name}) is not in the Hugging Face"
                               f" cache; download it once with `hf download {hf_name}`") from exc
        from vlm_brain.models.hf import HashingTokenizer

        length = int(text_cfg.get("context_length", 77))
        hashing = HashingTokenizer(int(text_cfg.get("vocab_size", 49408)), bos=1, pad=0, eos=2, max_length=length)
        logger.info("%s: no tokenizer files for %s; using the offline hashing tokenizer (random weights)",
                    architecture, hf_name)

        def tokenize(texts: list[str]) -> torch.Tensor:
            ids = hashing(texts)["input_ids"]
            return torch.nn.functional.pad(ids, (0, length - ids.shape[1]), value=hashing.pad)

        return tokenize, hashing.pad
    from open_clip.tokenizer import HFTokenizer

    tokenizer = HFTokenizer(folder, context_length=int(text_cfg.get("context_length", 77)),
                            tokenizer_mode=text_cfg.get("tokenizer_mode"), **text_cfg.get("tokenizer_kwargs", {}))
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        pad = getattr(getattr(tokenizer, "tokenizer", None), "pad_token_id", 0) or 0
    return tokenizer, int(pad)


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
