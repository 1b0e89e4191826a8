"""A versionable folder of named numpy arrays, saved lazily and loaded memory-mapped."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Union

import numpy as np
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

logger = logging.getLogger(__name__)

Arrays = Mapping[str, np.ndarray]
Item = Union[np.ndarray, Arrays, Callable[[], Union[np.ndarray, Arrays]]]

INDEX_FILE = "index.json"


class NpyDictDataset(AbstractVersionedDataset[Mapping[str, Item], dict[str, Any]]):
    """Save ``{key: array}`` as one ``.npy`` file per key in a folder.

    A value may also be a dict of arrays (saved as ``key/name.npy``) or a callable
    returning either; callables are evaluated one at a time while saving, so a node
    can return one lazy entry per subject and memory stays bounded by one entry.
    Entries are written to ``<folder>.partial`` and renamed into place at the end, with
    ``index.json`` last: an interrupted save (an error, Ctrl-C) removes its partial
    folder, and a folder without an index is never loaded. With ``versioned: true`` every save goes to a new timestamped
    folder, so reruns never overwrite earlier results.

    Loading returns the same structure with read-only memory-mapped arrays
    (``mmap_mode: null`` in the catalog loads them into memory instead).

    Example catalog entry::

        fmri_clean:
          type: vlm_brain.datasets.NpyDictDataset
          filepath: data/03_primary/fmri_clean
          versioned: true
    """

    def __init__(
        self,
        filepath: str,
        version: Version | None = None,
        mmap_mode: str | None = "r",
        dtype: str | None = "float32",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath=PurePosixPath(filepath), version=version)
        self._mmap_mode = mmap_mode
        self._dtype = dtype
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        folder = Path(str(self._get_load_path()))
        index_path = folder / INDEX_FILE
        if not index_path.is_file():
            raise DatasetError(f"{folder}: no {INDEX_FILE}; the save was interrupted or never made")
        index = json.loads(index_path.read_text())
        out: dict[str, Any] = {}
        for key, names in index["entries"].items():
            if names is None:
                out[key] = np.load(folder / f"{key}.npy", mmap_mode=self._mmap_mode)
            else:
                out[key] = {
                    n: np.load(folder / key / f"{n}.npy", mmap_mode=self._mmap_mode) for n in names
                }
        return out

    def save(self, data: Mapping[str, Item]) -> None:
        if not isinstance(data, Mapping):
            raise DatasetError(f"{self._filepath}: expected a dict of arrays, got {type(data).__name__}")
        folder = Path(str(self._get_save_path()))
        partial = folder.with_name(folder.name + ".partial")
        try:  # everything up to the rename: a Ctrl-C can land anywhere, even after the last array
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            entries = self._write_entries(partial, data)
            (partial / INDEX_FILE).write_text(json.dumps({"entries": entries}, indent=1))
            if folder.exists():
                shutil.rmtree(folder)
            partial.rename(folder)
        except BaseException:  # an error or Ctrl-C while computing or writing: leave nothing behind
            shutil.rmtree(partial, ignore_errors=True)
            if self._version is not None and folder.parent.is_dir() and not any(folder.parent.iterdir()):
                folder.parent.rmdir()  # the empty version folder of this save
            raise
        self._clear_version_cache()

    def _write_entries(self, partial: Path, data: Mapping[str, Item]) -> dict[str, list[str] | None]:
        entries: dict[str, list[str] | None] = {}
        for key, value in data.items():
            _check_key(key)
            value = computed(key, value) if callable(value) else value
            if isinstance(value, Mapping):
                (partial / key).mkdir()
                for name, array in value.items():
                    _check_key(name)
                    _save_array(partial / key / f"{name}.npy", array, self._cast(array))
                entries[key] = list(value)
            else:
                _save_array(partial / f"{key}.npy", value, self._cast(value))
                entries[key] = None
            del value
        return entries

    def _cast(self, array: np.ndarray) -> np.ndarray:
        array = np.asanyarray(array)
        if self._dtype and np.issubdtype(array.dtype, np.floating):
            return array.astype(self._dtype, copy=False)
        return array

    def _exists(self) -> bool:
        try:
            folder = Path(str(self._get_load_path()))
        except DatasetError:
            return False
        return (folder / INDEX_FILE).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "version": self._version, "mmap_mode": self._mmap_mode}


def _save_array(path: Path, original: Any, array: np.ndarray) -> None:
    """``np.save``, or a hard link when ``array`` is a whole ``.npy`` file loaded memory-mapped
    (a stored result passed through unchanged: no second copy on disk)."""
    source = getattr(original, "filename", None)
    if (isinstance(original, np.memmap) and array is original and source and str(source).endswith(".npy")
            and _same_layout(original, np.load(source, mmap_mode="r"))):
        try:
            os.link(source, path)
            return
        except OSError:  # another filesystem: copy
            pass
    write_npy(path, array)


_CHUNK_BYTES = 64 << 20


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as a ``.npy`` file, byte for byte what ``np.save`` writes.

    Unlike ``np.save``, a Ctrl-C while writing always surfaces as ``KeyboardInterrupt``:
    numpy's ``ndarray.tofile``, which ``np.save`` uses for real files, can turn an
    interrupt that arrives inside it into ``TypeError: expected str, bytes or
    os.PathLike object, not BufferedWriter`` (numpy 2.4), which ``kedro run`` would
    report as a failed node instead of an aborted run. The data are written from
    contiguous chunks of at most 64 MiB, so a non-contiguous view is never copied whole.
    """
    array = np.asanyarray(array)
    if array.dtype.hasobject:  # pickled by numpy; not a layout this project stores
        np.save(path, array)
        return
    header = np.lib.format.header_data_from_array_1_0(array)
    data = array.T if header["fortran_order"] else array  # a Fortran-ordered array is stored as such
    with open(path, "wb") as file:
        try:
            np.lib.format.write_array_header_1_0(file, header)
        except ValueError:  # a header over 64 KiB (a huge structured dtype); raised before writing
            np.lib.format.write_array_header_2_0(file, header)
        if data.ndim == 0 or data.size == 0:
            file.write(np.ascontiguousarray(data).tobytes())
            return
        rows = max(1, _CHUNK_BYTES // max(1, data[0].nbytes))
        for start in range(0, data.shape[0], rows):
            chunk = np.ascontiguousarray(data[start:start + rows])
            file.write(memoryview(chunk.reshape(-1).view(np.uint8)))


def _same_layout(array: np.memmap, whole: np.memmap) -> bool:
    return array.shape == whole.shape and array.dtype == whole.dtype and array.offset == whole.offset


class EntryError(DatasetError):
    """The computation of a lazily saved entry failed; the message is the cause's own.

    Raised with the cause's traceback and without chaining, so ``kedro run`` shows the
    problem first, once, instead of a "Failed while saving data" wrapper around it.
    """


def computed(key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``; an error in it becomes `EntryError` naming ``key``, with its own traceback."""
    try:
        return compute()
    except (KeyboardInterrupt, SystemExit, EntryError):
        raise
    except Exception as exc:
        error = EntryError(f"{key}: {exc}" if str(exc) else f"{key}: {type(exc).__name__}")
        raise error.with_traceback(exc.__traceback__) from None


def _check_key(key: str) -> None:
    if not key or "/" in key or key.startswith(".") or key == INDEX_FILE:
        raise DatasetError(f"invalid array name {key!r}: use a plain file name")
