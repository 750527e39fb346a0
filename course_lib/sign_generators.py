"""Notebook 05's three per-class generators (VAE, DCGAN, DDPM) behind one interface.

Notebooks 05b, 05c and 05d each train one kind of generator per traffic-sign class; 05e draws images
from all three. So that 05e finds exactly the models the earlier notebooks trained (or trains them
itself, with the same settings, when it runs alone), the per-profile settings live here, in one place:

* ``SETTINGS[kind][profile]``: the document's values for ``paper`` (Tables 1-3 of document 001), and
  smaller models trained for a fixed number of optimizer steps per class for ``class`` and ``smoke``;
* :func:`train_generators`: one model per class, loaded from the cache when it was trained before;
* :func:`generated_set`: ``n`` images per class drawn from those models, cached as bytes, as an
  :class:`~course_lib.data.imageset.ImageSet` whose labels are the classes the models were trained on.

Epochs vs. steps: the document trains every class for the same number of epochs, so its 8-image class
sees a tenth of the images its 78-image class sees, and gets ``ceil(8 / b)`` updates per epoch against
``ceil(78 / b)`` at batch size ``b`` (:func:`epochs_for_steps` and the notebooks compute them).
``min_steps`` gives every class at least that many optimizer steps (more epochs for small classes);
``paper`` keeps the document's rule (``min_steps=0``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_lib.data.imageset import ImageSet
from course_lib.evolution import torch_threads
from course_lib.train import checkpoint_path, fingerprint, load_verified, save_atomic
from course_lib.profiles import doc, ours

if TYPE_CHECKING:  # the metrics load torchmetrics and scikit-image: only when 05 scores images
    from course_lib.generative_metrics import PairedIS

KINDS = ("vae", "dcgan", "ddpm")
NAMES = {"vae": "VAE", "dcgan": "DCGAN", "ddpm": "DDPM"}
TABLES = {"vae": "001_table4_vae_metrics", "dcgan": "001_table5_dcgan_metrics", "ddpm": "001_table6_ddpm_metrics"}


# The two reasons the three generators' settings share
MIN_STEPS_WHY = "a floor on optimizer steps per class so small runs still learn; 0 = the document's epochs only"
BATCH_WHY = "32 is a common default"


@dataclass(frozen=True)
class VAESettings:
    """Table 1 of document 001 for ``paper``; what ``class`` and ``smoke`` scale down."""

    size: int = doc("001, section 2.2: 64x64x3 images")
    width: float = ours("a channel multiplier, 1.0 = Table 1's 32..1024 channels; "
                        "smaller fits a laptop")
    latent: int = doc("001, section 2.2 (VAE): an N x 512 random vector feeds the decoder")
    epochs: int = doc("001, section 2.2 (VAE): 10,000 epochs per class")
    min_steps: int = ours(MIN_STEPS_WHY)
    batch_size: int = ours(BATCH_WHY)
    lr: float = doc("001, section 2.2 (VAE): Adam 1e-4")


@dataclass(frozen=True)
class DCGANSettings:
    """Table 2 of document 001 for ``paper``; what ``class`` and ``smoke`` scale down."""

    size: int = doc("001, section 2.2 (DCGAN): 3x64x64 output")
    width: int = doc("001, Table 2: FEATURES_GEN = FEATURES_DIS = 64")
    latent: int = doc("001, section 2.2 (DCGAN): latent 256")
    dropout: float = doc("001, section 2.2 (DCGAN): discriminator dropout 0.2")
    label_noise: float = ours("001 adds label noise but gives no value; targets drawn from "
                              "[1 - noise, 1] and [0, noise], 0.1 as in common DCGAN practice")
    epochs: int = doc("001, section 2.2 (DCGAN): 10,000 epochs per class")
    min_steps: int = ours(MIN_STEPS_WHY)
    batch_size: int = ours(BATCH_WHY)
    lr: float = doc("001, section 2.2 (DCGAN): Adam 2e-4, betas (0.5, 0.999)")


@dataclass(frozen=True)
class DDPMSettings:
    """Table 3 of document 001 for ``paper``; what ``class`` and ``smoke`` scale down."""

    size: int = doc("001, Table 3: 64x64 input")
    block_out_channels: tuple = doc("001, Table 3: blocks of 64, 64, 128, 128, 256, 256")
    layers_per_block: int = doc("001, Table 3: layers_per_block 2")
    epochs: int = doc("001, section 2.2 (DDPM): 500 epochs per class")
    min_steps: int = ours(MIN_STEPS_WHY)
    batch_size: int = ours("16 fits the UNet in memory")
    lr: float = doc("001, section 2.2 (DDPM): AdamW 1e-4")
    warmup_steps: int = doc("001, section 2.2 (DDPM): cosine schedule, 500 warm-up steps")
    sampler: str = ours("001 samples with a DDPM pipeline ('ddpm', all 1000 steps); 'ddim' skips most "
                        "steps so a laptop can sample")
    sample_steps: int = doc("001, section 2.2 (DDPM): DDPMScheduler with 1000 steps")


SETTINGS: dict[str, dict[str, object]] = {
    "vae": {
        "paper": VAESettings(64, 1.0, 512, 10_000, 0, 32, 1e-4),
        "class": VAESettings(64, 0.25, 128, 200, 300, 32, 1e-3),
        "smoke": VAESettings(32, 0.125, 16, 2, 4, 32, 1e-3),
    },
    "dcgan": {
        "paper": DCGANSettings(64, 64, 256, 0.2, 0.1, 10_000, 0, 32, 2e-4),
        "class": DCGANSettings(32, 16, 256, 0.2, 0.1, 200, 1200, 32, 2e-4),
        "smoke": DCGANSettings(32, 4, 32, 0.2, 0.1, 2, 4, 32, 2e-4),
    },
    "ddpm": {
        "paper": DDPMSettings(64, (64, 64, 128, 128, 256, 256), 2, 500, 0, 16, 1e-4, 500, "ddpm", 1000),
        "class": DDPMSettings(32, (16, 32, 32, 64), 1, 40, 600, 16, 2e-3, 30, "ddim", 20),
        "smoke": DDPMSettings(16, (16, 32), 1, 2, 3, 16, 1e-3, 1, "ddim", 4),
    },
}


@dataclass(frozen=True)
class StudySettings:
    """What 05b-05e share besides the generators: how many images to draw, and the metrics' feature network."""

    n_generated: tuple = doc("001, section 3.4 and Fig. 4: 50, 100 and 500 generated images")
    ddpm_n_generated: tuple = doc("001, section 3.4: the DDPM arm has 50 and 100 only")
    feature_epochs: int = ours("001 used Inception-v3; epochs of the offline fallback feature "
                               "network for IS/FID")
    ssim_pairs: int = ours("001 averages all real x generated pairs; we cap the pairs per class to bound the time")
    metric_images: int = ours("generated images per class scored by IS, FID and SSIM")
    is_splits: int = ours("001 does not state its IS splits; torchmetrics' default is 10 (fewer when a class "
                          "has few images: at least 2 a split); real and generated sets get the same splits")
    fid_splits: int = ours("001 does not state how it sampled FID; random real halves per class, each FID "
                           "averaged over this many splits to steady the small-sample estimate")


