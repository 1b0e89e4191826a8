"""vlm-brain: neuron-level fMRI encoding of vision-language models."""

__version__ = "0.1.0"
