"""METER (CLIP-ViT-B/16 + RoBERTa + co-attention fusion) as a plain PyTorch module.

Module names follow the state-dict keys of the official METER checkpoints
(zdou0830/METER, see docs/meter.md), so a checkpoint loads by key name:

- ``vit_model.visual.*``: the CLIP ViT-B/16 visual transformer without its last block
  (11 pre-LN residual blocks with ``nn.MultiheadAttention``, QuickGELU, LN eps 1e-5),
  ``ln_post`` applied to every token and no projection;
- ``text_transformer.*``: a RoBERTa encoder (``embeddings``, ``encoder.layer.{i}``;
  post-LN, exact GELU, LN eps 1e-5; positions from the non-padding tokens);
- ``cross_modal_{text,image}_transform`` (Linear), ``token_type_embeddings`` (text 0,
  image 1);
- ``cross_modal_{text,image}_layers.{i}``: BERT-style post-LN cross layers (self-attention,
  cross-attention, feed-forward with exact GELU, LN eps 1e-12);
- ``cross_modal_{text,image}_pooler.dense`` (tanh of token 0).

Fusion layer i updates both streams from the previous ones: x_i = text_layer_i(x_{i-1},
y_{i-1}) and y_i = image_layer_i(y_{i-1}, x_{i-1}); self-attention uses the stream's own
mask, cross-attention the other stream's mask. The image mask is all-valid.

Every multi-head attention exposes its per-head context (the ANs): the CLIP blocks call
their ``nn.MultiheadAttention`` as ``attn(q, k, v, need_weights=False)``; the BERT-style
attentions apply their output projection ``<attention>.output.dense`` as a module whose
input is the concatenated per-head context (AN index = head * head_dim + j).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class MeterConfig:
    """Architecture of a METER CLIP-ViT + RoBERTa model (defaults: the released pretrain model).

    ``image_size`` is the resolution the model runs at (multiple of ``patch_size``); a
    checkpoint trained at another resolution has its position embeddings resized.
    """

    width: int = 768
    heads: int = 12
    image_layers: int = 11  # CLIP ViT-B/16 has 12 blocks; METER drops the last one
    text_layers: int = 12
    fusion_layers: int = 6
    mlp_ratio: int = 4
    patch_size: int = 16
    image_size: int = 288
    vocab_size: int = 50265
    text_positions: int = 514
    text_type_vocab: int = 1
    pad_token_id: int = 1
    token_types: int = 2
    clip_ln_eps: float = 1e-5
    text_ln_eps: float = 1e-5
    fusion_ln_eps: float = 1e-12

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of the patch size {self.patch_size}")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


# ----------------------------------------------------------------------------- CLIP tower


class QuickGELU(nn.Module):
    """CLIP's activation, x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ClipBlock(nn.Module):
    """Pre-LN residual block: x + attn(ln_1(x)), then x + mlp(ln_2(x)). Batch-first tokens."""

    def __init__(self, width: int, heads: int, mlp_ratio: int, eps: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = nn.LayerNorm(width, eps=eps)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * mlp_ratio)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(width * mlp_ratio, width)),
        ]))
        self.ln_2 = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        # (q, k, v) positional, masks as keywords: the AN recorder relies on this call form
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ClipTransformer(nn.Module):
    def __init__(self, config: MeterConfig) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ClipBlock(config.width, config.heads, config.mlp_ratio, config.clip_ln_eps)
            for _ in range(config.image_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class ClipVisual(nn.Module):
    """CLIP visual transformer: patches + class token + positions, ln_pre, blocks, ln_post (all tokens)."""

    def __init__(self, config: MeterConfig) -> None:
        super().__init__()
        w = config.width
        self.conv1 = nn.Conv2d(3, w, kernel_size=config.patch_size, stride=config.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(w))
        self.positional_embedding = nn.Parameter(torch.empty(config.grid**2 + 1, w))
        self.ln_pre = nn.LayerNorm(w, eps=config.clip_ln_eps)
        self.transformer = ClipTransformer(config)
        self.ln_post = nn.LayerNorm(w, eps=config.clip_ln_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.conv1(pixel_values.to(self.conv1.weight.dtype))  # (B, W, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B, g*g, W), row-major patch order
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        if x.shape[1] != self.positional_embedding.shape[0]:
            raise ValueError(
                f"image of {x.shape[1] - 1} patches, but the position embedding has"
                f" {self.positional_embedding.shape[0] - 1}: resize images to the model's image_size"
            )
        x = self.ln_pre(x + self.positional_embedding.to(x.dtype))
        return self.ln_post(self.transformer(x))


class ClipVisionModel(nn.Module):
    """Holds ``visual`` so that keys read ``vit_model.visual.*`` as in METER."""

    def __init__(self, config: MeterConfig) -> None:
        super().__init__()
        self.visual = ClipVisual(config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.visual(pixel_values)


# ------------------------------------------------------------------ BERT-style attention


class MultiHeadContext(nn.Module):
    """``query``/``key``/``value`` projections and scaled dot-product attention.

    Returns the per-head context, heads concatenated: (batch, query tokens, width).
    ``key_mask`` (batch, key tokens) bool marks the keys that may be attended to
    (None: all); equivalent to adding a large negative number to masked scores.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(t.shape[0], t.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, key_mask: torch.Tensor | None = None,
                context_states: torch.Tensor | None = None) -> torch.Tensor:
        source = hidden if context_states is None else context_states
        q, k, v = self._split(self.query(hidden)), self._split(self.key(source)), self._split(self.value(source))
        mask = None if key_mask is None else key_mask[:, None, None, :].to(torch.bool)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0 / math.sqrt(self.head_dim))
        return context.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[1], -1)


class ResidualLayerNormOutput(nn.Module):
    """``LayerNorm(dense(h) + residual)`` (BERT ``SelfOutput`` / ``Output``)."""

    def __init__(self, width_in: int, width: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(hidden) + residual)


class Attention(nn.Module):
    """``self`` (context) + ``output`` (dense whose input is the context, residual, LN)."""

    def __init__(self, width: int, heads: int, eps: float) -> None:
        super().__init__()
        self.self = MultiHeadContext(width, heads)
        self.output = ResidualLayerNormOutput(width, width, eps)

    def forward(self, hidden: torch.Tensor, key_mask: torch.Tensor | None = None,
                context_states: torch.Tensor | None = None) -> torch.Tensor:
        return self.output(self.self(hidden, key_mask, context_states), hidden)


class Intermediate(nn.Module):
    def __init__(self, width: int, inner: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, inner)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(hidden))  # exact (erf) GELU


class EncoderLayer(nn.Module):
    """BERT/RoBERTa encoder layer (post-LN)."""

    def __init__(self, width: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.attention = Attention(width, heads, eps)
        self.intermediate = Intermediate(width, inner)
        self.output = ResidualLayerNormOutput(inner, width, eps)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.attention(hidden, mask)
        return self.output(self.intermediate(h), h)


class CrossLayer(nn.Module):
    """METER's fusion layer: self-attention, then cross-attention to the other stream, then FFN.

    ``mask`` (own stream) masks self-attention keys; ``other_mask`` (other stream) masks
    the cross-attention keys.
    """

    def __init__(self, width: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.attention = Attention(width, heads, eps)
        self.crossattention = Attention(width, heads, eps)
        self.intermediate = Intermediate(width, inner)
        self.output = ResidualLayerNormOutput(inner, width, eps)

    def forward(self, hidden: torch.Tensor, other: torch.Tensor, mask: torch.Tensor | None = None,
                other_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.attention(hidden, mask)
        h = self.crossattention(h, other_mask, other)
        return self.output(self.intermediate(h), h)


# ----------------------------------------------------------------------------- RoBERTa


class RobertaEmbeddings(nn.Module):
    """Word + position + token-type embeddings, LayerNorm.

    Positions count the non-padding tokens from ``pad_token_id + 1``; padding tokens get
    position ``pad_token_id`` (RoBERTa's convention), so the valid tokens' embeddings do
    not depend on how much padding follows.
    """

    def __init__(self, config: MeterConfig) -> None:
        super().__init__()
        w = config.width
        self.pad_token_id = config.pad_token_id
        self.word_embeddings = nn.Embedding(config.vocab_size, w, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.text_positions, w, padding_idx=config.pad_token_id)
        self.token_type_embeddings = nn.Embedding(config.text_type_vocab, w)
        self.LayerNorm = nn.LayerNorm(w, eps=config.text_ln_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        valid = (input_ids != self.pad_token_id).long()
        positions = torch.cumsum(valid, dim=1) * valid + self.pad_token_id
        if int(positions.max()) >= self.position_embeddings.num_embeddings:
            raise ValueError(f"text of {input_ids.shape[1]} tokens is longer than the model's "
                             f"{self.position_embeddings.num_embeddings - self.pad_token_id - 1} positions")
        types = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(types)
        return self.LayerNorm(x)


class RobertaEncoder(nn.Module):
    def __init__(self, config: MeterConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(
            EncoderLayer(config.width, config.heads, config.width * config.mlp_ratio, config.text_ln_eps)
            for _ in range(config.text_layers)
        )


class RobertaText(nn.Module):
    """``text_transformer``: RoBERTa embeddings and encoder layers (no pooler: unused in METER)."""

    def __init__(self, config: MeterConfig) -> None:
        super().__init__()
        self.embeddings = RobertaEmbeddings(config)
        self.encoder = RobertaEncoder(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, attention_mask)
        return x


class Pooler(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, width)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


# ------------------------------------------------------------------------------- METER


@dataclass
class MeterOutput:
    text_feats: torch.Tensor  # (batch, text tokens, width): last text fusion layer
    image_feats: torch.Tensor  # (batch, image tokens, width): last image fusion layer
    cls_feats: torch.Tensor  # (batch, 2 * width): [text pooler, image pooler]


class MeterModel(nn.Module):
    """METER CLIP-ViT-B/16 + RoBERTa, inference only (no task heads)."""

    def __init__(self, config: MeterConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MeterConfig()
        w, inner = config.width, config.width * config.mlp_ratio
        self.vit_model = ClipVisionModel(config)
        self.text_transformer = RobertaText(config)
        self.cross_modal_text_transform = nn.Linear(w, w)
        self.cross_modal_image_transform = nn.Linear(w, w)
        self.token_type_embeddings = nn.Embedding(config.token_types, w)
        self.cross_modal_text_layers = nn.ModuleList(
            CrossLayer(w, config.heads, inner, config.fusion_ln_eps) for _ in range(config.fusion_layers))
        self.cross_modal_image_layers = nn.ModuleList(
            CrossLayer(w, config.heads, inner, config.fusion_ln_eps) for _ in range(config.fusion_layers))
        self.cross_modal_text_pooler = Pooler(w)
        self.cross_modal_image_pooler = Pooler(w)

    def embed_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Text tower -> ``cross_modal_text_transform`` + token type 0: x_0."""
        x = self.cross_modal_text_transform(self.text_transformer(input_ids, attention_mask))
        return x + self.token_type_embeddings(torch.zeros_like(input_ids))

    def embed_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Image tower -> ``cross_modal_image_transform`` + token type 1: y_0."""
        y = self.cross_modal_image_transform(self.vit_model(pixel_values))
        types = torch.ones(y.shape[:2], dtype=torch.long, device=y.device)
        return y + self.token_type_embeddings(types)

    def fuse(self, x: torch.Tensor, y: torch.Tensor, text_mask: torch.Tensor,
             image_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The fusion layers; each updates both streams from the previous pair (x, y)."""
        for text_layer, image_layer in zip(self.cross_modal_text_layers, self.cross_modal_image_layers, strict=True):
            x, y = text_layer(x, y, text_mask, image_mask), image_layer(y, x, image_mask, text_mask)
        return x, y

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> MeterOutput:
        """
        Args:
            pixel_values: (batch, 3, image_size, image_size), CLIP-normalized.
            input_ids: (batch, text tokens) RoBERTa ids.
            attention_mask: (batch, text tokens), 1/True = valid token (default: not padding).
        """
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        text_mask = attention_mask.to(torch.bool)
        x = self.embed_text(input_ids, text_mask)
        y = self.embed_image(pixel_values)
        x, y = self.fuse(x, y, text_mask, None)  # image tokens are all valid
        cls = torch.cat([self.cross_modal_text_pooler(x), self.cross_modal_image_pooler(y)], dim=-1)
        return MeterOutput(x, y, cls)


def init_random_(model: MeterModel, seed: int) -> MeterModel:
    """Seeded random weights in place (METER's init: normal(0, 0.02) linear/embedding
    weights, zero biases, unit LayerNorms; CLIP's width^-0.5 scale for the class and
    position embeddings). Same seed, same weights, whatever the global RNG state."""
    g = torch.Generator().manual_seed(seed)
    width = model.config.width

    def normal_(t: torch.Tensor, std: float) -> None:
        with torch.no_grad():
            t.copy_(torch.randn(t.shape, generator=g) * std)

    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding, nn.Conv2d)):
            normal_(module.weight, 0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.MultiheadAttention):
            normal_(module.in_proj_weight, 0.02)
            nn.init.zeros_(module.in_proj_bias)
    with torch.no_grad():  # padding rows are zeros, as in RoBERTa
        emb = model.text_transformer.embeddings
        emb.word_embeddings.weight[emb.pad_token_id].zero_()
        emb.position_embeddings.weight[emb.pad_token_id].zero_()
    visual = model.vit_model.visual
    normal_(visual.class_embedding, width**-0.5)
    normal_(visual.positional_embedding, width**-0.5)
    return model


def empty_meter(config: MeterConfig, device: str | torch.device = "cpu") -> MeterModel:
    """A MeterModel with uninitialized storage (built on the meta device: no init cost)."""
    with torch.device("meta"):
        model = MeterModel(config)
    return model.to_empty(device=device)


def resize_position_embedding(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """(1 + g*g, D) CLIP position embedding -> (1 + grid*grid, D).

    The class-token row is kept; the g x g patch grid is resized bicubically
    (align_corners False), the rule METER applies when it changes resolution.
    """
    n, dim = pos.shape
    old = math.isqrt(n - 1)
    if old * old != n - 1:
        raise ValueError(f"position embedding of {n} rows is not 1 + a square grid")
    if old == grid:
        return pos
    patches = pos[1:].float().reshape(old, old, dim).permute(2, 0, 1)[None]
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
    patches = patches[0].permute(1, 2, 0).reshape(grid * grid, dim).to(pos.dtype)
    return torch.cat([pos[:1], patches], dim=0)