STUDY: dict[str, StudySettings] = {
    "paper": StudySettings((50, 100, 500), (50, 100), 30, 20_000, 500, 10, 10),
    "class": StudySettings((50, 100, 500), (50, 100), 30, 500, 100, 10, 10),
    "smoke": StudySettings((10, 20), (10,), 2, 100, 10, 10, 3),
}


def study_settings(profile: str | None = None) -> StudySettings:
    """The shared 05 settings of this profile."""
    from course_lib.profiles import active_profile

    return STUDY[profile or active_profile()]


def bank_size(kind: str, profile: str | None = None) -> int:
    """How many images per class 05b-05e draw from ``kind``'s models (the largest classifier arm)."""
    _check_kind(kind)
    st = study_settings(profile)
    return max(st.ddpm_n_generated if kind == "ddpm" else st.n_generated)


def metric_features(data: ImageSet, profile: str | None = None, quiet: bool = False):
    """The IS/FID feature network for 05b-05e: Inception-v3 when available, else the cached fallback CNN."""
    from course_lib.generative_metrics import inception_features_or_fallback

    return inception_features_or_fallback(data, epochs=study_settings(profile).feature_epochs, quiet=quiet)


def bank(kind: str, data: ImageSet, profile: str | None = None, progress: bool = True) -> ImageSet:
    """The shared generated set of ``kind`` for this profile: :func:`bank_size` images per class."""
    return generated_set(kind, data, settings_for(kind, profile, quiet=True), bank_size(kind, profile),
                         progress=progress)


