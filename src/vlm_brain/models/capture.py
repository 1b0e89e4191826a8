"""Forward hooks that record artificial neurons (ANs), pooled over tokens.

An AN is one dimension of a multi-head attention module's output *before* its output
projection: the concatenated per-head context vectors (heads x head_dim), AN index =
head * head_dim + j. Two kinds of attention module are supported:

- ``"proj_input"``: the output projection is a module (HF ``attention.output.dense``,
  ``o_proj``, ``out_proj``...); its input *is* the context, recorded by a pre-hook.
- ``"mha"``: ``torch.nn.MultiheadAttention`` (open_clip), which applies ``out_proj``
  functionally; the context is recomputed exactly from the captured inputs and the
  module's ``in_proj`` weights.

Pooling happens inside the hook (mean over valid tokens, or one token), so memory is
bounded by the batch, never by the movie length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Kind = Literal["proj_input", "mha"]
Pooling = Literal["mean", "cls"]


@dataclass(frozen=True)
class AttentionSite:
    """One attention module whose ANs are recorded under ``layer`` (e.g. clip.image.L03)."""

    layer: str
    module: nn.Module
    kind: Kind
    tokens: str = "default"  # which token set pools this site (joint models: "image"/"text")


@dataclass(frozen=True)
class AttentionModule:
    """One self-attention module of a tower and its output projection (input = ANs)."""

    name: str
    module: nn.Module
    out_proj: nn.Linear


def output_projection(module: nn.Module) -> nn.Linear | None:
    """The output-projection Linear of a self-attention module, None if not one.

    A self-attention module has q/k/v projections and an ``out_proj`` / ``o_proj``
    Linear (CLIP, SigLIP, Llama-style), or a ``self`` / ``attention`` part with
    query/key/value and an ``output.dense`` Linear (BERT, RoBERTa, ViT). The input of
    that Linear is the concatenated per-head context: the ANs. ``nn.MultiheadAttention``
    (open_clip, attention-pooling heads) and cross-attention are not matched here.
    """
    if isinstance(module, nn.MultiheadAttention) or getattr(module, "is_cross_attention", False):
        return None
    if all(isinstance(getattr(module, p, None), nn.Linear) for p in ("q_proj", "k_proj", "v_proj")):
        projs = [getattr(module, p, None) for p in ("out_proj", "o_proj")]
        return next((p for p in projs if isinstance(p, nn.Linear)), None)
    # BERT/RoBERTa: attention.self.{query,key,value} + attention.output.dense; ViT: attention.attention.*
    inner = getattr(module, "self", None) or getattr(module, "attention", None)
    output = getattr(module, "output", None)
    if inner is not None and all(isinstance(getattr(inner, p, None), nn.Linear) for p in ("query", "key", "value")):
        dense = getattr(output, "dense", None)
        return dense if isinstance(dense, nn.Linear) else None
    return None


def tower_attention(name: str, stream: str, tower: nn.Module) -> list[AttentionModule]:
    """Self-attention modules of a transformers tower (or one-tower model), in depth order.

    Found by structure (:func:`output_projection`), not by module paths; there must be
    one per encoder layer (``config.num_hidden_layers``), else `WeightsError`.
    """
    found = [AttentionModule(n, m, proj) for n, m in tower.named_modules()
             if "cross" not in n.rsplit(".", 1)[-1] and (proj := output_projection(m)) is not None]
    expected = getattr(getattr(tower, "config", None), "num_hidden_layers", None)
    if expected is None or len(found) != expected:
        from vlm_brain.models.base import WeightsError  # base imports this module

        raise WeightsError(
            f"{name}: found {len(found)} self-attention modules with an output projection in the {stream}"
            f" tower ({type(tower).__name__}), expected num_hidden_layers={expected} (one per layer)")
    return found


def multihead_context(
    mha: nn.MultiheadAttention,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-head context of an ``nn.MultiheadAttention`` call, heads concatenated.

    Recomputes softmax(q k^T / sqrt(d) + mask) v from the module's packed in_proj
    weights, so ``mha.out_proj(context)`` equals the module's own output.

    Returns:
        (batch, query_len, embed_dim) if the module is batch_first, else
        (query_len, batch, embed_dim) — the layout of the module's output.
    """
    if not mha._qkv_same_embed_dim:
        raise NotImplementedError("separate q/k/v projection weights are not supported")
    if not mha.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    e, h = mha.embed_dim, mha.num_heads
    d = e // h
    w_q, w_k, w_v = mha.in_proj_weight.split(e)
    b_q, b_k, b_v = (mha.in_proj_bias.split(e) if mha.in_proj_bias is not None else (None,) * 3)
    q, k, v = F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)
    n, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    q = q.view(n, lq, h, d).transpose(1, 2)
    k = k.view(n, lk, h, d).transpose(1, 2)
    v = v.view(n, lk, h, d).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if attn_mask is not None:
        mask = attn_mask if attn_mask.dim() == 2 else attn_mask.view(n, h, lq, lk)
        scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    if key_padding_mask is not None:
        pad = key_padding_mask[:, None, None, :]
        scores = scores.masked_fill(pad, float("-inf")) if pad.dtype == torch.bool else scores + pad
    context = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, lq, e)
    return context if mha.batch_first else context.transpose(0, 1)


