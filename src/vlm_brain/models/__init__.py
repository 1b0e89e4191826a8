"""Model adapters and artificial-neuron (AN) capture (no Kedro imports)."""
