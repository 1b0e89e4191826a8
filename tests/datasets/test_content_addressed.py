"""Content-addressed storage: computed once per key, reused, pruned; interrupted saves leave nothing."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io.core import DatasetError

from vlm_brain.datasets import ContentAddressedDataset, Keyed, NpyDictDataset


def test_entries_are_computed_once_per_key_and_pruned(tmp_path):
    calls = []

    def entry(key, value):
        def compute():
            calls.append(key)
            return {"x": np.full(3, value, dtype=np.float32)}
        return Keyed(key, compute, {"value": value})

    ds = ContentAddressedDataset(str(tmp_path / "clean"))
    ds.save({"s1": entry("a", 1.0), "s2": entry("b", 2.0)})
    ds.save({"s1": entry("a", 1.0), "s2": entry("c", 3.0)})  # s1 unchanged, s2's inputs changed
    assert calls == ["a", "b", "c"]
    loaded = ds.load()
    assert set(loaded) == {"s1", "s2"} and loaded["s2"]["x"][0] == 3.0
    assert isinstance(loaded["s1"]["x"], np.memmap)
    assert ds.prune() == ["b"] and not (tmp_path / "clean" / "entries" / "b").exists()
    assert ds.load()["s1"]["x"][0] == 1.0
    with pytest.raises(DatasetError, match="no index"):
        ContentAddressedDataset(str(tmp_path / "never")).load()


def test_a_failed_save_leaves_no_partial_folder(tmp_path):
    def broken():
        raise KeyboardInterrupt  # as Ctrl-C in the middle of computing an entry

    ds = NpyDictDataset(str(tmp_path / "out"))
    with pytest.raises(KeyboardInterrupt):
        ds.save({"a": np.zeros(2), "b": broken})
    assert list(tmp_path.iterdir()) == []
