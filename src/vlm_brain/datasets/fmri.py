"""Catalog entry for subjects x runs of fMRI files in a directory layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from vlm_brain.fmri.io import FORMATS, RunFiles
from vlm_brain.fmri.layout import DTSERIES_PATTERN


class FmriRunsDataset(AbstractDataset[None, RunFiles]):
    """Read-only access to ``{subject} x {run}`` fMRI files under a root folder.

    ``load`` returns a :class:`vlm_brain.fmri.io.RunFiles` that reads one run at a
    time (nothing is read up front), so full HCP data never has to fit in memory.

    Example catalog entries::

        fmri_runs:                        # HCP CIFTI (default pattern)
          type: vlm_brain.datasets.FmriRunsDataset
          path: data/01_raw/hcp/fmri
        fmri_runs_volume:                 # 4D NIfTI + brain mask
          type: vlm_brain.datasets.FmriRunsDataset
          path: data/01_raw/hcp/fmri
          format: nifti
          pattern: "{subject}/MNINonLinear/Results/{run}/{run}_hp2000_clean.nii.gz"
          mask: data/01_raw/hcp/brainmask.nii.gz
        fmri_runs_regions:                # parcel/ROI time courses, one column per target
          type: vlm_brain.datasets.FmriRunsDataset
          path: data/01_raw/roi/fmri
          format: table
          pattern: "{subject}/{run}.tsv"
          labels: data/01_raw/roi/fmri/target_labels.tsv   # optional: target, network, ...
        fmri_runs_atlas:                  # 4D NIfTI reduced to the regions of an atlas
          type: vlm_brain.datasets.FmriRunsDataset
          path: data/01_raw/study/fmri
          format: atlas
          pattern: "{subject}/{run}_bold.nii.gz"
          atlas: data/01_raw/study/atlas.nii.gz
          atlas_kind: labels              # or maps (4D probabilistic)
          atlas_labels: data/01_raw/study/atlas_labels.txt
    """

    def __init__(
        self,
        path: str,
        pattern: str = DTSERIES_PATTERN,
        format: str = "cifti",
        mask: str | None = None,
        atlas: str | None = None,
        atlas_kind: str = "labels",
        atlas_labels: str | None = None,
        labels: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if format not in FORMATS:
            raise DatasetError(f"FmriRunsDataset: format must be one of {', '.join(FORMATS)}, got {format!r}")
        if "{subject}" not in pattern or "{run}" not in pattern:
            raise DatasetError(f"FmriRunsDataset: pattern must contain {{subject}} and {{run}}: {pattern!r}")
        if atlas_kind not in ("labels", "maps"):
            raise DatasetError(f"FmriRunsDataset: atlas_kind must be 'labels' or 'maps', got {atlas_kind!r}")
        if format == "atlas" and not atlas:
            raise DatasetError("FmriRunsDataset: format 'atlas' needs `atlas` (the atlas image)")

        def optional(value: str | None) -> Path | None:
            return Path(value) if value else None

        self._files = RunFiles(Path(path), pattern, format, optional(mask), optional(atlas),  # type: ignore[arg-type]
                               atlas_kind, optional(atlas_labels), optional(labels))
        self.metadata = metadata

    def load(self) -> RunFiles:
        if not self._files.root.is_dir():
            raise DatasetError(f"fMRI folder {self._files.root} does not exist")
        return self._files

    def save(self, data: None) -> None:
        raise DatasetError("FmriRunsDataset is read-only: raw data is never written by a run")

    def _exists(self) -> bool:
        return self._files.root.is_dir()

    def _describe(self) -> dict[str, Any]:
        f = self._files
        return {"path": str(f.root), "pattern": f.pattern, "format": f.format, "mask": str(f.mask),
                "atlas": str(f.atlas), "labels": str(f.labels)}


class RunFilesDataset(AbstractDataset[None, "RunFileIndex"]):
    """Read-only index of one stimulus file per run (videos, caption TSVs).

    Either a ``pattern`` with ``{run}`` (``"{run}.mp4"``) or an explicit ``files``
    mapping run -> file name (HCP: ``tfMRI_MOVIE1_7T_AP: 7T_MOVIE1_CC1_v2.mp4``),
    relative to ``path``. ``load`` returns a :class:`RunFileIndex`; missing files are
    reported by the node that needs them, naming the run and the path.
    """

    def __init__(
        self,
        path: str,
        pattern: str | None = None,
        files: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if (pattern is None) == (files is None):
            raise DatasetError("RunFilesDataset: give exactly one of `pattern` or `files`")
        self._index = RunFileIndex(Path(path), pattern, dict(files or {}))
        self.metadata = metadata

    def load(self) -> RunFileIndex:
        return self._index

    def save(self, data: None) -> None:
        raise DatasetError("RunFilesDataset is read-only: raw data is never written by a run")

    def _exists(self) -> bool:
        return self._index.root.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._index.root), "pattern": self._index.pattern, "files": self._index.files}


class RunFileIndex:
    """Path of each run's file under ``root`` (see :class:`RunFilesDataset`)."""

    def __init__(self, root: Path, pattern: str | None, files: dict[str, str]) -> None:
        self.root, self.pattern, self.files = root, pattern, files

    def path(self, run: str) -> Path:
        if self.pattern is not None:
            return self.root / self.pattern.format(run=run)
        if run not in self.files:
            raise FileNotFoundError(f"no file configured for run {run} under {self.root} (catalog `files`)")
        return self.root / self.files[run]

    def existing(self, run: str, what: str) -> Path:
        path = self.path(run)
        if not path.is_file():
            raise FileNotFoundError(f"missing {what} for run {run}: {path}")
        return path
