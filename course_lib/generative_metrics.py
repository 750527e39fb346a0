"""How good are generated images? Inception Score, FID and SSIM, with an honest feature network.

IS and FID judge images through a feature network. The standard one is Inception-v3 with the
weights torch-fidelity publishes; torchmetrics downloads them on first use. Offline (or with no
cached weights) we cannot use it, so :func:`inception_features_or_fallback` trains a small CNN on
the real images instead and says so: its :attr:`FeatureNet.name` goes into every table, because
numbers from different feature networks are not comparable (an FID "of 0.8" means nothing
without knowing whose features it measured).

* Inception Score (Salimans et al., 2016): ``IS = exp(E_x KL(p(y|x) || p(y)))``, high when each
  image is classified confidently (sharp p(y|x)) and the classes are spread (broad p(y)).
  One class of identical images gives exactly 1; n equally used, confidently told apart classes
  give up to n.
* FID (Heusel et al., 2017): ``||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` between
  Gaussians fitted to the features of the real and the generated images. With few images it is
  biased upwards, so :func:`fid_baseline` gives the FID of the real set against itself (two
  halves) to read the other values against.
* SSIM (Wang et al., 2004): local means, variances and covariance of two images compared
  window by window; 1 for identical images. :func:`mean_ssim` averages it over every (real,
  generated) pair, as document 001 does.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.augment import random_affine
from course_lib.data.cache import offline_requested
from course_lib.data.imageset import ImageSet
from course_lib.train import checkpoint_path, fit

INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"  # the file torch-fidelity downloads


@dataclass
class FeatureNet:
    """A feature network for IS and FID, with a ``name`` to print beside every number it produced.

    ``fid_feature`` maps images to embeddings and ``is_feature`` to class logits; each is either an
    ``nn.Module`` taking float images in [0, 1], or torchmetrics' name for an Inception-v3 layer.
    """

    name: str
    fid_feature: nn.Module | int
    is_feature: nn.Module | str
    inception: bool = False

    def __str__(self) -> str:
        return self.name


# ----------------------------------------------------------------------------- the fallback network
class SignFeatureCNN(nn.Module):
    """A small classifier whose penultimate layer serves as the FID embedding (any input size, resized)."""

    def __init__(self, n_classes: int, width: int = 32, dim: int = 128, size: int = 64) -> None:
        super().__init__()
        self.size = size

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

        self.body = nn.Sequential(*block(3, width), *block(width, 2 * width), *block(2 * width, 4 * width),
                                  *block(4 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(4 * width, dim), nn.ReLU())
        self.head = nn.Linear(dim, n_classes)
        self.dim = dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] (or uint8 in [0, 255]) -> (N, dim) features."""
        if x.dtype == torch.uint8:
            x = x.float() / 255
        if x.shape[-2:] != (self.size, self.size):
            x = nn.functional.interpolate(x.float(), size=(self.size, self.size), mode="bilinear",
                                          antialias=True, align_corners=False)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes)."""
        return self.head(self.embed(x))


class _Frozen(nn.Module):
    """One output of a trained SignFeatureCNN, in eval mode and without gradients (what torchmetrics calls)."""

    def __init__(self, net: SignFeatureCNN, logits: bool) -> None:
        super().__init__()
        self.net, self.logits = net.eval(), logits
        self.num_features = net.head.out_features if logits else net.dim  # torchmetrics reads this

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        with torch.no_grad():
            return self.net(x) if self.logits else self.net.embed(x)


def _fingerprint(data: ImageSet) -> str:
    return hashlib.sha256(data.x.numpy().tobytes() + data.y.numpy().tobytes()).hexdigest()[:12]


def train_feature_net(data: ImageSet, epochs: int = 30, width: int = 32, seed: int = 0,
                      progress: bool = True) -> FeatureNet:
    """Train :class:`SignFeatureCNN` on the real images (checkpointed: a re-run loads it), wrapped as a FeatureNet."""
    if data.x.shape[1] != 3:
        raise ValueError(f"the feature network expects RGB images (N, 3, H, W), got {tuple(data.x.shape)}")
    torch.manual_seed(seed)
    net = SignFeatureCNN(len(data.classes), width=width)
    path = checkpoint_path("sign-feature-cnn", data=_fingerprint(data), epochs=epochs, width=width, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    history = fit(net, (data.x, data.y), epochs=epochs, lr=2e-3, batch_size=32, seed=seed, checkpoint=path,
                  progress=progress, augment=lambda b: random_affine(b, degrees=10, translate=0.08, generator=gen))
    name = (f"small CNN trained on the real images ({len(data)} images, {len(data.classes)} classes, "
            f"{epochs} epochs, final train loss {history.last('train_loss'):.3f}); NOT Inception-v3")
    return FeatureNet(name, _Frozen(net, logits=False), _Frozen(net, logits=True))


# ----------------------------------------------------------------------------- Inception-v3, if we can
def inception_weights_cached() -> bool:
    """True when torch-fidelity's Inception-v3 weights are already in torch's hub cache."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS).exists()


