"""fmri_preprocessing: validate, clean and label the movie-watching runs."""

from vlm_brain.pipelines.fmri_preprocessing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
