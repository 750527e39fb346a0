"""Widgets shared by the notebooks. Each returns an ipywidgets container whose pictures are
``ipywidgets.Image`` PNGs and whose numbers are ``HTML`` text, so they update live in JupyterLab
and can be tested by setting a control's ``.value`` exactly as the browser does."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import Any

import ipywidgets as w
import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib.data.course_digits import DigitPrep, prepare_digits
from course_lib.data.imageset import ImageSet
from course_lib.plots import figure_png, image_grid


BUSY_TEXT = "<span style='color:#a60'>&#9203; working...</span>"


def picture(fmt: str = "png") -> w.Image:
    """An image widget shown at its own pixel size, never wider than the notebook.

    In a VBox a plain ``Image`` is stretched to the full width (a 256-px preview became ~960 px);
    ``align_self`` stops the stretch and ``max_width`` keeps a wide figure inside the page.
    """
    return w.Image(format=fmt, layout=w.Layout(align_self="flex-start", max_width="100%", height="auto"))


def busy_status() -> w.HTML:
    """An empty status line that :func:`busy` fills while a widget is working."""
    return w.HTML("", layout=w.Layout(min_width="110px"))


@contextmanager
def busy(controls: Sequence[w.Widget], status: w.HTML, text: str = BUSY_TEXT) -> Iterator[None]:
    """Disable ``controls`` and show ``text`` in ``status`` for the block; both restored in ``finally``."""
    before = [getattr(c, "disabled", None) for c in controls]
    old_text = status.value
    status.value = text
    for c in controls:
        if hasattr(c, "disabled"):
            c.disabled = True
    try:
        yield
    finally:
        for c, was in zip(controls, before):
            if was is not None:
                c.disabled = was
        status.value = old_text


def while_busy(controls: Sequence[w.Widget], status: w.HTML) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of :func:`busy` for a widget callback."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with busy(controls, status):
                return fn(*args, **kwargs)
        return inner
    return wrap


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
    image = picture()
    info = w.HTML()
    status = busy_status()

    @while_busy((box, center, thickness), status)
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
    ui = w.VBox([w.HBox([box, center, thickness, status]), image, info])
    ui.controls = {"box": box, "center": center, "thickness": thickness}  # for tests and notebooks
    ui.image, ui.info, ui.busy = image, info, status
    return ui


def autoencoder_explorer(datasets: dict, seed: int = 0) -> w.VBox:
    """Retrain the NumPy autoencoder live: data set, hidden width, activations, learning rate, epochs.

    ``datasets`` maps a name to a :class:`course_lib.data.bioprocess.Splits`. Shows the energy
    curves, the per-layer gradient norms and a 3-D view of data vs. reconstruction, and the test
    energy / validation error beside the document's Table I row for the same width. Turning the view
    angle only re-draws; other controls retrain, except back to one of the last few settings (kept).
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    from course_lib import reference
    from course_lib.models.numpy_autoencoder import (ACTIVATIONS, DivergedError, NumpyAutoencoder, energy,
                                                     error_norm, train_numpy)

    table1 = reference.load("000_table1_energy").set_index("hidden_neurons")
    acts = sorted(ACTIVATIONS)
    wide = {"description_width": "initial"}
    data = w.Dropdown(options=list(datasets), description="data set")
    hidden = w.IntSlider(value=7, min=1, max=12, description="hidden", continuous_update=False)
    act = [w.Dropdown(options=acts, value=v, description=f"f{i + 1}", layout=w.Layout(width="160px"))
           for i, v in enumerate(("relu", "relu", "linear"))]
    lr = w.FloatLogSlider(value=0.05, base=10, min=-3, max=0, description="learning rate", continuous_update=False,
                          style=wide, layout=w.Layout(width="360px"))
    epochs = w.IntSlider(value=300, min=10, max=2000, step=10, description="epochs", continuous_update=False)
    azimuth = w.IntSlider(value=-60, min=-180, max=180, step=15, description="view angle", continuous_update=False,
                          style=wide)
    image = picture()
    info = w.HTML()
    status = busy_status()
    controls = (data, hidden, *act, lr, epochs, azimuth)
    trained: dict = {"results": {}, "trainings": 0}  # the last few trained networks, by their settings
    keep = 4  # ours: enough to go back to the previous settings instantly, small in memory

    def settings() -> tuple:
        return (data.value, hidden.value, tuple(a.value for a in act), lr.value, epochs.value)

    def train() -> tuple | None:
        """Train for the current settings, or reuse the network trained for exactly these settings."""
        key = settings()
        results = trained["results"]
        if key in results:
            return results[key]
        splits = datasets[data.value]
        model = NumpyAutoencoder.create(hidden.value, key[2], seed=seed)
        trained["trainings"] += 1
        try:
            hist = train_numpy(model, splits.train, epochs=epochs.value, lr=lr.value,
                               test=splits.test, validation=splits.validation, seed=seed)
        except DivergedError as exc:
            info.value = f"<b style='color:#b00'>Training diverged:</b> {exc}"
            return None
        results[key] = (splits, model, hist)
        while len(results) > keep:
            results.pop(next(iter(results)))
        return results[key]

    @while_busy(controls, status)
    def update(_change: object = None) -> None:
        result = train()
        if result is None:
            return
        splits, model, hist = result
        e_test = energy(model(splits.test), splits.test)
        v_err = error_norm(model(splits.validation), splits.validation)
        gw, _ = hist.grad_norm_array()
        fig = plt.figure(figsize=(14, 4.4))
        grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.35])
        ax1 = fig.add_subplot(grid[0, 0])
        for name, values in (("train", hist.train_energy), ("test", hist.test_energy),
                             ("validation", hist.validation_energy)):
            ax1.semilogy(range(1, len(values) + 1), values, label=name)
        ax1.set(xlabel="epoch", ylabel="energy E", title="energy per epoch")
        ax1.legend()
        ax2 = fig.add_subplot(grid[0, 1])
        for layer in range(gw.shape[1]):
            ax2.semilogy(gw[:, layer] + 1e-12, lw=0.6, label=f"||dE/dW{layer + 1}||")
        ax2.set(xlabel="update step", title="gradient norm per layer")
        ax2.legend(fontsize=9)
        ax3 = fig.add_subplot(grid[0, 2], projection="3d")
        all_x = np.concatenate([splits.train, splits.test, splits.validation])
        recon = model(all_x)
        ax3.scatter(*all_x.T, s=6, label="data")
        ax3.scatter(*recon.T, s=6, label="reconstruction")
        ax3.set(xlabel="t", ylabel="COD1", zlabel="Xv1", title="scaled data vs. reconstruction")
        ax3.view_init(elev=20, azim=azimuth.value)
        ax3.legend(fontsize=9, loc="upper left")
        fig.tight_layout()
        image.value = figure_png(fig)
        doc = table1.loc[hidden.value] if hidden.value in table1.index else None
        row = pd.DataFrame({"test energy": [e_test], "validation error": [v_err]}, index=["this run"])
        if doc is not None:
            row.loc["document (Table I)"] = [doc["energy_test"], doc["validation_error"]]
        info.value = row.to_html(float_format=lambda v: f"{v:.4g}")

    for control in controls:
        control.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([data, hidden, lr, status]), w.HBox([*act, epochs]), azimuth, image, info])
    ui.controls = {"data": data, "hidden": hidden, "f1": act[0], "f2": act[1], "f3": act[2], "lr": lr,
                   "epochs": epochs, "azimuth": azimuth}
    ui.image, ui.info, ui.busy = image, info, status
    ui.trainings = lambda: trained["trainings"]  # how many times a network was trained (tests)
    return ui


