"""How good are generated images? Inception Score, FID and SSIM, with an honest feature network.

IS and FID judge images through a feature network. The standard one is Inception-v3 with the
weights torch-fidelity publishes; torchmetrics downloads them on first use. Offline (or with no
cached weights) we cannot use it, so :func:`inception_features_or_fallback` trains a small CNN on
the real images instead and says so: its :attr:`FeatureNet.name` goes into every table, because
numbers from different feature networks are not comparable (an FID "of 0.8" means nothing
without knowing whose features it measured).

* Inception Score (Salimans et al., 2016): ``IS = exp(E_x KL(p(y|x) || p(y)))``, high when each
  image is classified confidently (sharp p(y|x)) and the classes are spread (broad p(y)).
  One class of identical images gives exactly 1. IS is computed in groups ("splits") and averaged,
  and within a group it cannot exceed the number of images in the group, nor the number of classes:
  two sets scored with different group sizes are not comparable. :func:`paired_inception_scores`
  scores a real and a generated set with the same number of images and the same splits.
* FID (Heusel et al., 2017): ``||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` between
  Gaussians fitted to the features of the real and the generated images. With few images it is
  biased upwards, and the bias depends on both sample sizes, so a baseline must use the same sizes
  as the score it is read against. :func:`fid_like_with_like` splits the real images into two halves
  A and B and computes FID(A, B) beside FID(A, G), G as many generated images as B holds, over several
  random splits: a generator whose images are draws from the real distribution scores, on average,
  exactly the real-vs-real value.
* SSIM (Wang et al., 2004): local means, variances and covariance of two images compared
  window by window; 1 for identical images. :func:`mean_ssim` averages it over every (real,
  generated) pair, as document 001 does; :func:`mean_ssim_within` over every pair of two different
  images of one set (no image is paired with itself).
"""

from __future__ import annotations

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
from course_lib.train import checkpoint_path, fingerprint, fit

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


def train_feature_net(data: ImageSet, epochs: int = 30, width: int = 32, seed: int = 0,
                      progress: bool = True) -> FeatureNet:
    """Train :class:`SignFeatureCNN` on the real images (checkpointed: a re-run loads it), wrapped as a FeatureNet."""
    if data.x.shape[1] != 3:
        raise ValueError(f"the feature network expects RGB images (N, 3, H, W), got {tuple(data.x.shape)}")
    torch.manual_seed(seed)
    net = SignFeatureCNN(len(data.classes), width=width)
    path = checkpoint_path("sign-feature-cnn", data=fingerprint(data), epochs=epochs, width=width, seed=seed)
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
    if splits < 1:
        raise ValueError(f"inception_score: splits must be at least 1, got {splits}")
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


@dataclass(frozen=True)
class PairedIS:
    """IS of a real and a generated set scored alike: ``images`` of each, in ``splits`` groups of ``per_split`` or more."""

    real: float
    generated: float
    images: int
    splits: int

    @property
    def per_split(self) -> int:
        """Images in the smallest group: no IS of these groups can exceed it."""
        return self.images // self.splits


