"""HCP's ``WordNetFeatures.hdf5``: per-TR WordNet category labels of the 7T movies.

The file's internal layout could not be confirmed here, so the reader takes the dataset
names as arguments and, when one is not in the file, lists the datasets that are (with
shapes and dtypes) so the right names can be filled in. Use :func:`list_datasets` to
look inside a file first.

- ``features_dataset``: a 2-D numeric array, (T, n_categories) or (n_categories, T);
  the orientation is decided from ``n_trs`` and/or the number of category names.
- ``names_dataset`` (optional): n_categories strings (e.g. WordNet synsets such as
  ``"plant.n.02"``); without it the categories are named ``category_0 ..``.
- ``runs_dataset`` (optional): T run labels (strings or integers), one per row.

HCP 7T movies have a 1 s TR, so per-second labels are per-TR labels there. Reading
needs h5py (an optional dependency: the error says so when it is missing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlm_brain.stimuli.text import CaptionError


class WordNetError(CaptionError):
    """A WordNet feature file or dataset that cannot be used; the message names it and what is there."""


@dataclass(frozen=True)
class WordNetFeatures:
    """Per-TR category labels.

    Attributes:
        data: (T, n_categories) float32 (1 = category present in that TR).
        names: (n_categories,) category names.
        runs: (T,) run label of each row as str, or None when the file has none.
    """

    data: np.ndarray
    names: list[str]
    runs: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        """(T, n_categories) DataFrame, with a leading ``run`` column when runs are known."""
        frame = pd.DataFrame(self.data, columns=self.names)
        if self.runs is not None:
            frame.insert(0, "run", self.runs)
        return frame

    def select(self, run: str) -> np.ndarray:
        """(T_run, n_categories) rows of one run (needs run labels)."""
        if self.runs is None:
            raise WordNetError("these WordNet features have no run labels; pass runs_dataset when reading")
        rows = self.runs == str(run)
        if not rows.any():
            raise WordNetError(f"run {run!r} is not among the WordNet runs {list(dict.fromkeys(self.runs))}")
        return self.data[rows]


# --------------------------------------------------------------------------- HDF5 access
def list_datasets(path: str | Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every dataset in an HDF5 file: ``{"group/name": (shape, dtype)}``."""
    with _open(Path(path)) as handle:
        return {name: (tuple(obj.shape), str(obj.dtype)) for name, obj in _datasets(handle).items()}


def read_wordnet_features(
    path: str | Path,
    features_dataset: str,
    names_dataset: str | None = None,
    runs_dataset: str | None = None,
    n_trs: int | None = None,
) -> WordNetFeatures:
    """Read per-TR WordNet category features from an HDF5 file.

    Args:
        path: the ``.hdf5`` file.
        features_dataset: path of the feature array inside the file (e.g. ``"features"``
            or ``"movie1/features"``; a leading ``/`` is optional).
        names_dataset: path of the category names, or None.
        runs_dataset: path of the per-row run labels, or None.
        n_trs: the expected number of rows (TRs); used to orient the array and checked.

    Returns:
        :class:`WordNetFeatures` with (T, n_categories) data.

    Raises:
        WordNetError: h5py missing, unreadable file, a named dataset missing (the
            message lists those in the file), or shapes that do not fit together.
    """
    path = Path(path)
    with _open(path) as handle:
        return features_from_group(handle, str(path), features_dataset, names_dataset, runs_dataset, n_trs)


def features_from_group(
    group: Any,
    source: str,
    features_dataset: str,
    names_dataset: str | None = None,
    runs_dataset: str | None = None,
    n_trs: int | None = None,
) -> WordNetFeatures:
    """:func:`read_wordnet_features` on an open h5py ``File``/``Group`` (anything with ``visititems``)."""
    found = _datasets(group)
    features = _values(found, features_dataset, source, "features")
    names = None if names_dataset is None else _strings(_values(found, names_dataset, source, "names"),
                                                         names_dataset, source)
    runs = None if runs_dataset is None else _strings(_values(found, runs_dataset, source, "runs"),
                                                      runs_dataset, source)
    return wordnet_features_from_arrays(features, names, runs, n_trs, f"{source}:{features_dataset}")


