"""Widgets for notebooks 05b-05e: browse generated traffic signs per model and class, draw new ones live."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from course_lib.data.imageset import ImageSet
from course_lib.plots import figure_png, image_grid
from course_lib.widgets import busy_status, picture, while_busy

SampleFn = Callable[[str, int, int], torch.Tensor]   # (class name, n, seed) -> (n, C, H, W) in [0, 1]


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def _grid_png(real: torch.Tensor, fake: torch.Tensor, title: str, ncols: int) -> bytes:
    """Real images first (labelled), then generated ones, at the generated size."""
    real = _resize(real, fake.shape[-1])
    labels = ["real"] * len(real) + ["generated"] * len(fake)
    return figure_png(image_grid(torch.cat([real, fake]), labels, ncols=ncols, cell_inches=1.0, title=title))


def bank_browser(banks: Mapping[str, ImageSet], real: ImageSet, per_page: int = 10, n_real: int = 5) -> w.VBox:
    """Model and class pickers and a page slider over cached generated sets, beside real images of the class."""
    if not banks:
        raise ValueError("no generated sets to browse")
    for model, bank in banks.items():
        if bank.classes != real.classes:
            raise ValueError(f"{model}: its classes {bank.classes} differ from the real set's {real.classes}")
    models = list(banks)
    model_pick = w.Dropdown(options=models, value=models[0], description="model", disabled=len(models) == 1)
    class_pick = w.Dropdown(options=list(real.classes), value=real.classes[0], description="class")
    pages = min(int((b.y == 0).sum()) for b in banks.values()) // per_page
    page = w.IntSlider(value=0, min=0, max=max(pages - 1, 0), description="page", continuous_update=False)
    image, info, status = picture(), w.HTML(), busy_status()

    @while_busy((model_pick, class_pick, page), status)
    def update(_change: object = None) -> None:
        bank, k = banks[model_pick.value], real.classes.index(class_pick.value)
        fake = bank.x[bank.y == k][page.value * per_page:(page.value + 1) * per_page]
        reals = real.x[real.y == k][:n_real]
        image.value = _grid_png(reals, fake, f"{model_pick.value}, class {class_pick.value}", per_page // 2 + n_real)
        info.value = (f"{len(reals)} real training images, then generated images {page.value * per_page + 1}-"
                      f"{page.value * per_page + len(fake)} of {int((bank.y == k).sum())} ({bank.source})")

    for control in (model_pick, class_pick, page):
        control.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([model_pick, class_pick, page, status]), image, info])
    ui.controls = {"model": model_pick, "class": class_pick, "page": page}
    ui.image, ui.info, ui.busy = image, info, status
    return ui


def sample_explorer(sample: SampleFn, real: ImageSet, n: int = 8, n_real: int = 4, name: str = "generator") -> w.VBox:
    """Class picker and seed slider: every change draws ``n`` new images from that class's model."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    class_pick = w.Dropdown(options=list(real.classes), value=real.classes[0], description="class")
    seed = w.IntSlider(value=0, min=0, max=99, description="seed", continuous_update=False)
    image, info, status = picture(), w.HTML(), busy_status()

    @while_busy((class_pick, seed), status)
    def update(_change: object = None) -> None:
        k = real.classes.index(class_pick.value)
        fake = sample(class_pick.value, n, 10_000 + seed.value)
        if fake.ndim != 4 or len(fake) != n:
            raise ValueError(f"the sampler returned shape {tuple(fake.shape)}; expected ({n}, C, H, W)")
        reals = real.x[real.y == k][:n_real]
        image.value = _grid_png(reals, fake, f"{name}, class {class_pick.value}, seed {seed.value}", n + n_real)
        spread = float(fake.flatten(1).std(0).mean())
        info.value = (f"{n} new images from the class-{class_pick.value} {name} (seed {seed.value}); "
                      f"pixel spread across them: <b>{spread:.3f}</b> (0 would mean {n} identical images)")

    class_pick.observe(update, names="value")
    seed.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([class_pick, seed, status]), image, info])
    ui.controls = {"class": class_pick, "seed": seed}
    ui.image, ui.info, ui.busy = image, info, status
    return ui


def classifier_explorer(results: pd.DataFrame, classes: list[str], baseline: str = "baseline") -> w.VBox:
    """Slider over images added per class: per-class recall of every model's classifiers vs. the baseline.

    ``results`` has one row per trained classifier with columns ``model``, ``n`` (generated images per
    class; 0 for the baseline), ``seed``, ``balanced accuracy`` and one recall column per class. Nothing
    is trained here: the slider re-plots runs that are already done.
    """
    need = {"model", "n", "seed", "balanced accuracy", *classes}
    missing = need - set(results.columns)
    if missing:
        raise ValueError(f"results lack column(s) {sorted(missing)}")
    if not (results["model"] == baseline).any():
        raise ValueError(f"results have no {baseline!r} rows to compare with")
    sizes = sorted(int(n) for n in results.loc[results["model"] != baseline, "n"].unique())
    if not sizes:
        raise ValueError("results have no classifier trained with generated images")
    slider = w.SelectionSlider(options=sizes, value=sizes[0], description="added / class", continuous_update=False,
                               style={"description_width": "initial"})
    image, info, status = picture(), w.HTML(), busy_status()
    base = results[results["model"] == baseline]

    @while_busy((slider,), status)
    def update(_change: object = None) -> None:
        n = slider.value
        rows = results[(results["n"] == n) & (results["model"] != baseline)]
        arms = [(baseline, base)] + list(rows.groupby("model", sort=False))
        fig, ax = plt.subplots(figsize=(10, 3.2))
        width = 0.8 / len(arms)
        for i, (model, part) in enumerate(arms):
            ax.bar(np.arange(len(classes)) + (i - (len(arms) - 1) / 2) * width, part[classes].mean().to_numpy(),
                   width, label=f"{model}" + ("" if model == baseline else f" + {n}/class"),
                   color="lightgray" if model == baseline else None, edgecolor="gray")
        ax.set_xticks(range(len(classes)), classes)
        ax.set(xlabel="class", ylabel="recall on the real test split", ylim=(0, 1.05),
               title=f"per-class recall, mean over seeds: {n} generated images added per class")
        ax.legend(fontsize=7, ncol=len(arms), loc="lower right")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        image.value = figure_png(fig)
        parts = [f"{m}: <b>{p['balanced accuracy'].mean():.3f}</b> &plusmn; {p['balanced accuracy'].std(ddof=0):.3f}"
                 for m, p in arms]
        info.value = "balanced accuracy (mean &plusmn; spread over seeds): " + "; ".join(parts)

    slider.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([slider, status]), image, info])
    ui.controls = {"n": slider}
    ui.image, ui.info, ui.busy = image, info, status
    return ui


__all__ = ["bank_browser", "sample_explorer", "classifier_explorer"]
