"""Reading movie-watching runs: HCP CIFTI dense time series, 4D NIfTI + mask, parcel/ROI
time-course tables, or 4D NIfTI reduced with an atlas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from vlm_brain.fmri import cifti
from vlm_brain.fmri.layout import DTSERIES_PATTERN, find_subjects, run_path

Format = Literal["cifti", "nifti", "table", "atlas"]
FORMATS = ("cifti", "nifti", "table", "atlas")
#: formats whose targets are named regions (parcels, ROIs), read with `vlm_brain.fmri.timecourses`
REGION_FORMATS = ("table", "atlas")


class FmriInputError(ValueError):
    """A run file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class RunHeader:
    """What a run file says about itself without reading its data."""

    path: Path
    n_trs: int
    tr: float | None  # None: the file does not say (time-course tables)
    n_grayordinates: int
    names: tuple[str, ...] | None = None  # region formats: the target names


@dataclass(frozen=True)
class RunFiles:
    """Subjects x runs of fMRI files under ``root`` in a directory layout.

    Attributes:
        root: top folder (the HCP layout has one folder per subject in it).
        pattern: file path relative to root, with ``{subject}`` and ``{run}``.
        format: ``cifti`` (.dtseries.nii), ``nifti`` (4D volume, needs ``mask``),
            ``table`` (parcel/ROI time courses: .tsv/.csv with one named column per
            target, or .npy; empty cells / NaN are missing TRs) or ``atlas`` (4D volume
            reduced to regions with ``atlas``, nilearn's labels or maps masker).
        mask: a brain mask image for NIfTI runs.
        atlas, atlas_kind, atlas_labels: ``atlas`` format: the atlas image, ``labels``
            (3D integer regions) or ``maps`` (4D), and the region names (file or list).
        labels: region formats: an optional table of target labels (``target`` column
            plus label columns such as ``network``, `timecourses.read_target_labels`).
    """

    root: Path
    pattern: str = DTSERIES_PATTERN
    format: Format = "cifti"
    mask: Path | None = None
    atlas: Path | None = None
    atlas_kind: str = "labels"
    atlas_labels: Path | None = None
    labels: Path | None = None

    @property
    def has_regions(self) -> bool:
        """Targets are named regions (parcels, ROIs), not HCP grayordinates or voxels."""
        return self.format in REGION_FORMATS

    def path(self, subject: str, run: str) -> Path:
        return run_path(self.root, subject, run, self.pattern)

    def subjects(self, runs: list[str]) -> list[str]:
        """Subjects with at least one of ``runs`` under root."""
        return find_subjects(self.root, runs, self.pattern)

    def header(self, subject: str, run: str) -> RunHeader:
        """TR, length and grayordinate count of one run, without loading its data."""
        path = self._existing(subject, run)
        if self.format == "cifti":
            img = _load(path)
            try:  # the series axis only: the grayordinate axis (slow to build) is not needed for a count
                series = img.header.get_axis(0)
            except Exception as exc:
                raise FmriInputError(f"{path}: not a CIFTI-2 dense time series ({exc})") from exc
            if not isinstance(series, nib.cifti2.SeriesAxis) or len(img.shape) != 2:
                raise FmriInputError(f"{path}: first axis is {type(series).__name__}, not a time series")
            step = float(series.step) / (1000.0 if series.unit.upper() == "MILLISECOND" else 1.0)
            return RunHeader(path, int(series.size), step, int(img.shape[1]))
        if self.has_regions:
            courses = self._regions(path)
            tr = None if self.format == "table" else _nifti_tr(_load(path))
            return RunHeader(path, courses.n_trs, tr, courses.n_targets, tuple(courses.names))
        img = _load(path)
        if len(img.shape) != 4:
            raise FmriInputError(f"{path}: a NIfTI run must be 4D, got shape {img.shape}")
        return RunHeader(path, int(img.shape[3]), _nifti_tr(img), int(np.sum(self._mask_data())))

    def brain_models(self, subject: str, run: str) -> nib.cifti2.BrainModelAxis | None:
        """The grayordinate axis of a CIFTI run (None for NIfTI runs)."""
        if self.format != "cifti":
            return None
        return _load(self._existing(subject, run)).header.get_axis(1)

    def read(self, subject: str, run: str) -> np.ndarray:
        """Data of one run, (n_trs, n_grayordinates, n_voxels or n_regions) float32 (regions: NaN = missing TR)."""
        path = self._existing(subject, run)
        if self.has_regions:
            return self._regions(path).data
        if self.format == "cifti":
            try:
                return cifti.read_dtseries(path).data
            except cifti.CiftiError as exc:
                raise FmriInputError(str(exc)) from exc
        from nilearn.maskers import NiftiMasker

        masker = NiftiMasker(mask_img=str(self.mask), standardize=None, detrend=False)
        try:
            return masker.fit_transform(str(path)).astype(np.float32)
        except Exception as exc:
            raise FmriInputError(f"{path}: could not be masked with {self.mask} ({exc})") from exc

    def _regions(self, path: Path):
        from vlm_brain.fmri import timecourses  # noqa: PLC0415

        if self.format == "table":
            return timecourses.read_timecourses(path)
        if self.atlas is None or not Path(self.atlas).is_file():
            raise FmriInputError(f"atlas-reduced NIfTI runs need an atlas image; {self.atlas!r} does not exist"
                                 " (catalog entry fmri_runs, key 'atlas')")
        return timecourses.mask_nifti_with_atlas(path, self.atlas, self.atlas_kind,  # type: ignore[arg-type]
                                                 str(self.atlas_labels) if self.atlas_labels else None)

    def _existing(self, subject: str, run: str) -> Path:
        path = self.path(subject, run)
        if not path.is_file():
            raise FmriInputError(f"missing run file for subject {subject}, run {run}: {path}")
        if self.format == "nifti" and (self.mask is None or not Path(self.mask).is_file()):
            raise FmriInputError(
                f"NIfTI runs need a brain mask; the mask {self.mask!r} does not exist"
                " (catalog entry fmri_runs, key 'mask')"
            )
        return path

    def _mask_data(self) -> np.ndarray:
        return np.asarray(nib.load(str(self.mask)).dataobj) > 0


