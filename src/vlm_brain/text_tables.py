"""Reading the small text tables users hand over (labels, segments, per-TR text): one reader for all."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: file suffix -> column separator
SEPARATORS = {".tsv": "\t", ".csv": ","}


def read_text_table(path: Path, error: type[Exception], what: str = "table") -> pd.DataFrame:
    """A .tsv/.csv table as strings (no NaN conversion), column names stripped; ``error(message)`` otherwise.

    The message names the file and says what is wrong: another suffix, not UTF-8 (the
    byte), or not parseable.
    """
    path = Path(path)
    sep = SEPARATORS.get(path.suffix.lower())
    if sep is None:
        raise error(f"{path}: a {what} must be .tsv or .csv, not {path.suffix!r}")
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise error(f"{path}: not a readable {what} ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    return table
