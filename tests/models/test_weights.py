"""Pretrained-route loading from local files, and clear errors for missing/wrong weights."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch

from vlm_brain.models.base import WeightsError
from vlm_brain.models.capture import ANRecorder
from vlm_brain.models.clip import ClipAdapter
from vlm_brain.models.hf import HFEncoderAdapter, HashingTokenizer
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
    with pytest.raises(ValueError, match="models.foo: unknown family 'keras'"):
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
