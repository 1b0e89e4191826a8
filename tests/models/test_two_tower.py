"""Two-tower transformers VLMs (CLIP, SigLIP, SigLIP 2): ANs are the per-head contexts.

Tiny random models built from configs alone (no file, no download).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import yaml
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from vlm_brain.models.base import WeightsError
from vlm_brain.models.capture import ANRecorder, tower_attention
from vlm_brain.models.extract import extract_images, extract_texts
from vlm_brain.models.registry import build_adapter
from vlm_brain.models.two_tower import TwoTowerAdapter, from_spec

VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "patch_size": 8}
TEXT = {"hidden_size": 48, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
        "vocab_size": 1000, "max_position_embeddings": 16, "bos_token_id": 998, "pad_token_id": 1,
        "eos_token_id": 3}  # EOS not the largest id: CLIP finds it by id, not by argmax
CONFIGS = {
    "clip": {"model_type": "clip", "projection_dim": 16, "vision_config": {**VISION, "image_size": 32},
             "text_config": TEXT},
    "siglip": {"model_type": "siglip", "vision_config": {**VISION, "image_size": 32}, "text_config": TEXT},
    # 16 patches (4 x 4 grid): 48 x 64 frames become 3 x 4 patches + 4 padding patches
    "siglip2": {"model_type": "siglip2", "vision_config": {**VISION, "num_patches": 16}, "text_config": TEXT},
}
FRAMES = np.random.default_rng(0).integers(0, 255, (3, 48, 64, 3), dtype=np.uint8)
TEXTS = ["a large red circle moving left", "two small blue squares", "dog"]


def _adapter(arch: str, seed: int = 0, **config_changes) -> TwoTowerAdapter:
    config = copy.deepcopy(CONFIGS[arch])
    config["text_config"].update(config_changes)
    return TwoTowerAdapter(arch, config=config, seed=seed, device="cpu")


@pytest.fixture(scope="module", params=list(CONFIGS))
def adapter(request) -> TwoTowerAdapter:
    return _adapter(request.param)


def _batch(adapter, stream):
    return adapter.image_batch(FRAMES) if stream == "image" else adapter.text_batch(TEXTS)


def _tower(adapter, stream):
    return adapter.model.vision_model if stream == "image" else adapter.model.text_model


def _record(adapter, stream, batch, pooling="mean"):
    with ANRecorder(adapter.sites(stream), pooling) as rec:
        rec.set_tokens(batch.mask, batch.cls_index)
        adapter.forward(stream, batch)
        return rec.pop()


def _hand_pool(tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    w = torch.ones(tokens.shape[:2]) if mask is None else mask.float()
    return (tokens * w[..., None]).sum(1) / w.sum(1, keepdim=True)


@pytest.mark.parametrize("stream", ["image", "text"])
def test_recorded_ans_through_out_proj_are_the_attention_output(adapter, stream):
    batch = _batch(adapter, stream)
    outputs, handles = {}, []
    for i, a in enumerate(adapter.attention[stream]):
        handles.append(a.module.register_forward_hook(lambda m, args, out, i=i: outputs.__setitem__(i, out[0])))
    mean, cls = _record(adapter, stream, batch, "mean"), _record(adapter, stream, batch, "cls")
    for h in handles:
        h.remove()
    cls_index = batch.cls_index if batch.cls_index is not None else torch.zeros(len(FRAMES), dtype=torch.long)
    assert len(outputs) == len(mean) == len(adapter.sites(stream))
    for i, site in enumerate(adapter.sites(stream)):
        proj = adapter.attention[stream][i].out_proj
        with torch.inference_mode():
            torch.testing.assert_close(proj(mean[site.layer]), _hand_pool(outputs[i], batch.mask), atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(proj(cls[site.layer]), outputs[i][torch.arange(len(cls_index)), cls_index],
                                       atol=1e-5, rtol=1e-4)


def _manual_head(hidden: np.ndarray, attention, head: int, heads: int, additive: np.ndarray) -> np.ndarray:
    """softmax(q_h k_h^T / sqrt(d) + mask) v_h in float64 numpy, from the q/k/v weights."""
    d = hidden.shape[-1] // heads
    rows = slice(head * d, (head + 1) * d)

    def project(linear):
        w, b = linear.weight.detach().double().numpy()[rows], linear.bias.detach().double().numpy()[rows]
        return hidden @ w.T + b

    q, k, v = project(attention.q_proj), project(attention.k_proj), project(attention.v_proj)
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d) + additive
    p = np.exp(scores - scores.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def _additive_mask(adapter, stream, batch, shape: tuple[int, int]) -> np.ndarray:
    """(batch, tokens, tokens) mask the attention should have seen, built from the batch by hand."""
    keys = np.ones(shape, dtype=bool)
    length = shape[1]
    if stream == "image" and "pixel_attention_mask" in batch.inputs:  # SigLIP 2 padding patches
        keys = batch.inputs["pixel_attention_mask"].bool().numpy()
    if stream == "text" and "attention_mask" in batch.inputs:  # CLIP; SigLIP text runs unmasked
        keys = batch.inputs["attention_mask"].bool().numpy()
    allowed = np.repeat(keys[:, None, :], length, axis=1)
    if stream == "text" and adapter.name == "clip":
        allowed &= np.tril(np.ones((length, length), dtype=bool))[None]
    return np.where(allowed, 0.0, -1e9)


@pytest.mark.parametrize("stream", ["image", "text"])
def test_an_block_of_a_head_is_softmax_qk_v_by_hand(adapter, stream):
    batch = _batch(adapter, stream)
    layer = len(adapter.sites(stream)) - 1
    attention = adapter.attention[stream][layer]
    seen = {}
    h1 = attention.module.register_forward_pre_hook(
        lambda m, a, kw: seen.update(h=a[0] if a else kw["hidden_states"]), with_kwargs=True)
    h2 = attention.out_proj.register_forward_pre_hook(lambda m, a: seen.update(ans=a[0]))
    adapter.forward(stream, batch)
    h1.remove()
    h2.remove()
    hidden = seen["h"].double().numpy()
    heads = _tower(adapter, stream).config.num_attention_heads
    d = hidden.shape[-1] // heads
    additive = _additive_mask(adapter, stream, batch, hidden.shape[:2])
    valid = np.ones(hidden.shape[:2], dtype=bool) if batch.mask is None else batch.mask.numpy()
    assert valid.sum() < valid.size or (stream == "image" and adapter.name != "siglip2")  # padding is exercised
    for head in (0, heads - 1):
        expected = _manual_head(hidden, attention.module, head, heads, additive)
        got = seen["ans"][..., head * d:(head + 1) * d].double().numpy()
        np.testing.assert_allclose(got[valid], expected[valid], atol=1e-5, rtol=1e-4)


def test_layers_are_one_self_attention_per_encoder_layer(adapter):
    for stream, config in (("image", CONFIGS[adapter.name]["vision_config"]),
                           ("text", CONFIGS[adapter.name]["text_config"])):
        sites = adapter.sites(stream)
        assert [s.layer for s in sites] == [f"{adapter.name}.{stream}.L{i:02d}" for i in range(config["num_hidden_layers"])]
        assert all(s.kind == "proj_input" and s.module.in_features == config["hidden_size"] for s in sites)
        ans = _record(adapter, stream, _batch(adapter, stream))
        assert all(v.shape == (3, config["hidden_size"]) for v in ans.values())
    if adapter.name == "siglip2":  # 48 x 64 frames: 3 x 4 patches valid of 16
        assert adapter.image_batch(FRAMES).mask.sum(1).tolist() == [12, 12, 12]
    head = getattr(adapter.model.vision_model, "head", None)
    if adapter.name.startswith("siglip"):  # the attention-pooling head is no layer
        assert isinstance(head.attention, torch.nn.MultiheadAttention)
        assert all(s.module is not head.attention.out_proj for s in adapter.sites("image"))


# SigLIP images are pooled by the attention head, no token: nothing to compare there
@pytest.mark.parametrize("arch,legacy,stream", [("clip", False, "image"), ("clip", False, "text"),
                                                ("clip", True, "text"), ("siglip", False, "text"),
                                                ("siglip2", False, "text")])
def test_cls_index_is_the_token_the_model_pools(arch, legacy, stream):
    adapter = _adapter(arch, eos_token_id=2) if legacy else _adapter(arch)
    batch = _batch(adapter, stream)
    tower = _tower(adapter, stream)
    with torch.inference_mode():
        out = tower(**batch.inputs)
        index = batch.cls_index if batch.cls_index is not None else torch.zeros(len(FRAMES), dtype=torch.long)
        token = out.last_hidden_state[torch.arange(len(index)), index]
        if stream == "image":
            token = tower.post_layernorm(token)
        elif arch != "clip":
            token = tower.head(token)
    torch.testing.assert_close(token, out.pooler_output)
    if stream == "text" and not legacy:  # the EOS token (CLIP) / the last position (SigLIP)
        ids = batch.inputs["input_ids"]
        expected = (ids == TEXT["eos_token_id"]).int().argmax(-1) if arch == "clip" else torch.full((3,), ids.shape[1] - 1)
        torch.testing.assert_close(batch.cls_index, expected)


def test_text_ans_do_not_depend_on_the_batch(adapter):
    together = _record(adapter, "text", adapter.text_batch(TEXTS))
    alone = _record(adapter, "text", adapter.text_batch(TEXTS[2:]))
    for layer in together:
        torch.testing.assert_close(together[layer][2], alone[layer][0], atol=1e-5, rtol=1e-4)


def test_same_seed_same_ans_other_seed_differs():
    a, b, c = _adapter("siglip", seed=0), _adapter("siglip", seed=0), _adapter("siglip", seed=1)
    for stream in ("image", "text"):
        ra, rb, rc = (_record(x, stream, _batch(x, stream)) for x in (a, b, c))
        for layer in ra:
            torch.testing.assert_close(ra[layer], rb[layer], atol=0, rtol=0)
            assert not torch.allclose(ra[layer], rc[layer], atol=1e-3)
    assert a.weights == "random (seed 0), siglip config"


SPEC = """
family: two_tower
weights: random
seed: 0
max_text_tokens: 12
config:
  model_type: siglip
  vision_config: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2,
                  image_size: 32, patch_size: 8}
  text_config: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2,
                vocab_size: 1000, max_position_embeddings: 16}
