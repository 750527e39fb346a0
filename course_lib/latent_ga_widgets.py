"""Widgets for notebook 08: browse the stored latent evolutions, and re-run a short one live."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import ipywidgets as w
import matplotlib.pyplot as plt
import torch
from torch import nn

from course_lib.latent_ga import GASettings, LatentEvolution, decode, evolve_latents, set_diversity
from course_lib.plots import figure_png, image_grid
from course_lib.widgets import busy_status, picture, while_busy


def evolution_browser(runs: Mapping[str, LatentEvolution], generators: Mapping[str, nn.Module],
                      show: int = 20) -> w.VBox:
    """Class picker and generation slider: the best set of latent vectors at generation g, decoded."""
    if not runs:
        raise ValueError("no evolutions to browse")
    missing = [c for c in runs if c not in generators]
    if missing:
        raise KeyError(f"no generator for class(es) {missing}")
    classes = list(runs)
    last = min(r.generations for r in runs.values())
    picker = w.Dropdown(options=classes, value=classes[0], description="class")
    slider = w.IntSlider(value=last, min=0, max=last, description="generation", continuous_update=False)
    image, info, status = picture(), w.HTML(), busy_status()

    @while_busy((picker, slider), status)
    def update(_change: object = None) -> None:
        run, g = runs[picker.value], slider.value
        images = decode(generators[picker.value], run.best_set(g)[None])[0]
        image.value = figure_png(image_grid(images[:show], ncols=10, cell_inches=0.8,
                                            title=f"{picker.value}: best set at generation {g}"))
        info.value = (f"generation {g}: best F = <b>{run.best[g]:.5f}</b> (generation 0: {run.best[0]:.5f}); "
                      f"diversity of the set (mean 1 - correlation between its images) = "
                      f"<b>{set_diversity(images):.4f}</b>; showing {min(show, len(images))} of {len(images)} images")

    picker.observe(update, names="value")
    slider.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([picker, slider, status]), image, info])
    ui.controls = {"class": picker, "generation": slider}
    ui.image, ui.info, ui.busy = image, info, status
    return ui


def live_evolution(G: nn.Module, originals: torch.Tensor, settings: GASettings, seed: int = 0,
                   show: int = 10) -> w.VBox:
    """Mutation rate and tournament size sliders; each change re-runs a short evolution and plots it."""
    mutation = w.FloatLogSlider(value=settings.mutation, base=10, min=-3, max=-0.3, step=0.1, readout_format=".3f",
                                description="mutation", continuous_update=False)
    size = w.IntSlider(value=settings.tournament, min=1, max=min(10, settings.population), description="tournament",
                       continuous_update=False)
    image, info, status = picture(), w.HTML(), busy_status()

    @while_busy((mutation, size), status)
    def update(_change: object = None) -> None:
        s = replace(settings, mutation=mutation.value, tournament=size.value)
        run = evolve_latents(G, originals, s, seed=seed, progress=False)
        images = decode(G, run.best_set()[None])[0]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 2.8), gridspec_kw={"width_ratios": [1, 2]})
        a1.plot(run.best, label="best F")
        a1.plot(run.mean, label="population mean F", alpha=0.6)
        a1.set(xlabel="generation", title=f"mutation {s.mutation:.3f}, tournament {s.tournament}")
        a1.legend(fontsize=7)
        a1.grid(alpha=0.3)
        a2.imshow(torch.cat(list(images[:show, 0]), dim=1).numpy(), cmap="gray", vmin=0, vmax=1)
        a2.set(title="best set at the end (first images)")
        a2.axis("off")
        fig.tight_layout()
        image.value = figure_png(fig)
        info.value = (f"{s.generations} generations: best F {run.best[0]:.5f} &rarr; <b>{run.best[-1]:.5f}</b> "
                      f"(drop {run.best[0] - run.best[-1]:.5f}); diversity of the final best set "
                      f"<b>{set_diversity(images):.4f}</b>")

    mutation.observe(update, names="value")
    size.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([mutation, size, status]), image, info])
    ui.controls = {"mutation": mutation, "tournament": size}
    ui.image, ui.info, ui.busy = image, info, status
    return ui


__all__ = ["evolution_browser", "live_evolution"]
