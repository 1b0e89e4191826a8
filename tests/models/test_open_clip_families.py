"""open_clip beyond CLIP: attention found by module type (timm trunks), text pooled as the model pools."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlm_brain.models.capture import ANRecorder
from vlm_brain.models.registry import build_adapter

FRAMES = np.random.default_rng(1).integers(0, 255, (2, 40, 56, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def siglip():
    """open_clip's SigLIP (timm image trunk, HF tokenizer): random weights, offline tokenizer."""
    return build_adapter("siglip", {"family": "open_clip", "architecture": "ViT-B-16-SigLIP", "seed": 3}, "cpu")


def test_sites_are_the_timm_blocks_and_the_text_transformer(siglip):
    image, text = siglip.sites("image"), siglip.sites("text")
    assert len(image) == len(siglip.model.visual.trunk.blocks) == 12 and len(text) == 12
    assert all(s.kind == "proj_input" for s in image) and all(s.kind == "mha" for s in text)
    assert image[4].module is siglip.model.visual.trunk.blocks[4].attn.proj  # found by type, in order
    assert [s.layer for s in image[:2]] == ["siglip.image.L00", "siglip.image.L01"]


def test_timm_attention_ans_through_the_projection_are_the_block_output(siglip):
    site = siglip.sites("image")[7]
    attention = siglip.model.visual.trunk.blocks[7].attn
    seen = {}
    handle = attention.register_forward_hook(lambda mod, args, out: seen.setdefault("out", out))
    batch = siglip.image_batch(FRAMES)
    with ANRecorder([site], pooling="mean") as rec:
        siglip.forward("image", batch)
        pooled = rec.pop()[site.layer]
    handle.remove()
    expected = seen["out"].mean(dim=1)  # (batch, width): the block output, mean over tokens
    # the projection is affine, so pooling commutes with it: proj(mean context) = mean(proj(context))
    with torch.inference_mode():
        projected = site.module(pooled)
    np.testing.assert_allclose(projected.numpy(), expected.numpy(), atol=1e-4)


def test_text_is_pooled_at_the_last_position_and_padding_is_left_out(siglip):
    batch = siglip.text_batch(["a red circle", "two small blue squares move left"])
    ids = batch.inputs["text"]
    assert ids.shape == (2, 64) and siglip.text_pool == "last"
    assert batch.cls_index.tolist() == [63, 63]  # SigLIP pools its last token
    assert batch.mask.sum(dim=1).tolist() == [5, 8]  # bos + words + eos; padding excluded from mean pooling
    with ANRecorder(siglip.sites("text"), pooling="cls") as rec:
        siglip.forward("text", batch)
        cls = rec.pop()
    assert cls["siglip.text.L11"].shape == (2, 768) and torch.isfinite(cls["siglip.text.L11"]).all()
