"""Batched AN extraction over a movie: per-TR frames or texts -> pooled ANs per layer."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from vlm_brain.models.base import ModelAdapter
from vlm_brain.models.capture import ANRecorder, Pooling

logger = logging.getLogger(__name__)


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _forward_distinct(
    adapter: ModelAdapter,
    stream: str | None,
    sites: list,
    items: Iterable,
    n_items: int,
    key: Callable[[object], bytes],
    make_batch: Callable[[list], object],
    batch_size: int,
    pooling: Pooling,
    progress: bool,
) -> dict[str, np.ndarray]:
    """Run each distinct item (by ``key``) through the model once, in batches.

    The model is deterministic in eval mode, so reusing the ANs of an identical input
    (the blank frames of rest, say) changes no value.

    Returns:
        {layer: (n_items, n_ans) float32}, one row per item in input order.
    """
    chunks: dict[str, list[torch.Tensor]] = {s.layer: [] for s in sites}
    seen: dict[bytes, int] = {}
    source = np.empty(n_items, dtype=np.int64)  # row of each item among the distinct ones
    pending: list = []
    desc = f"{adapter.name}.{stream}" if stream else f"{adapter.name} (joint)"
    bar = tqdm(total=n_items, desc=desc, unit="frame", disable=not progress)

    def run(batch_items: list, recorder: ANRecorder) -> None:
        batch = make_batch(batch_items)
        recorder.set_tokens(batch.mask, batch.cls_index, batch.tokens)
        adapter.forward(stream, batch)
        for layer, ans in recorder.pop().items():
            chunks[layer].append(ans)

    count = 0
    with ANRecorder(sites, pooling) as recorder:
        for item in items:
            if count >= n_items:
                raise ValueError(f"{desc}: more than the expected {n_items} frames")
            k = key(item)
            if k not in seen:
                seen[k] = len(seen)
                pending.append(item)
                if len(pending) == batch_size:
                    run(pending, recorder)
                    pending = []
            source[count] = seen[k]
            count += 1
            bar.update(1)
        if pending:
            run(pending, recorder)
    bar.close()
    if count != n_items:
        raise ValueError(f"{desc}: got {count} frames, expected {n_items}")
    logger.info("%s: %d inputs, %d distinct", desc, n_items, len(seen))
    return {layer: torch.cat(parts).numpy()[source] for layer, parts in chunks.items()}


def _frame_key(frame: np.ndarray, text: str = "") -> bytes:
    digest = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16)
    digest.update(text.encode())
    return digest.digest()


def _average_samples(ans: dict[str, np.ndarray], per_sample: int) -> dict[str, np.ndarray]:
    return {k: v.reshape(-1, per_sample, v.shape[1]).mean(axis=1).astype(np.float32) for k, v in ans.items()}


def extract_images(
    adapter: ModelAdapter,
    stream: str,
    frames: Iterable[np.ndarray],
    n_frames: int,
    frames_per_sample: int = 1,
    batch_size: int = 8,
    pooling: Pooling = "mean",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """ANs of every layer of an image stream.

    Identical frames (e.g. the blank frames of rest periods) run through the model once.

    Args:
        frames: iterable of (height, width, 3) uint8 frames, ``frames_per_sample``
            consecutive frames per sample (TR); consumed lazily, one batch at a time.
        n_frames: number of frames (for the progress bar and checks).

    Returns:
        {layer: (n_frames // frames_per_sample, n_ans) float32}; the ANs of the
        frames of one sample are averaged.
    """
    if n_frames % frames_per_sample:
        raise ValueError(f"{n_frames} frames is not a multiple of frames_per_sample={frames_per_sample}")
    ans = _forward_distinct(adapter, stream, adapter.sites(stream), frames, n_frames, _frame_key,
                            lambda fs: adapter.image_batch(np.stack(fs)), batch_size, pooling, progress)
    return _average_samples(ans, frames_per_sample)


def extract_texts(
    adapter: ModelAdapter,
    stream: str,
    texts: list[str],
    batch_size: int = 32,
    pooling: Pooling = "mean",
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """ANs of every layer of a text stream, one sample per text.

    Each distinct non-empty text is run once (captions span several TRs); empty
    texts (rest, no annotation) get zeros and ``has_text`` False.

    Returns:
        ({layer: (len(texts), n_ans) float32}, has_text (len(texts),) bool)
    """
    has_text = np.array([bool(t.strip()) for t in texts])
    unique = sorted({t for t in texts if t.strip()})
    position = {t: i for i, t in enumerate(unique)}
    sites = adapter.sites(stream)
    chunks: dict[str, list[torch.Tensor]] = {s.layer: [] for s in sites}
    bar = tqdm(total=len(unique), desc=f"{adapter.name}.{stream}", unit="text", disable=not progress)
    with ANRecorder(sites, pooling) as recorder:
        for batch_texts in _batched(unique, batch_size):
            batch = adapter.text_batch(batch_texts)
            recorder.set_tokens(batch.mask, batch.cls_index, batch.tokens)
            adapter.forward(stream, batch)
            for layer, ans in recorder.pop().items():
                chunks[layer].append(ans)
            bar.update(len(batch_texts))
    bar.close()
    rows = np.array([position.get(t, -1) for t in texts])
    out = {}
    for layer, parts in chunks.items():
        width = parts[0].shape[1] if parts else 0
        unique_ans = torch.cat(parts).numpy() if parts else np.zeros((0, width), np.float32)
        ans = np.zeros((len(texts), unique_ans.shape[1] if parts else 0), dtype=np.float32)
        ans[has_text] = unique_ans[rows[has_text]]
        out[layer] = ans
    return out, has_text


def extract_joint(
    adapter: ModelAdapter,
    frames: Iterable[np.ndarray],
    texts: list[str],
    frames_per_sample: int = 1,
    batch_size: int = 8,
    pooling: Pooling = "mean",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """ANs of every ``joint`` stream of a model fed frame + text together (METER).

    Sample i pairs its ``frames_per_sample`` frames with ``texts[i]`` (an empty text
    is fed as an empty caption); all joint streams are recorded in one forward pass.
    Identical (frame, text) pairs, such as rest TRs, run through the model once.

    Returns:
        {layer: (len(texts), n_ans) float32}
    """
    streams = [s for s, m in adapter.streams.items() if m == "joint"]
    sites = [site for s in streams for site in adapter.sites(s)]
    n_frames = len(texts) * frames_per_sample
    pairs = zip(frames, (texts[i // frames_per_sample] for i in range(n_frames)))
    ans = _forward_distinct(
        adapter, None, sites, pairs, n_frames, lambda p: _frame_key(*p),
        lambda ps: adapter.joint_batch(np.stack([f for f, _ in ps]), [t for _, t in ps]),
        batch_size, pooling, progress,
    )
    return _average_samples(ans, frames_per_sample)
