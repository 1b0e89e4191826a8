"""AN capture is the per-head context before the output projection, for each family."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vlm_brain.models.capture import (
    ANRecorder,
    AttentionSite,
    multihead_context,
    pool_tokens,
)
from vlm_brain.models.clip import ClipAdapter
from vlm_brain.models.hf import HFEncoderAdapter

FRAMES = np.random.default_rng(0).integers(0, 255, (2, 48, 64, 3), dtype=np.uint8)
TEXTS = ["a large red circle moving left", "two small blue squares"]


@pytest.fixture(scope="module")
def clip():
    return ClipAdapter(device="cpu")


@pytest.fixture(scope="module")
def vit():
    return HFEncoderAdapter("vit", "google/vit-base-patch16-224-in21k", device="cpu")


@pytest.fixture(scope="module")
def roberta():
    return HFEncoderAdapter("roberta", "roberta-base", device="cpu")


def _capture_mha(module: nn.MultiheadAttention, run):
    seen = {}

    def pre(mod, args, kwargs):
        seen["args"], seen["kwargs"] = args, kwargs

    def post(mod, args, kwargs, output):
        seen["output"] = output[0]

    handles = [module.register_forward_pre_hook(pre, with_kwargs=True),
               module.register_forward_hook(post, with_kwargs=True)]
    run()
    for h in handles:
        h.remove()
    return seen


@pytest.mark.parametrize("stream", ["image", "text"])
def test_open_clip_context_times_out_proj_is_the_module_output(clip, stream):
    batch = clip.image_batch(FRAMES) if stream == "image" else clip.text_batch(TEXTS)
    site = clip.sites(stream)[5]
    seen = _capture_mha(site.module, lambda: clip.forward(stream, batch))
    q, k, v = seen["args"][:3]
    with torch.inference_mode():
        context = multihead_context(site.module, q, k, v, seen["kwargs"].get("attn_mask"))
    if stream == "text":
        assert seen["kwargs"].get("attn_mask") is not None  # the causal mask is honoured
    w, b = site.module.out_proj.weight, site.module.out_proj.bias
    with torch.inference_mode():
        torch.testing.assert_close(context @ w.T + b, seen["output"], atol=1e-5, rtol=1e-4)


def test_plain_multihead_attention_sequence_first_with_padding():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4, batch_first=False).eval()
    x = torch.randn(7, 3, 32)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 5:] = True
    with torch.no_grad():
        expected, _ = mha(x, x, x, key_padding_mask=pad, need_weights=False)
        context = multihead_context(mha, x, x, x, key_padding_mask=pad)
    torch.testing.assert_close(mha.out_proj(context), expected, atol=1e-5, rtol=1e-4)


def _manual_context(hidden, q_lin, k_lin, v_lin, heads, additive_mask=None):
    n, length, width = hidden.shape
    d = width // heads
    q, k, v = (lin(hidden).view(n, length, heads, d).transpose(1, 2) for lin in (q_lin, k_lin, v_lin))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if additive_mask is not None:
        scores = scores + additive_mask
    return (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, length, width)


def _recorded_tokens(adapter, stream, batch, layer):
    """Token-level ANs: the input of the output projection, via the recorder's site."""
    site = adapter.sites(stream)[layer]
    seen = {}
    handle = site.module.register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
    adapter.forward(stream, batch)
    handle.remove()
    return site, seen["x"]


def test_vit_ans_are_softmax_qk_v_of_the_layer(vit):
    batch = vit.image_batch(FRAMES)
    layer = vit.model.layers[3]
    got = {}
    h = layer.attention.register_forward_pre_hook(
        lambda m, a, kw: got.update(h=a[0] if a else kw["hidden_states"]), with_kwargs=True)
    _, tokens = _recorded_tokens(vit, "image", batch, 3)
    h.remove()
    att = layer.attention
    with torch.inference_mode():
        expected = _manual_context(got["h"], att.q_proj, att.k_proj, att.v_proj, vit.model.config.num_attention_heads)
    torch.testing.assert_close(tokens, expected, atol=1e-5, rtol=1e-4)
    assert tokens.shape == (2, 197, 768)


def test_roberta_ans_are_softmax_qk_v_with_the_padding_mask(roberta):
    batch = roberta.text_batch(TEXTS)
    attention = roberta.model.encoder.layer[2].attention.self
    got = {}
    h = attention.register_forward_pre_hook(
        lambda m, a, kw: got.update(h=a[0] if a else kw["hidden_states"]), with_kwargs=True)
    _, tokens = _recorded_tokens(roberta, "text", batch, 2)
    h.remove()
    mask = batch.inputs["attention_mask"]
    additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    with torch.inference_mode():
        expected = _manual_context(got["h"], attention.query, attention.key, attention.value, 12, additive)
    valid = mask.bool()
    torch.testing.assert_close(tokens[valid], expected[valid], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("which", ["roberta", "clip"])
def test_mean_pooling_ignores_padding(which, roberta, clip):
    adapter = roberta if which == "roberta" else clip
    stream = "text"
    sites = adapter.sites(stream)
    results = []
    for texts in (TEXTS, TEXTS[1:]):  # "two small blue squares" padded in the first batch, alone in the second
        batch = adapter.text_batch(texts)
        with ANRecorder(sites) as rec:
            rec.set_tokens(batch.mask, batch.cls_index)
            adapter.forward(stream, batch)
            results.append(rec.pop())
    for layer in (sites[0].layer, sites[-1].layer):
        torch.testing.assert_close(results[0][layer][1], results[1][layer][0], atol=1e-4, rtol=1e-4)


def test_pool_tokens_by_hand():
    tokens = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    pooled = pool_tokens(tokens, mask, "mean", None)
    torch.testing.assert_close(pooled[0], (tokens[0, 0] + tokens[0, 1]) / 2)
    torch.testing.assert_close(pooled[1], tokens[1, 0])
    torch.testing.assert_close(pool_tokens(tokens, None, "cls", torch.tensor([2, 1])), torch.stack([tokens[0, 2], tokens[1, 1]]))


def test_recorder_layer_names_and_shapes(clip, vit, roberta):
    assert [s.layer for s in clip.sites("image")][:2] == ["clip.image.L00", "clip.image.L01"]
    assert len(clip.sites("image")) == len(clip.sites("text")) == 12
    assert len(vit.sites("image")) == len(roberta.sites("text")) == 12
    batch = vit.image_batch(FRAMES)
    with ANRecorder(vit.sites("image")) as rec:
        rec.set_tokens(batch.mask, batch.cls_index)
        vit.forward("image", batch)
        out = rec.pop()
    assert list(out)[-1] == "vit.image.L11" and out["vit.image.L11"].shape == (2, 768)
    with pytest.raises(RuntimeError, match="did not run"):
        with ANRecorder(vit.sites("image")) as rec:
            rec.pop()
    with pytest.raises(ValueError, match="pooling"):
        ANRecorder([AttentionSite("x", nn.Linear(2, 2), "proj_input")], pooling="max")
