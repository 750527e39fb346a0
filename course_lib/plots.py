"""The course's standard pictures: image grids, confusion matrices, training curves, 3-D scatter."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image as PILImage

from course_lib.train import History

def _as_hwc(img: torch.Tensor | np.ndarray) -> np.ndarray:
    arr = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    if arr.ndim == 3 and arr.shape[0] in (1, 3):  # (C, H, W) -> (H, W, C)
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr

def image_grid(images: torch.Tensor | np.ndarray, labels: Sequence[str] | None = None, ncols: int = 10,
               title: str | None = None, cell_inches: float = 1.0, cmap: str = "gray") -> Figure:
    """A grid of images (N, C, H, W) or (N, H, W), with an optional caption under each."""
    n = len(images)
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    # Room above each row for its captions (two lines of 8-pt text), fixed in inches, so a caption can never
    # sit on the images of the row above whatever the cell size (tight_layout squeezed them together).
    caption = 0.32 if labels is not None else 0.04
    top = 0.35 if title else 0.05
    width, height = ncols * cell_inches, nrows * (cell_inches + caption) + top
    fig = plt.figure(figsize=(width, height))
    grid = fig.add_gridspec(nrows, ncols, left=0.01, right=0.99, bottom=0.01 / height,
                            top=1 - (top + caption) / height, wspace=0.08, hspace=caption / cell_inches)
    axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(ncols)] for r in range(nrows)])
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(_as_hwc(images[i]), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8, pad=3)
    if title:
        fig.suptitle(title, y=1 - 0.08 / height, va="top")
    return fig

def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str],
                     title: str | None = None, normalize: bool = False) -> Figure:
    """Confusion matrix (rows: true class, columns: predicted), counts or row-normalised recall."""
    from sklearn.metrics import ConfusionMatrixDisplay
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ConfusionMatrixDisplay.from_predictions(
        np.asarray(y_true), np.asarray(y_pred), labels=list(range(len(classes))), display_labels=list(classes),
        normalize="true" if normalize else None, values_format=".2f" if normalize else "d",
        ax=ax, colorbar=False, cmap="Blues")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig

def curves(history: History | dict[str, Sequence[float]], keys: Sequence[str] | None = None,
           title: str | None = None, xlabel: str = "epoch", logy: bool = False) -> Figure:
    """Line plot of metrics per epoch; losses and accuracies go on separate axes."""
    if isinstance(history, History):
        data = {k: history.column(k) for k in (keys or [k for k in history.epochs[0] if k not in ("epoch", "seconds")])}
    else:
        data = {k: list(v) for k, v in history.items() if keys is None or k in keys}
    if not data or not any(data.values()):
        raise ValueError("nothing to plot: the history is empty")
    groups = {"loss / error": [k for k in data if "acc" not in k], "accuracy": [k for k in data if "acc" in k]}
    groups = {g: ks for g, ks in groups.items() if ks}
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.5), squeeze=False)
    for ax, (group, ks) in zip(axes.flat, groups.items()):
        for k in ks:
            ax.plot(range(1, len(data[k]) + 1), data[k], marker="o" if len(data[k]) < 30 else None, label=k)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(group)
        if logy and group != "accuracy":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig

def scatter3d(points: dict[str, np.ndarray], axis_titles: Sequence[str] = ("x", "y", "z"), title: str | None = None):
    """A rotatable plotly 3-D scatter of one or more named (N, 3) point sets."""
    import plotly.graph_objects as go
    fig = go.Figure()
    for name, pts in points.items():
        pts = np.asarray(pts)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"{name}: expected points of shape (N, 3), got {pts.shape}")
        fig.add_trace(go.Scatter3d(x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name=name,
                                   marker={"size": 3}))
    fig.update_layout(title=title, height=500, margin={"l": 0, "r": 0, "t": 40 if title else 0, "b": 0},
                      scene={"xaxis_title": axis_titles[0], "yaxis_title": axis_titles[1], "zaxis_title": axis_titles[2]})
    return fig

# A notebook's output area is about 850 px wide on a 1280 px laptop screen with JupyterLab's side bar
# open; a picture wider than that is shrunk by the browser and its text becomes hard to read.
MAX_WIDTH_PX = 820


def figure_png(fig: Figure, dpi: int = 100, close: bool = True, max_width: int = MAX_WIDTH_PX) -> bytes:
    """PNG bytes of a matplotlib figure (for ipywidgets.Image), at most ``max_width`` px wide; closes it by default."""
    dpi = min(dpi, max_width / fig.get_size_inches()[0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    if close:
        plt.close(fig)
    return buf.getvalue()

def show(fig: Figure) -> None:
    """Display a figure once, at most the notebook's width, sharp on high-density screens and when zoomed; close it.

    The PNG is drawn at twice the pixels it is shown with, so nothing is shrunk by the browser and a
    student who zooms in sees detail, not blur.
    """
    from IPython.display import Image, display
    width_in = fig.get_size_inches()[0]
    shown = min(100 * width_in, MAX_WIDTH_PX)          # CSS pixels: 100 dpi, capped at the notebook's width
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=2 * shown / width_in, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    with PILImage.open(io.BytesIO(data)) as im:
        pixels = im.size[0]
    display(Image(data=data, width=min(round(pixels / 2), MAX_WIDTH_PX)))

__all__ = ["image_grid", "confusion_matrix", "curves", "scatter3d", "figure_png", "show"]
