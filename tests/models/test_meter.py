"""METER: checkpoint layout, strict loading, faithful forward, the 47 AN sites, fusion semantics.

Most tests use a small width (64, 4 heads) with the real depths (11 CLIP blocks, 12
RoBERTa layers, 6 fusion layers: the 47 attention modules) and 48 px images; the
full-size model is only built on the meta device (layout) and once with random
weights at 224 px for the end-to-end extraction.
"""

from __future__ import annotations

import math
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image

from vlm_brain.models.base import WeightsError
from vlm_brain.models.capture import ANRecorder, multihead_context
from vlm_brain.models.extract import extract_joint
from vlm_brain.models.meter import (
    STREAMS,
    MeterAdapter,
    MeterConfig,
    MeterModel,
    random_meter,
    resize_position_embedding,
)
from vlm_brain.models.meter_weights import expected_shapes, is_known_unused
from vlm_brain.models.registry import build_adapter

TINY = MeterConfig(width=64, heads=4, vocab_size=1000, text_positions=64, image_size=48)
TINY_SIZES = {"width": 64, "heads": 4, "vocab": 1000, "text_positions": 64, "resolution": 48,
              "clip_text_width": 32, "clip_vocab": 100, "clip_context": 7}
FRAMES = np.random.default_rng(0).integers(0, 255, (3, 40, 60, 3), dtype=np.uint8)
TEXTS = ["a man walks his dog along the beach", "", "two red cars"]
N_SITES = 11 + 12 + 4 * 6


# ---------------------------------------------------------------- the official layout


