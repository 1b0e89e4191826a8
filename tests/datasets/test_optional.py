"""OptionalDataset: absent data loads as None; present data round-trips."""

import pandas as pd

from vlm_brain.datasets import OptionalDataset


def test_missing_file_loads_as_none_and_saving_creates_it(tmp_path):
    path = tmp_path / "truth.parquet"
    dataset = OptionalDataset({"type": "pandas.ParquetDataset", "filepath": str(path)})
    assert dataset.load() is None and not dataset.exists()
    frame = pd.DataFrame({"network": ["Visual1"], "driven": [True]})
    dataset.save(frame)
    assert dataset.exists()
    pd.testing.assert_frame_equal(dataset.load(), frame)


def test_wrapped_dataset_by_type_name(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text('{"a": 1}')
    dataset = OptionalDataset({"type": "json.JSONDataset", "filepath": str(path)})
    assert dataset.load() == {"a": 1}
