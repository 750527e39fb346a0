import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from matplotlib.figure import Figure

from course_lib.data import load_mnist
from course_lib.plots import confusion_matrix, curves, figure_png, image_grid, scatter3d
from course_lib.train import History
from course_lib.widgets import digit_framing_explorer


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
