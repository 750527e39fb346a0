"""Widgets for notebook 04: pick or upload a style, set strength and output size, see the frame restyled."""

from __future__ import annotations

import time
from collections.abc import Mapping

import ipywidgets as w
import numpy as np

from course_lib.images import ImageError, ImageInput, load_rgb, png_bytes
from course_lib.style import Style, StyleBackend
from course_lib.video import Clip, side_by_side, smooth_frames, write_gif
from course_lib.widgets import busy, busy_status, picture

WIDE = {"description_width": "initial"}  # labels at their full length ("smoothing a" was cut to "smoothin...")

UPLOAD_PREFIX = "uploaded: "


def _uploaded_files(value: object) -> list[tuple[str, bytes]]:
    """(name, bytes) of each file in a FileUpload value (ipywidgets 8: a tuple of dicts)."""
    files = value.values() if isinstance(value, dict) else value or ()  # ipywidgets 7 used a dict
    return [(f.get("name", "upload"), bytes(f["content"])) for f in files]


def style_explorer(backend: StyleBackend, content: ImageInput, styles: Mapping[str, Style],
                   sizes: tuple[int, ...] = (128, 192, 256, 384), size: int = 256,
                   clip: Clip | None = None) -> w.VBox:
    """Style dropdown (or an uploaded picture), strength and output-size controls over one preview frame.

    The preview shows the content and the stylized frame side by side, and says which backend made
    it and how long it took. A picture that cannot be used gets its message here, not a traceback.
    With a ``clip``, a button stylizes the whole clip with the current settings (progress bar,
    optional flicker smoothing) and shows it as a GIF, also saved in the course cache.
    """
    if not styles:
        raise ValueError("style_explorer needs at least one style")
    if size not in sizes:
        raise ValueError(f"size {size} is not one of the offered sizes {sizes}")
    frame = load_rgb(content, quiet=True)
    styles = dict(styles)

    choice = w.Dropdown(options=list(styles), value=next(iter(styles)), description="style",
                        layout=w.Layout(width="420px"))
    upload = w.FileUpload(accept="image/*", multiple=False, description="upload a style",
                          layout=w.Layout(width="auto"))
    strength = w.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, description="strength",
                             continuous_update=False, style=WIDE)
    out_size = w.Dropdown(options=list(sizes), value=size, description="size (px)", style=WIDE)
    image = picture()
    info = w.HTML()
    status = busy_status()
    controls = [choice, upload, strength, out_size]  # the video controls join below

    def update(_change: object = None) -> None:
        with busy(controls, status):
            _update()

    def _update() -> None:
        start = time.perf_counter()
        try:
            out = backend.stylize(frame, styles[choice.value], strength=strength.value, size=out_size.value)[0]
        except (ImageError, ValueError) as exc:
            info.value = f"<span style='color:#b00'>Cannot use this style: {exc}</span>"
            return
        from course_lib.images import resize
        shown = resize(frame, out_size.value)
        image.value = png_bytes(side_by_side(shown, out))
        info.value = (f"content (left) and <b>{choice.value}</b> at strength {strength.value:.2f} (right), "
                      f"{out.shape[1]}x{out.shape[0]} px, made by the <b>{backend.name}</b> backend "
                      f"in {time.perf_counter() - start:.2f} s")

    def on_upload(change: dict) -> None:
        for name, data in _uploaded_files(change["new"]):
            try:
                picture = load_rgb(data, quiet=True)
            except ImageError as exc:
                info.value = f"<span style='color:#b00'>{name}: {exc}</span>"
                continue
            label = UPLOAD_PREFIX + name
            styles[label] = picture
            if label not in choice.options:
                choice.options = [*choice.options, label]
            if choice.value == label:
                update()
            else:
                choice.value = label  # triggers update

    for control in (choice, strength, out_size):
        control.observe(update, names="value")
    upload.observe(on_upload, names="value")
    update()
    ui = w.VBox([w.HBox([choice, upload]), w.HBox([strength, out_size, status]), image, info])
    ui.controls = {"style": choice, "upload": upload, "strength": strength, "size": out_size}  # for tests
    ui.image, ui.info, ui.styles, ui.busy = image, info, styles, status
    if clip is not None:
        controls.extend(_add_video_controls(ui, backend, clip, status))
    return ui


