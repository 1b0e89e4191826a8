"""The text shown with each TR: captions (TSV) or HCP WordNet annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CAPTION_COLUMNS = ("onset", "duration", "text")


class CaptionError(ValueError):
    """Captions that cannot be aligned to the run; the message names the source."""


def read_captions(path: str | Path) -> pd.DataFrame:
    """Read a tab-separated caption file with columns ``onset, duration, text`` (s)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CaptionError(f"{path}: not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} at position"
                           f" {exc.start}); save it as UTF-8, e.g. iconv -f latin1 -t utf-8") from None
    except (OSError, pd.errors.ParserError) as exc:
        raise CaptionError(f"{path}: not a readable TSV ({exc})") from exc
    return check_captions(table, str(path))


def check_captions(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate columns and times; return ``onset, duration, text`` sorted by onset."""
    missing = [c for c in CAPTION_COLUMNS if c not in table.columns]
    if missing:
        raise CaptionError(f"{source}: missing column(s) {missing}; expected {list(CAPTION_COLUMNS)}")
    table = table.loc[:, list(CAPTION_COLUMNS)].copy()
    try:
        table[["onset", "duration"]] = table[["onset", "duration"]].astype(float)
    except ValueError as exc:
        raise CaptionError(f"{source}: onset/duration must be numbers ({exc})") from exc
    bad = table[(table.onset < 0) | (table.duration <= 0)]
    if len(bad):
        raise CaptionError(f"{source}: row {bad.index[0]} has onset {bad.onset.iloc[0]} and duration {bad.duration.iloc[0]}")
    table["text"] = table["text"].astype(str).str.strip()
    if len(table) and not (table["text"] != "").any():
        raise CaptionError(f"{source}: all {len(table)} captions are empty; the text column holds no text")
    table = table.sort_values("onset").reset_index(drop=True)
    ends = (table.onset + table.duration).to_numpy()
    overlap = np.flatnonzero(table.onset.to_numpy()[1:] < ends[:-1] - 1e-6)
    if len(overlap):
        i = int(overlap[0])
        raise CaptionError(f"{source}: the caption at {table.onset.iloc[i + 1]:g} s starts before the one at"
                           f" {table.onset.iloc[i]:g} s ends ({ends[i]:g} s); captions must not overlap")
    return table


def text_per_tr(captions: pd.DataFrame, times: np.ndarray) -> list[str]:
    """The caption whose interval covers each time ("" where none does).

    Args:
        captions: ``onset, duration, text`` in seconds.
        times: (n_trs,) TR midpoints in seconds.
    """
    texts = [""] * len(times)
    for row in captions.itertuples():
        inside = np.flatnonzero((times >= row.onset) & (times < row.onset + row.duration))
        for i in inside:
            texts[i] = row.text
    return texts


def check_caption_coverage(
    captions: pd.DataFrame, clip_intervals: list[tuple[float, float]], run_duration: float, source: str
) -> None:
    """Captions must lie inside the run and must not end before the last clip starts.

    A caption file that stops early (e.g. the file of a shorter run) would silently
    leave movie TRs without text; rest TRs without text are expected.
    """
    if len(captions) == 0:
        raise CaptionError(f"{source}: no caption rows")
    end = float((captions.onset + captions.duration).max())
    if end > run_duration + 1e-6:
        raise CaptionError(f"{source}: captions run until {end:.1f} s, after the end of the run ({run_duration:.1f} s)")
    last_clip_start = max(on for on, _ in clip_intervals)
    if end <= last_clip_start:
        raise CaptionError(
            f"{source}: captions end at {end:.1f} s, before the last clip starts"
            f" ({last_clip_start:.1f} s); they do not cover the run"
        )


def wordnet_text(matrix: np.ndarray, synsets: list[str], threshold: float = 0.5) -> list[str]:
    """Per-second text from HCP WordNet labels: the lemma names of active synsets.

    Args:
        matrix: (n_seconds, n_synsets) labels (1 = present).
        synsets: synset names such as ``"plant.n.02"``; the lemma is the part before
            the first dot, underscores become spaces.
    """
    if matrix.shape[1] != len(synsets):
        raise CaptionError(f"WordNet labels have {matrix.shape[1]} columns but {len(synsets)} synset names")
    lemmas = [s.split(".")[0].replace("_", " ") for s in synsets]
    texts = []
    for row in np.asarray(matrix) > threshold:
        words = list(dict.fromkeys(lemmas[j] for j in np.flatnonzero(row)))
        texts.append(" ".join(words))
    return texts
