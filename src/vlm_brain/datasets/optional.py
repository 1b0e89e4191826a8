"""A dataset that may not exist yet: loads as None instead of failing."""

from __future__ import annotations

import logging
from typing import Any

from kedro.io import AbstractDataset
from kedro.io.core import parse_dataset_definition

logger = logging.getLogger(__name__)


class OptionalDataset(AbstractDataset[Any, Any]):
    """Wraps any dataset; ``load`` returns None when the wrapped data does not exist.

    For inputs that only some runs have: the demo's planted ground truth (absent for
    real data), or the validation results (produced by a pipeline outside ``kedro run``).
    Saving is delegated to the wrapped dataset.

    Example::

        demo_ground_truth:
          type: vlm_brain.datasets.OptionalDataset
          dataset: {type: pandas.ParquetDataset, filepath: data/01_raw/demo/ground_truth/grayordinates.parquet}
    """

    def __init__(self, dataset: dict[str, Any] | str, metadata: dict[str, Any] | None = None) -> None:
        config = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        dataset_class, kwargs = parse_dataset_definition(config)
        self._dataset = dataset_class(**kwargs)
        self.metadata = metadata

    def load(self) -> Any:
        if not self._dataset.exists():
            logger.info("%s does not exist: loaded as None", self._dataset)
            return None
        return self._dataset.load()

    def save(self, data: Any) -> None:
        self._dataset.save(data)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe(), "optional": True}
