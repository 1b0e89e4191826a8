"""Batched AN extraction over a movie: per-TR frames or texts -> pooled ANs per layer."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator

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

    Identical frames (e.g. the blank frames of rest periods) are run through the
    model once; the model is deterministic in eval mode, so this changes no value.

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
    sites = adapter.sites(stream)
    chunks: dict[str, list[torch.Tensor]] = {s.layer: [] for s in sites}
    seen: dict[bytes, int] = {}
    source = np.empty(n_frames, dtype=np.int64)  # row of each frame in the unique ANs
    pending: list[np.ndarray] = []
    bar = tqdm(total=n_frames, desc=f"{adapter.name}.{stream}", unit="frame", disable=not progress)

    def run(batch_frames: list[np.ndarray], recorder: ANRecorder) -> None:
        batch = adapter.image_batch(np.stack(batch_frames))
        recorder.set_tokens(batch.mask, batch.cls_index, batch.tokens)
        adapter.forward(stream, batch)
        for layer, ans in recorder.pop().items():
            chunks[layer].append(ans)

    count = 0
    with ANRecorder(sites, pooling) as recorder:
        for frame in frames:
            if count >= n_frames:
                raise ValueError(f"{adapter.name}.{stream}: more than the expected {n_frames} frames")
            key = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()
            if key not in seen:
                seen[key] = len(seen)
                pending.append(frame)
                if len(pending) == batch_size:
                    run(pending, recorder)
                    pending = []
            source[count] = seen[key]
            count += 1
            bar.update(1)
        if pending:
            run(pending, recorder)
    bar.close()
    if count != n_frames:
        raise ValueError(f"{adapter.name}.{stream}: got {count} frames, expected {n_frames}")
    logger.info("%s.%s: %d frames, %d distinct", adapter.name, stream, n_frames, len(seen))
    out = {}
    for layer, parts in chunks.items():
        ans = torch.cat(parts).numpy()[source]
        out[layer] = ans.reshape(-1, frames_per_sample, ans.shape[1]).mean(axis=1).astype(np.float32)
    return out


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

    Returns:
        {layer: (len(texts), n_ans) float32}
    """
    streams = [s for s, m in adapter.streams.items() if m == "joint"]
    sites = [site for s in streams for site in adapter.sites(s)]
    chunks: dict[str, list[torch.Tensor]] = {s.layer: [] for s in sites}
    n_frames = len(texts) * frames_per_sample
    pair_texts = (texts[i // frames_per_sample] for i in range(n_frames))
    bar = tqdm(total=n_frames, desc=f"{adapter.name} (joint)", unit="frame", disable=not progress)
    count = 0
    with ANRecorder(sites, pooling) as recorder:
        for pairs in _batched(zip(frames, pair_texts), batch_size):
            batch = adapter.joint_batch(np.stack([f for f, _ in pairs]), [t for _, t in pairs])
            recorder.set_tokens(batch.mask, batch.cls_index, batch.tokens)
            adapter.forward(None, batch)
            for layer, ans in recorder.pop().items():
                chunks[layer].append(ans)
            count += len(pairs)
            bar.update(len(pairs))
    bar.close()
    if count != n_frames:
        raise ValueError(f"{adapter.name}: got {count} frames, expected {n_frames}")
    return {
        layer: torch.cat(parts).numpy().reshape(len(texts), frames_per_sample, -1).mean(axis=1).astype(np.float32)
        for layer, parts in chunks.items()
    }
