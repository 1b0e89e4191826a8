"""The four analyses of the study (network prediction, redundancy, polarity,
architecture) as plain functions on encoding results; no Kedro imports."""