def paired_inception_scores(real: torch.Tensor, fake: torch.Tensor, feature_net: FeatureNet, splits: int = 10,
                            seed: int = 0) -> PairedIS:
    """IS of real and generated images with the same number of images (a seeded subset of the larger set) and splits."""
    real, fake = _check(real, "IS (real)"), _check(fake, "IS (generated)")
    if splits < 1:
        raise ValueError(f"paired_inception_scores: splits must be at least 1, got {splits}")
    n = min(len(real), len(fake))
    g = torch.Generator().manual_seed(seed)
    real = real[torch.randperm(len(real), generator=g)[:n]] if len(real) > n else real
    fake = fake[torch.randperm(len(fake), generator=g)[:n]] if len(fake) > n else fake
    splits = max(1, min(splits, n // 2))            # what inception_score would use: the same for both
    return PairedIS(inception_score(real, feature_net, splits, seed)[0],
                    inception_score(fake, feature_net, splits, seed)[0], n, splits)


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


@dataclass(frozen=True)
class FIDPair:
    """FID of generated images and the real-vs-real FID beside it, both at the same sample sizes.

    ``generated`` and ``real`` are means over ``splits`` random splits (``*_std`` their spread):
    each split compares ``sizes[0]`` real images with ``sizes[1]`` generated ones, and the same
    ``sizes[0]`` real images with ``sizes[1]`` other real images.
    """

    generated: float
    real: float
    generated_std: float
    real_std: float
    sizes: tuple[int, int]
    splits: int


def _fid_features(images: torch.Tensor, feature_net: FeatureNet) -> torch.Tensor:
    """The features torchmetrics' FID would extract from ``images`` (same network, same byte scaling), float64."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=feature_net.fid_feature, normalize=True)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 256):
            batch = images[i:i + 256]
            batch = batch if metric.used_custom_model else (batch * 255).byte()
            out.append(metric.inception(batch).double().reshape(len(batch), -1))
    return torch.cat(out)


def _frechet(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two feature matrices (N, d), by torchmetrics' formula (covariances with N - 1)."""
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root = torch.linalg.eigvals(cov_a @ cov_b).sqrt().real.sum()
    return float((a.mean(0) - b.mean(0)).square().sum() + cov_a.trace() + cov_b.trace() - 2 * root)


def fid_like_with_like(real: torch.Tensor, fake: torch.Tensor, feature_net: FeatureNet, splits: int = 5,
                       seed: int = 0) -> FIDPair:
    """FID(A, G) and FID(A, B) over random splits of the real images into A and B, G as many generated images as B.

    Features are extracted once per set; each split only re-fits the Gaussians.
    """
    real, fake = _check(real, "fid_like_with_like (real)", minimum=4), _check(fake, "fid_like_with_like (generated)")
    if splits < 1:
        raise ValueError(f"fid_like_with_like: splits must be at least 1, got {splits}")
    half = len(real) // 2
    m = min(half, len(fake))                        # B and G: the same size
    fr, ff = _fid_features(real, feature_net), _fid_features(fake, feature_net)
    g = torch.Generator().manual_seed(seed)
    to_gen, to_real = [], []
    for _ in range(splits):
        order = torch.randperm(len(real), generator=g)
        a, b = fr[order[:half]], fr[order[half:half + m]]
        gen = ff[torch.randperm(len(fake), generator=g)[:m]]
        to_gen.append(_frechet(a, gen))
        to_real.append(_frechet(a, b))
    return FIDPair(float(np.mean(to_gen)), float(np.mean(to_real)), float(np.std(to_gen)), float(np.std(to_real)),
                   (half, m), splits)


def _ssim_arrays(real: torch.Tensor, fake: torch.Tensor, what: str) -> tuple[np.ndarray, np.ndarray, bool]:
    if real.ndim != 4 or fake.ndim != 4 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"{what}: expected two batches (N, C, H, W) of the same image shape, got "
                         f"{tuple(real.shape)} and {tuple(fake.shape)}")
    rgb = real.shape[1] == 3
    to_np = lambda t: (t.float().clamp(0, 1).permute(0, 2, 3, 1).numpy() if rgb  # noqa: E731
                       else t.float().clamp(0, 1)[:, 0].numpy()).astype(np.float64)
    return to_np(real), to_np(fake), rgb


def _mean_over_pairs(a: np.ndarray, b: np.ndarray, rgb: bool, pairs: list[tuple[int, int]], max_pairs: int | None,
                     seed: int, what: str) -> float:
    from skimage.metrics import structural_similarity

    if max_pairs is not None and len(pairs) > max_pairs:
        if max_pairs < 1:
            raise ValueError(f"{what}: max_pairs must be at least 1, got {max_pairs}")
        keep = np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False)
        pairs = [pairs[k] for k in np.sort(keep)]
    scores = [structural_similarity(a[i], b[j], data_range=1.0, channel_axis=-1 if rgb else None) for i, j in pairs]
    return float(np.mean(scores))


def mean_ssim(real: torch.Tensor, fake: torch.Tensor, max_pairs: int | None = None, seed: int = 0) -> float:
    """Mean scikit-image SSIM over every (real, generated) pair of images in [0, 1] (RGB or grayscale).

    ``max_pairs`` caps the work (about 0.4 ms a pair at 64x64) with a seeded random sample of pairs.
    """
    a, b, rgb = _ssim_arrays(real, fake, "mean_ssim")
    if len(a) == 0 or len(b) == 0:
        raise ValueError("mean_ssim: both sets need at least one image")
    pairs = [(i, j) for i in range(len(a)) for j in range(len(b))]
    return _mean_over_pairs(a, b, rgb, pairs, max_pairs, seed, "mean_ssim")


