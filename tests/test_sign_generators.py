"""Notebook 05's generator interface: per-class epochs, the shared generated sets and their cache."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from course_lib import sign_generators as sg
from course_lib.data.imageset import ImageSet
from course_lib.profiles import PROFILES


def _signs(per_class: tuple[int, ...] = (4, 6), size: int = 20) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    y = torch.cat([torch.full((n,), k) for k, n in enumerate(per_class)])
    x = torch.rand(len(y), 3, size, size, generator=g) * 0.2 + y.view(-1, 1, 1, 1) * 0.5   # classes differ in brightness
    return ImageSet(x.float(), y, [f"c{k}" for k in range(len(per_class))], "tiny", "test fixture")


def test_every_generator_has_every_profile_and_paper_is_the_document():
    for kind in sg.KINDS:
        assert set(sg.SETTINGS[kind]) == set(PROFILES)
    assert sg.SETTINGS["vae"]["paper"].latent == 512 and sg.SETTINGS["vae"]["paper"].epochs == 10_000
    assert sg.SETTINGS["dcgan"]["paper"].latent == 256 and sg.SETTINGS["dcgan"]["paper"].dropout == 0.2
    assert sg.SETTINGS["ddpm"]["paper"].block_out_channels == (64, 64, 128, 128, 256, 256)
    assert all(sg.SETTINGS[k]["paper"].min_steps == 0 for k in sg.KINDS), "paper keeps the document's epoch rule"
    assert sg.bank_size("vae", "class") == 500 and sg.bank_size("ddpm", "class") == 100   # no 500 for the DDPM (document)
    with pytest.raises(ValueError, match="unknown generator"):
        sg.settings_for("gan", "smoke")


def test_epochs_give_small_classes_enough_steps():
    images = {"small": torch.zeros(8, 3, 4, 4), "big": torch.zeros(78, 3, 4, 4)}
    epochs = sg.epochs_for_steps(images, epochs=10, min_steps=300, batch_size=32)
    assert epochs == {"small": 300, "big": 100}           # 1 and 3 batches per epoch
    assert sg.epochs_for_steps(images, epochs=500, min_steps=0, batch_size=32) == {"small": 500, "big": 500}


def test_class_images_resize_and_refuse_tiny_classes():
    out = sg.class_images(_signs(), 16)
    assert [tuple(v.shape) for v in out.values()] == [(4, 3, 16, 16), (6, 3, 16, 16)]
    assert all(0 <= float(v.min()) and float(v.max()) <= 1 for v in out.values())
    with pytest.raises(ValueError, match="at least 2 images"):
        sg.class_images(_signs((1, 5)), 16)


def test_first_per_class_keeps_order_and_labels():
    data = _signs((4, 6))
    first = sg.first_per_class(data, 3)
    assert torch.equal(first.y, torch.tensor([0, 0, 0, 1, 1, 1]))
    assert torch.equal(first.x[3], data.x[4]) and len(sg.first_per_class(data, 5)) == 9   # a class of 4 gives all 4
    with pytest.raises(ValueError, match="at least 1"):
        sg.first_per_class(data, 0)


@pytest.mark.parametrize("kind", ["vae", "dcgan"])
def test_generated_set_is_cached_and_labelled(kind):
    data = _signs()
    S = dataclasses.replace(sg.SETTINGS[kind]["smoke"], size=16, epochs=1, min_steps=1)
    first = sg.generated_set(kind, data, S, 5, progress=False)
    assert first.x.shape == (10, 3, 16, 16) and torch.equal(first.y, torch.tensor([0] * 5 + [1] * 5))
    assert not first.real and first.classes == data.classes
    assert torch.equal(first.x, (first.x * 255).round() / 255), "stored as bytes, fresh or loaded"
    again = sg.generated_set(kind, data, S, 5, progress=False)
    assert torch.equal(first.x, again.x), "the second call loads the cached images"
    other = sg.generated_set(kind, data, S, 5, seed=1, progress=False)
    assert not torch.equal(first.x, other.x), "another seed draws other images"
    with pytest.raises(ValueError, match="at least 1"):
        sg.generated_set(kind, data, S, 0)


def test_ddpm_generated_set_smoke():
    data = _signs()
    S = dataclasses.replace(sg.SETTINGS["ddpm"]["smoke"], epochs=1, min_steps=1)
    out = sg.generated_set("ddpm", data, S, 2, progress=False)
    assert out.x.shape == (4, 3, 16, 16) and 0 <= float(out.x.min()) and float(out.x.max()) <= 1


def test_quality_table_is_computed_once_then_loaded(monkeypatch, cache):  # a fresh cache: "once" from scratch
    from course_lib import generative_metrics

    data = _signs((6, 6), size=32)
    calls = []
    real_fn = generative_metrics.per_class_quality

    def counting(*args, **kwargs):
        calls.append(1)
        return real_fn(*args, **kwargs)

    monkeypatch.setattr(generative_metrics, "per_class_quality", counting)
    table, features = sg.quality("vae", data, "smoke", progress=False)
    assert list(table["class"]) == data.classes and "NOT Inception-v3" in features.name
    assert {"inception_score", "fid", "ssim", "FID real-vs-real"} <= set(table.columns)
    again, _ = sg.quality("vae", data, "smoke", progress=False)
    assert calls == [1] and again.equals(table)


def test_unet_presets_are_the_networks_sign_generators_trains():
    from course_lib.models.ddpm import TABLE3_CHANNELS, UNET_PRESETS

    assert set(UNET_PRESETS) == set(PROFILES)
    for profile in PROFILES:
        S = sg.SETTINGS["ddpm"][profile]
        assert UNET_PRESETS[profile] == {"size": S.size, "block_out_channels": tuple(S.block_out_channels),
                                         "layers_per_block": S.layers_per_block}, profile
    assert UNET_PRESETS["paper"]["block_out_channels"] == TABLE3_CHANNELS and UNET_PRESETS["paper"]["size"] == 64


def test_quality_scores_real_and_generated_alike():
    data = _signs((6, 8), size=32)
    study = sg.study_settings("smoke")
    table, _ = sg.quality("vae", data, "smoke", progress=False)
    n_fake = min(study.metric_images, sg.bank_size("vae", "smoke"))
    assert list(table["IS images"]) == [min(6, n_fake), min(8, n_fake)]
    assert list(table["IS splits"]) == [min(study.is_splits, n // 2) for n in table["IS images"]]
    assert list(table["FID images"]) == ["3 vs 3", "4 vs 4"]
    whole = sg.whole_set_quality("vae", data, "smoke", progress=False)
    assert whole.images == min(len(data), 2 * n_fake) and whole.splits == min(study.is_splits, whole.images // 2)
