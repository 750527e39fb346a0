import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from matplotlib.figure import Figure

from course_lib.data import load_mnist
from course_lib.plots import confusion_matrix, curves, figure_png, image_grid, scatter3d
from course_lib.train import History
from course_lib.widgets import (BUSY_TEXT, busy, busy_status, digit_framing_explorer, recall_figure, snapshot_slider,
                                threshold_explorer, while_busy)


@pytest.fixture(scope="module")
def mnist_test():
    return load_mnist(quiet=True)[1]


def test_framing_explorer_redraws_on_every_control(mnist_test):
    ui = digit_framing_explorer(mnist_test)
    assert ui.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    seen = {ui.image.value}
    texts = {ui.info.value}
    for name, value in (("box", 28), ("center", "box"), ("thickness", 2)):
        ui.controls[name].value = value  # what the browser sends when a student moves the control
        assert ui.image.value not in seen, f"image did not change after moving {name}"
        seen.add(ui.image.value)
        texts.add(ui.info.value)
    assert len(texts) == 4 and "box=28" in ui.info.value and "stroke=+2" in ui.info.value


def test_framing_explorer_bright_share_grows_when_zoomed(mnist_test):
    ui = digit_framing_explorer(mnist_test)
    share = lambda: float(ui.info.value.rsplit("<b>", 1)[1].split("%")[0])
    at_20 = share()
    ui.controls["box"].value = 28
    assert share() > at_20 * 1.5


def test_image_grid_and_png():
    fig = image_grid(torch.rand(12, 1, 8, 8), [str(i) for i in range(12)], ncols=5, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 15
    assert figure_png(fig)[:4] == b"\x89PNG"
    rgb = image_grid(np.random.rand(3, 3, 8, 8), ncols=3)
    assert len(rgb.axes) == 3
    with pytest.raises(ValueError, match="labels"):
        image_grid(torch.rand(2, 1, 4, 4), ["a"])
    with pytest.raises(ValueError, match="at least one"):
        image_grid(torch.rand(0, 1, 4, 4))


def test_confusion_matrix_counts():
    fig = confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], ["a", "b", "c"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1", "1", "0", "0", "1", "0", "0", "0", "1"]


def test_curves_split_losses_and_accuracies():
    hist = History([{"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5, "seconds": 1},
                    {"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.8, "seconds": 1}])
    fig = curves(hist)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss / error", "accuracy"]
    with pytest.raises(ValueError, match="empty"):
        curves({"loss": []})


def test_scatter3d():
    fig = scatter3d({"data": np.random.rand(5, 3), "model": np.random.rand(5, 3)}, ("t", "COD1", "Xv1"))
    assert isinstance(fig, go.Figure) and len(fig.data) == 2
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        scatter3d({"bad": np.zeros((4, 2))})


# --- the busy indicator shared by every widget ------------------------------------------------------------


def watch_busy(ui, control_names):
    """Record, at each new picture, the status text and whether the named controls were disabled."""
    seen = []
    ui.image.observe(lambda _c: seen.append((ui.busy.value, [ui.controls[n].disabled for n in control_names])),
                     names="value")
    return seen


def assert_idle(ui, control_names, disabled_before=None):
    assert ui.busy.value == ""
    assert [ui.controls[n].disabled for n in control_names] == (disabled_before or [False] * len(control_names))


def test_busy_disables_and_shows_then_restores_even_after_an_error():
    slider, button, status = w.IntSlider(), w.Button(disabled=True), busy_status()
    with busy([slider, button], status):
        assert status.value == BUSY_TEXT and slider.disabled and button.disabled
    assert status.value == "" and not slider.disabled and button.disabled  # each back to what it was

    @while_busy([slider, button], status)
    def fails() -> None:
        assert slider.disabled and status.value == BUSY_TEXT
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fails()
    assert status.value == "" and not slider.disabled and button.disabled


def test_framing_explorer_is_busy_while_redrawing(mnist_test):
    ui = digit_framing_explorer(mnist_test)
    names = ["box", "center", "thickness"]
    seen = watch_busy(ui, names)
    ui.controls["box"].value = 24
    assert seen == [(BUSY_TEXT, [True, True, True])]
    assert_idle(ui, names)


def test_threshold_and_snapshot_widgets_are_busy_while_redrawing():
    ui = threshold_explorer({"real": np.random.rand(50), "fake": np.random.rand(50)})
    seen = watch_busy(ui, ["threshold"])
    ui.controls["threshold"].value = 0.7
    assert seen == [(BUSY_TEXT, [True])]
    assert_idle(ui, ["threshold"])
    ui = snapshot_slider({1: torch.rand(4, 1, 8, 8), 2: torch.rand(4, 1, 8, 8)}, ncols=4)
    seen = watch_busy(ui, ["epoch"])
    ui.controls["epoch"].value = 1
    assert seen == [(BUSY_TEXT, [True])]
    assert_idle(ui, ["epoch"])


def test_widget_pictures_keep_their_own_size():
    ui = threshold_explorer({"real": np.random.rand(20)})
    assert ui.image.layout.align_self == "flex-start" and ui.image.layout.max_width == "100%"


def test_image_grid_captions_clear_the_row_above():
    import matplotlib
    cases = [(n, cell, dpi) for n in (20, 30) for cell in (0.7, 0.9, 1.0) for dpi in (72, 100)]  # 72: inline backend
    for n, cell, dpi in cases:
        with matplotlib.rc_context({"figure.dpi": dpi}):
            fig = image_grid(torch.rand(n, 1, 28, 28), [f"MNIST {i % 10}" for i in range(n)], ncols=10,
                             cell_inches=cell, title="a title")
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for row in range(1, n // 10):
            above = fig.axes[(row - 1) * 10].get_window_extent(renderer)
            caption = fig.axes[row * 10].title.get_window_extent(renderer)
            assert caption.y1 < above.y0, f"cell {cell}: a caption of row {row + 1} overlaps row {row}'s images"
        suptitle = fig._suptitle.get_window_extent(renderer)
        assert suptitle.y0 > fig.axes[0].title.get_window_extent(renderer).y1
        plt.close(fig)


def test_recall_legend_covers_no_bar():
    fig = recall_figure(np.ones(10), np.full(10, 0.95), np.zeros((10, 1, 28, 28)), "baseline 20px/mass")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    for bar in ax.patches:
        assert not legend.overlaps(bar.get_window_extent(renderer)), "the legend hides a bar"
    plt.close(fig)