def try_inception() -> tuple[FeatureNet | None, str]:
    """torchmetrics' default Inception-v3 as a FeatureNet, or (None, why not)."""
    if offline_requested() and not inception_weights_cached():
        return None, "offline (COURSE_OFFLINE) and no cached Inception-v3 weights"
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        FrechetInceptionDistance(feature=2048)  # loads (or downloads) the weights
    except (OSError, RuntimeError, ImportError) as exc:  # URLError is an OSError
        return None, f"weights unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    return FeatureNet("Inception-v3 (torch-fidelity weights via torchmetrics): 2048-d pool features, "
                      "1008 logits", 2048, "logits_unbiased", inception=True), "ok"


def inception_features_or_fallback(data: ImageSet, epochs: int = 30, use_inception: bool = True,
                                   quiet: bool = False) -> FeatureNet:
    """Inception-v3 if its weights are cached or reachable, else a small CNN trained on ``data``; says which."""
    reason = "not asked for"
    if use_inception:
        net, reason = try_inception()
        if net is not None:
            if not quiet:
                print(f"IS/FID features: {net.name}.")
            return net
    net = train_feature_net(data, epochs, progress=not quiet)
    if not quiet:
        print(f"IS/FID features: {net.name} (Inception-v3 {reason}).")
    return net


# ----------------------------------------------------------------------------- the metrics
def _check(images: torch.Tensor, what: str, minimum: int = 2) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{what}: expected RGB images (N, 3, H, W), got shape {tuple(images.shape)}")
    if len(images) < minimum:
        raise ValueError(f"{what}: need at least {minimum} images, got {len(images)}")
    return images.float().clamp(0, 1)