"""


def test_yaml_spec_end_to_end_through_extract():
    adapter = build_adapter("tiny_siglip", yaml.safe_load(SPEC), device="cpu")
    frames = np.concatenate([FRAMES, FRAMES[:1]])  # 4 frames, 2 per sample; one repeats
    images = extract_images(adapter, "image", iter(frames), n_frames=4, frames_per_sample=2, batch_size=3,
                            progress=False)
    assert list(images) == ["tiny_siglip.image.L00", "tiny_siglip.image.L01"]
    assert all(v.shape == (2, 32) and v.dtype == np.float32 and np.isfinite(v).all() for v in images.values())
    texts, has_text = extract_texts(adapter, "text", TEXTS + ["", TEXTS[0]], batch_size=2, progress=False)
    assert list(has_text) == [True, True, True, False, True]
    for v in texts.values():
        assert v.shape == (5, 32) and not v[3].any()
        np.testing.assert_array_equal(v[0], v[4])
    assert adapter.text_batch(TEXTS).inputs["input_ids"].shape == (3, 12)  # min(16, max_text_tokens)


@pytest.mark.parametrize("spec,error,match", [
    ({"family": "two_tower"}, ValueError, r"feature_extraction\.models\.bad: give `source`"),
    ({"family": "two_tower", "config": CONFIGS["siglip"], "weights": "imagenet"}, ValueError,
     r"feature_extraction\.models\.bad\.weights must be 'random' or 'pretrained'"),
    ({"family": "two_tower", "config": {"vision_config": {}}}, ValueError, r"bad\.config: missing `model_type`"),
    ({"family": "two_tower", "source": "/nonexistent/siglip", "weights": "pretrained"}, WeightsError,
     r"pretrained weights '/nonexistent/siglip' not found"),
    ({"family": "two_tower", "source": "/nonexistent/siglip"}, WeightsError, r"no config for '/nonexistent/siglip'"),
    ({"family": "two_tower", "config": {"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 1,
                                        "num_attention_heads": 2, "intermediate_size": 64, "image_size": 32,
                                        "patch_size": 8}}, WeightsError, r"not a two-tower model"),
    ({"family": "two_tower", "config": {**CONFIGS["clip"], "text_config": {**TEXT, "eos_token_id": 5000}}},
     WeightsError, r"eos_token_id=5000 is not in the vocabulary"),
])
def test_bad_specs_raise_clear_errors(spec, error, match):
    with pytest.raises(error, match=match):
        build_adapter("bad", spec, device="cpu")


def test_layer_count_mismatch_raises(adapter, monkeypatch):
    tower = adapter.model.vision_model
    monkeypatch.setattr(tower.config, "num_hidden_layers", 5)
    with pytest.raises(WeightsError, match=r"found 2 self-attention modules .* expected num_hidden_layers=5"):
        tower_attention("x", "image", tower)


def _word_tokenizer(folder) -> None:
    words = ["<unk>", "</s>"] + sorted({w for t in TEXTS for w in t.split()})
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="</s>", unk_token="<unk>").save_pretrained(folder)


def test_pretrained_from_a_local_folder(tmp_path):
    random = _adapter("siglip", seed=3)
    random.model.save_pretrained(tmp_path)
    random.processor.save_pretrained(tmp_path)
    spec = {"family": "two_tower", "source": str(tmp_path), "weights": "pretrained"}
    with pytest.raises(WeightsError, match="no tokenizer files"):
        from_spec("sig", spec, device="cpu")
    _word_tokenizer(tmp_path)
    loaded = from_spec("siglip", spec, device="cpu")
    assert loaded.weights == f"pretrained {tmp_path}"
    batch = loaded.text_batch(TEXTS)  # the folder's tokenizer, padded to max_length
    assert batch.inputs["input_ids"].shape == (3, 16) and "attention_mask" not in batch.inputs
    assert batch.mask.sum(1).tolist() == [len(t.split()) for t in TEXTS]
    for stream, b in (("image", loaded.image_batch(FRAMES)), ("text", batch)):
        for layer, ans in _record(loaded, stream, b).items():
            torch.testing.assert_close(ans, _record(random, stream, b)[layer], atol=1e-6, rtol=1e-5)
