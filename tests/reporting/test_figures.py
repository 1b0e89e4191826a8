"""Figures of tidy tables: panel counts, plotted data equal to the input, checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from vlm_brain.reporting.figures import (
    MAX_COLUMNS,
    ablation_curves,
    baseline_comparison,
    dice_matrices,
    layer_profiles,
    network_layer_heatmaps,
    overlap_curves,
    polarity_profiles,
)

NETWORKS = ["Visual", "Somatomotor", "Default"]
STREAMS = {"clip.image": 4, "clip.text": 4, "meter.image": 6, "meter.text": 6, "vit.image": 3}


@pytest.fixture
def encoding_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"stream_label": s, "network": n, "layer": layer, "r_mean": rng.normal(0.05, 0.05)}
        for s, n_layers in STREAMS.items()
        for n in NETWORKS
        for layer in range(n_layers)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # rows in any order


@pytest.fixture
def ablation_table() -> pd.DataFrame:
    rows = [
        {
            "layer_name": layer,
            "condition": condition,
            "fraction": f,
            "r_mean": 0.1 - slope * f,
            "r_low": 0.08 - slope * f,
            "r_high": 0.12 - slope * f,
        }
        for layer in ("clip.image L3", "clip.image L9")
        for condition, slope in (("ablation", 0.08), ("shuffled control", 0.0))
        for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    return pd.DataFrame(rows).iloc[::-1]  # fractions descending in the input


def panels(fig: Figure) -> list:
    """Data panels: axes that are not colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def expected_grid(table: pd.DataFrame, stream: str) -> np.ndarray:
    rows = table[table["stream_label"] == stream]
    grid = rows.pivot(index="network", columns="layer", values="r_mean")
    order = list(pd.unique(table["network"]))
    return grid.loc[order, sorted(grid.columns)].to_numpy()


def test_heatmap_panels_and_image_data(encoding_table):
    fig = network_layer_heatmaps(encoding_table, title="r per network")
    axes = panels(fig)
    assert len(axes) == len(STREAMS)
    assert len(fig.axes) == len(STREAMS) + 1  # one shared colorbar
    for ax in axes:
        stream = ax.get_title()
        np.testing.assert_allclose(ax.images[0].get_array(), expected_grid(encoding_table, stream))
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == list(pd.unique(encoding_table["network"]))
    assert fig._suptitle.get_text() == "r per network"


def test_heatmap_scale_is_shared_and_diverging_for_mixed_signs(encoding_table):
    fig = network_layer_heatmaps(encoding_table)
    norms = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in panels(fig)}
    assert len(norms) == 1
    ((vmin, vmax),) = norms
    assert vmin == -vmax == -encoding_table["r_mean"].abs().max()
    positive = encoding_table.assign(r_mean=encoding_table["r_mean"].abs() + 0.01)
    image = panels(network_layer_heatmaps(positive))[0].images[0]
    assert image.norm.vmin == pytest.approx(positive["r_mean"].min())


def test_missing_cells_are_nan(encoding_table):
    table = encoding_table[
        ~((encoding_table["stream_label"] == "vit.image") & (encoding_table["network"] == "Default"))
    ]
    fig = network_layer_heatmaps(table)
    ax = next(ax for ax in panels(fig) if ax.get_title() == "vit.image")
    data = np.ma.filled(ax.images[0].get_array(), np.nan)
    assert data.shape == (len(NETWORKS), STREAMS["vit.image"])
    row = list(pd.unique(table["network"])).index("Default")
    assert np.isnan(data[row]).all()
    assert np.isfinite(np.delete(data, row, axis=0)).all()


def test_panels_wrap_after_four_columns(encoding_table):
    fig = network_layer_heatmaps(encoding_table)
    x0 = {round(ax.get_position().x0, 3) for ax in panels(fig)}
    y0 = {round(ax.get_position().y0, 3) for ax in panels(fig)}
    assert len(x0) == MAX_COLUMNS and len(y0) == 2
    one = network_layer_heatmaps(encoding_table[encoding_table["stream_label"] == "clip.text"])
    assert one.get_figwidth() < fig.get_figwidth()