def mean_ssim_within(images: torch.Tensor, max_pairs: int | None = None, seed: int = 0) -> float:
    """Mean SSIM over every pair of two different images of one set (SSIM is symmetric: each pair once)."""
    a, _, rgb = _ssim_arrays(images, images, "mean_ssim_within")
    if len(a) < 2:
        raise ValueError(f"mean_ssim_within: need at least 2 images to form a pair, got {len(a)}")
    pairs = [(i, j) for i in range(len(a)) for j in range(i + 1, len(a))]
    return _mean_over_pairs(a, a, rgb, pairs, max_pairs, seed, "mean_ssim_within")


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


def _resized(real: ImageSet, size: int) -> torch.Tensor:
    if real.shape[-1] == size:
        return real.x
    return nn.functional.interpolate(real.x, size=(size, size), mode="bilinear", antialias=True,
                                     align_corners=False).clamp(0, 1)


def per_class_quality(real: ImageSet, fake: ImageSet, feature_net: FeatureNet, ssim_pairs: int | None = 2000,
                      seed: int = 0, progress: bool = True, is_splits: int = 10, fid_splits: int = 5) -> pd.DataFrame:
    """One row per class: IS, FID and mean SSIM of the generated images, each beside its real-vs-real value.

    ``real`` is resized to ``fake``'s image size. Each real-vs-real column is measured the way its
    generated column is: IS of as many real as generated images in the same splits (columns
    ``IS images`` and ``IS splits``; no IS can exceed the images of a split), FID real-half vs. real-half
    beside real-half vs. as many generated images (:func:`fid_like_with_like`, its spread over
    ``fid_splits`` splits in ``FID real-vs-real std``), and SSIM over pairs of two different real images.
    """
    if real.classes != fake.classes:
        raise ValueError(f"real and generated sets must have the same classes, got {real.classes} and {fake.classes}")
    rx = _resized(real, fake.shape[-1])
    rows = []
    for k, cls in enumerate(tqdm(real.classes, desc="metrics per class", disable=not progress, leave=False)):
        r, g = rx[real.y == k], fake.x[fake.y == k]
        if len(r) < 4 or len(g) < 2:
            raise ValueError(f"class {cls!r}: need at least 4 real and 2 generated images, got {len(r)} and {len(g)}")
        scores = paired_inception_scores(r, g, feature_net, splits=is_splits, seed=seed)
        distance = fid_like_with_like(r, g, feature_net, splits=fid_splits, seed=seed)
        rows.append({"class": cls, "real images": len(r), "generated images": len(g),
                     "inception_score": scores.generated, "IS real": scores.real,
                     "IS images": scores.images, "IS splits": scores.splits,
                     "fid": distance.generated, "FID real-vs-real": distance.real,
                     "FID real-vs-real std": distance.real_std,
                     "FID images": f"{distance.sizes[0]} vs {distance.sizes[1]}",
                     "ssim": mean_ssim(r, g, max_pairs=ssim_pairs, seed=seed),
                     "SSIM real-vs-real": mean_ssim_within(r, max_pairs=ssim_pairs, seed=seed)})
    return pd.DataFrame(rows)


def whole_set_inception(real: ImageSet, fake: ImageSet, feature_net: FeatureNet, splits: int = 10,
                        seed: int = 0) -> PairedIS:
    """IS over all classes together (the document's "whole dataset" IS), real and generated scored alike."""
    if real.classes != fake.classes:
        raise ValueError(f"real and generated sets must have the same classes, got {real.classes} and {fake.classes}")
    return paired_inception_scores(_resized(real, fake.shape[-1]), fake.x, feature_net, splits=splits, seed=seed)


__all__ = ["FeatureNet", "PairedIS", "FIDPair", "per_class_quality", "whole_set_inception", "images_per_second",
           "SignFeatureCNN", "train_feature_net", "try_inception", "inception_weights_cached",
           "inception_features_or_fallback", "inception_score", "paired_inception_scores", "fid",
           "fid_like_with_like", "mean_ssim", "mean_ssim_within"]