def _open(path: Path):
    try:
        import h5py
    except ImportError:
        raise WordNetError(f"reading {path} needs the h5py package, which is not installed in this environment;"
                           " install it (pip install h5py)") from None
    if not path.is_file():
        raise WordNetError(f"{path}: no such WordNet feature file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise WordNetError(f"{path}: not a readable HDF5 file ({exc})") from exc


def _datasets(group: Any) -> dict[str, Any]:
    """``{path: dataset}`` for every dataset below ``group`` (groups themselves are skipped)."""
    found: dict[str, Any] = {}

    def visit(name: str, obj: Any) -> None:
        if hasattr(obj, "shape") and hasattr(obj, "dtype"):
            found[name.strip("/")] = obj

    group.visititems(visit)
    return found


def _values(found: dict[str, Any], name: str, source: str, role: str) -> np.ndarray:
    key = name.strip("/")
    if key not in found:
        listing = "; ".join(f"{n} {tuple(d.shape)} {d.dtype}" for n, d in sorted(found.items())) or "none"
        raise WordNetError(f"{source}: no dataset {name!r} (the {role}_dataset argument); the datasets in the file"
                           f" are: {listing}")
    return np.asarray(found[key][()])


def _strings(values: np.ndarray, name: str, source: str) -> np.ndarray:
    """1-D array of str from bytes / str / integer labels; (n, 1) and (1, n) are flattened."""
    if values.ndim == 2 and 1 in values.shape:
        values = values.ravel()
    if values.ndim != 1:
        raise WordNetError(f"{source}: dataset {name!r} has shape {values.shape}; expected one label per entry (1-D)")
    return np.array([v.decode("utf-8") if isinstance(v, bytes | np.bytes_) else str(v) for v in values.tolist()],
                    dtype=object).astype(str)


# --------------------------------------------------------------------------- arrays -> features
def wordnet_features_from_arrays(
    features: np.ndarray,
    names: np.ndarray | list[str] | None = None,
    runs: np.ndarray | list[str] | None = None,
    n_trs: int | None = None,
    source: str = "WordNet features",
) -> WordNetFeatures:
    """Orient, check and label a WordNet feature array.

    Orientation: rows must be TRs (``n_trs``, when given) and columns categories (one
    per name, when given). If both orientations fit (a square array) or nothing is
    given, the array is taken as (T, n_categories).
    """
    features = np.asarray(features)
    if features.ndim != 2:
        raise WordNetError(f"{source}: shape {features.shape}; expected a 2-D (T, n_categories) array")
    if not (np.issubdtype(features.dtype, np.number) or features.dtype == bool):
        raise WordNetError(f"{source}: dtype {features.dtype}; expected numeric labels")
    n_names = None if names is None else len(names)
    data = _oriented(features, n_trs, n_names, source).astype(np.float32)
    names = [f"category_{j}" for j in range(data.shape[1])] if names is None else [str(n) for n in names]
    if runs is not None:
        runs = np.asarray(runs).astype(str)
        if runs.shape != (data.shape[0],):
            raise WordNetError(f"{source}: {len(runs)} run labels for {data.shape[0]} rows (TRs); need one per row")
    return WordNetFeatures(data, names, runs)


def _oriented(features: np.ndarray, n_trs: int | None, n_names: int | None, source: str) -> np.ndarray:
    rows, columns = features.shape

    def fits(t: int, c: int) -> bool:
        return (n_trs is None or t == n_trs) and (n_names is None or c == n_names)

    if fits(rows, columns):
        return features
    if fits(columns, rows):
        return features.T
    expected = ", ".join(part for part in (f"{n_trs} TRs" if n_trs is not None else "",
                                           f"{n_names} category names" if n_names is not None else "") if part)
    raise WordNetError(f"{source}: shape {features.shape} fits neither (T, n_categories) nor its transpose for"
                       f" {expected}; check the dataset names and the expected number of TRs")


# --------------------------------------------------------------------------- on the stimulus timeline
def wordnet_on_timeline(
    path: str | Path,
    run_lengths: dict[str, int],
    features_dataset: str,
    names_dataset: str | None = None,
    runs_dataset: str | None = None,
) -> WordNetFeatures:
    """WordNet features of every TR of the runs, in run order: (sum of run lengths, n_categories).

    ``features_dataset`` with ``{run}`` in it names one dataset per run (e.g.
    ``"{run}/features"``); otherwise one array holds all runs, split by ``runs_dataset``
    labels when given, else by the run lengths in order. A run with fewer rows than its
    timeline is an error; rows beyond it are dropped (as for the fMRI files).
    """
    per_run = []
    names: list[str] | None = None
    if "{run}" in features_dataset:
        for run, n in run_lengths.items():
            part = read_wordnet_features(path, features_dataset.format(run=run),
                                         None if names_dataset is None else names_dataset.format(run=run))
            per_run.append(_fitted(part.data, run, int(n), path))
            names = names or part.names
    else:
        whole = read_wordnet_features(path, features_dataset, names_dataset, runs_dataset)
        names = whole.names
        if whole.runs is not None:
            per_run = [_fitted(whole.select(run), run, int(n), path) for run, n in run_lengths.items()]
        else:
            total = sum(int(n) for n in run_lengths.values())
            if len(whole.data) != total:
                raise WordNetError(f"{path}:{features_dataset} has {len(whole.data)} rows but the runs have {total} "
                                   "TRs; name a runs_dataset (per-row run labels) or one dataset per run ({run})")
            bounds = np.cumsum([0, *(int(n) for n in run_lengths.values())])
            per_run = [whole.data[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    runs = np.concatenate([np.full(int(n), str(run)) for run, n in run_lengths.items()])
    return WordNetFeatures(np.concatenate(per_run).astype(np.float32), list(names), runs)


def _fitted(data: np.ndarray, run: str, n_trs: int, path: str | Path) -> np.ndarray:
    if len(data) < n_trs:
        raise WordNetError(f"{path}: run {run} has {len(data)} rows of WordNet features, fewer than its "
                           f"{n_trs} TRs (globals.runs)")
    return data[:n_trs]