@pytest.mark.parametrize(
    ("function", "column"),
    [
        (network_layer_heatmaps, "network"),
        (layer_profiles, "layer"),
        (polarity_profiles, "n_pos"),
        (ablation_curves, "r_high"),
        (overlap_curves, "dice"),
        (baseline_comparison, "ci_low"),
    ],
)
def test_missing_column_is_named(function, column):
    columns = {
        "stream_label": ["a"], "network": ["n"], "layer": [0], "r_mean": [0.1],
        "n_pos": [1], "n_neg": [1], "layer_name": ["L"], "condition": ["c"],
        "fraction": [0.0], "r_low": [0.0], "r_high": [0.2], "pair": ["p"],
        "depth": [0.0], "dice": [0.5], "comparison": ["a vs b"], "mean_diff": [0.0],
        "ci_low": [-0.1], "ci_high": [0.1],
    }
    table = pd.DataFrame(columns).drop(columns=[column])
    with pytest.raises(ValueError, match=f"missing column.*'{column}'"):
        function(table)


def test_heatmap_value_column_and_duplicates(encoding_table):
    with pytest.raises(ValueError, match="'r_norm'"):
        network_layer_heatmaps(encoding_table, value="r_norm")
    with pytest.raises(ValueError, match="repeated"):
        network_layer_heatmaps(pd.concat([encoding_table, encoding_table.head(1)]))


def test_layer_profiles_lines_follow_the_table(encoding_table):
    fig = layer_profiles(encoding_table, networks=["Default", "Visual"])
    axes = panels(fig)
    assert len(axes) == len(STREAMS)
    assert len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["Default", "Visual"]
    ax = next(ax for ax in axes if ax.get_title() == "meter.text")
    assert len(ax.lines) == 2
    rows = encoding_table.query("stream_label == 'meter.text' and network == 'Visual'")
    rows = rows.sort_values("layer")
    np.testing.assert_array_equal(ax.lines[1].get_xdata(), rows["layer"])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), rows["r_mean"])
    with pytest.raises(ValueError, match="'Limbic'"):
        layer_profiles(encoding_table, networks=["Visual", "Limbic"])


def test_dice_matrices():
    a = np.array([[1.0, 0.2], [0.2, 1.0]])
    b = np.eye(3)
    b[0, 2] = np.nan
    fig = dice_matrices({"CLIP": a, "METER": b})
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["CLIP", "METER"]
    assert len(fig.axes) == 3  # one shared colorbar
    np.testing.assert_allclose(axes[0].images[0].get_array(), a)
    np.testing.assert_allclose(np.ma.filled(axes[1].images[0].get_array(), np.nan), b)
    assert {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in axes} == {(0.0, 1.0)}
    with pytest.raises(ValueError, match="'bad'.*square"):
        dice_matrices({"bad": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"'big'.*\[0, 1\]"):
        dice_matrices({"big": np.full((2, 2), 1.5)})


def test_ablation_curve_data_equal_the_input(ablation_table):
    fig = ablation_curves(ablation_table)
    axes = panels(fig)
    assert [ax.get_title() for ax in axes] == ["clip.image L9", "clip.image L3"]
    assert len(fig.legends) == 1
    for ax in axes:
        assert len(ax.lines) == 2 and len(ax.collections) == 2  # curve + band each
        for line, condition in zip(ax.lines, ["shuffled control", "ablation"], strict=True):
            rows = ablation_table[
                (ablation_table["layer_name"] == ax.get_title())
                & (ablation_table["condition"] == condition)
            ].sort_values("fraction")
            np.testing.assert_allclose(line.get_xdata(), rows["fraction"])
            np.testing.assert_allclose(line.get_ydata(), rows["r_mean"])
    with pytest.raises(ValueError, match="fraction"):
        ablation_curves(ablation_table.assign(fraction=ablation_table["fraction"] * 100))


def test_overlap_curves():
    table = pd.DataFrame(
        {
            "pair": ["CLIP image vs text"] * 3 + ["METER fusion image vs text"] * 3,
            "depth": [1.0, 0.0, 0.5] * 2,
            "dice": [0.3, 0.1, 0.2, 0.6, 0.4, 0.5],
        }
    )
    fig = overlap_curves(table)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == list(pd.unique(table["pair"]))
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.1, 0.2, 0.3])
    assert len(ax.collections) == 0
    banded = overlap_curves(table.assign(dice_low=table["dice"] - 0.1, dice_high=table["dice"] + 0.1))
    assert len(banded.axes[0].collections) == 2
    with pytest.raises(ValueError, match="dice_high"):
        overlap_curves(table.assign(dice_low=0.0))


