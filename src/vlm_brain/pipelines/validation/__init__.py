"""validation pipeline: planted-truth recovery, null calibration and power."""

from vlm_brain.pipelines.validation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
