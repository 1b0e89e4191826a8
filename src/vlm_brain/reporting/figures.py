"""Figures of tidy result tables (pandas DataFrames, one row per observation).

Each function checks the columns it needs (ValueError naming the missing ones),
draws into a new `matplotlib.figure.Figure` (no pyplot, constrained layout) and
returns it. Panels wrap after 4 columns and the figure size grows with the number of
panels. Categories (streams, networks, conditions, pairs, comparisons) are drawn in
their order of first appearance in the table, except networks where a function takes
``order`` (e.g. `vlm_brain.fmri.networks.NETWORK_ORDER`, sensory to association): the
networks it names first, in its order, then any others as they appear; layers and
fractions in numeric order.
Correlations are Pearson r (unitless); Dice coefficients are in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from vlm_brain.reporting.surface import NEGATIVE_COLOR, POSITIVE_COLOR

MAX_COLUMNS = 4

_LABELS = {
    "r_mean": "mean r (Pearson)",
    "r_norm_mean": "mean noise-normalised r",
    "frac_bn": "fraction of grayordinates that are BNs",
}


# --------------------------------------------------------------------------- helpers
def require_columns(
    table: pd.DataFrame, columns: Iterable[str], name: str = "table"
) -> None:
    """Raise ValueError naming the `columns` that `table` lacks, or if it is empty."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {missing}; it has {list(table.columns)}"
        )
    if table.empty:
        raise ValueError(f"{name} has no rows")


def _require_unique(table: pd.DataFrame, keys: list[str], name: str = "table") -> None:
    """Raise ValueError if some combination of `keys` occurs in more than one row."""
    duplicated = table.duplicated(subset=keys, keep=False)
    if duplicated.any():
        example = table.loc[duplicated, keys].iloc[0].to_dict()
        raise ValueError(
            f"{name} has {int(duplicated.sum())} rows with repeated {keys}, "
            f"e.g. {example}"
        )


def _ordered(values: pd.Series, order: Sequence | None = None) -> list:
    """Unique values: those in `order` first, in its order, then the rest in order of
    first appearance."""
    present = list(pd.unique(values))
    if order is None:
        return present
    first = [v for v in order if v in set(present)]
    return first + [v for v in present if v not in set(first)]


def _label(column: str) -> str:
    """Axis label of a value column: a known description, else the column name."""
    return _LABELS.get(column, column)