def test_polarity_profiles_bars():
    table = pd.DataFrame(
        {
            "stream_label": ["clip.image"] * 3 + ["clip.text"] * 3,
            "layer": [2, 0, 1] * 2,
            "n_pos": [5, 1, 3, 0, 2, 4],
            "n_neg": [2, 0, 7, 1, 1, 1],
        }
    )
    fig = polarity_profiles(table)
    axes = panels(fig)
    assert len(axes) == 2
    positive, negative = axes[0].containers
    assert [bar.get_height() for bar in positive] == [1, 3, 5]
    assert [bar.get_height() for bar in negative] == [0, -7, -2]
    with pytest.raises(ValueError, match=">= 0"):
        polarity_profiles(table.assign(n_neg=-table["n_neg"]))


def test_baseline_comparison_points_and_intervals():
    table = pd.DataFrame(
        {
            "network": ["Visual", "Default", "Visual", "Default"],
            "comparison": ["clip.image vs vit.image"] * 2 + ["clip.text vs bert.text"] * 2,
            "mean_diff": [0.02, -0.01, 0.00, 0.03],
            "ci_low": [0.01, -0.03, -0.02, 0.01],
            "ci_high": [0.04, 0.00, 0.01, 0.05],
        }
    )
    fig = baseline_comparison(table)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Visual", "Default"]
    first = ax.containers[0]
    np.testing.assert_allclose(first.lines[0].get_xdata(), [0.02, -0.01])
    (segments,) = first.lines[2]
    np.testing.assert_allclose([s[:, 0] for s in segments.get_segments()], [[0.01, 0.04], [-0.03, 0.0]])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(pd.unique(table["comparison"]))
    with pytest.raises(ValueError, match="ci_low <= mean_diff <= ci_high"):
        baseline_comparison(table.assign(ci_high=0.0))


def test_every_function_returns_an_unmanaged_figure(encoding_table, ablation_table):
    figures = [
        network_layer_heatmaps(encoding_table),
        layer_profiles(encoding_table),
        ablation_curves(ablation_table),
        dice_matrices({"a": np.eye(2)}),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert fig.canvas.manager is None  # not registered with pyplot


# --------------------------------------------------------------------------- network order, clipping
ORDER = ("Visual", "Auditory", "Somatomotor", "Language", "Default")


def test_networks_follow_the_given_order_not_the_table(encoding_table):
    table = pd.concat([encoding_table, encoding_table.query("network == 'Default'").assign(network="Extra")])
    table = table.sort_values("network")  # alphabetical in the input: Default, Extra, Somatomotor, Visual
    expected = ["Visual", "Somatomotor", "Default", "Extra"]  # order first (absent ones skipped), then the rest
    heatmap = panels(network_layer_heatmaps(table, order=ORDER))[0]
    assert [t.get_text() for t in heatmap.get_yticklabels()] == expected
    profiles = layer_profiles(table, order=ORDER)
    assert [t.get_text() for t in profiles.legends[0].get_texts()] == expected
    rows = table.drop_duplicates("network").assign(comparison="a vs b", mean_diff=0.0, ci_low=-0.1, ci_high=0.1)
    (ax,) = baseline_comparison(rows, order=ORDER).axes
    assert [t.get_text() for t in ax.get_yticklabels()] == expected
    # without an order: first appearance, as before
    assert [t.get_text() for t in panels(network_layer_heatmaps(table))[0].get_yticklabels()] == [
        "Default", "Extra", "Somatomotor", "Visual"]


def test_baseline_legend_is_inside_the_figure():
    comparisons = ["clip.image vs vit.image", "clip.text vs roberta.text", "meter.fusion_image_cross vs vit.image",
                   "meter.fusion_text_cross vs roberta.text"]
    table = pd.DataFrame([{"network": n, "comparison": c, "mean_diff": 0.1, "ci_low": 0.0, "ci_high": 0.2}
                          for c in comparisons for n in ("Language", "Posterior-Multimodal")])
    fig = baseline_comparison(table)
    fig.draw_without_rendering()
    legend = fig.legends[0].get_window_extent()
    page = fig.bbox
    assert page.x0 <= legend.x0 and legend.x1 <= page.x1 and page.y0 <= legend.y0  # nothing cut at the sides
    (ax,) = fig.axes
    assert legend.y1 <= ax.get_tightbbox().y0 + 1  # below the axes, not over them
    assert [t.get_text() for t in fig.legends[0].get_texts()] == comparisons
