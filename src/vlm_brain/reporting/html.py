"""One self-contained HTML page: sections of text, tables and embedded PNG figures.

The page has inline CSS only, no scripts and no external resources; figures are
embedded as base64 ``data:image/png`` URIs. Every user-provided string (titles,
paragraphs, captions, table cells, figure names, banner, metadata) is HTML-escaped;
only `Section.html` is inserted as is.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OTHER_FIGURES_TITLE = "Other figures"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
       sans-serif; margin: 0 auto; max-width: 1100px; padding: 1.5em; color: #1d1d1f;
       line-height: 1.45; }
h1 { margin-bottom: 0.3em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.banner { background: #fff1d6; border: 3px solid #c0392b; color: #7b1d12;
          font-weight: 700; font-size: 1.15em; padding: 0.8em 1em; margin: 1em 0;
          border-radius: 4px; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em;
          font-size: 0.85em; background: #f6f6f8; padding: 0.6em 1em;
          border-radius: 4px; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; font-family: monospace; }
nav.toc { font-size: 0.95em; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
table.data caption { caption-side: top; text-align: left; font-weight: 600;
                     padding-bottom: 0.3em; }
table.data th, table.data td { border-bottom: 1px solid #e3e3e3; padding: 0.2em 0.6em;
                               text-align: right; }
table.data td { white-space: nowrap; }
table.data th { vertical-align: bottom; }
table.data thead th { border-bottom: 2px solid #999; }
.table-wrap { overflow-x: auto; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #555; }
"""


# --------------------------------------------------------------------------- figures
def figure_to_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a matplotlib figure rendered at `dpi` dots per inch."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def figure_id(name: str) -> str:
    """HTML id of a figure: ``fig-{name}`` with runs of whitespace replaced by '-'."""
    return "fig-" + re.sub(r"\s+", "-", name)


def _figure_html(name: str, png: bytes, caption: str | None = None) -> str:
    data = base64.b64encode(png).decode("ascii")
    label = html.escape(caption or name)
    return (
        f'<figure id="{html.escape(figure_id(name))}">'
        f'<img alt="{label}" src="data:image/png;base64,{data}">'
        f"<figcaption>{label}</figcaption></figure>"
    )


def _figure_link(name: str) -> str:
    return (
        f'<p class="figref">See figure <a href="#{html.escape(figure_id(name))}">'
        f"{html.escape(name)}</a>.</p>"
    )


# --------------------------------------------------------------------------- sections
@dataclass
class Section:
    """One section of the report.

    Attributes
    ----------
    title : section heading (plain text).
    paragraphs : plain-text paragraphs, escaped.
    tables : (caption, table) pairs; floats shown with 3 significant digits.
    figures : names of figures (keys of `render_report`'s ``figures``) shown here.
    html : trusted extra HTML, inserted unescaped after the figures.
    """

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    html: str = ""


#: p-values below this print as "< 1e-4" (smaller ones carry no more meaning than the null's resolution)
P_FLOOR = 1e-4


def format_p(p: float) -> str:
    """A p-value for a table: ``< 1e-4`` below `P_FLOOR`, else 2 significant digits."""
    if not np.isfinite(p):
        return ""
    return "< 1e-4" if p < P_FLOOR else f"{p:.2g}"


def format_number(x: float) -> str:
    """A table number: 3 significant digits, trailing zeros kept (0.300 beside 0.327);
    thousands and more as whole numbers with separators."""
    if not np.isfinite(x):
        return ""
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return "0" if x == 0 else f"{x:#.3g}".rstrip(".")


def table_html(caption: str, table: pd.DataFrame) -> str:
    """A DataFrame as an escaped HTML table with a caption, floats by `format_number`.

    Columns named ``p`` or ``p_...`` / ``..._p`` are p-values (`format_p`). The index
    is shown unless it is a default RangeIndex. Underscores in column names show as
    spaces, so that headers wrap and a wide table fits the page; cells do not wrap.
    """
    p_columns = [c for c in table.columns if str(c) == "p" or str(c).startswith("p_") or str(c).endswith("_p")]
    table = table.rename(columns={c: str(c).replace("_", " ") for c in table.columns})
    p_columns = [str(c).replace("_", " ") for c in p_columns]
    body = table.to_html(
        formatters={c: format_p for c in p_columns},
        float_format=format_number,
        escape=True,
        border=0,
        classes="data",
        na_rep="",
        index=not isinstance(table.index, pd.RangeIndex),
    )
    # the first '>' closes pandas' own <table ...> tag, which holds no user text
    body = body.replace(">", f"><caption>{html.escape(caption)}</caption>", 1)
    return f'<div class="table-wrap">{body}</div>'


