"""Surface maps: colour direction per hemisphere, input checks, CIFTI-length input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.image import imread
from matplotlib.transforms import Affine2D

from vlm_brain.reporting.surface import (
    N_CORTEX,
    N_GRAYORDINATES,
    N_LEFT_CORTEX,
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    polarity_maps_figure,
    surface_maps_figure,
)


def left_plus_right_minus(n: int = N_CORTEX) -> np.ndarray:
    values = np.full(n, 99.0)  # non-cortex part of a CIFTI row must be ignored
    values[:N_LEFT_CORTEX] = 1.0
    values[N_LEFT_CORTEX:N_CORTEX] = -1.0
    return values


def panel_colors(fig, row: int) -> list[np.ndarray]:
    """(F, 4) face colours of the left and right panel of one row."""
    surface_axes = [ax for ax in fig.axes if ax.name == "3d"]
    return [np.asarray(ax.collections[0].get_facecolor()) for ax in surface_axes[2 * row : 2 * row + 2]]


def fraction_of(colors: np.ndarray, rgba) -> float:
    return float(np.mean(np.all(np.isclose(colors, rgba, atol=1e-6), axis=1)))


@pytest.fixture(scope="module")
def signed_figure():
    return surface_maps_figure({"signed": left_plus_right_minus()}, colorbar_label="r")


def test_one_row_two_panels_and_colorbar(signed_figure):
    assert len([ax for ax in signed_figure.axes if ax.name == "3d"]) == 2
    assert len(signed_figure.axes) == 3
    assert signed_figure.axes[-1].get_ylabel() == "r"
    assert "signed" in [t.get_text() for t in signed_figure.texts]


def test_left_is_red_right_is_blue(signed_figure):
    left, right = panel_colors(signed_figure, 0)
    assert len(left) == len(right) == 64_980  # every triangle drawn, none subsampled
    # red minus blue over all faces; the grey medial wall adds 0
    assert np.mean(left[:, 0] - left[:, 2]) > 0.15
    assert np.mean(right[:, 0] - right[:, 2]) < -0.15
    cmap = colormaps["RdBu_r"]
    assert fraction_of(left, cmap(1.0)) > 0.8  # vmax defaults to max |value| = 1
    assert fraction_of(right, cmap(0.0)) > 0.8


def test_rendered_png_panels_differ_in_colour():
    fig = surface_maps_figure({"signed": left_plus_right_minus()})
    buffer = io.BytesIO()
    dpi = 50
    fig.savefig(buffer, format="png", dpi=dpi)
    image = imread(io.BytesIO(buffer.getvalue()))[..., :3]
    height = image.shape[0]
    red_minus_blue = []
    for ax in fig.axes[:2]:
        # axes box in display pixels at the figure's own dpi, scaled to the PNG's
        box = ax.get_window_extent().transformed(Affine2D().scale(dpi / fig.dpi))
        x0, x1 = int(box.x0), int(box.x1)
        y0, y1 = height - int(box.y1), height - int(box.y0)
        region = image[y0:y1, x0:x1].reshape(-1, 3)
        drawn = region[region.min(axis=1) < 0.95]  # not white background
        assert len(drawn) > 100
        red_minus_blue.append(float(np.mean(drawn[:, 0] - drawn[:, 2])))
    assert red_minus_blue[0] > 0.1 > -0.1 > red_minus_blue[1]


def test_full_cifti_length_gives_the_same_colours(signed_figure):
    fig = surface_maps_figure({"signed": left_plus_right_minus(N_GRAYORDINATES)})
    for got, expected in zip(panel_colors(fig, 0), panel_colors(signed_figure, 0), strict=True):
        np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize("n", [N_CORTEX - 1, N_LEFT_CORTEX, 32_492, N_GRAYORDINATES + 1])
def test_wrong_length_names_the_map(n):
    with pytest.raises(ValueError, match=r"'bad map'.*59412.*91282"):
        surface_maps_figure({"ok": np.zeros(N_CORTEX), "bad map": np.zeros(n)})


def test_two_dimensional_map_raises():
    with pytest.raises(ValueError, match="'m'"):
        surface_maps_figure({"m": np.zeros((2, N_CORTEX))})


def test_nan_is_not_coloured_and_rows_follow_keys():
    values = left_plus_right_minus()
    values[:N_LEFT_CORTEX] = np.nan
    fig = surface_maps_figure({"first": left_plus_right_minus(), "second": values}, vmax=2.0)
    assert len([ax for ax in fig.axes if ax.name == "3d"]) == 4
    assert [t.get_text() for t in fig.texts] == ["first", "second"]
    left, right = panel_colors(fig, 1)
    np.testing.assert_allclose(left[:, 0], left[:, 2])  # only greys: nothing coloured
    np.testing.assert_allclose(left[:, 1], left[:, 2])
    assert fraction_of(right, colormaps["RdBu_r"](0.25)) > 0.8  # -1 on a [-2, 2] scale


def test_non_symmetric_scale_uses_the_data_range():
    values = left_plus_right_minus() + 1.0  # left 2, right 0
    fig = surface_maps_figure({"m": values}, cmap="viridis", symmetric=False)
    left, right = panel_colors(fig, 0)
    assert fraction_of(left, colormaps["viridis"](1.0)) > 0.8
    assert fraction_of(right, colormaps["viridis"](0.0)) > 0.8


def test_polarity_colours_and_checks():
    signs = np.zeros(N_CORTEX, dtype=int)
    signs[:N_LEFT_CORTEX] = 1
    signs[N_LEFT_CORTEX + 5000 :] = -1
    fig = polarity_maps_figure({"clip.image L10": signs})
    left, right = panel_colors(fig, 0)
    assert fraction_of(left, POSITIVE_COLOR) > 0.8
    assert fraction_of(left, NEGATIVE_COLOR) == 0
    assert fraction_of(right, NEGATIVE_COLOR) > 0.6
    assert fraction_of(right, POSITIVE_COLOR) == 0
    assert len(fig.legends) == 1
    with pytest.raises(ValueError, match="'bad'.*-1, 0, \\+1"):
        polarity_maps_figure({"bad": np.full(N_CORTEX, 2)})
