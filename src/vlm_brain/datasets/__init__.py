"""Custom Kedro datasets (kedro-datasets has no numpy or fMRI-layout dataset)."""

from vlm_brain.datasets.arrays import EntryError, NpyDictDataset
from vlm_brain.datasets.cache import ArrayCacheDataset, ContentAddressedDataset, Keyed
from vlm_brain.datasets.fmri import FmriRunsDataset, RunFilesDataset
from vlm_brain.datasets.optional import OptionalDataset

__all__ = ["ArrayCacheDataset", "EntryError", "ContentAddressedDataset", "Keyed", "FmriRunsDataset", "NpyDictDataset", "OptionalDataset", "RunFilesDataset"]
