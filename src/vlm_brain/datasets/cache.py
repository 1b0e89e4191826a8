"""A content-addressed cache of array dicts, for results that are costly to recompute."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from vlm_brain.datasets.arrays import NpyDictDataset, computed

logger = logging.getLogger(__name__)


class ArrayCache:
    """Folder of ``{key}/`` entries, each an :class:`NpyDictDataset` plus ``key.json``.

    A key is a hash of everything the result depends on (see :func:`cache_key`), so
    an entry is valid forever; a changed input simply gives another key.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def has(self, key: str) -> bool:
        """Whether a complete entry is stored under ``key``."""
        return (self.root / key / "index.json").is_file()

    def get(self, key: str) -> dict[str, Any] | None:
        folder = self.root / key
        if not self.has(key):
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


@dataclass(frozen=True)
class Keyed:
    """An entry of a `ContentAddressedDataset`: its content key and how to compute it if absent."""

    key: str
    compute: Callable[[], Mapping[str, np.ndarray]]
    description: Mapping[str, Any] = field(default_factory=dict)


class ContentAddressedDataset(AbstractDataset[Mapping[str, Keyed], dict[str, Any]]):
    """Named array dicts stored once per content key, reused by every run whose inputs are unchanged.

    ``save({name: Keyed(key, compute)})`` computes and stores an entry only if no entry
    with that key exists (``entries/<key>/``, an :class:`NpyDictDataset`), then writes
    ``index.json`` (name -> key) atomically. ``load()`` returns ``{name: arrays}``
    memory-mapped from the entries of the index. Nothing is copied per run: a rerun with
    unchanged inputs writes only the index. `prune` removes entries the index no longer
    names (results of older inputs or settings).

    Example catalog entry::

        fmri_clean:
          type: vlm_brain.datasets.ContentAddressedDataset
          path: data/03_primary/fmri_clean
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._root = Path(path)
        self.metadata = metadata

    @property
    def _entries(self) -> Path:
        return self._root / "entries"

    @property
    def _cache(self) -> ArrayCache:
        return ArrayCache(self._entries)

    def load(self) -> dict[str, Any]:
        index = self._index()
        return {name: NpyDictDataset(str(self._entries / key)).load() for name, key in index.items()}

    def save(self, data: Mapping[str, Keyed]) -> None:
        if not isinstance(data, Mapping) or not all(isinstance(v, Keyed) for v in data.values()):
            raise DatasetError(f"{self._root}: expected a dict of Keyed entries (name -> Keyed(key, compute))")
        index = {}
        for name, entry in data.items():
            if self._cache.has(entry.key):
                logger.info("%s: %s unchanged, reusing entry %s", self._root, name, entry.key[:12])
            else:
                self._cache.put(entry.key, computed(name, entry.compute), {"name": name, **entry.description})
            index[name] = entry.key
        self._root.mkdir(parents=True, exist_ok=True)
        staging = self._root / f".index.{os.getpid()}.json"
        staging.write_text(json.dumps(index, indent=1))
        os.replace(staging, self._root / "index.json")

    def prune(self) -> list[str]:
        """Delete the entries the index does not name; returns their keys."""
        used = set(self._index().values())
        removed = [p.name for p in self._entries.iterdir() if p.is_dir() and p.name not in used] \
            if self._entries.is_dir() else []
        for key in removed:
            shutil.rmtree(self._entries / key)
        return removed

    def _index(self) -> dict[str, str]:
        path = self._root / "index.json"
        if not path.is_file():
            raise DatasetError(f"{path}: no index; the dataset was never saved")
        return json.loads(path.read_text())

    def _exists(self) -> bool:
        return (self._root / "index.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._root)}