def quality(kind: str, data: ImageSet, profile: str | None = None, progress: bool = True):
    """Per-class IS, FID and SSIM of :func:`bank`'s first images, with real-vs-real baselines; cached.

    Returns ``(table, feature_net)``: 05b-05d compute the table once, 05e loads it.
    """
    import pandas as pd

    from course_lib.generative_metrics import per_class_quality

    study = study_settings(profile)
    features = metric_features(data, profile, quiet=True)           # its name goes under every table instead
    fake = first_per_class(bank(kind, data, profile, progress=progress), study.metric_images)
    settings = settings_for(kind, profile, quiet=True)
    path = checkpoint_path(f"signs-quality-{kind}", settings=dataclasses.asdict(settings),
                           study=dataclasses.asdict(study), data=fingerprint(data), features=features.name,
                           fake=fake)
    if (cached := load_verified(path)) is not None:
        return pd.DataFrame(cached), features
    table = per_class_quality(data, fake, features, ssim_pairs=study.ssim_pairs, progress=progress,
                              is_splits=study.is_splits, fid_splits=study.fid_splits)
    save_atomic(table.to_dict("list"), path)
    return table, features


def whole_set_quality(kind: str, data: ImageSet, profile: str | None = None,
                      progress: bool = True) -> PairedIS:
    """IS over all ten classes together (001 computed it, without printing a value), real and generated alike.

    Scores :func:`bank`'s first ``metric_images`` images per class and as many real images in the
    same splits; returns a :class:`~course_lib.generative_metrics.PairedIS`.
    """
    from course_lib.generative_metrics import whole_set_inception

    study = study_settings(profile)
    features = metric_features(data, profile, quiet=True)
    fake = first_per_class(bank(kind, data, profile, progress=progress), study.metric_images)
    return whole_set_inception(data, fake, features, splits=study.is_splits)


def first_per_class(data: ImageSet, n: int) -> ImageSet:
    """The first ``n`` images of every class of ``data`` (all of them if a class has fewer)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    keep = torch.cat([torch.nonzero(data.y == k)[:n, 0] for k in range(len(data.classes))])
    return ImageSet(data.x[keep], data.y[keep], list(data.classes), f"{data.name} (first {n} per class)",
                    data.source, data.real, list(data.notes))


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown generator {kind!r}; expected one of {', '.join(KINDS)}")


def class_images(data: ImageSet, size: int) -> dict[str, torch.Tensor]:
    """The images of each class, resized (antialiased) to ``size`` x ``size``: class name -> (n, C, size, size)."""
    x = data.x
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    out = {cls: x[data.y == k] for k, cls in enumerate(data.classes)}
    empty = [cls for cls, images in out.items() if len(images) < 2]
    if empty:
        raise ValueError(f"every class needs at least 2 images to train a generator; too few in {empty}")
    return out


def epochs_for_steps(images_by_class: Mapping[str, torch.Tensor], epochs: int, min_steps: int,
                     batch_size: int) -> dict[str, int]:
    """Epochs per class: at least ``epochs``, and enough for ``min_steps`` optimizer steps of ``batch_size``."""
    return {cls: max(epochs, math.ceil(min_steps / math.ceil(len(x) / batch_size)))
            for cls, x in images_by_class.items()}


def settings_for(kind: str, profile: str | None = None, quiet: bool = False):
    """This profile's settings for one generator kind, printing what differs from the document."""
    from course_lib.profiles import choose_settings

    _check_kind(kind)
    return choose_settings(SETTINGS[kind], profile, quiet=quiet)


