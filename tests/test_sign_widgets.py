"""Notebook 05's widgets: browsing cached generated sets and drawing new images live."""

from __future__ import annotations

import pytest
import torch

from course_lib.data.imageset import ImageSet
from course_lib.sign_widgets import bank_browser, sample_explorer


def _set(n_per_class: int, size: int, seed: int, real: bool = True) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3 * n_per_class, 3, size, size, generator=g)
    y = torch.arange(3).repeat_interleave(n_per_class)
    return ImageSet(x, y, ["a", "b", "c"], "set", "test", real=real)


def test_bank_browser_changes_picture_with_every_control():
    real = _set(6, 20, 0)
    ui = bank_browser({"VAE": _set(20, 16, 1, False), "DCGAN": _set(20, 16, 2, False)}, real, per_page=10)
    seen = {ui.image.value}
    for name, value in (("model", "DCGAN"), ("class", "b"), ("page", 1)):
        ui.controls[name].value = value
        assert ui.image.value not in seen, f"changing {name} must redraw the grid"
        seen.add(ui.image.value)
    assert "generated images 11-20 of 20" in ui.info.value
    assert ui.controls["page"].max == 1


def test_bank_browser_rejects_mismatched_classes():
    other = ImageSet(torch.rand(4, 3, 8, 8), torch.tensor([0, 0, 1, 1]), ["x", "y"], "o", "test")
    with pytest.raises(ValueError, match="classes"):
        bank_browser({"VAE": other}, _set(4, 8, 0))
    with pytest.raises(ValueError, match="no generated sets"):
        bank_browser({}, _set(4, 8, 0))


def test_sample_explorer_draws_with_class_and_seed():
    calls = []

    def sample(cls: str, n: int, seed: int) -> torch.Tensor:
        calls.append((cls, n, seed))
        return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))

    ui = sample_explorer(sample, _set(5, 24, 0), n=6, name="VAE")
    first = ui.image.value
    ui.controls["seed"].value = 3
    ui.controls["class"].value = "c"
    assert calls == [("a", 6, 10_000), ("a", 6, 10_003), ("c", 6, 10_003)]
    assert ui.image.value != first and "class-c VAE" in ui.info.value
    with pytest.raises(ValueError, match="expected"):
        sample_explorer(lambda c, n, s: torch.rand(n + 1, 3, 8, 8), _set(5, 8, 0), n=2)


def test_classifier_explorer_replots_from_stored_runs():
    import pandas as pd

    from course_lib.sign_widgets import classifier_explorer

    rows = [{"model": "baseline", "n": 0, "seed": s, "balanced accuracy": 0.5 + 0.01 * s, "a": 0.4, "b": 0.6}
            for s in range(2)]
    rows += [{"model": m, "n": n, "seed": s, "balanced accuracy": 0.6, "a": 0.5, "b": 0.7}
             for m in ("VAE", "DCGAN") for n in (50, 100) for s in range(2)]
    ui = classifier_explorer(pd.DataFrame(rows), ["a", "b"])
    assert list(ui.controls["n"].options) == [50, 100]
    first = ui.image.value
    assert "baseline: <b>0.505</b>" in ui.info.value and "VAE: <b>0.600</b>" in ui.info.value
    ui.controls["n"].value = 100
    assert ui.image.value != first
    with pytest.raises(ValueError, match="no 'baseline'"):
        classifier_explorer(pd.DataFrame(rows[2:]), ["a", "b"])
    with pytest.raises(ValueError, match="lack column"):
        classifier_explorer(pd.DataFrame(rows).drop(columns="b"), ["a", "b"])


def test_sign_widgets_are_busy_while_redrawing():
    from course_lib.widgets import BUSY_TEXT
    real = _set(6, 20, 0)
    ui = bank_browser({"VAE": _set(20, 16, 1, False)}, real, per_page=10)
    seen = []
    ui.image.observe(lambda _c: seen.append((ui.busy.value, ui.controls["page"].disabled,
                                             ui.controls["model"].disabled)), names="value")
    ui.controls["page"].value = 1
    assert seen == [(BUSY_TEXT, True, True)]
    assert ui.busy.value == "" and not ui.controls["page"].disabled
    assert ui.controls["model"].disabled  # one model only: it stays disabled, as it was before

    def failing(cls: str, n: int, seed: int) -> torch.Tensor:
        if seed > 10_000:
            raise RuntimeError("sampler broke")
        return torch.rand(n, 3, 16, 16)

    ui = sample_explorer(failing, real, n=2)
    with pytest.raises(RuntimeError, match="sampler broke"):
        ui.controls["seed"].value = 5
    assert ui.busy.value == "" and not ui.controls["seed"].disabled and not ui.controls["class"].disabled
