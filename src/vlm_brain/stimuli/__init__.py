"""Movie frames and texts per TR (no Kedro imports)."""
