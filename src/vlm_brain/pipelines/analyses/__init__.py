"""analyses pipeline (placeholder until its issue lands)."""

from vlm_brain.pipelines.analyses.pipeline import create_pipeline

__all__ = ["create_pipeline"]
