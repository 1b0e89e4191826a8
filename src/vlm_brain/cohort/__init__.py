"""Per-subject encoding of the cohort and inference across subjects."""
