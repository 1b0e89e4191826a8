"""Annotation segment tables -> the text shown at each TR.

A segment table (TSV or CSV, one row per annotated interval) has columns
``run`` (optional when there is one scan), ``start``, ``end``, ``text`` and optionally
``unit``. Times are either seconds from the start of the run (``unit = "s"``) or TR
indices (``unit = "tr"``: 0-based, ``end`` exclusive, so ``start=2, end=5`` covers TRs
2, 3 and 4). The unit is one per table: a ``unit`` column or the ``unit`` argument.

A TR gets the text of the segment that covers its midpoint, ``(i + 0.5) * tr`` seconds
(in TR units: the segment with ``start <= i < end``), and ``""`` where none does.
Segments of one run must not overlap (touching is fine: ``end`` is exclusive).

Alternatively a table already per TR (``run, tr, text``) is read as is by
:func:`read_text_per_tr`. See docs/data_formats.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from vlm_brain.stimuli.text import CaptionError
from vlm_brain.text_tables import read_text_table

Unit = Literal["s", "tr"]
UNITS = ("s", "tr")
SEGMENT_COLUMNS = ("run", "start", "end", "text")
PER_TR_COLUMNS = ("run", "tr", "text")
#: seconds of slack when comparing times (rounding of text numbers)
EPS = 1e-6


class SegmentError(CaptionError):
    """A segment or per-TR text table that cannot be aligned to the runs; the message says where."""


# --------------------------------------------------------------------------- reading
def read_segments(
    path: str | Path,
    unit: Unit | None = None,
    runs: Sequence[str] | None = None,
    run_lengths: dict[str, int] | None = None,
    tr: float | None = None,
) -> pd.DataFrame:
    """Read and check a segment table.

    Args:
        path: ``.tsv`` or ``.csv`` with columns ``[run,] start, end, text[, unit]``.
        unit: ``"s"`` or ``"tr"`` when the table has no ``unit`` column; when it has
            one, the two must agree.
        runs: the scans' names; segments of other runs are an error. A table without
            a ``run`` column needs exactly one run here (or in ``run_lengths``).
        run_lengths: TRs per run; checks that no segment ends after its run (with
            ``tr`` for second units) and, if ``runs`` is None, gives the run names.
        tr: repetition time in seconds (needed to check second units against
            ``run_lengths``).

    Returns:
        Columns ``run`` (str), ``start``, ``end`` (float; whole numbers in TR units),
        ``text`` (str, stripped), ``unit``; sorted by run, then start.

    Raises:
        SegmentError: naming the file, the line and the run.
    """
    path = Path(path)
    table = _read_table(path)
    table.index = pd.RangeIndex(2, len(table) + 2)  # file line numbers (line 1 is the header)
    return check_segments(table, str(path), unit, runs, run_lengths, tr, row_name="line")


def check_segments(
    table: pd.DataFrame,
    source: str,
    unit: Unit | None = None,
    runs: Sequence[str] | None = None,
    run_lengths: dict[str, int] | None = None,
    tr: float | None = None,
    row_name: str = "row",
) -> pd.DataFrame:
    """Validate an in-memory segment table (see :func:`read_segments`); rows are named by its index."""
    known = _known_runs(runs, run_lengths)
    table = _with_run_column(table, source, known, ("start", "end", "text"))
    table = table.loc[:, [*SEGMENT_COLUMNS, *(["unit"] if "unit" in table.columns else [])]].copy()
    table["unit"] = _table_unit(table, unit, source)
    table["text"] = table["text"].fillna("").astype(str).str.strip()
    for column in ("start", "end"):
        table[column] = _numbers(table[column], column, source, row_name)
    _check_times(table, source, row_name)
    if known is not None:
        _check_runs_known(table, known, source)
    if run_lengths is not None:
        _check_ends(table, run_lengths, tr, source, row_name)
    table = table.sort_values(["run", "start"], kind="stable")
    _check_overlaps(table, source, row_name)
    return table.reset_index(drop=True)


def _read_table(path: Path) -> pd.DataFrame:
    return read_text_table(path, SegmentError, "text table")


def _known_runs(runs: Sequence[str] | None, run_lengths: dict[str, int] | None) -> list[str] | None:
    if runs is not None:
        return [str(r) for r in runs]
    return None if run_lengths is None else [str(r) for r in run_lengths]


def _with_run_column(table: pd.DataFrame, source: str, known: list[str] | None,
                     required: tuple[str, ...]) -> pd.DataFrame:
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise SegmentError(f"{source}: missing column(s) {missing}; columns are {list(table.columns)},"
                           f" expected {['run', *required]} (run optional for one scan)")
    table = table.copy()
    if "run" not in table.columns:
        if known is None or len(known) != 1:
            raise SegmentError(f"{source}: no run column, and {'no runs were given' if known is None else f'{len(known)} runs are configured'};"
                               " add a run column, or pass the one scan's name (runs=[name])")
        table.insert(0, "run", known[0])
    table["run"] = table["run"].astype(str).str.strip()
    return table


def _table_unit(table: pd.DataFrame, unit: str | None, source: str) -> str:
    if unit is not None and unit not in UNITS:
        raise SegmentError(f"unit {unit!r}: use 's' (seconds) or 'tr' (TR indices, end exclusive)")
    if "unit" not in table.columns:
        if unit is None:
            raise SegmentError(f"{source}: no unit column and no unit given; add a unit column or pass unit='s' or 'tr'")
        return unit
    values = sorted(set(table["unit"].astype(str).str.strip().str.lower()))
    bad = [v for v in values if v not in UNITS]
    if bad:
        raise SegmentError(f"{source}: unit column holds {bad}; use 's' (seconds) or 'tr' (TR indices)")
    if len(values) > 1:
        raise SegmentError(f"{source}: unit column mixes {values}; use one unit per table")
    if values and unit is not None and values[0] != unit:
        raise SegmentError(f"{source}: unit column says {values[0]!r} but unit={unit!r} was given")
    return values[0] if values else (unit or "s")


def _numbers(column: pd.Series, name: str, source: str, row_name: str) -> pd.Series:
    values = pd.to_numeric(column.astype(str).str.strip(), errors="coerce").astype(float)
    bad = ~np.isfinite(values.to_numpy())
    if bad.any():
        row = column.index[np.flatnonzero(bad)[0]]
        raise SegmentError(f"{source}: {row_name} {row}: {name} is {column.loc[row]!r}, not a number")
    return values


def _check_times(table: pd.DataFrame, source: str, row_name: str) -> None:
    for row in table.itertuples():
        if not 0 <= row.start < row.end:
            raise SegmentError(f"{source}: {row_name} {row.Index} (run {row.run}) has start {row.start:g} and"
                               f" end {row.end:g}; need 0 <= start < end")
        if row.unit == "tr" and (row.start != round(row.start) or row.end != round(row.end)):
            raise SegmentError(f"{source}: {row_name} {row.Index} (run {row.run}): start {row.start:g} / end"
                               f" {row.end:g} are not whole TR indices; use unit 's' for times in seconds")


def _check_runs_known(table: pd.DataFrame, known: list[str], source: str) -> None:
    unknown = sorted(set(table["run"]) - set(known))
    if unknown:
        raise SegmentError(f"{source}: run(s) {unknown} are not among the runs {known}")


def _check_ends(table: pd.DataFrame, run_lengths: dict[str, int], tr: float | None, source: str,
                row_name: str) -> None:
    lengths = {str(k): int(v) for k, v in run_lengths.items()}
    if table["unit"].eq("s").any() and tr is None:
        raise SegmentError(f"{source}: times are in seconds; pass tr (s) to check them against the run lengths")
    for row in table.itertuples():
        if row.run not in lengths:
            raise SegmentError(f"{source}: run {row.run!r} has no length in run_lengths {list(lengths)}")
        n = lengths[row.run]
        limit = n if row.unit == "tr" else n * tr + EPS
        if row.end > limit:
            what = f"{n} TRs" if row.unit == "tr" else f"{n} TRs x {tr:g} s = {n * tr:g} s"
            raise SegmentError(f"{source}: {row_name} {row.Index} ends at {row.end:g} {row.unit}, after the end of run"
                               f" {row.run} ({what}); check the unit, the TR and the run lengths")


def _check_overlaps(table: pd.DataFrame, source: str, row_name: str) -> None:
    for run, rows in table.groupby("run", sort=False):
        starts, ends = rows["start"].to_numpy(), rows["end"].to_numpy()
        clash = np.flatnonzero(starts[1:] < ends[:-1] - EPS)
        if len(clash):
            i = int(clash[0])
            first, second = rows.index[i], rows.index[i + 1]
            raise SegmentError(f"{source}: in run {run}, {row_name}s {first} and {second} overlap ({starts[i]:g}-{ends[i]:g}"
                               f" and {starts[i + 1]:g}-{ends[i + 1]:g} {rows['unit'].iloc[0]}); segments of a run"
                               " must not overlap (end is exclusive, so touching is fine)")


# --------------------------------------------------------------------------- per TR
def segment_text_per_tr(
    segments: pd.DataFrame,
    run_lengths: dict[str, int],
    tr: float,
    unit: Unit | None = None,
) -> pd.DataFrame:
    """The text at each TR of each run.

    Args:
        segments: a table as returned by :func:`read_segments` (checked again here).
        run_lengths: TRs per run, in the order of the output.
        tr: repetition time in seconds.
        unit: ``"s"`` or ``"tr"`` if ``segments`` has no ``unit`` column.

    Returns:
        One row per (run, TR): ``run``, ``tr`` (0-based), ``time`` (TR midpoint, s),
        ``text`` (the covering segment's, ``""`` where none covers the midpoint).
    """
    if not run_lengths:
        raise SegmentError("segment_text_per_tr: run_lengths is empty; give the number of TRs of each run")
    segments = check_segments(segments, "segments", unit, None, run_lengths, tr)
    frames = []
    for run, n in run_lengths.items():
        index = np.arange(int(n))
        texts = np.full(int(n), "", dtype=object)
        for row in segments[segments["run"] == str(run)].itertuples():
            position = index.astype(float) if row.unit == "tr" else (index + 0.5) * tr
            texts[(position >= row.start - EPS) & (position < row.end - EPS)] = row.text
        frames.append(pd.DataFrame({"run": str(run), "tr": index, "time": (index + 0.5) * tr, "text": texts}))
    return _concat(frames)


def read_text_per_tr(
    path: str | Path,
    run_lengths: dict[str, int] | None = None,
    tr: float | None = None,
    runs: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a table that already gives the text per TR: ``[run,] tr, text``.

    Args:
        path: ``.tsv`` or ``.csv``; ``tr`` holds 0-based TR indices, one row per
            (run, TR) at most; ``run`` may be left out for one scan.
        run_lengths: TRs per run; when given, every index must be inside its run and
            the output has every TR of every run, in this order (``""`` for TRs the
            table leaves out).
        tr: repetition time in seconds; when given, a ``time`` column (TR midpoint)
            is added.
        runs: the scans' names when ``run_lengths`` is not given.

    Returns:
        ``run, tr[, time], text``, sorted by run and TR.
    """
    path = Path(path)
    table = _read_table(path)
    table.index = pd.RangeIndex(2, len(table) + 2)
    known = _known_runs(runs, run_lengths)
    table = _with_run_column(table, str(path), known, ("tr", "text")).loc[:, list(PER_TR_COLUMNS)]
    index = _numbers(table["tr"], "tr", str(path), "line")
    bad = table.index[(index < 0) | (index != index.round())]
    if len(bad):
        raise SegmentError(f"{path}: line {bad[0]}: tr is {table.loc[bad[0], 'tr']!r}; use 0-based whole TR indices")
    table["tr"] = index.astype(int)
    table["text"] = table["text"].astype(str).str.strip()
    repeated = table[table.duplicated(["run", "tr"], keep=False)]
    if len(repeated):
        raise SegmentError(f"{path}: run {repeated['run'].iloc[0]} TR {repeated['tr'].iloc[0]} is listed on lines"
                           f" {repeated.index[:2].tolist()}; one row per (run, TR)")
    if known is not None:
        _check_runs_known(table, known, str(path))
    if run_lengths is not None:
        if not run_lengths:
            raise SegmentError(f"{path}: run_lengths is empty; give the number of TRs of each run")
        table = _complete(table, run_lengths, path)
    else:
        table = table.sort_values(["run", "tr"]).reset_index(drop=True)
    if tr is not None:
        table.insert(2, "time", (table["tr"] + 0.5) * tr)
    return table


def _complete(table: pd.DataFrame, run_lengths: dict[str, int], path: Path) -> pd.DataFrame:
    frames = []
    for run, n in run_lengths.items():
        rows = table[table["run"] == str(run)]
        past = rows[rows["tr"] >= int(n)]
        if len(past):
            raise SegmentError(f"{path}: line {past.index[0]}: TR {past['tr'].iloc[0]} of run {run} is past its end"
                               f" ({n} TRs, indices 0..{int(n) - 1})")
        texts = np.full(int(n), "", dtype=object)
        texts[rows["tr"].to_numpy()] = rows["text"].to_numpy()
        frames.append(pd.DataFrame({"run": str(run), "tr": np.arange(int(n)), "text": texts}))
    return _concat(frames)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(frames, ignore_index=True)
    out["text"] = out["text"].astype(str)
    return out
