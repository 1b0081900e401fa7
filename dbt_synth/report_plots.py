"""The report's figures: matplotlib (Agg, no display) rendered to base64 PNG for inline HTML."""

from __future__ import annotations

import base64
import io

import numpy as np

REAL_COLOR = "#4C72B0"
TWIN_COLOR = "#DD8452"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def numeric_histogram(name: str, real: np.ndarray, twin: np.ndarray, edges: np.ndarray) -> str:
    """Real and twin densities over the same bins (`real`, `twin`: counts per bin, counted in
    the warehouse), drawn as outlines so both stay visible."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.2, 2.6))
    for counts, label, color in ((real, "real", REAL_COLOR), (twin, "twin", TWIN_COLOR)):
        filled = counts > 0  # an empty side stays empty, as a histogram of no values is drawn
        axes.hist(
            edges[:-1][filled],
            bins=edges,
            weights=counts[filled],
            density=True,
            histtype="step",
            lw=1.6,
            label=label,
            color=color,
        )
    axes.set_title(name, fontsize=10)
    axes.legend(fontsize=8)
    axes.tick_params(labelsize=7)
    return _png(figure)


def category_bars(name: str, labels: list[str], real: np.ndarray, twin: np.ndarray) -> str:
    """Shares of the most common real categories, real and twin side by side."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.2, 2.6))
    x = np.arange(len(labels))
    axes.bar(x - 0.2, real, width=0.4, label="real", color=REAL_COLOR)
    axes.bar(x + 0.2, twin, width=0.4, label="twin", color=TWIN_COLOR)
    axes.set_xticks(x, [label[:14] for label in labels], rotation=45, ha="right", fontsize=7)
    axes.set_ylabel("share", fontsize=8)
    axes.set_title(name, fontsize=10)
    axes.legend(fontsize=8)
    axes.tick_params(axis="y", labelsize=7)
    return _png(figure)


def association_heatmaps(names: list[str], real: np.ndarray, twin: np.ndarray) -> str:
    """Pairwise association (Cramér's V) of the real table, the twin and their difference."""
    plt = _pyplot()
    size = max(3.0, 0.45 * len(names) + 1.5)
    figure, axes = plt.subplots(1, 3, figsize=(3 * size, size))
    panels = ((real, "real"), (twin, "twin"), (np.abs(real - twin), "|real − twin|"))
    for ax, (matrix, title) in zip(axes, panels, strict=True):
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
    figure.colorbar(image, ax=list(axes), shrink=0.7)
    return _png(figure)
