"""reporting pipeline (placeholder until its issue lands)."""

from vlm_brain.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
