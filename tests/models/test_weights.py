"""Pretrained-route loading from local files, and clear errors for missing/wrong weights."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch

from vlm_brain.models.base import WeightsError
from vlm_brain.models.capture import ANRecorder
from vlm_brain.models.clip import ClipAdapter
from vlm_brain.models.hf import HashingTokenizer, HFEncoderAdapter
from vlm_brain.models.registry import build_adapter

FRAMES = np.random.default_rng(1).integers(0, 255, (2, 40, 50, 3), dtype=np.uint8)


def _ans(adapter, stream, batch):
    with ANRecorder(adapter.sites(stream)) as rec:
        rec.set_tokens(batch.mask, batch.cls_index)
        adapter.forward(stream, batch)
        return rec.pop()


def test_vit_saved_locally_reloads_through_the_pretrained_route(tmp_path):
    random = HFEncoderAdapter("vit", "google/vit-base-patch16-224-in21k", seed=3, device="cpu")
    random.model.save_pretrained(tmp_path)
    random.processor.save_pretrained(tmp_path)
    loaded = HFEncoderAdapter("vit", str(tmp_path), weights="pretrained", device="cpu")
    assert loaded.weights == f"pretrained {tmp_path}"
    a = _ans(random, "image", random.image_batch(FRAMES))
    b = _ans(loaded, "image", loaded.image_batch(FRAMES))
    for layer in a:
        torch.testing.assert_close(a[layer], b[layer])


def test_clip_checkpoint_file_reloads_through_the_pretrained_route(tmp_path):
    random = ClipAdapter(seed=5, device="cpu")
    path = tmp_path / "clip.pt"
    torch.save(random.model.state_dict(), path)
    loaded = ClipAdapter(weights="pretrained", pretrained=str(path), device="cpu")
    for stream, batch in (("image", random.image_batch(FRAMES)), ("text", random.text_batch(["a red square"]))):
        a, b = _ans(random, stream, batch), _ans(loaded, stream, batch)
        for layer in a:
            torch.testing.assert_close(a[layer], b[layer])


def test_clip_weights_of_another_architecture_are_rejected(tmp_path):
    torch.manual_seed(0)
    other = open_clip.create_model("ViT-B-16", pretrained=None)
    path = tmp_path / "b16.pt"
    torch.save(other.state_dict(), path)
    with pytest.raises(WeightsError, match="do not match architecture ViT-B-32"):
        ClipAdapter(weights="pretrained", pretrained=str(path), device="cpu")


def test_missing_hub_weights_say_how_to_get_them(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match=r"not found in the Hugging Face cache.*hf download google/vit-base-patch16-224-in21k"):
        HFEncoderAdapter("vit", "google/vit-base-patch16-224-in21k", weights="pretrained", device="cpu")


def test_unknown_family_and_missing_source():
    with pytest.raises(ValueError, match="models.foo.family: unknown family 'keras'; use one of meter, open_clip"):
        build_adapter("foo", {"family": "keras"})
    with pytest.raises(ValueError, match="models.bar: missing `source`"):
        build_adapter("bar", {"family": "transformers"})


def test_random_weights_without_a_known_architecture(tmp_path):
    with pytest.raises(WeightsError, match="no architecture for 'someone/unknown-model'"):
        HFEncoderAdapter("x", "someone/unknown-model", device="cpu")


def test_random_weights_are_seeded():
    a = HFEncoderAdapter("roberta", "roberta-base", seed=1, device="cpu")
    b = HFEncoderAdapter("roberta", "roberta-base", seed=1, device="cpu")
    c = HFEncoderAdapter("roberta", "roberta-base", seed=2, device="cpu")
    batch = a.text_batch(["two blue circles"])
    la, lb, lc = (_ans(m, "text", batch)["roberta.text.L11"] for m in (a, b, c))
    torch.testing.assert_close(la, lb)
    assert not torch.allclose(la, lc)


def test_hashing_tokenizer_is_deterministic_and_padded():
    tok = HashingTokenizer(50265, bos=0, pad=1, eos=2)
    out = tok(["A red circle", "red"])
    assert out["input_ids"][0].tolist()[0] == 0 and out["input_ids"][0].tolist()[-1] == 2
    assert out["input_ids"][1].tolist() == [0, tok.word_id("red"), 2, 1, 1]
    assert out["attention_mask"][1].tolist() == [1, 1, 1, 0, 0]
    assert out["input_ids"][0, 2] == out["input_ids"][1, 1]  # same word, same id


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """No weights downloaded: an empty Hugging Face cache, and no network either way."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path))  # ~/.cache/clip of URL-only open_clip tags
    return tmp_path


def test_offline_pretrained_clip_fails_at_once_with_the_fetch_command(empty_hub_cache):
    import time

    from vlm_brain.models.clip import cached_weights

    assert cached_weights("ViT-B-32", "openai") is None
    start = time.perf_counter()
    with pytest.raises(WeightsError, match=r"'openai' for ViT-B-32 are not available offline.*open_clip.create_model"):
        ClipAdapter(weights="pretrained", pretrained="openai", device="cpu")
    assert time.perf_counter() - start < 2.0  # no HTTP retries
    with pytest.raises(WeightsError, match="'no-such-tag' is not an open_clip pretrained tag of ViT-B-32"):
        ClipAdapter(weights="pretrained", pretrained="no-such-tag", device="cpu")


def test_a_cached_clip_tag_is_found_without_network(empty_hub_cache):
    from vlm_brain.models.clip import cached_weights

    # lay out the hub cache as huggingface_hub does for the tag's repository
    repo = empty_hub_cache / "hub" / "models--timm--vit_base_patch32_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    assert cached_weights("ViT-B-32", "openai") == str(snapshot / "open_clip_model.safetensors")


def test_missing_meter_checkpoint_is_named_before_anything_else(tmp_path):
    from vlm_brain.models.meter import MeterAdapter

    missing = tmp_path / "weights" / "meter_clip16_288_roberta_pretrain.ckpt"
    with pytest.raises(WeightsError, match=f"meter: checkpoint {missing} does not exist"):
        MeterAdapter(weights="pretrained", checkpoint=str(missing), tokenizer=str(tmp_path / "no-tokenizer"),
                     device="cpu")