def recall_figure(base_recall: np.ndarray, recall: np.ndarray, examples: np.ndarray, baseline_label: str) -> Figure:
    """Per-class recall bars (baseline vs. this framing) beside one framed example of each digit."""
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(11, 3.2))
    ax = fig.add_axes([0.05, 0.15, 0.42, 0.75])
    idx = np.arange(10)
    ax.bar(idx - 0.2, base_recall, 0.4, label=baseline_label, color="lightgray")
    ax.bar(idx + 0.2, recall, 0.4, label="this framing", color="tab:blue")
    # the legend sits in a band above recall 1, where no bar can reach
    ax.set(xticks=idx, ylim=(0, 1.3), yticks=np.linspace(0, 1, 6), xlabel="digit", ylabel="recall",
           title="per-class recall on course digits")
    ax.legend(fontsize=8, loc="upper center", ncol=2, frameon=False)
    for i in range(10):
        sub = fig.add_axes([0.52 + (i % 5) * 0.095, 0.52 - (i // 5) * 0.45, 0.085, 0.38])
        sub.imshow(examples[i, 0], cmap="gray", vmin=0, vmax=1)
        sub.axis("off")
    return fig


def transfer_explorer(model: "torch.nn.Module", raw_images: np.ndarray, labels: np.ndarray,
                      baseline: DigitPrep | None = None) -> w.VBox:
    """Re-frame the course digits (box, centring, stroke) and re-score an MNIST-trained model live.

    ``raw_images`` are the course digits before framing (e.g. scikit-learn's 8x8 scans), ``labels``
    their classes. Shows the accuracy and per-class recall beside those of the ``baseline`` framing.
    """
    from course_lib.data.course_digits import MNIST_LIKE
    from course_lib.metrics import per_class_recall, predict_proba

    baseline = baseline or MNIST_LIKE
    labels = np.asarray(labels)

    def score(prep: DigitPrep) -> tuple[float, np.ndarray, np.ndarray]:
        x = torch.from_numpy(prepare_digits(raw_images, prep)).unsqueeze(1)
        pred = predict_proba(model, x).argmax(1).numpy()
        return float(np.mean(pred == labels)), per_class_recall(labels, pred, 10), x[_first_of_each_class(labels)].numpy()

    base_acc, base_recall, _ = score(baseline)
    box = w.IntSlider(value=baseline.box, min=8, max=28, description="box (px)", continuous_update=False)
    center = w.Dropdown(options=[("centre of mass", "mass"), ("bounding box", "box")], value=baseline.center,
                        description="centring")
    thickness = w.IntSlider(value=baseline.thickness, min=-1, max=2, description="stroke (px)", continuous_update=False)
    image = picture()
    info = w.HTML()
    status = busy_status()

    @while_busy((box, center, thickness), status)
    def update(_change: object = None) -> None:
        prep = DigitPrep(box=box.value, center=center.value, thickness=thickness.value)
        acc, recall, examples = score(prep)
        fig = recall_figure(base_recall, recall, examples, f"baseline {baseline.box}px/{baseline.center}")
        image.value = figure_png(fig)
        info.value = (f"Accuracy of the model on all {len(labels)} course digits: <b>{acc:.1%}</b> "
                      f"(baseline framing: {base_acc:.1%}; change: {100 * (acc - base_acc):+.1f} points)")

    for control in (box, center, thickness):
        control.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([box, center, thickness, status]), info, image])
    ui.controls = {"box": box, "center": center, "thickness": thickness}
    ui.image, ui.info, ui.busy = image, info, status
    return ui


def threshold_explorer(scores: dict[str, np.ndarray], reference_split: dict[str, float] | None = None) -> w.VBox:
    """A threshold slider over discriminator scores: histograms of each set and the share above/below."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from course_lib.metrics import threshold_split

    threshold = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01, description="threshold",
                              continuous_update=False, readout_format=".2f")
    image = picture()
    info = w.HTML()
    status = busy_status()

    @while_busy((threshold,), status)
    def update(_change: object = None) -> None:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        bins = np.linspace(0, 1, 41)
        for name, s in scores.items():
            ax.hist(np.asarray(s), bins=bins, alpha=0.5, density=True, label=name)
        ax.axvline(threshold.value, color="k", ls="--", label=f"threshold {threshold.value:.2f}")
        ax.set(xlabel="discriminator score D(x): probability of 'real'", ylabel="density")
        ax.legend(fontsize=8)
        image.value = figure_png(fig)
        rows = {name: threshold_split(s, threshold.value) for name, s in scores.items()}
        table = pd.DataFrame(rows).T.rename(columns={"above": f"called real (> {threshold.value:.2f})",
                                                     "below": f"called fake (<= {threshold.value:.2f})"})
        if reference_split is not None:
            table.loc["document, course digits (at 0.5)"] = [reference_split["above"], reference_split["below"]]
        info.value = table.to_html(float_format=lambda v: f"{v:.0%}")

    threshold.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([threshold, status]), image, info])
    ui.controls = {"threshold": threshold}
    ui.image, ui.info, ui.busy = image, info, status
    return ui


def snapshot_slider(grids: dict[int, torch.Tensor], ncols: int = 8, title: str = "epoch") -> w.VBox:
    """A slider over saved image grids (e.g. a generator's samples per epoch)."""
    if not grids:
        raise ValueError("no snapshots to show")
    epochs = sorted(grids)
    slider = w.SelectionSlider(options=epochs, value=epochs[-1], description=title, continuous_update=False)
    image = picture()
    status = busy_status()

    @while_busy((slider,), status)
    def update(_change: object = None) -> None:
        image.value = figure_png(image_grid(grids[slider.value], ncols=ncols, cell_inches=0.7,
                                            title=f"{title} {slider.value}"))

    slider.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([slider, status]), image])
    ui.controls = {"epoch": slider}
    ui.image, ui.busy = image, status
    return ui
