"""A drawing pad (ipycanvas): a student draws a digit, a model scores it live, and it can be saved
with its label into the course digits. The scoring path is a plain function of an RGBA array, so it
is tested without a browser; the canvas only feeds it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import torch

from course_lib.data.course_digits import MNIST_LIKE, DigitPrep, EmptyDigitError, prepare_digit, save_drawn_digit
from course_lib.plots import figure_png
from course_lib.widgets import busy, busy_status, picture

ScoreFn = Callable[[torch.Tensor], dict[str, float]]
SIZE = 280  # canvas pixels; ten times MNIST's 28
PEN = 20  # stroke width in canvas pixels (about 2 MNIST pixels)


def classifier_scores(model: torch.nn.Module, classes: list[str]) -> ScoreFn:
    """A ScoreFn giving ``model``'s softmax probability for each class."""
    def score(image: torch.Tensor) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            probs = torch.softmax(model(image), dim=1)[0]
        return dict(zip(classes, probs.tolist()))
    return score


def score_drawing(rgba: np.ndarray, score_fn: ScoreFn, prep: DigitPrep = MNIST_LIKE) -> tuple[np.ndarray, dict[str, float]]:
    """Frame a drawn RGBA/gray image like MNIST (28x28) and score it; raises EmptyDigitError if blank."""
    framed = prepare_digit(rgba, prep)  # (28, 28) float32
    return framed, score_fn(torch.from_numpy(framed)[None, None])


def _scores_png(framed: np.ndarray, scores: dict[str, float], title: str) -> bytes:
    fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(5.2, 2.4), gridspec_kw={"width_ratios": [1, 3]})  # fits beside the pad
    ax_img.imshow(framed, cmap="gray", vmin=0, vmax=1)
    ax_img.set_title("what the model sees", fontsize=9)
    ax_img.axis("off")
    names, values = list(scores), list(scores.values())
    bars = ax_bar.bar(names, values, color="tab:blue")
    bars[int(np.argmax(values))].set_color("tab:orange")
    ax_bar.set_ylim(0, 1)
    ax_bar.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def _placeholder_png(title: str) -> bytes:
    """The score panel before anything is drawn: an empty pad and empty bars, not a broken-image icon."""
    fig, (ax_img, ax_bar) = plt.subplots(1, 2, figsize=(5.2, 2.4), gridspec_kw={"width_ratios": [1, 3]})  # fits beside the pad
    ax_img.imshow(np.zeros((28, 28)), cmap="gray", vmin=0, vmax=1)
    ax_img.set_title("what the model sees", fontsize=9)
    ax_img.axis("off")
    ax_bar.set_ylim(0, 1)
    ax_bar.set_xticks([])
    ax_bar.text(0.5, 0.5, "draw a digit on the pad", ha="center", va="center", transform=ax_bar.transAxes, color="0.4")
    ax_bar.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_png(fig)


def drawing_pad(score_fn: ScoreFn, title: str = "model's probabilities", save_folder: Path | None = None,
                prep: DigitPrep = MNIST_LIKE) -> w.VBox:
    """Canvas + live scores + save-with-label. ``ui.update_from_image(rgba)`` is what a stroke triggers."""
    from ipycanvas import Canvas, hold_canvas

    canvas = Canvas(width=SIZE, height=SIZE, sync_image_data=True,
                    layout=w.Layout(width=f"{SIZE}px", height=f"{SIZE}px", border="1px solid #888"))
    scores_image = picture()
    scores_image.value = _placeholder_png(title)
    message = w.HTML("Draw a digit with the mouse, one stroke at a time.")
    # no label until a digit is drawn: then the predicted digit is proposed, so a quick save is not a blind 0
    label = w.Dropdown(options=[("-", None), *[(str(d), d) for d in range(10)]], value=None, description="label")
    save = w.Button(description="save digit", icon="save")
    clear = w.Button(description="clear", icon="eraser")
    status = busy_status()
    state: dict = {"last": None, "framed": None, "rgba": None}

    def reset() -> None:
        with hold_canvas():
            canvas.fill_style = "black"
            canvas.fill_rect(0, 0, SIZE, SIZE)
        canvas.stroke_style, canvas.line_width, canvas.line_cap = "white", PEN, "round"
        state["framed"] = state["rgba"] = None
        label.value = None
        scores_image.value = _placeholder_png(title)

    def update_from_image(rgba: np.ndarray) -> None:
        with busy((label, save, clear), status):
            try:
                framed, scores = score_drawing(rgba, score_fn, prep)
            except EmptyDigitError:
                state["framed"] = state["rgba"] = None
                label.value = None
                message.value = "The pad is empty or nearly empty: draw a digit first."
                return
            state["framed"], state["rgba"] = framed, rgba
            scores_image.value = _scores_png(framed, scores, title)
            best = max(scores, key=scores.get)
            if best.isdigit() and int(best) in range(10):
                label.value = int(best)  # proposed; the student corrects it before saving if it is wrong
            message.value = (f"Top score: <b>{best}</b> ({scores[best]:.0%}). "
                             "Check the label before saving: it is set to the model's guess.")

    def on_down(x: float, y: float) -> None:
        state["last"] = (x, y)

    def on_move(x: float, y: float) -> None:
        if state["last"] is not None:
            canvas.stroke_line(*state["last"], x, y)
            state["last"] = (x, y)

    def on_up(x: float, y: float) -> None:
        state["last"] = None

    def on_image(_change: object) -> None:  # the browser sent the canvas pixels after a stroke
        update_from_image(canvas.get_image_data())

    def on_save(_button: object) -> None:
        if state["rgba"] is None:
            message.value = "Nothing to save: draw a digit first."
            return
        if label.value is None:
            message.value = "Pick the digit you drew in the label list, then save."
            return
        try:
            with busy((label, save, clear), status):
                path = save_drawn_digit(state["rgba"], int(label.value), save_folder)
        except EmptyDigitError as exc:
            message.value = str(exc)
            return
        message.value = f"Saved as a <b>{label.value}</b>: {path.name}. Re-run the experiment cells to include it."

    canvas.on_mouse_down(on_down)
    canvas.on_mouse_move(on_move)
    canvas.on_mouse_up(on_up)
    canvas.on_mouse_out(on_up)
    canvas.observe(on_image, names="image_data")
    save.on_click(on_save)
    clear.on_click(lambda _b: (reset(), setattr(message, "value", "Cleared.")))
    reset()
    ui = w.VBox([w.HBox([canvas, w.VBox([scores_image, message, w.HBox([label, save, clear, status])])])])
    ui.canvas, ui.image, ui.message, ui.busy = canvas, scores_image, message, status
    ui.controls = {"label": label, "save": save, "clear": clear}
    ui.update_from_image = update_from_image
    ui.state = state
    return ui