def _category_colors(names: Sequence) -> dict:
    """One qualitative colour per name (tab10, or tab20 beyond 10 names)."""
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def panel_grid(
    n: int,
    panel_size: tuple[float, float],
    *,
    sharex: bool = False,
    sharey: bool = False,
    extra_width: float = 0.0,
) -> tuple[Figure, list[Axes]]:
    """Figure with `n` panels, at most `MAX_COLUMNS` per row, unused cells removed.

    Parameters
    ----------
    n : number of panels (>= 1).
    panel_size : (width, height) of one panel in inches.
    extra_width : inches added for a colorbar or legend.

    Returns
    -------
    fig, axes : the figure and its `n` panels, row by row.
    """
    ncols = min(n, MAX_COLUMNS)
    nrows = math.ceil(n / ncols)
    width, height = panel_size
    fig = Figure(
        figsize=(width * ncols + extra_width, height * nrows + 0.4),
        layout="constrained",
    )
    grid = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex, sharey=sharey)
    axes = list(grid.ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def _value_scale(values: pd.Series) -> tuple[Colormap, Normalize]:
    """Diverging scale symmetric about 0 if values have both signs, else sequential."""
    finite = values.to_numpy(dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return colormaps["viridis"].with_extremes(bad="0.85"), Normalize(0.0, 1.0)
    low, high = float(finite.min()), float(finite.max())
    if low < 0 < high:
        top = max(-low, high)
        return colormaps["RdBu_r"].with_extremes(bad="0.85"), Normalize(-top, top)
    if low == high:
        low, high = low - 0.5, high + 0.5
    return colormaps["viridis"].with_extremes(bad="0.85"), Normalize(low, high)


def _set_layer_ticks(ax: Axes, layers: Sequence, max_labels: int = 12) -> None:
    """Label heatmap columns 0..n-1 with their layer numbers, at most `max_labels`."""
    step = max(1, math.ceil(len(layers) / max_labels))
    positions = list(range(0, len(layers), step))
    ax.set_xticks(positions, [str(layers[i]) for i in positions])


def layer_grid(table: pd.DataFrame, networks: Sequence, value: str) -> pd.DataFrame:
    """(n_networks, n_layers) pivot of one stream's rows; missing cells are NaN.

    Rows follow `networks`, columns are the stream's layers in increasing order.
    """
    grid = table.pivot(index="network", columns="layer", values=value)
    grid = grid.reindex(index=list(networks), columns=sorted(grid.columns))
    return grid.astype(float)


def _figure_legend(fig: Figure, handles: Mapping[str, object], title: str = "") -> None:
    """One legend for the whole figure, outside the panels on the right."""
    fig.legend(
        list(handles.values()),
        list(handles.keys()),
        loc="outside right upper",
        title=title or None,
        fontsize=8,
        frameon=False,
    )


# --------------------------------------------------------------------------- encoding
def network_layer_heatmaps(
    table: pd.DataFrame, value: str = "r_mean", title: str = "", order: Sequence[str] | None = None
) -> Figure:
    """Heatmap of a value per network (rows) and layer (columns), one panel per stream.

    Parameters
    ----------
    table : columns ``stream_label`` (str), ``network`` (str), ``layer`` (int) and
        `value` (float); one row per (stream, network, layer).
    value : column to show, e.g. ``r_mean`` (Pearson r).
    title : figure title.
    order : network order of the rows (top to bottom); see the module docstring.

    Returns
    -------
    Figure with one image per stream (``ax.images[0]`` holds the (n_networks,
    n_layers) grid of `layer_grid`) and one shared colorbar. The scale is symmetric
    about 0 (RdBu_r) when the values have both signs, else viridis; NaN is grey.
    """
    keys = ["stream_label", "network", "layer"]
    require_columns(table, [*keys, value])
    _require_unique(table, keys)
    streams = _ordered(table["stream_label"])
    networks = _ordered(table["network"], order)
    grids = {
        s: layer_grid(table[table["stream_label"] == s], networks, value)
        for s in streams
    }
    cmap, norm = _value_scale(table[value])
    n_layers = max(grid.shape[1] for grid in grids.values())
    fig, axes = panel_grid(
        len(streams),
        (1.4 + 0.22 * min(n_layers, 14), 0.9 + 0.24 * len(networks)),
        extra_width=1.0,
    )
    for ax, (stream, grid) in zip(axes, grids.items(), strict=True):
        image = ax.imshow(
            grid.to_numpy(), aspect="auto", cmap=cmap, norm=norm,
            interpolation="nearest",
        )
        ax.set_yticks(range(len(networks)), [str(n) for n in networks], fontsize=8)
        _set_layer_ticks(ax, list(grid.columns))
        ax.set_xlabel("layer")
        ax.set_title(str(stream))
    fig.colorbar(image, ax=axes, label=_label(value), shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig


def layer_profiles(
    table: pd.DataFrame, value: str = "r_mean", networks: list[str] | None = None, legend_title: str = "network",
    order: Sequence[str] | None = None,
) -> Figure:
    """A value across layers, one line per network, one panel per stream.

    Parameters
    ----------
    table : columns ``stream_label``, ``network``, ``layer`` (int) and `value`.
    value : column on the y axis, e.g. ``r_mean`` (Pearson r).
    networks : networks to draw, in this order; default all, in `order`.
    legend_title : title of the legend of the ``network`` lines.
    order : network order of the legend and colours; see the module docstring.

    Returns
    -------
    Figure with panels sharing the y axis, colours fixed per network and one legend.
    """
    keys = ["stream_label", "network", "layer"]
    require_columns(table, [*keys, value])
    _require_unique(table, keys)
    present = _ordered(table["network"], order)
    if networks is None:
        networks = present
    missing = [n for n in networks if n not in present]
    if missing:
        raise ValueError(f"networks {missing} are not in the table; it has {present}")
    colors = _category_colors(networks)
    streams = _ordered(table["stream_label"])
    fig, axes = panel_grid(len(streams), (3.4, 2.6), sharey=True, extra_width=1.6)
    handles = {}
    for ax, stream in zip(axes, streams, strict=True):
        rows = table[table["stream_label"] == stream]
        for network in networks:
            line = rows[rows["network"] == network].sort_values("layer")
            if line.empty:
                continue
            (handles[str(network)],) = ax.plot(
                line["layer"], line[value], marker="o", ms=3, lw=1.3,
                color=colors[network],
            )
        ax.set_title(str(stream))
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in axes[:: min(len(axes), MAX_COLUMNS)]:
        ax.set_ylabel(_label(value))
    _figure_legend(fig, handles, title=legend_title)
    return fig


def dice_matrices(matrices: Mapping[str, np.ndarray]) -> Figure:
    """Images of (k, k) Dice matrices, one panel per matrix, one shared colorbar.

    Parameters
    ----------
    matrices : {panel title: (k, k) Dice coefficients in [0, 1]; NaN allowed (grey)}.
        k may differ between matrices.

    Returns
    -------
    Figure with ``ax.images[0]`` of each panel holding its matrix, on a fixed 0..1
    scale; values are written in the cells when k <= 8.
    """
    if not matrices:
        raise ValueError("matrices is empty")
    checked = {str(k): _check_dice(str(k), m) for k, m in matrices.items()}
    k_max = max(m.shape[0] for m in checked.values())
    size = 2.2 + 0.18 * min(k_max, 20)
    fig, axes = panel_grid(len(checked), (size, size), extra_width=0.9)
    cmap, norm = colormaps["viridis"].with_extremes(bad="0.85"), Normalize(0.0, 1.0)
    for ax, (key, matrix) in zip(axes, checked.items(), strict=True):
        image = ax.imshow(matrix, cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(key)
        ax.set_xlabel("map index")
        ax.set_ylabel("map index")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if matrix.shape[0] <= 8:
            _annotate_cells(ax, matrix)
    fig.colorbar(image, ax=axes, label="Dice coefficient", shrink=0.9)
    return fig


def _check_dice(key: str, matrix: np.ndarray) -> np.ndarray:
    """(k, k) float array with values in [0, 1] or NaN, else ValueError naming `key`."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(
            f"Dice matrix {key!r} must be square (k, k), got {matrix.shape}"
        )
    finite = matrix[np.isfinite(matrix)]
    if np.any(finite < 0) or np.any(finite > 1):
        raise ValueError(f"Dice matrix {key!r} has values outside [0, 1]")
    return matrix


def _annotate_cells(ax: Axes, matrix: np.ndarray) -> None:
    """Write each finite cell's value (2 decimals) in the image."""
    for (i, j), v in np.ndenumerate(matrix):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v < 0.5 else "black")


# --------------------------------------------------------------------------- ablation
def ablation_curves(table: pd.DataFrame) -> Figure:
    """Mean BN r as ANs are removed, one panel per layer, one curve per condition.

    Parameters
    ----------
    table : columns ``layer_name``, ``condition`` (e.g. "ablation", "shuffled
        control"), ``fraction`` (fraction of ANs removed, 0..1), ``r_mean`` (mean
        Pearson r of the layer's BNs) and its band ``r_low``, ``r_high``.

    Returns
    -------
    Figure; in each panel ``ax.lines[i]`` is condition i's curve sorted by fraction,
    with its band as a shaded area; panels share the y axis; one legend.
    """
    columns = ["layer_name", "condition", "fraction", "r_mean", "r_low", "r_high"]
    require_columns(table, columns)
    _require_unique(table, ["layer_name", "condition", "fraction"])
    fraction = table["fraction"].to_numpy(dtype=np.float64)
    if np.any((fraction < 0) | (fraction > 1)):
        raise ValueError("fraction must be in [0, 1] (fraction of ANs removed)")
    conditions = _ordered(table["condition"])
    colors = _category_colors(conditions)
    layers = _ordered(table["layer_name"])
    fig, axes = panel_grid(len(layers), (3.2, 2.6), sharey=True, extra_width=1.6)
    handles = {}
    for ax, layer in zip(axes, layers, strict=True):
        rows = table[table["layer_name"] == layer]
        for condition in conditions:
            curve = rows[rows["condition"] == condition].sort_values("fraction")
            if curve.empty:
                continue
            color = colors[condition]
            ax.fill_between(curve["fraction"], curve["r_low"], curve["r_high"],
                            color=color, alpha=0.2, lw=0)
            (handles[str(condition)],) = ax.plot(
                curve["fraction"], curve["r_mean"], color=color, marker="o", ms=3
            )
        ax.set_title(str(layer))
        ax.set_xlabel("fraction of ANs removed")
        ax.set_xlim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[:: min(len(axes), MAX_COLUMNS)]:
        ax.set_ylabel("mean r of the layer's BNs")
    _figure_legend(fig, handles, title="condition")
    return fig


# --------------------------------------------------------------------------- streams
def overlap_curves(table: pd.DataFrame) -> Figure:
    """Dice overlap of image- and text-stream BN maps across relative depth.

    Parameters
    ----------
    table : columns ``pair`` (e.g. "CLIP image vs text"), ``depth`` (relative layer
        depth, 0 = first, 1 = last), ``dice`` (0..1) and optionally both
        ``dice_low`` and ``dice_high`` (a band, drawn shaded).

    Returns
    -------
    Figure with one axes; ``ax.lines[i]`` is pair i sorted by depth.
    """
    require_columns(table, ["pair", "depth", "dice"])
    band = [c for c in ("dice_low", "dice_high") if c in table.columns]
    if len(band) == 1:
        raise ValueError(
            f"give both dice_low and dice_high or neither; table has only {band}"
        )
    _require_unique(table, ["pair", "depth"])
    pairs = _ordered(table["pair"])
    colors = _category_colors(pairs)
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for pair in pairs:
        curve = table[table["pair"] == pair].sort_values("depth")
        if band:
            ax.fill_between(curve["depth"], curve["dice_low"], curve["dice_high"],
                            color=colors[pair], alpha=0.2, lw=0)
        ax.plot(curve["depth"], curve["dice"], color=colors[pair], marker="o", ms=3,
                label=str(pair))
    ax.set_xlabel("relative depth (0 = first layer, 1 = last layer)")
    ax.set_ylabel("Dice of image- and text-stream BN maps")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Overlap of image and text BN maps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return fig


def polarity_profiles(table: pd.DataFrame) -> Figure:
    """Counts of positive (up, red) and negative (down, blue) BNs across layers.

    Parameters
    ----------
    table : columns ``stream_label``, ``layer`` (int), ``n_pos`` and ``n_neg``
        (non-negative counts of BNs with positive / negative weights).

    Returns
    -------
    Figure, one panel per stream; ``ax.containers[0]`` holds the positive bars
    (heights n_pos), ``ax.containers[1]`` the negative ones (heights -n_neg).
    """
    require_columns(table, ["stream_label", "layer", "n_pos", "n_neg"])
    _require_unique(table, ["stream_label", "layer"])
    if (table[["n_pos", "n_neg"]] < 0).to_numpy().any():
        raise ValueError("n_pos and n_neg are counts and must be >= 0")
    streams = _ordered(table["stream_label"])
    fig, axes = panel_grid(len(streams), (3.2, 2.6), sharey=True, extra_width=1.6)
    for ax, stream in zip(axes, streams, strict=True):
        rows = table[table["stream_label"] == stream].sort_values("layer")
        ax.bar(rows["layer"], rows["n_pos"], color=POSITIVE_COLOR, width=0.8)
        ax.bar(rows["layer"], -rows["n_neg"], color=NEGATIVE_COLOR, width=0.8)
        ax.axhline(0.0, color="0.2", lw=0.8)
        ax.set_title(str(stream))
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{abs(y):g}"))
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[:: min(len(axes), MAX_COLUMNS)]:
        ax.set_ylabel("number of BNs")
    _figure_legend(fig, {"positive BNs": Patch(color=POSITIVE_COLOR),
                         "negative BNs": Patch(color=NEGATIVE_COLOR)})
    return fig


# --------------------------------------------------------------------------- baselines
def baseline_comparison(table: pd.DataFrame, order: Sequence[str] | None = None) -> Figure:
    """Mean r difference with confidence interval per network, grouped by comparison.

    Parameters
    ----------
    table : columns ``network``, ``comparison`` (e.g. "clip.image vs vit.image"),
        ``mean_diff`` (mean r of the first model minus the second, Pearson r) and
        its interval ``ci_low`` <= mean_diff <= ``ci_high``.
    order : network order, top to bottom; see the module docstring.

    Returns
    -------
    Figure with one axes: networks on the y axis (first at the top), one point with a
    horizontal CI bar per comparison (colour = comparison, offset within the
    network's row), a line at 0 and a legend below.
    """
    columns = ["network", "comparison", "mean_diff", "ci_low", "ci_high"]
    require_columns(table, columns)
    _require_unique(table, ["network", "comparison"])
    low = (table["mean_diff"] - table["ci_low"]).to_numpy(dtype=np.float64)
    high = (table["ci_high"] - table["mean_diff"]).to_numpy(dtype=np.float64)
    if np.any(low < 0) or np.any(high < 0):
        raise ValueError("each row needs ci_low <= mean_diff <= ci_high")
    networks = _ordered(table["network"], order)
    comparisons = _ordered(table["comparison"])
    colors = _category_colors(comparisons)
    m = len(comparisons)
    height = 1.2 + len(networks) * (0.2 + 0.12 * m)
    fig = Figure(figsize=(6.5, height), layout="constrained")
    ax = fig.add_subplot()
    row_of = {network: i for i, network in enumerate(networks)}
    for j, comparison in enumerate(comparisons):
        rows = table[table["comparison"] == comparison]
        offset = (j - (m - 1) / 2) * 0.7 / m
        y = rows["network"].map(row_of).to_numpy(dtype=np.float64) + offset
        mean, low, high = (rows[c].to_numpy(dtype=np.float64) for c in columns[2:])
        ax.errorbar(
            mean, y, xerr=[mean - low, high - mean], fmt="o", ms=4, capsize=2, lw=1.2,
            color=colors[comparison], label=str(comparison),
        )
    ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(range(len(networks)), [str(n) for n in networks])
    ax.set_ylim(len(networks) - 0.5, -0.5)
    ax.set_xlabel("difference in mean r (A - B of 'A vs B'; Pearson r)")
    ax.set_title("Model comparisons per network (mean and CI)")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=legend_columns([str(c) for c in comparisons], 6.5),
               fontsize=8, frameon=False)
    return fig


def legend_columns(labels: Sequence[str], width_in: float, fontsize: float = 8.0) -> int:
    """How many legend columns of `labels` fit across `width_in` inches (at least 1).

    Estimates a label's width as 0.6 x fontsize per character plus 0.7 inch for the
    marker and padding, so that a legend below a figure is not cut at its sides.
    """
    widest = max((len(label) for label in labels), default=0) * 0.6 * fontsize / 72 + 0.7
    return max(1, min(len(labels), int((width_in - 0.2) // widest)))