def official_shapes(width=768, heads=12, image_layers=11, text_layers=12, fusion_layers=6, patch=16,
                    resolution=288, vocab=50265, text_positions=514, mlp=4, token_types=2,
                    clip_text_width=512, clip_vocab=49408, clip_context=77, extras=True,
                    clip_token_embedding=False):
    """Key -> shape of an official METER CLIP16-RoBERTa pretrain checkpoint, from docs/meter.md.

    Written from the documented rules, independently of vlm_brain.models.meter. With
    ``extras`` it includes the tensors the file carries but the model does not use
    (CLIP text leftovers, RoBERTa pooler and position_ids buffer, MLM and ITM heads).
    ``heads`` does not change any shape (heads split the width). ``clip_token_embedding``
    adds ``vit_model.token_embedding.weight``, which the reference code's CLIP class also
    builds but meter.md does not list (its ~358M parameters match a file without it).
    """
    w, inner = width, width * mlp
    s: dict[str, tuple] = OrderedDict()

    def linear(name, n_in, n_out):
        s[f"{name}.weight"], s[f"{name}.bias"] = (n_out, n_in), (n_out,)

    def norm(name, n):
        s[f"{name}.weight"], s[f"{name}.bias"] = (n,), (n,)

    v = "vit_model.visual"
    s[f"{v}.class_embedding"] = (w,)
    s[f"{v}.positional_embedding"] = ((resolution // patch) ** 2 + 1, w)
    s[f"{v}.conv1.weight"] = (w, 3, patch, patch)
    norm(f"{v}.ln_pre", w)
    for i in range(image_layers):
        b = f"{v}.transformer.resblocks.{i}"
        s[f"{b}.attn.in_proj_weight"], s[f"{b}.attn.in_proj_bias"] = (3 * w, w), (3 * w,)
        linear(f"{b}.attn.out_proj", w, w)
        norm(f"{b}.ln_1", w)
        linear(f"{b}.mlp.c_fc", w, inner)
        linear(f"{b}.mlp.c_proj", inner, w)
        norm(f"{b}.ln_2", w)
    norm(f"{v}.ln_post", w)

    def bert_attention(prefix):
        for name in ("query", "key", "value"):
            linear(f"{prefix}.self.{name}", w, w)
        linear(f"{prefix}.output.dense", w, w)
        norm(f"{prefix}.output.LayerNorm", w)

    def feed_forward(prefix):
        linear(f"{prefix}.intermediate.dense", w, inner)
        linear(f"{prefix}.output.dense", inner, w)
        norm(f"{prefix}.output.LayerNorm", w)

    t = "text_transformer"
    s[f"{t}.embeddings.word_embeddings.weight"] = (vocab, w)
    s[f"{t}.embeddings.position_embeddings.weight"] = (text_positions, w)
    s[f"{t}.embeddings.token_type_embeddings.weight"] = (1, w)
    norm(f"{t}.embeddings.LayerNorm", w)
    for i in range(text_layers):
        bert_attention(f"{t}.encoder.layer.{i}.attention")
        feed_forward(f"{t}.encoder.layer.{i}")

    linear("cross_modal_text_transform", w, w)
    linear("cross_modal_image_transform", w, w)
    s["token_type_embeddings.weight"] = (token_types, w)
    for side in ("text", "image"):
        for i in range(fusion_layers):
            p = f"cross_modal_{side}_layers.{i}"
            bert_attention(f"{p}.attention")
            bert_attention(f"{p}.crossattention")
            feed_forward(p)
        linear(f"cross_modal_{side}_pooler.dense", w, w)
    if extras:
        if clip_token_embedding:
            s["vit_model.token_embedding.weight"] = (clip_vocab, clip_text_width)
        s["vit_model.positional_embedding"] = (clip_context, clip_text_width)
        norm("vit_model.ln_final", clip_text_width)
        linear(f"{t}.pooler.dense", w, w)
        s[f"{t}.embeddings.position_ids"] = (1, text_positions)
        linear("mlm_score.transform.dense", w, w)
        norm("mlm_score.transform.LayerNorm", w)
        s["mlm_score.decoder.weight"] = (vocab, w)
        s["mlm_score.bias"] = (vocab,)
        linear("itm_score.fc", 2 * w, 2)
    return s


def official_state_dict(seed=0, **sizes) -> dict[str, torch.Tensor]:
    """Random tensors in the official layout (LayerNorm weights near 1, others ~0.02)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in official_shapes(**sizes).items():
        if key.endswith("position_ids"):
            sd[key] = torch.arange(shape[1])[None]
        elif (".ln_" in key or "LayerNorm" in key) and key.endswith("weight"):
            sd[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        elif key.endswith(("class_embedding", "visual.positional_embedding")):
            sd[key] = torch.randn(shape, generator=g) / 8
        else:
            sd[key] = 0.05 * torch.randn(shape, generator=g)
    return sd


def save_lightning(path, state_dict, image_size=48):
    """torch.save the way Lightning writes a .ckpt, hyper_parameters as an AttributeDict
    of a module that is not installed here (the weights_only loader refuses it)."""
    module = types.ModuleType("pytorch_lightning.utilities.parsing")

    class AttributeDict(dict):
        pass

    AttributeDict.__module__, AttributeDict.__qualname__ = module.__name__, "AttributeDict"
    module.AttributeDict = AttributeDict
    names = ["pytorch_lightning", "pytorch_lightning.utilities", module.__name__]
    saved = {n: sys.modules.get(n) for n in names}
    for n in names:
        sys.modules[n] = module if n == module.__name__ else types.ModuleType(n)
    try:
        hparams = AttributeDict(config={"image_size": image_size, "vit": "ViT-B/16", "tokenizer": "roberta-base",
                                        "max_text_len": 50, "num_top_layer": 6})
        torch.save({"epoch": 10, "global_step": 100, "pytorch-lightning_version": "1.3.2",
                    "state_dict": OrderedDict(state_dict), "hyper_parameters": hparams}, path)
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
    return path


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    sd = official_state_dict(**TINY_SIZES)
    sd["train_mlm_accuracy.correct"] = torch.tensor(3.0)  # a metric state some files carry
    return save_lightning(tmp_path_factory.mktemp("meter") / "meter_tiny.ckpt", sd), sd


@pytest.fixture(scope="module")
def tiny(tiny_ckpt):
    path, _ = tiny_ckpt
    return MeterAdapter(weights="pretrained", checkpoint=str(path), config=TINY, image_size=48,
                        max_text_len=12, tokenizer="hashing", device="cpu")


# ------------------------------------------------------------------ layout and loading


def test_full_size_model_has_exactly_the_official_keys_and_shapes():
    model_shapes = {k: tuple(v) for k, v in expected_shapes(MeterConfig()).items()}
    official = official_shapes(extras=False)
    assert sorted(set(model_shapes) ^ set(official)) == []
    assert {k: v for k, v in model_shapes.items() if v != official[k]} == {}
    extras = set(official_shapes(clip_token_embedding=True)) - set(official)
    assert len(extras) == 15 and all(is_known_unused(k) for k in extras)
    n_file = sum(math.prod(shape) for key, shape in official_shapes().items() if not key.endswith("position_ids"))
    assert 355e6 < n_file < 362e6  # "about 358M parameters" (meter.md)
    assert not any(is_known_unused(k) for k in official)
    with torch.device("meta"):
        n_params = sum(p.numel() for p in MeterModel().parameters())
    assert 300e6 < n_params < 360e6  # ~318.6M used of the file's ~380M


def test_lightning_checkpoint_loads_every_used_tensor(tiny_ckpt, tiny):
    _, sd = tiny_ckpt
    model_sd = tiny.model.state_dict()
    assert set(model_sd) == set(official_shapes(**TINY_SIZES, extras=False))
    for key, value in model_sd.items():
        torch.testing.assert_close(value, sd[key].float(), rtol=0, atol=0, msg=key)
    assert tiny.weights.startswith("pretrained checkpoint ")
    out = tiny.forward(None, tiny.joint_batch(FRAMES, TEXTS))
    assert out.cls_feats.shape == (3, 128) and torch.isfinite(out.cls_feats).all()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda sd: sd.update({"cross_modal_text_layers.6.output.dense.bias": torch.zeros(64)}),
         r"1 unexpected: cross_modal_text_layers\.6\.output\.dense\.bias"),
        (lambda sd: sd.update({"some_new_head.weight": torch.zeros(2, 64)}), r"1 unexpected: some_new_head\.weight"),
        (lambda sd: sd.pop("cross_modal_image_layers.5.crossattention.self.key.weight"),
         r"1 missing: cross_modal_image_layers\.5\.crossattention\.self\.key\.weight"),
        (lambda sd: sd.update({"cross_modal_text_transform.weight": torch.zeros(64, 32)}),
         r"1 shape mismatches: cross_modal_text_transform\.weight: file \[64, 32\] vs model \[64, 64\]"),
        (lambda sd: sd.update({"text_transformer.embeddings.position_embeddings.weight": torch.zeros(50, 64)}),
         r"shape mismatches: text_transformer\.embeddings\.position_embeddings\.weight"),
    ],
    ids=["deeper-model", "unknown-key", "missing-key", "wrong-shape", "text-positions"],
)
def test_bad_checkpoints_give_one_clear_error(tmp_path, mutate, expected):
    sd = official_state_dict(**TINY_SIZES)
    mutate(sd)
    path = save_lightning(tmp_path / "bad.ckpt", sd)
    with pytest.raises(WeightsError, match=expected):
        MeterAdapter(weights="pretrained", checkpoint=str(path), config=TINY, image_size=48,
                     tokenizer="hashing", device="cpu")


def test_several_problems_are_reported_together(tmp_path):
    sd = official_state_dict(**TINY_SIZES)
    dropped = [k for k in sd if k.startswith(("cross_modal_text_layers.3.", "cross_modal_text_layers.4.",
                                              "cross_modal_text_layers.5."))]
    for k in dropped:  # a truncated model: the last text fusion layers are absent
        del sd[k]
    assert len(dropped) == 3 * 26  # 2 x (q, k, v, dense, LN) + intermediate, output dense, LN; weight + bias
    sd["bogus.weight"] = torch.zeros(1)
    path = save_lightning(tmp_path / "trunc.ckpt", sd)
    with pytest.raises(WeightsError) as info:
        MeterAdapter(weights="pretrained", checkpoint=str(path), config=TINY, image_size=48,
                     tokenizer="hashing", device="cpu")
    message = str(info.value)
    assert "78 missing: cross_modal_text_layers.3." in message and "(+73)" in message
    assert "1 unexpected: bogus.weight" in message


def test_swin_meter_hf_roberta_truncated_and_absent_files(tmp_path):
    sd = official_state_dict(**TINY_SIZES)
    swin = {k: v for k, v in sd.items() if not k.startswith("vit_model.visual.")}
    swin.update({"vit_model.patch_embed.proj.weight": torch.zeros(64, 3, 4, 4),
                 "vit_model.layers.0.blocks.0.attn.qkv.weight": torch.zeros(192, 64)})
    with pytest.raises(WeightsError, match="Swin-based METER"):
        MeterAdapter(weights="pretrained", checkpoint=str(save_lightning(tmp_path / "swin.ckpt", swin)),
                     config=TINY, image_size=48, tokenizer="hashing", device="cpu")
    roberta = {k.removeprefix("text_transformer."): v for k, v in sd.items() if k.startswith("text_transformer.")}
    torch.save(roberta, tmp_path / "pytorch_model.bin")  # a bare HF state dict
    with pytest.raises(WeightsError, match="does not look like a METER checkpoint"):
        MeterAdapter(weights="pretrained", checkpoint=str(tmp_path / "pytorch_model.bin"), config=TINY,
                     image_size=48, tokenizer="hashing", device="cpu")
    data = (tmp_path / "swin.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cannot read .*truncated"):
        MeterAdapter(weights="pretrained", checkpoint=str(tmp_path / "cut.ckpt"), config=TINY, tokenizer="hashing",
                     device="cpu")
    with pytest.raises(WeightsError, match="checkpoint .*nope.ckpt does not exist. Download an official METER"):
        MeterAdapter(weights="pretrained", checkpoint=str(tmp_path / "nope.ckpt"), config=TINY, tokenizer="hashing",
                     device="cpu")
    with pytest.raises(WeightsError, match="needs `checkpoint`"):
        build_adapter("meter", {"family": "meter", "weights": "pretrained", "tokenizer": "hashing"}, device="cpu")
    (tmp_path / "x.ckpt").write_bytes(b"")  # the checkpoint is there (checked first): then the tokenizer
    with pytest.raises(WeightsError, match="no roberta-base tokenizer files in `tokenizer` '/nonexistent/roberta'"):
        build_adapter("meter", {"family": "meter", "weights": "pretrained", "checkpoint": str(tmp_path / "x.ckpt"),
                                "tokenizer": "/nonexistent/roberta"}, device="cpu")


def test_known_unused_keys_nlvr2_token_types_and_position_resize(tmp_path):
    sd = official_state_dict(**{**TINY_SIZES, "resolution": 64}, token_types=3, clip_token_embedding=True)
    for key in ("vit_model.ln_final.weight", "mlm_score.bias", "text_transformer.pooler.dense.weight",
                "text_transformer.embeddings.position_ids", "vit_model.token_embedding.weight"):
        assert key in sd and is_known_unused(key)
    pos = sd["vit_model.visual.positional_embedding"]
    pos[1:] = torch.linspace(-1, 1, 64)  # each channel constant over the 4x4 grid
    path = save_lightning(tmp_path / "nlvr2_64px.ckpt", sd, image_size=64)
    adapter = MeterAdapter(weights="pretrained", checkpoint=str(path), config=TINY, image_size=48,
                           tokenizer="hashing", device="cpu")
    loaded = adapter.model.vit_model.visual.positional_embedding.detach()
    assert loaded.shape == (3 * 3 + 1, 64)
    torch.testing.assert_close(loaded[0], pos[0])  # CLS row kept
    torch.testing.assert_close(loaded[1:], pos[1:10])  # a constant field stays constant
    torch.testing.assert_close(adapter.model.token_type_embeddings.weight.detach(), sd["token_type_embeddings.weight"][:2])
    # a non-constant grid is really resampled (4x4 -> 3x3), the corners follow the trend
    ramp = torch.cat([torch.zeros(1, 2), torch.arange(16.0).repeat_interleave(2).reshape(16, 2)])
    small = resize_position_embedding(ramp, 3)[1:, 0].reshape(3, 3)
    assert small[0, 0] < small[1, 1] < small[2, 2] and small[0, 2] < small[2, 0]
    assert resize_position_embedding(ramp, 4) is ramp


def test_random_weights_are_seeded():
    a, b, c = random_meter(TINY, 0), random_meter(TINY, 0), random_meter(TINY, 1)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.cross_modal_text_layers[2].crossattention.self.key.weight,
                           c.cross_modal_text_layers[2].crossattention.self.key.weight)


# ------------------------------------------------ forward against independent references


def _additive(mask: torch.Tensor) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min


def test_forward_matches_open_clip_hf_roberta_and_bridgetower_layers(tiny_ckpt, tiny):
    """The whole forward, rebuilt from other libraries' modules loaded with the file's tensors."""
    from open_clip.transformer import QuickGELU, VisionTransformer
    from transformers import BridgeTowerTextConfig, RobertaConfig, RobertaModel
    from transformers.models.bridgetower.modeling_bridgetower import (
        BridgeTowerBertCrossLayer,
    )

    _, sd = tiny_ckpt

    def part(prefix):
        return {k.removeprefix(prefix): v for k, v in sd.items() if k.startswith(prefix)}

    vit = VisionTransformer(48, 16, 64, 11, 4, 4.0, output_dim=64, act_layer=QuickGELU, output_tokens=True)
    vit.load_state_dict({**part("vit_model.visual."), "proj": torch.eye(64)})
    rcfg = RobertaConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=12, num_attention_heads=4,
                         intermediate_size=256, max_position_embeddings=64, type_vocab_size=1,
                         layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    rcfg._attn_implementation = "eager"
    roberta = RobertaModel(rcfg)
    missing, unexpected = roberta.load_state_dict(part("text_transformer."), strict=False)
    assert not missing and set(unexpected) <= {"embeddings.position_ids"}
    ccfg = BridgeTowerTextConfig(hidden_size=64, num_attention_heads=4, intermediate_size=256,
                                 layer_norm_eps=1e-12, hidden_act="gelu")
    ccfg._attn_implementation = "eager"

    def cross(prefix):
        layer = BridgeTowerBertCrossLayer(ccfg)
        layer.load_state_dict(part(prefix))
        return layer.eval()

    batch = tiny.joint_batch(FRAMES, TEXTS)
    ids, mask, pixels = batch.inputs["input_ids"], batch.inputs["attention_mask"], batch.inputs["pixel_values"]
    assert mask[1].sum() == 2 and not mask.all()  # an empty caption is <s></s>, the rest padding
    with torch.no_grad():
        pooled, tokens = vit.eval()(pixels)
        image = torch.cat([pooled[:, None], tokens], dim=1)
        text = roberta.eval()(input_ids=ids, attention_mask=mask).last_hidden_state
        tt = sd["token_type_embeddings.weight"]
        x = text @ sd["cross_modal_text_transform.weight"].T + sd["cross_modal_text_transform.bias"] + tt[0]
        y = image @ sd["cross_modal_image_transform.weight"].T + sd["cross_modal_image_transform.bias"] + tt[1]
        text_add, image_add = _additive(mask), _additive(torch.ones(y.shape[:2]))
        for i in range(6):
            text_layer, image_layer = cross(f"cross_modal_text_layers.{i}."), cross(f"cross_modal_image_layers.{i}.")
            x, y = text_layer(x, y, text_add, image_add)[0], image_layer(y, x, image_add, text_add)[0]
        def pool(side, feats):
            return torch.tanh(feats[:, 0] @ sd[f"cross_modal_{side}_pooler.dense.weight"].T
                              + sd[f"cross_modal_{side}_pooler.dense.bias"])

        cls = torch.cat([pool("text", x), pool("image", y)], dim=-1)
        out = tiny.forward(None, batch)
        torch.testing.assert_close(tiny.model.vit_model(pixels), image, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(tiny.model.text_transformer(ids, mask.bool()), text, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(out.text_feats, x, atol=5e-5, rtol=1e-4)
    torch.testing.assert_close(out.image_feats, y, atol=5e-5, rtol=1e-4)
    torch.testing.assert_close(out.cls_feats, cls, atol=5e-5, rtol=1e-4)


# ------------------------------------------------------------------------- the AN sites


# side of the query tokens and of the keys' mask for each stream (docs/meter.md)
KEY_SIDE = {"text": "text", "fusion_text_self": "text", "fusion_text_cross": "image",
            "fusion_image_self": "image", "fusion_image_cross": "text"}


def _attention_of(adapter, stream, i):
    model = adapter.model
    if stream == "text":
        return model.text_transformer.encoder.layer[i].attention
    _, side, kind = stream.split("_")
    layer = (model.cross_modal_text_layers if side == "text" else model.cross_modal_image_layers)[i]
    return layer.attention if kind == "self" else layer.crossattention


def test_all_47_sites_record_the_per_head_context(tiny):
    batch = tiny.joint_batch(FRAMES, TEXTS)
    sites = tiny.all_sites()
    assert len(sites) == N_SITES == 47
    assert len({id(s.module) for s in sites}) == 47
    seen, handles = {}, []

    def keep(name):
        def pre(module, args, kwargs):
            seen.setdefault(name, {})["in"] = (args, kwargs)

        def post(module, args, kwargs, output):
            seen[name]["out"] = output

        return pre, post

    for stream in STREAMS:
        for i, site in enumerate(tiny.sites(stream)):
            watched = site.module if stream == "image" else _attention_of(tiny, stream, i).self
            pre, post = keep(site.layer)
            handles += [watched.register_forward_pre_hook(pre, with_kwargs=True),
                        watched.register_forward_hook(post, with_kwargs=True)]
            if stream != "image":
                assert site.module is _attention_of(tiny, stream, i).output.dense
                handles.append(site.module.register_forward_pre_hook(
                    lambda m, a, layer=site.layer: seen[layer].__setitem__("context", a[0])))
    try:
        with ANRecorder(sites, pooling="mean") as rec:
            rec.set_tokens(batch.mask, batch.cls_index, batch.tokens)
            tiny.forward(None, batch)
            pooled = rec.pop()
    finally:
        for h in handles:
            h.remove()
    text_mask = batch.inputs["attention_mask"].bool()
    d = TINY.head_dim
    for stream in STREAMS:
        for i, site in enumerate(tiny.sites(stream)):
            got = seen[site.layer]
            if stream == "image":
                q, k, v = got["in"][0][:3]
                with torch.no_grad():
                    context = multihead_context(site.module, q, k, v, got["in"][1].get("attn_mask"),
                                                got["in"][1].get("key_padding_mask"))
                    torch.testing.assert_close(site.module.out_proj(context), got["out"][0], atol=2e-5, rtol=1e-4)
                query_valid = None
            else:
                attn = _attention_of(tiny, stream, i).self
                args = got["in"][0]
                hidden = args[0]
                source = args[2] if len(args) > 2 and args[2] is not None else hidden
                keys_valid = text_mask if KEY_SIDE[stream] == "text" else torch.ones(source.shape[:2], dtype=torch.bool)
                assert source.shape[1] == keys_valid.shape[1]
                with torch.no_grad():
                    n, lq, lk = hidden.shape[0], hidden.shape[1], source.shape[1]
                    q = attn.query(hidden).view(n, lq, -1, d).transpose(1, 2)
                    k = attn.key(source).view(n, lk, -1, d).transpose(1, 2)
                    vv = attn.value(source).view(n, lk, -1, d).transpose(1, 2)
                    scores = q @ k.transpose(-1, -2) / math.sqrt(d) + _additive(keys_valid)
                    context = (scores.softmax(-1) @ vv).transpose(1, 2).reshape(n, lq, -1)
                torch.testing.assert_close(got["context"], context, atol=2e-5, rtol=1e-4, msg=site.layer)
                torch.testing.assert_close(got["out"], context, atol=2e-5, rtol=1e-4)
                query_valid = text_mask if site.tokens == "text" else None
                assert site.tokens == ("text" if stream in ("text", "fusion_text_self", "fusion_text_cross") else "image")
            expected = context.mean(1) if query_valid is None else \
                (context * query_valid[..., None]).sum(1) / query_valid.sum(1, keepdim=True)
            torch.testing.assert_close(pooled[site.layer], expected, atol=2e-5, rtol=1e-4, msg=site.layer)
            assert pooled[site.layer].shape == (3, 64)


# ---------------------------------------------------------------------- fusion semantics


def test_each_fusion_layer_reads_the_previous_pair_of_streams(tiny):
    model = tiny.model
    batch = tiny.joint_batch(FRAMES, TEXTS)
    calls = {}
    handles = []
    for side, layers in (("text", model.cross_modal_text_layers), ("image", model.cross_modal_image_layers)):
        for i, layer in enumerate(layers):
            def hook(module, args, output, key=(side, i)):
                calls[key] = (args[0], args[1], output)
            handles.append(layer.register_forward_hook(hook))
    try:
        out = tiny.forward(None, batch)
    finally:
        for h in handles:
            h.remove()
    for i in range(6):
        x_prev, y_for_text, x_new = calls["text", i]
        y_prev, x_for_image, y_new = calls["image", i]
        assert torch.equal(y_for_text, y_prev) and torch.equal(x_for_image, x_prev)  # both read layer i-1
        assert not torch.allclose(x_for_image, x_new)
        if i:
            assert torch.equal(x_prev, calls["text", i - 1][2]) and torch.equal(y_prev, calls["image", i - 1][2])
    assert torch.equal(out.text_feats, calls["text", 5][2]) and torch.equal(out.image_feats, calls["image", 5][2])

    # a hand-written loop of the layer calls gives the model's outputs; a sequential
    # update (image layer reading the *new* text stream) does not
    inputs = batch.inputs
    text_mask = inputs["attention_mask"].bool()
    with torch.inference_mode():
        x0 = model.embed_text(inputs["input_ids"], text_mask)
        y0 = model.embed_image(inputs["pixel_values"])
        x, y = x0, y0
        xs, ys = x0, y0
        for t_layer, i_layer in zip(model.cross_modal_text_layers, model.cross_modal_image_layers, strict=True):
            x_next = t_layer(x, y, text_mask, None)
            y = i_layer(y, x, None, text_mask)
            x = x_next
            xs = t_layer(xs, ys, text_mask, None)
            ys = i_layer(ys, xs, None, text_mask)
    torch.testing.assert_close(out.text_feats, x, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out.image_feats, y, atol=1e-6, rtol=1e-6)
    assert (out.image_feats - ys).abs().max() > 1e-3


def test_padding_changes_no_fused_output_and_no_an(tiny):
    model = tiny.model
    batch = tiny.joint_batch(FRAMES[:1], TEXTS[:1])
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    n_valid = int(mask.sum())
    assert n_valid == 10 and not mask[0, n_valid:].any()
    short_ids, short_mask = ids[:, :n_valid], mask[:, :n_valid]
    long_ids = torch.cat([short_ids, torch.full((1, 30), TINY.pad_token_id)], dim=1)
    long_mask = torch.cat([short_mask, torch.zeros(1, 30, dtype=torch.long)], dim=1)
    results = []
    for i, m in ((short_ids, short_mask), (long_ids, long_mask)):
        with ANRecorder(tiny.all_sites(), pooling="mean") as rec:
            rec.set_tokens(None, None, {"image": (None, None), "text": (m.bool(), None)})
            with torch.inference_mode():
                out = model(batch.inputs["pixel_values"], i, m)
            results.append((out, rec.pop()))
    (a, ans_a), (b, ans_b) = results
    torch.testing.assert_close(a.text_feats, b.text_feats[:, :n_valid], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.image_feats, b.image_feats, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.cls_feats, b.cls_feats, atol=1e-5, rtol=1e-5)
    assert len(ans_a) == 47
    for layer in ans_a:
        torch.testing.assert_close(ans_a[layer], ans_b[layer], atol=1e-5, rtol=1e-5, msg=layer)
    # and the padding is really masked: unmasked padding changes the fused streams
    with torch.inference_mode():
        c = model(batch.inputs["pixel_values"], long_ids, torch.ones_like(long_mask))
    assert (c.image_feats - a.image_feats).abs().max() > 1e-3


# ------------------------------------------------------------------------- the adapter


def test_inputs_tokens_and_preprocessing(tiny):
    batch = tiny.joint_batch(FRAMES[:2], ["word " * 40, ""])
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    assert ids.shape == mask.shape == (2, 12)  # padded / truncated to max_text_len
    assert ids[0, 0] == 0 and ids[0, -1] == 2 and mask[0].all()  # <s> ... </s>, truncated
    assert ids[1, :2].tolist() == [0, 2] and (ids[1, 2:] == 1).all() and mask[1].sum() == 2
    assert torch.equal(batch.tokens["text"][0], mask.bool()) and batch.tokens["image"][0] is None
    # shorter side (40) to 48 bicubic -> 48 x 72, center crop 48, CLIP mean/std
    frame = FRAMES[0]
    resized = np.asarray(Image.fromarray(frame).resize((72, 48), Image.BICUBIC), dtype=np.float32)[:, 12:60] / 255
    mean, std = np.array([0.48145466, 0.4578275, 0.40821073]), np.array([0.26862954, 0.26130258, 0.27577711])
    expected = torch.from_numpy(((resized - mean) / std).transpose(2, 0, 1)).float()
    assert batch.inputs["pixel_values"].shape == (2, 3, 48, 48)
    torch.testing.assert_close(batch.inputs["pixel_values"][0], expected, atol=1e-5, rtol=1e-5)


def test_a_local_roberta_tokenizer_directory_is_used(tmp_path):
    """A (toy, character-level) RoBERTa BPE tokenizer in a local directory, as `tokenizer`."""
    import json

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in "Ġabcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer"}))
    adapter = MeterAdapter(weights="random", config=TINY, image_size=48, max_text_len=8, tokenizer=str(tmp_path),
                           device="cpu")
    ids, mask = adapter.tokenize(["a dog", "", "abcdefghij"])
    assert ids.tolist() == [[0, vocab["a"], vocab["Ġ"], vocab["d"], vocab["o"], vocab["g"], 2, 1],
                            [0, 2, 1, 1, 1, 1, 1, 1],
                            [0, *(vocab[c] for c in "abcdef"), 2]]  # truncated, </s> kept
    assert mask.sum(1).tolist() == [7, 2, 8]


def test_extract_joint_tiny_is_batch_size_invariant(tiny):
    a = extract_joint(tiny, iter(FRAMES), TEXTS, batch_size=2, progress=False)
    b = extract_joint(tiny, iter(FRAMES), TEXTS, batch_size=3, progress=False)
    assert list(a) == [s.layer for s in tiny.all_sites()]
    for layer in a:
        np.testing.assert_allclose(a[layer], b[layer], atol=1e-5)


def test_full_size_random_meter_through_the_registry_and_extract_joint():
    """The released architecture (width 768, 12 heads) with random weights at 224 px.

    224 px is a resolution METER itself ships (the checkpoint2 pretrain model); random
    weights are built at that size directly (a checkpoint of another resolution would
    have its position embeddings resized).
    """
    adapter = build_adapter("meter", {"family": "meter", "weights": "random", "seed": 0, "image_size": 224},
                            device="cpu")
    assert adapter.weights == "random (seed 0), METER CLIP16-RoBERTa 224px"
    assert adapter.streams == dict.fromkeys(STREAMS, "joint")
    frames = np.random.default_rng(2).integers(0, 255, (2, 72, 128, 3), dtype=np.uint8)
    ans = extract_joint(adapter, iter(frames), ["a dog runs on the grass", ""], batch_size=2, progress=False)
    expected = ([f"meter.image.L{i:02d}" for i in range(11)] + [f"meter.text.L{i:02d}" for i in range(12)]
                + [f"meter.{s}.L{i:02d}" for s in STREAMS[2:] for i in range(6)])
    assert list(ans) == expected
    assert "meter.fusion_text_cross.L02" in ans
    for layer, value in ans.items():
        assert value.shape == (2, 768) and value.dtype == np.float32 and np.isfinite(value).all(), layer
