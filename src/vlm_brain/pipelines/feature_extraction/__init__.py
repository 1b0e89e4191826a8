"""feature_extraction pipeline (placeholder until its issue lands)."""

from vlm_brain.pipelines.feature_extraction.pipeline import create_pipeline

__all__ = ["create_pipeline"]