def inception_score(images: torch.Tensor, feature_net: FeatureNet, splits: int = 10,
                    seed: int = 0) -> tuple[float, float]:
    """(mean, std) Inception Score of images in [0, 1] over ``splits`` groups (fewer if there are few images)."""
    from torchmetrics.image.inception import InceptionScore

    images = _check(images, "inception_score", minimum=1)
    splits = max(1, min(splits, len(images) // 2))  # at least two images in every group
    # a custom network gets the float images as they are; torchmetrics' Inception wants them scaled to bytes
    with warnings.catch_warnings():  # "will save all extracted features": fine for a few hundred images
        warnings.simplefilter("ignore", UserWarning)
        metric = InceptionScore(feature=feature_net.is_feature, splits=splits, normalize=feature_net.inception)
    for i in range(0, len(images), 256):
        metric.update(images[i:i + 256])
    with torch.random.fork_rng(), warnings.catch_warnings():  # compute() shuffles with torch's global RNG
        torch.manual_seed(seed)
        warnings.simplefilter("ignore", UserWarning)  # the std of a single group (splits=1) is NaN: we report 0
        mean, std = metric.compute()
    return float(mean), float(std) if splits > 1 else 0.0


def fid(real: torch.Tensor, fake: torch.Tensor, feature_net: FeatureNet) -> float:
    """Frechet distance between Gaussians fitted to ``feature_net``'s features of two image sets in [0, 1]."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, fake = _check(real, "fid (real)"), _check(fake, "fid (generated)")
    metric = FrechetInceptionDistance(feature=feature_net.fid_feature, normalize=True)
    for i in range(0, len(real), 256):
        metric.update(real[i:i + 256], real=True)
    for i in range(0, len(fake), 256):
        metric.update(fake[i:i + 256], real=False)
    return float(metric.compute())


def fid_baseline(real: torch.Tensor, feature_net: FeatureNet, seed: int = 0) -> float:
    """FID of the real images against themselves: one random half against the other (what 'good' looks like)."""
    real = _check(real, "fid_baseline", minimum=4)
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))
    half = len(real) // 2
    return fid(real[order[:half]], real[order[half:2 * half]], feature_net)


def mean_ssim(real: torch.Tensor, fake: torch.Tensor, max_pairs: int | None = None, seed: int = 0) -> float:
    """Mean scikit-image SSIM over every (real, generated) pair of images in [0, 1] (RGB or grayscale).

    ``max_pairs`` caps the work (about 0.4 ms a pair at 64x64) with a seeded random sample of pairs.
    """
    from skimage.metrics import structural_similarity

    if real.ndim != 4 or fake.ndim != 4 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"mean_ssim: expected two batches (N, C, H, W) of the same image shape, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    if len(real) == 0 or len(fake) == 0:
        raise ValueError("mean_ssim: both sets need at least one image")
    rgb = real.shape[1] == 3
    to_np = lambda t: (t.float().clamp(0, 1).permute(0, 2, 3, 1).numpy() if rgb  # noqa: E731
                       else t.float().clamp(0, 1)[:, 0].numpy()).astype(np.float64)
    a, b = to_np(real), to_np(fake)
    pairs = [(i, j) for i in range(len(a)) for j in range(len(b))]
    if max_pairs is not None and len(pairs) > max_pairs:
        if max_pairs < 1:
            raise ValueError(f"mean_ssim: max_pairs must be at least 1, got {max_pairs}")
        keep = np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False)
        pairs = [pairs[k] for k in np.sort(keep)]
    scores = [structural_similarity(a[i], b[j], data_range=1.0, channel_axis=-1 if rgb else None) for i, j in pairs]
    return float(np.mean(scores))


def images_per_second(draw: Callable[[int, int], torch.Tensor], n: int = 200, repeats: int = 3,
                      threads: int | None = None) -> float:
    """Best rate of ``repeats`` calls ``draw(n, seed)`` (after a small warm-up call), in images per second."""
    from course_lib.evolution import torch_threads

    best = math.inf
    with torch_threads(threads):
        draw(min(n, 8), 0)                                                 # warm-up
        for r in range(repeats):
            t0 = time.perf_counter()
            draw(n, r)
            best = min(best, time.perf_counter() - t0)
    return n / best


def per_class_quality(real: ImageSet, fake: ImageSet, feature_net: FeatureNet, ssim_pairs: int | None = 2000,
                      seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """One row per class: IS, FID and mean SSIM of the generated images, each beside its real-vs-real value.

    ``real`` is resized to ``fake``'s image size. The real-vs-real columns say what a perfect generator
    would score on these few images: IS of the real images, FID of one half of them against the other,
    and SSIM between different real images of the class.
    """
    if real.classes != fake.classes:
        raise ValueError(f"real and generated sets must have the same classes, got {real.classes} and {fake.classes}")
    size = fake.shape[-1]
    rx = real.x if real.shape[-1] == size else nn.functional.interpolate(
        real.x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    rows = []
    for k, cls in enumerate(tqdm(real.classes, desc="metrics per class", disable=not progress, leave=False)):
        r, g = rx[real.y == k], fake.x[fake.y == k]
        if len(r) < 4 or len(g) < 2:
            raise ValueError(f"class {cls!r}: need at least 4 real and 2 generated images, got {len(r)} and {len(g)}")
        others = torch.arange(len(r))
        rows.append({"class": cls, "real images": len(r), "generated images": len(g),
                     "inception_score": inception_score(g, feature_net, seed=seed)[0],
                     "IS real": inception_score(r, feature_net, seed=seed)[0],
                     "fid": fid(r, g, feature_net),
                     "FID real-vs-real": fid_baseline(r, feature_net, seed=seed),
                     "ssim": mean_ssim(r, g, max_pairs=ssim_pairs, seed=seed),
                     # real x other real images of the class: shift by one so no image meets itself
                     "SSIM real-vs-real": mean_ssim(r, r[(others + 1) % len(r)], max_pairs=ssim_pairs, seed=seed)})
    return pd.DataFrame(rows)


__all__ = ["FeatureNet", "per_class_quality", "images_per_second",
           "SignFeatureCNN", "train_feature_net", "try_inception", "inception_weights_cached",
           "inception_features_or_fallback", "inception_score", "fid", "fid_baseline", "mean_ssim"]