def section_id(index: int, title: str) -> str:
    """HTML id of the `index`-th section (1-based): ``sec-{index}-{slug of title}``."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return f"sec-{index}-{slug}" if slug else f"sec-{index}"


def _section_html(
    sid: str, section: Section, figures: Mapping[str, bytes], placed: set[str],
    captions: Mapping[str, str] | None = None,
) -> str:
    """A section; a figure already placed earlier becomes a link to it."""
    parts = [f'<section id="{html.escape(sid)}"><h2>{html.escape(section.title)}</h2>']
    parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
    parts += [table_html(caption, table) for caption, table in section.tables]
    for name in section.figures:
        if name in placed:
            parts.append(_figure_link(name))
        else:
            parts.append(_figure_html(name, figures[name], (captions or {}).get(name)))
        placed.add(name)
    parts += [section.html, "</section>"]
    return "\n".join(parts)


def _check_figures(sections: list[Section], figures: Mapping[str, bytes]) -> None:
    """ValueError for figures named in sections but not given, or not PNG bytes."""
    missing = sorted({n for s in sections for n in s.figures if n not in figures})
    if missing:
        raise ValueError(f"figures named in sections but not given: {missing}")
    not_png = sorted(
        n for n, png in figures.items() if not bytes(png).startswith(PNG_SIGNATURE)
    )
    if not_png:
        raise ValueError(f"figures that are not PNG bytes: {not_png}")
    ids: dict[str, str] = {}
    for name in figures:
        other = ids.setdefault(figure_id(name), name)
        if other != name:
            raise ValueError(f"figure names {other!r} and {name!r} give the same id")


# --------------------------------------------------------------------------- page
def _meta_html(meta: Mapping[str, str]) -> str:
    rows = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
        for k, v in meta.items()
    )
    return f'<dl class="meta">{rows}</dl>'


def _toc_html(entries: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<li><a href="#{html.escape(sid)}">{html.escape(title)}</a></li>'
        for sid, title in entries
    )
    return f'<nav class="toc"><h2>Contents</h2><ol>{items}</ol></nav>'


def render_report(
    title: str,
    sections: list[Section],
    figures: Mapping[str, bytes],
    banner: str | None = None,
    meta: Mapping[str, str] | None = None,
    captions: Mapping[str, str] | None = None,
) -> str:
    """A complete, self-contained HTML5 report.

    Parameters
    ----------
    title : page title and top heading.
    sections : in page order; each figure is embedded where it is first named and
        linked where it is named again.
    figures : {name: PNG bytes}; figures no section names are embedded in a final
        "Other figures" section.
    banner : warning shown prominently at the top (e.g. "RANDOM WEIGHTS: ...").
    meta : provenance (data, weights, parameters), shown as a definition list.
    captions : {figure name: caption}; a figure without one is captioned by its name.

    Returns
    -------
    The document as a string (UTF-8 text, no external resources or scripts).

    Raises
    ------
    ValueError : a figure named in a section is not in `figures`, or is not PNG.
    """
    _check_figures(sections, figures)
    named = {n for s in sections for n in s.figures}
    unplaced = [n for n in figures if n not in named]
    if unplaced:
        sections = [*sections, Section(OTHER_FIGURES_TITLE, figures=unplaced)]
    ids = [section_id(i, s.title) for i, s in enumerate(sections, start=1)]
    placed: set[str] = set()
    body = [f"<h1>{html.escape(title)}</h1>"]
    if banner:
        body.append(f'<div class="banner" role="alert">{html.escape(banner)}</div>')
    if meta:
        body.append(_meta_html(meta))
    pairs = list(zip(ids, sections, strict=True))
    body.append(_toc_html([(sid, s.title) for sid, s in pairs]))
    body += [_section_html(sid, s, figures, placed, captions or {}) for sid, s in pairs]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