def _load(path: Path):
    try:
        return nib.load(str(path))
    except Exception as exc:
        raise FmriInputError(f"{path}: not a readable NIfTI/CIFTI file ({exc})") from exc


def _nifti_tr(img) -> float:
    tr = float(img.header.get_zooms()[3])
    _, time_unit = img.header.get_xyzt_units()
    return tr / 1000.0 if time_unit == "msec" else tr


def check_header(header: RunHeader, expected_tr: float, min_trs: int, run: str) -> None:
    """Raise :class:`FmriInputError` when the TR differs (files that state one) or the run is too short."""
    if header.tr is not None and not np.isclose(header.tr, expected_tr, atol=1e-3):
        raise FmriInputError(
            f"{header.path}: TR is {header.tr:g} s, expected {expected_tr:g} s"
            " (parameter fmri_preprocessing.tr)"
        )
    if header.n_trs < min_trs:
        raise FmriInputError(
            f"{header.path}: {header.n_trs} TRs, shorter than the stimulus timeline of"
            f" run {run} ({min_trs} TRs)"
        )


def check_finite(data: np.ndarray, path: Path, allow_missing: bool = False) -> np.ndarray:
    """Raise when data has NaN/inf (``allow_missing``: NaN marks missing TRs, inf still raises);
    return the mask of constant columns (over their present TRs)."""
    if allow_missing:
        if np.isinf(data).any():
            raise FmriInputError(f"{path}: {int(np.isinf(data).sum())} values are infinite; mark missing TRs "
                                 "with an empty cell or NaN")
        if np.isnan(data).all():
            raise FmriInputError(f"{path}: every value is missing (NaN)")
        present = ~np.isnan(data)
        return ~(np.where(present, data, -np.inf).max(axis=0) > np.where(present, data, np.inf).min(axis=0))
    finite = np.isfinite(data)
    if not finite.all():
        bad_columns = int(np.sum(~finite.all(axis=0)))
        what = "all values are" if not finite.any() else f"{int(np.sum(~finite))} values in {bad_columns} grayordinates are"
        raise FmriInputError(f"{path}: {what} NaN or infinite")
    constant = np.ptp(data, axis=0) == 0
    if constant.all():
        raise FmriInputError(f"{path}: every grayordinate is constant over time (e.g. all zeros, value"
                             f" {float(data.flat[0]) if data.size else 'none'}): an empty or corrupted run; replace"
                             " the file, or list the other subjects in fmri_preprocessing.subjects")
    return constant