def _add_video_controls(ui: w.VBox, backend: StyleBackend, clip: Clip, status: w.HTML) -> list[w.Widget]:
    """A 'stylize the clip' button with a progress bar, a smoothing slider and a GIF result; returns its controls."""
    from course_lib.data.cache import cache_dir
    c = ui.controls
    smooth = w.FloatSlider(value=0.0, min=0.0, max=0.9, step=0.1, description="smoothing a",
                           continuous_update=False, style=WIDE)
    button = w.Button(description="stylize the clip", icon="film", layout=w.Layout(width="auto"))
    bar = w.IntProgress(value=0, min=0, max=len(clip), description="frames")
    movie = picture("gif")
    done = w.HTML()
    everything = [*ui.controls.values(), smooth, button]

    def run(_button: object = None) -> None:
        with busy(everything, status, "<span style='color:#a60'>&#9203; stylizing the clip...</span>"):
            try:
                stylizer = backend.stylizer(ui.styles[c["style"].value], c["strength"].value, c["size"].value)
                frames = []
                bar.value = 0
                for frame in clip.frames:
                    frames.append(stylizer(frame))
                    bar.value += 1
                frames = smooth_frames(frames, smooth.value) if smooth.value else np.stack(frames)
                path = write_gif(frames, cache_dir("outputs", "04_style_transfer") / "explorer.gif", clip.fps)
                movie.value = path.read_bytes()
                done.value = (f"{len(frames)} frames, <b>{c['style'].value}</b>, strength {c['strength'].value:.2f}, "
                              f"smoothing a={smooth.value:.1f}, by the <b>{backend.name}</b> backend; saved as {path}")
            except (ImageError, ValueError) as exc:
                done.value = f"<span style='color:#b00'>Cannot stylize the clip: {exc}</span>"

    button.on_click(run)
    ui.children = (*ui.children, w.HBox([button, smooth, bar]), movie, done)
    ui.controls.update({"smooth": smooth, "run": button})
    ui.movie, ui.movie_info, ui.progress = movie, done, bar
    return [smooth, button]


def hue_panel(content: np.ndarray, style: np.ndarray, output: np.ndarray, bins: int = 36):
    """Matplotlib figure: hue and saturation histograms of content, style and output on shared axes."""
    import matplotlib.pyplot as plt

    from course_lib.images import MIN_S_FOR_HUE, MIN_V_FOR_HUE, hsv
    fig, (ax_h, ax_s) = plt.subplots(1, 2, figsize=(10, 2.8))
    for name, img, colour in (("content", content, "0.4"), ("style", style, "tab:blue"),
                              ("output", output, "tab:red")):
        h, s, v = np.moveaxis(hsv(img), 2, 0)
        keep = (s >= MIN_S_FOR_HUE) & (v >= MIN_V_FOR_HUE)
        ax_h.hist(360 * h[keep], bins=bins, range=(0, 360), density=True, histtype="step", lw=1.8,
                  color=colour, label=name)
        ax_s.hist(s.ravel(), bins=25, range=(0, 1), density=True, histtype="step", lw=1.8, color=colour, label=name)
    ax_h.axvspan(0, 30, color="red", alpha=0.08)
    ax_h.axvspan(330, 360, color="red", alpha=0.08, label="red band")
    ax_h.set(xlabel="hue (degrees; 0 and 360 = red, 120 = green, 240 = blue)", ylabel="density")
    ax_s.set(xlabel="saturation (0 = gray)")
    ax_h.legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["style_explorer", "hue_panel"]
