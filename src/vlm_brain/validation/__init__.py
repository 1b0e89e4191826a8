"""Method validation: plant a known truth on real AN features and recover it.

- `simulate`: BOLD simulated from one image-stream and one text-stream layer with a
  planted mapping (which grayordinates each stream drives, with which sign, how much
  the two driven sets overlap), canonical HRF, AR(1) noise at a chosen SNR.
- `metrics`: sensitivity, specificity, observed FDR, sign accuracy, Dice, recovered vs
  planted image/text overlap and image/text separation.
- `run`: one condition (SNR, data length, seed, or pure noise) through the real
  `vlm_brain.encoding.layer.encode_layer`, and a grid of conditions as a tidy table;
  the stimulus-feature plant; the network-specific lag plant (`run_lag_condition`:
  networks answering with a delayed canonical HRF, encoded with each temporal model).

Plain numpy; no Kedro imports (the `validation` pipeline wraps this module).
"""

from vlm_brain.validation.metrics import condition_metrics
from vlm_brain.validation.run import ValidationSettings, run_condition, run_grid, run_lag_condition
from vlm_brain.validation.simulate import (
    LagPlant,
    PlantedTruth,
    SimulatedBold,
    crop_runs,
    simulate_bold,
    simulate_lag_bold,
)

__all__ = [
    "LagPlant",
    "PlantedTruth",
    "SimulatedBold",
    "ValidationSettings",
    "condition_metrics",
    "crop_runs",
    "run_condition",
    "run_grid",
    "run_lag_condition",
    "simulate_bold",
    "simulate_lag_bold",
]
