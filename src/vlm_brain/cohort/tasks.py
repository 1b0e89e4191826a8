"""Per-(subject, layer) encoding tasks: data passed by path, results kept by content key.

A task names one subject's cleaned BOLD and one layer's ANs by the files they live in
(`ArrayRef`), so a worker on any machine that sees the same filesystem memory-maps
them itself and nothing large travels through the scheduler. Its result goes to a
content-addressed `ArrayCache` under a key made of everything the result depends on
(the digests of the two inputs' values and the encoding settings): a task whose key is already
there is done, whichever run computed it, so a rerun after an interruption computes
only what is missing, and a changed input or setting gives a new key.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import mmap
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vlm_brain.datasets.arrays import NpyDictDataset
from vlm_brain.datasets.cache import ArrayCache, cache_key
from vlm_brain.encoding.settings import EncodingSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArrayRef:
    """An array by the ``.npy`` file it is memory-mapped from, or by value if it has none."""

    path: str | None
    fingerprint: str
    value: np.ndarray | None = None

    def load(self) -> np.ndarray:
        """The array (read-only memory map for a file)."""
        return np.load(self.path, mmap_mode="r") if self.path is not None else self.value


def array_ref(array: np.ndarray) -> ArrayRef:
    """`ArrayRef` of an array: by its file if it is a whole ``np.load``-ed memory map, else by value.

    The fingerprint is the sha256 of the array's dtype, shape and values (about 1 s per
    GB), so the same data give the same task key whichever file or run they come from:
    re-running the preprocessing does not invalidate finished subjects. A file's digest
    is computed once per process (keyed by path, size and modification time).
    """
    if isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and array.filename:
        path = str(array.filename)
        stat = os.stat(path)
        return ArrayRef(path=path, fingerprint=_file_digest(path, stat.st_size, stat.st_mtime_ns))
    value = np.ascontiguousarray(array)
    return ArrayRef(path=None, fingerprint=content_digest(value), value=value)


def content_digest(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and values (C order)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    flat = array.reshape(-1)
    step = max(1, (64 << 20) // max(array.itemsize, 1))  # 64 MB at a time: a memory map is not read in whole
    for start in range(0, flat.size, step):
        digest.update(memoryview(np.ascontiguousarray(flat[start:start + step])).cast("B"))
    return digest.hexdigest()


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return content_digest(np.load(path, mmap_mode="r"))


@dataclass(frozen=True)
class EncodingTask:
    """Encode one layer's ANs against one subject's BOLD."""

    subject: str
    layer: str
    ans: ArrayRef
    bold: ArrayRef
    key: str

    @property
    def name(self) -> str:
        return f"{self.subject}/{self.layer}"


def make_task(subject: str, layer: str, ans: ArrayRef, bold: ArrayRef, context: dict[str, Any]) -> EncodingTask:
    """A task whose key hashes the inputs' fingerprints and ``context`` (settings, timeline)."""
    key = cache_key({"subject": subject, "layer": layer, "ans": ans.fingerprint, "bold": bold.fingerprint,
                     **context})
    return EncodingTask(subject=subject, layer=layer, ans=ans, bold=bold, key=key)


@dataclass(frozen=True)
class TaskReport:
    """Where one task ran and how long it took (s)."""

    subject: str
    layer: str
    key: str
    worker: str
    seconds: float


def is_done(cache_root: str | Path, key: str) -> bool:
    """Whether a complete result is stored under ``key``."""
    return ArrayCache(Path(cache_root)).has(key)


def store_result(cache_root: str | Path, key: str, arrays: dict[str, np.ndarray], description: dict[str, Any]) -> None:
    """Write one task's arrays under ``key``, atomically.

    The result is written to a uniquely named folder and renamed into place, so a
    half-written result is never seen, and two workers that ran the same task (a
    retry after a lost worker) cannot corrupt each other: the second rename loses
    and its copy is dropped.
    """
    root = Path(cache_root)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{key}.{uuid.uuid4().hex}"
    try:
        ArrayCache(staging.parent).put(staging.name, arrays, description)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        staging.rename(root / key)
    except OSError:  # another copy got there first
        shutil.rmtree(staging, ignore_errors=True)


def load_result(cache_root: str | Path, key: str) -> dict[str, np.ndarray]:
    """A stored result, memory-mapped."""
    return NpyDictDataset(str(Path(cache_root) / key)).load()


def results_by_subject(manifest, cache_root: str | Path) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{subject: {layer_name: results}}`` of a task manifest (columns subject, layer_name, key), memory-mapped."""
    out: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for row in manifest.itertuples():
        out.setdefault(row.subject, {})[row.layer_name] = load_result(cache_root, row.key)
    return out


def run_encoding_task(task: EncodingTask, *, runs: np.ndarray, keep: np.ndarray, tr: float,
                      settings: EncodingSettings, cache_root: str,
                      references: dict[str, np.ndarray] | None = None) -> TaskReport:
    """Encode one task with `encode_layer` (one BLAS and one numba thread) and store its result."""
    import numba
    from threadpoolctl import threadpool_limits

    from vlm_brain.encoding.layer import encode_layer

    start = time.perf_counter()
    if not is_done(cache_root, task.key):
        threads = numba.get_num_threads()
        numba.set_num_threads(1)  # per calling thread: restored, so an in-process scheduler keeps its caller's
        try:
            with threadpool_limits(limits=1):
                result = encode_layer(np.asarray(task.ans.load()), task.bold.load(), runs, keep, tr, settings,
                                      references)
        finally:
            numba.set_num_threads(threads)
        store_result(cache_root, task.key, result, {"subject": task.subject, "layer": task.layer,
                                                    "ans": task.ans.fingerprint, "bold": task.bold.fingerprint})
    return TaskReport(subject=task.subject, layer=task.layer, key=task.key, worker=current_worker(),
                      seconds=time.perf_counter() - start)


def current_worker() -> str:
    """The Dask worker this runs on (its address), or "this process"."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "this process"