def train_generators(kind: str, data: ImageSet, settings, progress: bool = True) -> dict[str, object]:
    """One generator of ``kind`` per class of ``data`` (trained, resumed or loaded from the cache): class -> run."""
    _check_kind(kind)
    S = settings
    images = class_images(data, S.size)
    epochs = epochs_for_steps(images, S.epochs, S.min_steps, S.batch_size)
    name = f"signs-{kind}-{'real' if data.real else 'standin'}"
    if kind == "vae":
        from course_lib.models.conv_vae import train_vae_per_class

        depth = int(math.log2(S.size))          # halve down to 1x1 (64 px: the six layers of Table 1)
        return train_vae_per_class(images, epochs, width=S.width, latent=S.latent, depth=min(depth, 6),
                                   batch_size=S.batch_size, lr=S.lr, name=name, progress=progress)
    if kind == "dcgan":
        from course_lib.models.sign_dcgan import train_sign_dcgan_per_class

        return train_sign_dcgan_per_class(images, epochs, latent=S.latent, width=S.width, dropout=S.dropout,
                                          label_noise=S.label_noise, batch_size=S.batch_size, lr=S.lr, name=name,
                                          progress=progress)
    from course_lib.models.ddpm import train_ddpm_per_class

    return train_ddpm_per_class(images, epochs, block_out_channels=S.block_out_channels,
                                layers_per_block=S.layers_per_block, batch_size=S.batch_size, lr=S.lr,
                                warmup_steps=S.warmup_steps, name=name, progress=progress)


def sample(kind: str, run, n: int, settings, seed: int = 0) -> torch.Tensor:
    """``n`` images (n, C, size, size) in [0, 1] from one class's trained ``run``."""
    _check_kind(kind)
    if kind == "vae":
        from course_lib.models.conv_vae import sample as vae_sample

        return vae_sample(run.model, n, seed=seed)
    if kind == "dcgan":
        from course_lib.models.sign_dcgan import generate

        return generate(run.G, n, seed=seed)
    from course_lib.models.ddpm import generate

    return generate(run.unet, n, steps=settings.sample_steps, sampler=settings.sampler, seed=seed)


def generated_set(kind: str, data: ImageSet, settings, n_per_class: int, seed: int = 0,
                  progress: bool = True) -> ImageSet:
    """``n_per_class`` generated images of every class (labelled with it), cached; trains the models if needed."""
    _check_kind(kind)
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    path = checkpoint_path(f"signs-generated-{kind}", settings=dataclasses.asdict(settings), data=fingerprint(data),
                           n=n_per_class, seed=seed)
    note = f"{n_per_class} per class from the per-class {NAMES[kind]}s ({settings.size}x{settings.size})"
    if (state := load_verified(path)) is not None:
        x, y, seconds = state["x"].float() / 255, state["y"], float(state["seconds"])
    else:
        runs = train_generators(kind, data, settings, progress=progress)
        parts, labels, seconds = [], [], 0.0
        for k, cls in enumerate(tqdm(data.classes, desc=f"{NAMES[kind]} sampling", disable=not progress, leave=False)):
            t0 = time.perf_counter()
            with torch_threads(None):
                parts.append(sample(kind, runs[cls], n_per_class, settings, seed=seed + 1000 * k).clamp(0, 1))
            seconds += time.perf_counter() - t0
            labels.append(torch.full((n_per_class,), k, dtype=torch.long))
        x, y = torch.cat(parts), torch.cat(labels)
        # bytes on disk, like any image file: 5,000 images at 64x64 take 61 MB instead of 246
        save_atomic({"x": (x * 255).round().to(torch.uint8), "y": y, "seconds": seconds}, path)
        x = (x * 255).round() / 255
    return ImageSet(x.float(), y, list(data.classes), f"{NAMES[kind]} images", note, real=False,
                    notes=[f"drawing them took {seconds:.1f} s ({len(x) / max(seconds, 1e-9):.0f} images/s)"])


__all__ = ["KINDS", "NAMES", "TABLES", "VAESettings", "DCGANSettings", "DDPMSettings", "SETTINGS", "class_images",
           "epochs_for_steps", "settings_for", "StudySettings", "STUDY", "study_settings", "bank_size",
           "metric_features", "bank", "quality", "whole_set_quality", "first_per_class", "train_generators", "sample",
           "generated_set"]
