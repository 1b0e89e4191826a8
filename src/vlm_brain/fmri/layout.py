"""Where HCP 7T movie runs live on disk (the HCP directory layout)."""

from __future__ import annotations

from pathlib import Path

HCP_MOVIE_RUNS = (
    "tfMRI_MOVIE1_7T_AP",
    "tfMRI_MOVIE2_7T_PA",
    "tfMRI_MOVIE3_7T_PA",
    "tfMRI_MOVIE4_7T_AP",
)

DTSERIES_PATTERN = (
    "{subject}/MNINonLinear/Results/{run}/{run}_Atlas_MSMAll_hp2000_clean.dtseries.nii"
)


def run_path(root: str | Path, subject: str, run: str, pattern: str = DTSERIES_PATTERN) -> Path:
    """Path of one subject's run file under ``root``."""
    return Path(root) / pattern.format(subject=subject, run=run)


def find_subjects(root: str | Path, runs: list[str], pattern: str = DTSERIES_PATTERN) -> list[str]:
    """Subject folders under ``root`` that hold at least one of ``runs`` (sorted)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        d.name
        for d in root.iterdir()
        if d.is_dir() and any(run_path(root, d.name, r, pattern).exists() for r in runs)
    )
