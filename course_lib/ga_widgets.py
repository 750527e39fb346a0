"""Notebook 06's live evolution widget: document 002's GA evolving its autoencoder while you watch.

Like the widgets in ``course_lib.widgets``, the pictures are ``ipywidgets.Image`` PNGs and the
numbers ``HTML``, so they update live in JupyterLab and tests can set a control's ``.value``.
The evolution runs in a background thread so that the Stop button (and the notebook) stay responsive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import ipywidgets as w
import numpy as np
import torch
from matplotlib.figure import Figure

from course_lib.evolution import Evolution, evolve, mae_fitness, population_outputs, random_population
from course_lib.models.conv_autoencoder_ga import GAAutoencoder, scale_targets
from course_lib.plots import figure_png
from course_lib.widgets import busy, busy_status, picture, while_busy

TIMED_GENERATIONS = 10  # ours: generations timed (after a warm-up of 2) to estimate a run's duration


def evolution_figure(targets: torch.Tensor, outputs: torch.Tensor, best: Sequence[float],
                     title: str = "", labels: Sequence[str] | None = None, generations: int | None = None) -> Figure:
    """Targets (top row) over the best agent's outputs (bottom row), beside the best-MAE curve.

    With fewer than two points (before a run) the curve panel says so instead of drawing an empty
    axis; ``generations`` fixes its x range to the planned run.
    """
    n = len(targets)
    cell = 0.75
    fig = Figure(figsize=(0.6 + cell * max(n, 3) + 3.8, 2.2))
    grid = fig.add_gridspec(2, n + 1, width_ratios=[1] * n + [max(3.8 / cell, 1.0)], wspace=0.08, hspace=0.1,
                            left=0.05, right=0.93, bottom=0.2, top=0.8 if title else 0.92)
    for i in range(n):
        for row, img in enumerate((targets[i], outputs[i])):
            ax = fig.add_subplot(grid[row, i])
            ax.imshow(img.reshape(28, 28).numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel("target" if row == 0 else "output", fontsize=10)
            if row == 0 and labels is not None:
                ax.set_title(str(labels[i]), fontsize=10)
    ax = fig.add_subplot(grid[:, n])
    if len(best) >= 2:
        ax.plot(np.arange(len(best)), best, color="tab:green")
    else:
        ax.text(0.5, 0.5, "best MAE per generation:\npress Evolve", ha="center", va="center",
                transform=ax.transAxes, fontsize=10, color="0.35")
    if generations is not None or len(best) < 2:
        ax.set_xlim(0, max(generations or 0, len(best) - 1, 1))
    ax.set_xlabel("generation", fontsize=10)
    ax.set_ylabel("best MAE", fontsize=10)
    ax.tick_params(labelsize=9)
    ax.grid(alpha=0.3)
    ax.yaxis.set_label_position("right")
    ax.yaxis.tick_right()
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def evolution_explorer(images: torch.Tensor, labels: Sequence[str] | None = None, seed: int = 0,
                       refresh_seconds: float = 1.0) -> w.VBox:
    """Evolve the autoencoder live: population, mutated weights per child, mutation step, generations, samples.

    ``images``: (S, 1, 28, 28) in [0, 1], e.g. one of each digit; ``labels`` their captions. Moving a
    control redraws generation 0 and estimates the run time; Evolve runs the GA in the background,
    redrawing the reconstructions and the curve every ``refresh_seconds``; Stop ends it early.
    """
    if images.dim() != 4 or images.shape[1:] != (1, 28, 28) or len(images) == 0:
        raise ValueError(f"expected images of shape (S, 1, 28, 28), got {tuple(images.shape)}")
    all_targets = scale_targets(images)
    model = GAAutoencoder()
    sample_options = [(f"1 sample ({labels[0] if labels is not None else 'first'})", 1)]
    if len(images) > 1:
        sample_options.append((f"all {len(images)} samples", len(images)))

    population = w.IntSlider(value=10, min=2, max=40, description="population", continuous_update=False)
    k = w.IntSlider(value=10, min=1, max=100, description="mutated / child", continuous_update=False,
                    style={"description_width": "initial"})
    step = w.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="mutation step",
                         continuous_update=False, style={"description_width": "initial"})  # document: 1
    generations = w.IntSlider(value=1000, min=50, max=20000, step=50, description="generations",
                              continuous_update=False)
    samples = w.Dropdown(options=sample_options, value=1, description="train on")
    evolve_button = w.Button(description="Evolve", button_style="success", icon="play")
    stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
    image = picture()
    info = w.HTML()
    status = busy_status()
    stop_flag = threading.Event()
    state: dict = {"thread": None, "run": None, "per_generation": None}

    def chosen() -> tuple[torch.Tensor, list[str] | None]:
        n = samples.value
        return all_targets[:n], (list(labels[:n]) if labels is not None else None)

    def draw(outputs: torch.Tensor, best: Sequence[float], title: str) -> None:
        targets, names = chosen()
        image.value = figure_png(evolution_figure(targets, outputs, best, title, names, generations.value))

    def seconds_per_generation(targets: torch.Tensor) -> float:
        """Time a few real generations after a warm-up (the first calls pay one-off set-up costs)."""
        settings = dict(population=population.value, k=k.value, step=step.value, seed=seed, progress=False)
        evolve(model, targets, targets, generations=2, **settings)
        start = time.perf_counter()
        evolve(model, targets, targets, generations=TIMED_GENERATIONS, **settings)
        return (time.perf_counter() - start) / TIMED_GENERATIONS

    settings_controls = (population, k, step, generations, samples, evolve_button)

    def preview(_change: object = None) -> None:
        if state["thread"] is not None and state["thread"].is_alive():
            return  # checked before the busy block, which would undo the run's own button states
        _preview()

    @while_busy(settings_controls, status)
    def _preview() -> None:
        targets, _ = chosen()
        agents = random_population(model, population.value, seed)
        outputs = population_outputs(model, agents, targets)
        fitness = mae_fitness(outputs, targets)
        best = int(fitness.argmin())
        draw(outputs[best], [float(fitness[best])], "generation 0 (random weights)")
        per_generation = seconds_per_generation(targets)
        state["per_generation"] = per_generation
        estimate = per_generation * generations.value
        info.value = (f"Population <b>{population.value}</b>, <b>{k.value}</b> mutated weight(s) per child, "
                      f"shifts from uniform(-{step.value:g}, {step.value:g}), "
                      f"<b>{generations.value}</b> generations on <b>{len(targets)}</b> sample(s). "
                      f"Best MAE at generation 0: <b>{float(fitness[best]):.4f}</b>. "
                      f"Press Evolve: about {estimate:.1f} s on this machine now "
                      f"({1e3 * per_generation:.2f} ms per generation, timed over {TIMED_GENERATIONS} generations "
                      f"after a warm-up; slower if other work shares the CPU).")

    def run() -> Evolution:
        """Evolve with the current settings in this thread (the Evolve button runs it in the background)."""
        targets, _ = chosen()
        stop_flag.clear()
        last = {"t": 0.0}
        history: list[float] = []

        def on_generation(g: int, best: float, outputs: torch.Tensor) -> None:
            history.append(best)
            now = time.perf_counter()
            if now - last["t"] >= refresh_seconds:
                last["t"] = now
                draw(outputs, history, f"generation {g}")
                info.value = f"Generation <b>{g}</b> of {generations.value}: best MAE <b>{best:.4f}</b>"

        start = time.perf_counter()
        result = evolve(model, targets, targets, population=population.value, k=k.value, step=step.value,
                        generations=generations.value, seed=seed, progress=False,
                        should_stop=stop_flag.is_set, on_generation=on_generation)
        seconds = time.perf_counter() - start
        state["run"] = result
        best_model = result.best_model(GAAutoencoder())
        with torch.no_grad():
            outputs = best_model(targets)
        stopped = " (stopped)" if result.generations < generations.value else ""
        draw(outputs, result.best, f"generation {result.generations}{stopped}")
        info.value = (f"Generation <b>{result.generations}</b>{stopped}: best MAE <b>{result.best[-1]:.4f}</b> "
                      f"(started at {result.best[0]:.4f}) in {seconds:.1f} s, "
                      f"{1e3 * seconds / max(result.generations, 1):.1f} ms per generation.")
        return result

    def background() -> None:
        try:
            with busy(settings_controls, status, "<span style='color:#a60'>&#9203; evolving...</span>"):
                run()
        except Exception as exc:  # show it in the widget, not in a lost thread
            info.value = f"<b style='color:#b00'>Evolution failed:</b> {type(exc).__name__}: {exc}"
        finally:
            evolve_button.disabled, stop_button.disabled = False, True

    def start(_button: object = None) -> None:
        if state["thread"] is not None and state["thread"].is_alive():
            return
        evolve_button.disabled, stop_button.disabled = True, False
        state["thread"] = threading.Thread(target=background, daemon=True)
        state["thread"].start()

    def stop(_button: object = None) -> None:
        stop_flag.set()

    def wait(timeout: float | None = None) -> None:
        """Block until a background run has finished (for tests and scripts)."""
        if state["thread"] is not None:
            state["thread"].join(timeout)

    for control in (population, k, step, generations, samples):
        control.observe(preview, names="value")
    evolve_button.on_click(start)
    stop_button.on_click(stop)
    preview()
    ui = w.VBox([w.HBox([population, k, step]), w.HBox([generations, samples]),
                 w.HBox([evolve_button, stop_button, status]), image, info])
    ui.controls = {"population": population, "k": k, "step": step, "generations": generations, "samples": samples,
                   "evolve": evolve_button, "stop": stop_button}
    ui.image, ui.info, ui.busy = image, info, status
    ui.seconds_per_generation = lambda: state["per_generation"]
    ui.run, ui.start, ui.stop, ui.wait = run, start, stop, wait
    ui.last_run = lambda: state["run"]
    return ui
