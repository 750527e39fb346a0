"""Widgets of notebook 07: walk through a 2-D latent space, and browse the beta x gamma grid.

Both return an ipywidgets container with ``controls`` (name -> control), ``image`` and ``info``,
so a test can set ``.value`` as the browser would and see the picture and the text change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ipywidgets as w
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from course_lib.plots import figure_png

# The callbacks draw on bare Figures, never through pyplot: a pyplot figure made in a widget callback
# is known to JupyterLab's inline backend, which then prints its repr into the log console.


def latent_explorer(model: "AdversarialVAE", codes: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor,
                    classes: Sequence[str], limit: float | None = None) -> w.VBox:
    """Two sliders move a point over the 2-D latent map; shows the decoded image and Class(z).

    ``codes`` are the mean codes of some images (N, 2), drawn coloured by ``labels`` as the map.
    """
    codes = np.asarray(codes, dtype=np.float32)
    labels = np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"the latent explorer needs 2-D codes (N, 2), got shape {codes.shape}")
    if len(labels) != len(codes):
        raise ValueError(f"{len(codes)} codes but {len(labels)} labels")
    lim = float(limit if limit is not None else np.ceil(np.abs(codes).max() * 1.05 * 10) / 10 or 1.0)
    z1 = w.FloatSlider(value=0.0, min=-lim, max=lim, step=lim / 50, description="z1", continuous_update=False)
    z2 = w.FloatSlider(value=0.0, min=-lim, max=lim, step=lim / 50, description="z2", continuous_update=False)
    image = w.Image(format="png")
    info = w.HTML()
    n_show = min(len(classes), 10)

    def update(_change: object = None) -> None:
        z = torch.tensor([[z1.value, z2.value]], dtype=torch.float32)
        model.decoder.eval(), model.classifier.eval()
        with torch.no_grad():
            picture = model.decoder(z)[0]
            proba = model.classifier.proba(z)[0].numpy()
        fig = Figure(figsize=(12, 3.6))
        a1, a2, a3 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1, 1.3]})
        sc = a1.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10" if len(classes) <= 10 else "nipy_spectral",
                        s=4, alpha=0.6)
        a1.plot([z1.value], [z2.value], marker="x", color="black", markersize=12, mew=3)
        a1.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="z1", ylabel="z2", title="latent map (mean codes)")
        if len(classes) <= 10:
            a1.legend(*sc.legend_elements(), fontsize=6, loc="upper right", ncols=2)
        a2.imshow(picture.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
        a2.axis("off")
        a2.set_title(f"Dec(z) at ({z1.value:.2f}, {z2.value:.2f})")
        top = np.argsort(proba)[::-1][:n_show]
        a3.barh(range(n_show)[::-1], proba[top], color="tab:blue")
        a3.set(yticks=range(n_show)[::-1], yticklabels=[str(classes[i]) for i in top], xlim=(0, 1),
               title="Class(z)")
        fig.tight_layout()
        image.value = figure_png(fig)
        best = int(np.argmax(proba))
        info.value = (f"z = ({z1.value:.2f}, {z2.value:.2f}): the classifier says <b>{classes[best]}</b> "
                      f"with probability {proba[best]:.2f}")

    for control in (z1, z2):
        control.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([z1, z2]), info, image])
    ui.controls = {"z1": z1, "z2": z2}
    ui.image, ui.info = image, info
    return ui


def beta_gamma_browser(originals: torch.Tensor, cells: Mapping[tuple[float, float], Mapping[str, object]],
                       n_show: int = 10) -> w.VBox:
    """Pick beta and gamma among the trained cells; shows originals over reconstructions and the cell's numbers.

    ``cells`` maps (beta, gamma) to a dict with ``"images"`` (reconstructions of ``originals``) and
    ``"scores"`` (a dict of numbers, e.g. from ``reconstruction_scores``).
    """
    if not cells:
        raise ValueError("beta_gamma_browser needs at least one trained (beta, gamma) cell")
    betas = sorted({b for b, _ in cells})
    gammas = sorted({g for _, g in cells})
    beta = w.SelectionSlider(options=betas, value=betas[0], description="beta", continuous_update=False)
    gamma = w.ToggleButtons(options=gammas, value=gammas[0], description="gamma")
    image = w.Image(format="png")
    info = w.HTML()
    n = min(n_show, len(originals))

    def update(_change: object = None) -> None:
        key = (beta.value, gamma.value)
        if key not in cells:
            trained = ", ".join(f"({b:g}, {g:g})" for b, g in sorted(cells))
            info.value = (f"beta = {beta.value:g}, gamma = {gamma.value:g} was not trained in this profile; "
                          f"trained cells: {trained}")
            return
        images = cells[key]["images"]
        fig = Figure(figsize=(n * 0.9, 2.1))
        axes = fig.subplots(2, n, squeeze=False)
        for i in range(n):
            for row, src in enumerate((originals, images)):
                axes[row, i].imshow(src[i].permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
                axes[row, i].axis("off")
        axes[0, 0].set_title("input", fontsize=8, loc="left")
        axes[1, 0].set_title(f"output, beta={beta.value:g}, gamma={gamma.value:g}", fontsize=8, loc="left")
        fig.tight_layout()
        image.value = figure_png(fig)
        scores = pd.DataFrame([cells[key]["scores"]], index=[f"beta={beta.value:g}, gamma={gamma.value:g}"])
        info.value = scores.to_html(float_format=lambda v: f"{v:.4g}")

    for control in (beta, gamma):
        control.observe(update, names="value")
    update()
    ui = w.VBox([w.HBox([beta, gamma]), image, info])
    ui.controls = {"beta": beta, "gamma": gamma}
    ui.image, ui.info = image, info
    return ui
