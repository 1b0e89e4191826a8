"""Parcel / ROI time courses: tables or arrays of (TRs x targets), and atlas reduction of 4D NIfTI.

A *target* is one column of the data an encoding model predicts: a parcel, an ROI, a
network, a voxel. Missing TRs (e.g. scrubbed volumes) are NaN throughout: readers keep
them, :func:`clean_with_missing` cleans around them, and the caller masks them out.

Formats read by :func:`read_timecourses` (see docs/data_formats.md):

- ``.tsv`` / ``.csv``: a header row of target names, then one row per TR. Every column
  is a target unless it is named in ``index_columns`` (a leading index column is *not*
  guessed). Empty cells, ``n/a``, ``na`` and ``nan`` (any case) are missing TRs.
- ``.npy``: a (T, G) numeric array, NaN for missing TRs; target names from ``labels``
  (a list, or a text file with one name per line) or ``target_0 .. target_{G-1}``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from vlm_brain.fmri.cleaning import clean_run
from vlm_brain.fmri.io import FmriInputError
from vlm_brain.text_tables import SEPARATORS, read_text_table

#: cell spellings read as a missing TR (compared after stripping, case-insensitive)
MISSING_TOKENS = ("", "n/a", "na", "nan")
#: label value given to targets that a labels table does not list
NO_LABEL = "none"
TABLE_SUFFIXES = SEPARATORS
#: at least this many present TRs are needed to detrend / z-score a column
MIN_PRESENT_TRS = 3


class TimeCourseError(FmriInputError):
    """A time-course, labels or atlas file that cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class TimeCourses:
    """Time courses of G targets over T TRs.

    Attributes:
        data: (T, G) float32; NaN marks a missing TR of a target.
        names: (G,) target names, unique, in column order.
    """

    data: np.ndarray
    names: list[str]

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[1] != len(self.names):
            raise ValueError(f"TimeCourses: data {self.data.shape} needs one name per column, got {len(self.names)}")

    @property
    def n_trs(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_targets(self) -> int:
        return int(self.data.shape[1])


# --------------------------------------------------------------------------- reading tables and arrays
def read_timecourses(
    path: str | Path,
    index_columns: Sequence[str] = (),
    labels: str | Path | Sequence[str] | None = None,
) -> TimeCourses:
    """Read (T, G) time courses from a ``.tsv``, ``.csv`` or ``.npy`` file.

    Args:
        path: the file; its suffix chooses the format.
        index_columns: table columns that are not targets (e.g. ``["tr"]``); dropped.
        labels: ``.npy`` only: the G target names, as a list or a text file with one
            name per line. Default ``target_0 .. target_{G-1}``.

    Returns:
        :class:`TimeCourses` with float32 data, NaN where a TR is missing.

    Raises:
        TimeCourseError: unknown suffix, unreadable file, no rows or columns, duplicate or
            empty column names, a non-numeric or infinite cell (row and column named),
            or a target whose every TR is missing.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise TimeCourseError(f"{path}: no such time-course file")
    if suffix == ".npy":
        if index_columns:
            raise TimeCourseError(f"{path}: index_columns {list(index_columns)} apply to tables, not .npy arrays")
        courses = _read_npy(path, labels)
    elif suffix in TABLE_SUFFIXES:
        if labels is not None:
            raise TimeCourseError(f"{path}: a table names its targets in its header row; labels= is for .npy only")
        courses = _read_table(path, TABLE_SUFFIXES[suffix], list(index_columns))
    else:
        raise TimeCourseError(f"{path}: unknown time-course format {suffix!r}; use .tsv, .csv or .npy")
    _check_no_empty_target(courses, path)
    return courses


def _read_table(path: Path, delimiter: str, index_columns: list[str]) -> TimeCourses:
    rows = _csv_rows(path, delimiter)
    if not rows:
        raise TimeCourseError(f"{path}: empty file; expected a header row of target names, then one row per TR")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    _check_header(header, path, index_columns)
    for number, row in enumerate(body, start=1):
        if len(row) != len(header):
            raise TimeCourseError(f"{path}: data row {number} (line {number + 1}) has {len(row)} cells, the header"
                                  f" has {len(header)}; every row needs one cell per column")
    keep = [j for j, name in enumerate(header) if name not in index_columns]
    names = [header[j] for j in keep]
    if not names:
        raise TimeCourseError(f"{path}: no target columns (every column is in index_columns {index_columns})")
    if not body:
        raise TimeCourseError(f"{path}: a header but no rows; expected one row per TR")
    cells = np.array(body, dtype=object)[:, keep].astype(str)
    return TimeCourses(_parse_cells(cells, names, path), names)


def _csv_rows(path: Path, delimiter: str) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle, delimiter=delimiter))
    except UnicodeDecodeError as exc:
        raise TimeCourseError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except (OSError, csv.Error) as exc:
        raise TimeCourseError(f"{path}: not a readable {'TSV' if delimiter == chr(9) else 'CSV'} file ({exc})") from exc
    return [row for row in rows if row]  # blank lines (e.g. a trailing one) are not TRs


def _check_header(header: list[str], path: Path, index_columns: list[str]) -> None:
    empty = [j + 1 for j, name in enumerate(header) if not name]
    if empty:
        raise TimeCourseError(f"{path}: column(s) {empty} have an empty header; give every column a name (an index"
                              " column too, then list it in index_columns so it is not read as a target)")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise TimeCourseError(f"{path}: duplicate column name(s) {duplicated}; target names must be unique")
    absent = [name for name in index_columns if name not in header]
    if absent:
        raise TimeCourseError(f"{path}: index_columns {absent} are not in the header {header[:10]}")


def _parse_cells(cells: np.ndarray, names: list[str], path: Path) -> np.ndarray:
    """(T, G) strings -> float32, NaN for the missing tokens; error at the first bad cell."""
    stripped = np.char.strip(cells)
    missing = np.isin(np.char.lower(stripped), MISSING_TOKENS)
    values = pd.DataFrame(np.where(missing, "nan", stripped)).apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~missing & ~np.isfinite(values)
    if bad.any():
        i, j = (int(k[0]) for k in np.nonzero(bad))
        what = "is infinite" if np.isinf(values[i, j]) else "is not a number"
        raise TimeCourseError(f"{path}: data row {i + 1} (line {i + 2}), column {names[j]!r}: {str(cells[i, j])!r} {what};"
                              f" use a number, or leave the cell empty / n/a for a missing TR")
    return values.astype(np.float32)


def _read_npy(path: Path, labels: str | Path | Sequence[str] | None) -> TimeCourses:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TimeCourseError(f"{path}: not a readable .npy array without pickled objects ({exc})") from exc
    if array.ndim != 2:
        raise TimeCourseError(f"{path}: array of shape {array.shape}; expected 2-D (n_trs, n_targets)")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TimeCourseError(f"{path}: array of dtype {array.dtype}; expected numbers")
    if array.shape[1] == 0:
        raise TimeCourseError(f"{path}: array of shape {array.shape} has no target columns")
    if array.shape[0] == 0:
        raise TimeCourseError(f"{path}: array of shape {array.shape} has no rows (TRs)")
    with np.errstate(over="ignore"):
        data = array.astype(np.float32)
    if np.isinf(data).any():
        i, j = (int(k[0]) for k in np.nonzero(np.isinf(data)))
        raise TimeCourseError(f"{path}: value at row {i}, column {j} is infinite (after conversion to float32);"
                              " use NaN for a missing TR")
    names = _npy_names(labels, data.shape[1], path)
    return TimeCourses(data, names)


def _npy_names(labels: str | Path | Sequence[str] | None, n_targets: int, path: Path) -> list[str]:
    if labels is None:
        return [f"target_{j}" for j in range(n_targets)]
    if isinstance(labels, str | Path):
        names = _read_name_lines(Path(labels))
        source = str(labels)
    else:
        names, source = [str(name).strip() for name in labels], "labels"
    if len(names) != n_targets:
        raise TimeCourseError(f"{path}: {n_targets} target columns but {len(names)} names in {source};"
                              " give one name per column")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated or "" in names:
        raise TimeCourseError(f"{source}: target names must be unique and non-empty; repeated: {duplicated}")
    return names


def _read_name_lines(path: Path) -> list[str]:
    """One name per line; blank lines are skipped."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TimeCourseError(f"{path}: not a readable UTF-8 text file of names, one per line ({exc})") from exc
    return [line.strip() for line in lines if line.strip()]


def _check_no_empty_target(courses: TimeCourses, path: Path) -> None:
    empty = [name for name, present in zip(courses.names, np.isfinite(courses.data).any(axis=0), strict=True)
             if not present]
    if empty:
        raise TimeCourseError(f"{path}: every TR is missing in target(s) {empty[:10]}"
                              f"{f' and {len(empty) - 10} more' if len(empty) > 10 else ''}; drop those columns")


# --------------------------------------------------------------------------- target labels
def read_target_labels(path: str | Path, names: Sequence[str]) -> pd.DataFrame:
    """Labels (network, ROI, hemisphere, ...) of the targets, one row per target in data order.

    Args:
        path: a ``.tsv`` or ``.csv`` table with a ``target`` column (the names of the
            data's columns) and any number of label columns.
        names: (G,) target names in data order (:attr:`TimeCourses.names`).

    Returns:
        DataFrame with G rows (index 0..G-1): ``target`` then the label columns, as
        strings. Targets the table does not list, and empty cells, get ``"none"``.

    Raises:
        TimeCourseError: no ``target`` column, a target listed twice, or targets in the
            table that are not in the data (named).
    """
    path = Path(path)
    table = _read_label_table(path)
    if "target" not in table.columns:
        raise TimeCourseError(f"{path}: no 'target' column (columns: {list(table.columns)}); add a column named"
                              " target holding the data's column names")
    table["target"] = table["target"].str.strip()
    repeated = sorted(set(table.loc[table["target"].duplicated(), "target"]))
    if repeated:
        raise TimeCourseError(f"{path}: target(s) {repeated[:10]} are listed more than once; one row per target")
    unknown = sorted(set(table["target"]) - set(names))
    if unknown:
        raise TimeCourseError(f"{path}: {len(unknown)} target(s) are not in the data: {unknown[:10]}; the target"
                              " column must use the data's column names")
    label_columns = [c for c in table.columns if c != "target"]
    out = table.set_index("target").reindex(list(names)).reset_index()
    out[label_columns] = out[label_columns].fillna(NO_LABEL).replace("", NO_LABEL)
    return out.loc[:, ["target", *label_columns]]


def _read_label_table(path: Path) -> pd.DataFrame:
    table = read_text_table(path, TimeCourseError, "labels table")
    return table.apply(lambda column: column.str.strip())


# --------------------------------------------------------------------------- atlas reduction of NIfTI
def mask_nifti_with_atlas(
    path: str | Path,
    atlas: str | Path,
    kind: Literal["labels", "maps"] = "labels",
    labels: str | Path | Sequence[str] | Mapping[int, str] | None = None,
) -> TimeCourses:
    """Reduce a 4D NIfTI run to region time courses with nilearn (no cleaning here).

    ``kind="labels"``: ``atlas`` is a 3D image of integer region values, 0 = background;
    each region's time course is the mean of its voxels (``NiftiLabelsMasker``).
    ``kind="maps"``: ``atlas`` is a 4D image of (probabilistic) maps, one per volume;
    the time courses are the least-squares fit of the maps to each volume
    (``NiftiMapsMasker``; for disjoint binary maps that is the mean of each map).
    No detrending, filtering or standardisation: clean later with
    :func:`clean_with_missing`. An atlas on another grid is resampled to the data by
    nilearn (nearest neighbour for labels).

    Args:
        path: 4D NIfTI run (x, y, z, T).
        atlas: the atlas image file.
        labels: region names. For labels atlases: a list with one name per non-zero
            value in ascending value order (a leading ``"Background"`` entry, as
            nilearn's atlas fetchers give, is dropped), a mapping value -> name, or a
            file (text, one name per line; or .tsv/.csv with ``index`` and ``name``
            columns). Default: the values, e.g. ``"1"``, ``"2"``. For maps: a list or
            text file with one name per map; default ``map_0 ..``.

    Returns:
        :class:`TimeCourses`, (T, n_regions) float32, regions in ascending value
        (labels) or volume (maps) order.
    """
    path, atlas = Path(path), Path(atlas)
    for what, file in (("fMRI run", path), ("atlas", atlas)):
        if not file.is_file():
            raise TimeCourseError(f"{file}: no such {what} file")
    run = _load_nifti(path, "fMRI run")
    if run.ndim != 4:
        raise TimeCourseError(f"{path}: a run must be a 4D NIfTI (x, y, z, time), got shape {run.shape}")
    atlas_img = _load_nifti(atlas, "atlas")
    if kind == "labels":
        return _reduce_with_labels(run, atlas_img, atlas, labels, path)
    if kind == "maps":
        return _reduce_with_maps(run, atlas_img, atlas, labels, path)
    raise TimeCourseError(f"atlas kind {kind!r}: use 'labels' (3D integer atlas) or 'maps' (4D probabilistic maps)")


def _load_nifti(path: Path, what: str):
    import nibabel as nib

    try:
        return nib.load(str(path))
    except Exception as exc:
        raise TimeCourseError(f"{path}: not a readable NIfTI {what} ({exc})") from exc


def _reduce_with_labels(run, atlas_img, atlas: Path, labels, path: Path) -> TimeCourses:
    from nilearn.maskers import NiftiLabelsMasker

    values = np.asarray(atlas_img.dataobj)
    if values.ndim == 4 and values.shape[3] == 1:
        values = values[..., 0]
    if values.ndim != 3:
        raise TimeCourseError(f"{atlas}: a labels atlas must be 3D, got shape {values.shape}"
                              " (a 4D atlas of maps needs kind='maps')")
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        raise TimeCourseError(f"{atlas}: a labels atlas holds integer region values (0 = background); this one has"
                              " non-integer values (a probabilistic atlas needs kind='maps')")
    if not np.any(values != 0):
        raise TimeCourseError(f"{atlas}: every voxel is background (0); no regions")
    masker = NiftiLabelsMasker(labels_img=atlas_img, background_label=0, standardize=None, detrend=False,
                               strategy="mean")
    signals = _fit_transform(masker, run, path, atlas)
    ids = [int(round(float(v))) for k, v in masker.region_ids_.items() if k != "background"]
    if signals.shape[1] != len(ids):
        raise TimeCourseError(f"{path}: nilearn returned {signals.shape[1]} regions for {len(ids)} atlas values")
    return TimeCourses(signals.astype(np.float32), _region_names(ids, labels, atlas))


def _region_names(ids: list[int], labels, atlas: Path) -> list[str]:
    if labels is None:
        return [str(v) for v in ids]
    if isinstance(labels, str | Path):
        labels = _read_region_labels(Path(labels))
    if isinstance(labels, Mapping):
        named = {int(k): str(v) for k, v in labels.items()}
        absent = [v for v in ids if v not in named]
        if absent:
            raise TimeCourseError(f"{atlas}: region value(s) {absent[:10]} have no name in labels; name every region")
        return _unique_names([named[v] for v in ids], "labels")
    names = [str(name).strip() for name in labels]
    if len(names) == len(ids) + 1 and names[0].lower() == "background":
        names = names[1:]
    if len(names) != len(ids):
        raise TimeCourseError(f"{atlas}: {len(ids)} regions (values {ids[:10]}{' ...' if len(ids) > 10 else ''}) but"
                              f" {len(names)} labels; give one name per non-zero value, in ascending value order")
    return _unique_names(names, "labels")


def _read_region_labels(path: Path) -> list[str] | dict[int, str]:
    if path.suffix.lower() not in TABLE_SUFFIXES:
        return _read_name_lines(path)
    table = _read_label_table(path)
    if not {"index", "name"} <= set(table.columns):
        raise TimeCourseError(f"{path}: a region labels table needs columns index and name, has {list(table.columns)}")
    try:
        return {int(float(i)): name for i, name in zip(table["index"], table["name"], strict=True)}
    except ValueError as exc:
        raise TimeCourseError(f"{path}: the index column must hold the atlas's integer values ({exc})") from exc


def _unique_names(names: list[str], source: str) -> list[str]:
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated or "" in names:
        raise TimeCourseError(f"{source}: region names must be unique and non-empty; repeated: {duplicated}")
    return names


def _reduce_with_maps(run, atlas_img, atlas: Path, labels, path: Path) -> TimeCourses:
    from nilearn.maskers import NiftiMapsMasker

    if len(atlas_img.shape) != 4:
        raise TimeCourseError(f"{atlas}: a maps atlas must be 4D (x, y, z, map), got shape {atlas_img.shape}"
                              " (a 3D integer atlas needs kind='labels')")
    masker = NiftiMapsMasker(maps_img=atlas_img, standardize=None, detrend=False)
    signals = _fit_transform(masker, run, path, atlas)
    n_maps = int(atlas_img.shape[3])
    if labels is None:
        names = [f"map_{k}" for k in range(n_maps)]
    else:
        names = _read_name_lines(Path(labels)) if isinstance(labels, str | Path) else [str(n).strip() for n in labels]
    if len(names) != n_maps or signals.shape[1] != n_maps:
        raise TimeCourseError(f"{atlas}: {n_maps} maps, {signals.shape[1]} time courses and {len(names)} labels;"
                              " give one name per map")
    return TimeCourses(signals.astype(np.float32), _unique_names(names, "labels"))


def _fit_transform(masker, run, path: Path, atlas: Path) -> np.ndarray:
    try:
        return np.asarray(masker.fit_transform(run))
    except Exception as exc:
        raise TimeCourseError(f"{path}: could not be reduced with the atlas {atlas} ({exc})") from exc


# --------------------------------------------------------------------------- cleaning with missing TRs
def clean_with_missing(
    data: np.ndarray,
    tr: float,
    detrend: bool = True,
    high_pass: float | None = None,
    standardize: bool = True,
) -> np.ndarray:
    """:func:`vlm_brain.fmri.cleaning.clean_run` for data with missing TRs (NaN).

    Columns are grouped by their pattern of missing TRs. A group without missing TRs is
    cleaned by ``clean_run`` itself (identical results). A group with missing TRs is
    cleaned on its present rows only: the linear trend is fitted against the TRs' true
    indices (gaps keep their length), then each column is z-scored (ddof=1) over its
    present rows; NaN stays where it was. Constant columns come out as 0.

    Args:
        data: (T, G) time courses of one run, NaN for missing TRs.
        tr: repetition time in seconds.
        detrend: remove a linear trend (and the mean).
        high_pass: cut-off in Hz, or None. A filter needs evenly sampled, gap-free data,
            so a high-pass on columns with missing TRs raises ValueError.
        standardize: z-score each column over its present TRs.

    Returns:
        (T, G) float32.
    """
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D (n_trs, n_targets), got shape {data.shape}")
    data = data.astype(np.float64)
    if np.isinf(data).any():
        raise ValueError("data contains infinite values; only NaN (a missing TR) is allowed")
    present = ~np.isnan(data)
    if present.all():
        return clean_run(data, tr, detrend=detrend, high_pass=high_pass, standardize=standardize)
    if high_pass:
        n_gappy = int(np.sum(~present.all(axis=0)))
        raise ValueError(f"high_pass={high_pass} Hz needs gap-free data, but {n_gappy} column(s) have missing TRs;"
                         " filter before removing TRs, or use high_pass=None (detrending is gap-aware)")
    out = np.full(data.shape, np.nan)
    patterns, group = np.unique(present.T, axis=0, return_inverse=True)
    for k, rows in enumerate(patterns):
        columns = np.flatnonzero(group.ravel() == k)
        if rows.all():
            out[:, columns] = clean_run(data[:, columns], tr, detrend=detrend, standardize=standardize)
            continue
        if rows.sum() < MIN_PRESENT_TRS:
            raise ValueError(f"column(s) {columns[:10].tolist()} have {int(rows.sum())} present TR(s); at least"
                             f" {MIN_PRESENT_TRS} are needed to clean them; drop those columns")
        out[np.ix_(rows, columns)] = _clean_present(data[np.ix_(rows, columns)], np.flatnonzero(rows),
                                                    detrend, standardize)
    return out.astype(np.float32)


def _clean_present(values: np.ndarray, times: np.ndarray, detrend: bool, standardize: bool) -> np.ndarray:
    """Detrend against ``times`` (TR indices) and z-score (ddof=1): (n_present, g) -> same.

    Mirrors ``clean_run``: a standard deviation below float eps is left undivided (as
    nilearn does) and columns constant on input become 0.
    """
    constant = np.ptp(values, axis=0) == 0
    if detrend:
        design = np.column_stack([np.ones(len(times)), times - times.mean()])
        coef, *_ = np.linalg.lstsq(design, values, rcond=None)
        values = values - design @ coef
    if standardize:
        values = values - values.mean(axis=0)
        std = values.std(axis=0, ddof=1)
        values = values / np.where(std < np.finfo(np.float64).eps, 1.0, std)
    values[:, constant] = 0.0
    return values
