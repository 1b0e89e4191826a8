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
