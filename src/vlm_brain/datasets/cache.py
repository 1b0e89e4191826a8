"""A content-addressed cache of array dicts, for results that are costly to recompute."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from vlm_brain.datasets.arrays import NpyDictDataset

logger = logging.getLogger(__name__)


class ArrayCache:
    """Folder of ``{key}/`` entries, each an :class:`NpyDictDataset` plus ``key.json``.

    A key is a hash of everything the result depends on (see :func:`cache_key`), so
    an entry is valid forever; a changed input simply gives another key.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, key: str) -> dict[str, Any] | None:
        folder = self.root / key
        if not (folder / "index.json").is_file():
            return None
        logger.info("cache hit %s: reusing %s", key[:12], folder)
        return NpyDictDataset(str(folder)).load()

    def put(self, key: str, arrays: dict[str, np.ndarray], description: dict[str, Any]) -> None:
        NpyDictDataset(str(self.root / key)).save(arrays)
        (self.root / key / "key.json").write_text(json.dumps(description, indent=1, default=str))


def file_fingerprint(path: str | Path) -> str:
    """sha256 of a file's content (read in 8 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(description: dict[str, Any]) -> str:
    """Stable sha256 of a JSON-serialisable description of a computation."""
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()


class ArrayCacheDataset(AbstractDataset[None, ArrayCache]):
    """Catalog entry giving nodes an :class:`ArrayCache` under ``path``.

    The cache appears as an explicit node input in the DAG; deleting the folder only
    costs recomputation.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._cache = ArrayCache(Path(path))
        self.metadata = metadata

    def load(self) -> ArrayCache:
        return self._cache

    def save(self, data: None) -> None:
        raise DatasetError("ArrayCacheDataset is written through the loaded ArrayCache only")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._cache.root)}
