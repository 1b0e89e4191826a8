"""fMRI input/output, validation, cleaning and network labels (no Kedro imports)."""
