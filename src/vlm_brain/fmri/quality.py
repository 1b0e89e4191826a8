"""What the fMRI quality-control table means for the results."""

from __future__ import annotations

import pandas as pd


def data_warnings(quality: pd.DataFrame) -> list[str]:
    """What the QC table says will be missing or changed in the results (for the log and the report)."""
    warnings = []
    used = quality[quality.get("status", pd.Series("used", index=quality.index)) == "used"]
    for row in used.itertuples():
        if getattr(row, "n_dropped_trs", 0):
            warnings.append(f"subject {row.subject}: {row.n_dropped_trs} TRs of its run files lie beyond the"
                            " stimulus timeline and are not used")
    if len(used) and (used.n_repeat_trs < 3).all():
        warnings.append("no usable repeated clip (is_repeat in >= 2 runs): there is no noise ceiling, r / ceiling is NaN")
    return warnings