def pool_tokens(
    tokens: torch.Tensor, mask: torch.Tensor | None, pooling: Pooling, cls_index: torch.Tensor | None
) -> torch.Tensor:
    """Pool (batch, tokens, features) to (batch, features).

    ``mean`` averages the tokens where ``mask`` is true (all tokens when mask is None);
    ``cls`` takes token ``cls_index`` of each item (token 0 when None).
    """
    if pooling == "cls":
        index = cls_index if cls_index is not None else torch.zeros(len(tokens), dtype=torch.long)
        return tokens[torch.arange(len(tokens)), index.to(tokens.device)]
    if mask is None:
        return tokens.mean(dim=1)
    weights = mask.to(tokens.dtype).to(tokens.device)
    return (tokens * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True).clamp(min=1)


class ANRecorder:
    """Records pooled ANs of every site during forward passes.

    Usage::

        with ANRecorder(sites, pooling="mean") as rec:
            rec.set_tokens(mask, cls_index)   # per batch; mask (batch, tokens) bool
            model(...)
            ans = rec.pop()                   # {layer: (batch, n_ans) float32, CPU}
    """

    def __init__(self, sites: list[AttentionSite], pooling: Pooling = "mean") -> None:
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.sites = sites
        self.pooling = pooling
        self._tokens: dict[str, tuple[torch.Tensor | None, torch.Tensor | None]] = {}
        self._batch: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> ANRecorder:
        for site in self.sites:
            self._handles.append(
                site.module.register_forward_pre_hook(self._hook(site), with_kwargs=True)
            )
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def set_tokens(
        self,
        mask: torch.Tensor | None,
        cls_index: torch.Tensor | None = None,
        by_key: dict[str, tuple[torch.Tensor | None, torch.Tensor | None]] | None = None,
    ) -> None:
        """Valid-token mask (batch, tokens) and CLS position (batch,) of the next batch.

        ``by_key`` gives (mask, cls_index) per token set for models whose sites see
        different sequences (METER: ``"image"`` and ``"text"``); sites pick theirs by
        :attr:`AttentionSite.tokens`, the others use ``mask``/``cls_index``.
        """
        self._tokens = {"default": (mask, cls_index), **(by_key or {})}

    def pop(self) -> dict[str, torch.Tensor]:
        """ANs recorded since the last call, in site order; raises if a site did not fire."""
        missing = [s.layer for s in self.sites if s.layer not in self._batch]
        if missing:
            raise RuntimeError(f"attention modules did not run: {missing[:3]}")
        out = {s.layer: self._batch[s.layer] for s in self.sites}
        self._batch = {}
        return out

    def _hook(self, site: AttentionSite):
        def hook(module, args, kwargs):
            if site.kind == "proj_input":
                context = args[0] if args else kwargs["input"]
            else:
                names = ("query", "key", "value")
                q, k, v = (args[i] if len(args) > i else kwargs[n] for i, n in enumerate(names))
                context = multihead_context(
                    module, q, k, v, kwargs.get("attn_mask"), kwargs.get("key_padding_mask")
                )
                if not module.batch_first:
                    context = context.transpose(0, 1)
            mask, cls_index = self._tokens.get(site.tokens, self._tokens.get("default", (None, None)))
            pooled = pool_tokens(context, mask, self.pooling, cls_index)
            self._batch[site.layer] = pooled.detach().float().cpu()

        return hook
