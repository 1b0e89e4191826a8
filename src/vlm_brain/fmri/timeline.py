"""The per-TR stimulus timeline of each run, from the clip table.

The clip table has one row per clip: ``run, clip, onset, offset, is_repeat``
(seconds from the start of the run). Time outside every clip is rest. A TR is
*kept* for model fitting when its midpoint falls inside a clip, and, when
``exclude_repeat`` is true, that clip is not the repeated validation clip.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

CLIP_COLUMNS = ("run", "clip", "onset", "offset", "is_repeat")


class TimelineError(ValueError):
    """An inconsistent clip table or run length; the message says which."""


def validate_clip_table(clips: pd.DataFrame, run_lengths: dict[str, int], tr: float) -> pd.DataFrame:
    """Check the clip table against the runs; return it typed and sorted.

    Args:
        clips: one row per clip, columns ``run, clip, onset, offset, is_repeat``.
        run_lengths: expected number of TRs per run (the stimulus timeline).
        tr: repetition time in seconds.
    """
    missing = [c for c in CLIP_COLUMNS if c not in clips.columns]
    if missing:
        raise TimelineError(
            f"clip table: missing column(s) {missing}; expected {list(CLIP_COLUMNS)}"
        )
    clips = clips.loc[:, list(CLIP_COLUMNS)].copy()
    clips["run"] = clips["run"].astype(str)
    try:
        clips["clip"] = clips["clip"].astype(int)
        clips[["onset", "offset"]] = clips[["onset", "offset"]].astype(float)
    except (TypeError, ValueError) as exc:
        raise TimelineError(f"clip table: clip, onset and offset must be numbers ({exc})") from exc
    clips["is_repeat"] = [truthy(v, f"clip table: is_repeat of run {r} clip {c}")
                          for v, r, c in zip(clips["is_repeat"], clips["run"], clips["clip"], strict=True)]
    if (clips["clip"] < 1).any():
        row = clips[clips["clip"] < 1].iloc[0]
        raise TimelineError(f"clip table: run {row['run']} has clip number {row['clip']}; clips are numbered from 1"
                            " (0 marks rest in the timeline). Renumber the clips from 1")
    unknown = sorted(set(clips["run"]) - set(run_lengths))
    if unknown:
        raise TimelineError(f"clip table: run(s) {unknown} are not among the configured runs {list(run_lengths)}")
    for run in run_lengths:
        if not (clips["run"] == run).any():
            raise TimelineError(f"clip table: no clip for run {run}")
    for row in clips.itertuples():
        duration = run_lengths[row.run] * tr
        if not 0 <= row.onset < row.offset:
            raise TimelineError(
                f"clip table: run {row.run} clip {row.clip} has onset {row.onset} s"
                f" and offset {row.offset} s; need 0 <= onset < offset"
            )
        if row.offset > duration + 1e-6:
            raise TimelineError(
                f"clip table: run {row.run} clip {row.clip} ends at {row.offset} s, after"
                f" the end of the run ({run_lengths[row.run]} TRs x {tr} s = {duration} s);"
                " check the TR (parameter tr in globals.yml) and the run lengths (globals.runs)"
            )
    clips = clips.sort_values(["run", "onset"]).reset_index(drop=True)
    for run, rows in clips.groupby("run", sort=False):
        ends, starts = rows["offset"].to_numpy()[:-1], rows["onset"].to_numpy()[1:]
        if np.any(starts < ends - 1e-6):
            i = int(np.flatnonzero(starts < ends - 1e-6)[0])
            raise TimelineError(f"clip table: in run {run}, clip {rows['clip'].iloc[i + 1]} starts at {starts[i]} s,"
                                f" before clip {rows['clip'].iloc[i]} ends ({ends[i]} s); clips must not overlap")
    return clips


#: spellings of true and false accepted in tables (case-insensitive)
TRUE, FALSE = ("true", "1", "1.0", "yes", "y", "t"), ("false", "0", "0.0", "no", "n", "f", "")


def truthy(value: object, what: str) -> bool:
    """A table's boolean in any common spelling (True, 1, 1.0, "yes", "TRUE", ...); else TimelineError."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise TimelineError(f"{what} is {value!r}; use true/false (or 1/0, yes/no)")


def repeat_warning(clips: pd.DataFrame) -> str | None:
    """Why the noise ceiling will be missing, if it will: the repeated clip must be in >= 2 runs."""
    runs = sorted(set(clips.loc[clips["is_repeat"], "run"]))
    if not runs:
        return "clip table: no clip is marked is_repeat; there will be no noise ceiling (r / ceiling is NaN)"
    if len(runs) == 1:
        return (f"clip table: only run {runs[0]} has a repeated clip; the noise ceiling needs it in >= 2 runs,"
                " so there will be none (r / ceiling is NaN)")
    return None


def build_timeline(
    clips: pd.DataFrame | None,
    run_lengths: dict[str, int],
    tr: float,
    exclude_repeat: bool = True,
) -> pd.DataFrame:
    """One row per (run, TR), runs in the order of ``run_lengths``.

    ``clips`` None (data without a clip table, e.g. one continuous film per scan):
    every TR is stimulus (clip 1 of its run) and kept; nothing is a repeat.

    Returns:
        Columns ``run, tr`` (0-based index in the run), ``time`` (TR midpoint, s),
        ``clip`` (0 = rest), ``is_repeat``, ``keep`` (used for model fitting).
    """
    if clips is None:
        clips = pd.DataFrame({"run": list(run_lengths), "clip": 1, "onset": 0.0,
                              "offset": [n * tr for n in run_lengths.values()], "is_repeat": False})
        logger.info("no clip table: every TR of the %d scans is stimulus and kept; no repeated clip", len(clips))
        return build_timeline(clips, run_lengths, tr, exclude_repeat)
    clips = validate_clip_table(clips, run_lengths, tr)
    warning = repeat_warning(clips)
    if warning:
        logger.warning(warning)
    frames = []
    for run, n_trs in run_lengths.items():
        time = (np.arange(n_trs) + 0.5) * tr
        clip = np.zeros(n_trs, dtype=int)
        is_repeat = np.zeros(n_trs, dtype=bool)
        for row in clips[clips["run"] == run].itertuples():
            inside = (time >= row.onset) & (time < row.offset)
            clip[inside] = row.clip
            is_repeat[inside] = row.is_repeat
        keep = (clip > 0) & ~(is_repeat & exclude_repeat)
        frames.append(
            pd.DataFrame(
                {"run": run, "tr": np.arange(n_trs), "time": time, "clip": clip,
                 "is_repeat": is_repeat, "keep": keep}
            )
        )
    return pd.concat(frames, ignore_index=True)
