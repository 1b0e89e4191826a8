"""Encoding science as a plain library (no Kedro): temporal model, SDL, ridge,
significance and noise ceiling.

Conventions: time series are (n_samples, n_features) arrays at TR resolution; ``runs``
is a 1-D array of run labels per row (runs contiguous, in time order); the fMRI target
is (n_samples, n_grayordinates), cleaned and z-scored per run.
"""

from vlm_brain.encoding.ceiling import (
    noise_ceiling,
    normalized_r,
    spearman_brown,
    split_half_reliability,
)
from vlm_brain.encoding.layer import (
    LayerDesigns,
    dominant_an_direction,
    encode_layer,
    layer_polarity,
    refit_null,
    response_polarity,
    tail_p_values,
)
from vlm_brain.encoding.ridge import (
    EncodingResult,
    FullFit,
    cross_validate_encoding,
    fit_full,
    raw_regressors,
    sdl_regressors,
    standardize_train,
)
from vlm_brain.encoding.sdl import (
    SparseDictionary,
    atom_timecourses,
    fit_sparse_dictionary,
)
from vlm_brain.encoding.settings import DEFAULT_ALPHAS, EncodingSettings
from vlm_brain.encoding.significance import (
    AtomMaps,
    ShiftTestResult,
    atom_maps,
    circular_shift_test,
    fdr_bh,
)
from vlm_brain.encoding.temporal import convolve_hrf, prepare_regressors, zscore_per_run

__all__ = [
    "DEFAULT_ALPHAS",
    "AtomMaps",
    "EncodingResult",
    "EncodingSettings",
    "FullFit",
    "LayerDesigns",
    "ShiftTestResult",
    "SparseDictionary",
    "atom_maps",
    "atom_timecourses",
    "circular_shift_test",
    "convolve_hrf",
    "cross_validate_encoding",
    "dominant_an_direction",
    "encode_layer",
    "fdr_bh",
    "fit_full",
    "fit_sparse_dictionary",
    "layer_polarity",
    "noise_ceiling",
    "normalized_r",
    "prepare_regressors",
    "raw_regressors",
    "refit_null",
    "response_polarity",
    "sdl_regressors",
    "spearman_brown",
    "split_half_reliability",
    "standardize_train",
    "tail_p_values",
    "zscore_per_run",
]
