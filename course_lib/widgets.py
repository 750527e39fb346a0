"""Widgets shared by the notebooks. Each returns an ipywidgets container whose pictures are
``ipywidgets.Image`` PNGs and whose numbers are ``HTML`` text, so they update live in JupyterLab
and can be tested by setting a control's ``.value`` exactly as the browser does."""

from __future__ import annotations

import ipywidgets as w
import numpy as np
import torch

from course_lib.data.course_digits import DigitPrep, prepare_digits
from course_lib.data.imageset import ImageSet
from course_lib.plots import figure_png, image_grid


def _first_of_each_class(y: np.ndarray, n_classes: int = 10) -> np.ndarray:
    return np.array([np.flatnonzero(y == c)[0] for c in range(n_classes)])


def digit_framing_explorer(mnist: ImageSet) -> w.VBox:
    """Sliders over the course digits' framing (box size, centring, stroke) beside real MNIST digits."""
    from sklearn.datasets import load_digits
    raw = load_digits()
    pick = _first_of_each_class(raw.target)
    raw_images = raw.images[pick]  # (10, 8, 8), values 0..16
    mnist_pick = _first_of_each_class(mnist.y.numpy())
    mnist_images = mnist.x[mnist_pick, 0].numpy()  # (10, 28, 28)
    mnist_ink = float((mnist.x > 0.5).float().mean())

    box = w.IntSlider(value=20, min=8, max=28, description="box (px)", continuous_update=False)
    center = w.Dropdown(options=[("centre of mass", "mass"), ("bounding box", "box")], value="mass",
                        description="centring")
    thickness = w.IntSlider(value=0, min=-1, max=2, description="stroke (px)", continuous_update=False)
    image = w.Image(format="png")
    info = w.HTML()

    def update(_change: object = None) -> None:
        prep = DigitPrep(box=box.value, center=center.value, thickness=thickness.value)
        course = prepare_digits(raw_images, prep)
        grid = np.concatenate([mnist_images, course])
        labels = [f"MNIST {d}" for d in range(10)] + [f"course {d}" for d in range(10)]
        image.value = figure_png(image_grid(torch.from_numpy(grid), labels, ncols=10, cell_inches=0.9))
        ink = float((torch.from_numpy(course) > 0.5).float().mean())
        info.value = (f"Share of bright pixels (&gt; 0.5): MNIST <b>{mnist_ink:.1%}</b>, "
                      f"course digits with box={prep.box}, centring={prep.center}, "
                      f"stroke={prep.thickness:+d}: <b>{ink:.1%}</b>")

    for control in (box, center, thickness):
        control.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([box, center, thickness]), image, info])
    ui.controls = {"box": box, "center": center, "thickness": thickness}  # for tests and notebooks
    ui.image, ui.info = image, info
    return ui
