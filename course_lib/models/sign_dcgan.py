"""The DCGAN of document 001 (Table 2), trained one model per traffic-sign class (notebook 05).

The layout is Radford, Metz and Chintala's DCGAN ("Unsupervised representation learning with deep
convolutional generative adversarial networks", 2015), as in pytorch/examples ``dcgan/main.py``:

* generator: z (N, 256) seen as a 1x1 map; a ConvTranspose2d (kernel 4, stride 1, no padding) makes it
  4x4 with 8w channels; stride-2 ConvTranspose2d layers (kernel 4, padding 1) double it to 8, 16, 32
  with 4w, 2w, w channels; a last one reaches 64x64 with 3 channels. BatchNorm2d + ReLU after every
  layer but the last, Tanh at the end, so pixels are in [-1, 1];
* discriminator: four stride-2 Conv2d (kernel 4, padding 1) with w, 2w, 4w, 8w channels, each followed
  by LeakyReLU(0.2) and Dropout(0.2), BatchNorm2d on layers 2-4 (not on the first, as Table 2); a last
  Conv2d (kernel 4, no padding) turns the 4x4 map into one number, and a Sigmoid into a probability.

``w`` is Table 2's FEATURES_GEN = FEATURES_DIS = 64 (our ``width``). Other image sizes (16, 32, 64,
128, ...) use log2(size / 4) stride-2 layers, so 32x32 has one layer fewer on each side.

Training (document 001): weights from N(0, 0.02), BatchNorm scales from N(1, 0.02) (after Radford et
al.); binary cross-entropy; Adam lr 2e-4, betas (0.5, 0.999) for both networks; 10,000 epochs per
class; "noise in the labels", which the document does not specify. Our reading is in
:func:`noisy_targets`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_lib.data.imageset import check_unit_images
from course_lib.evolution import torch_threads
from course_lib.models.dcgan import DCGANRun
from course_lib.train import (TrainingDiverged, checkpoint_path, epochs_by_class, even_batches, load_verified,
                              loaded_message, save_atomic)

LATENT = 256         # Table 2 / text: latent vector of 256
FEATURES = 64        # Table 2: FEATURES_GEN = FEATURES_DIS = 64
DROPOUT = 0.2        # discriminator dropout
SLOPE = 0.2          # LeakyReLU negative slope (Radford et al.)
LABEL_NOISE = 0.1    # our reading of "noise in the labels" (see noisy_targets)


def doublings(size: int) -> int:
    """Stride-2 layers between a 4x4 map and a ``size`` x ``size`` image: log2(size / 4)."""
    if not isinstance(size, int) or size < 16 or size & (size - 1):
        raise ValueError(f"image size must be a power of two of at least 16 (16, 32, 64, 128, ...), got {size!r}")
    return int(math.log2(size // 4))


def _check_positive(**values: int) -> None:
    bad = {k: v for k, v in values.items() if not isinstance(v, int) or v < 1}
    if bad:
        raise ValueError(f"expected positive whole numbers, got {bad}")


class SignGenerator(nn.Module):
    """z (N, latent) -> images (N, channels, size, size) in [-1, 1] (Tanh)."""

    def __init__(self, latent: int = LATENT, size: int = 64, channels: int = 3, width: int = FEATURES) -> None:
        super().__init__()
        _check_positive(latent=latent, channels=channels, width=width)
        self.latent, self.size, self.channels, self.width = latent, size, channels, width
        d = doublings(size)                                    # 64 px -> 4
        chans = [width * 2 ** (d - 1 - i) for i in range(d)]  # 64 px: 8w, 4w, 2w, w  (512, 256, 128, 64)
        # Layer 1: (N, latent, 1, 1) -> (N, 8w, 4, 4). No bias where BatchNorm follows: its shift replaces it.
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent, chans[0], 4, stride=1, padding=0, bias=False),
                                   nn.BatchNorm2d(chans[0]), nn.ReLU(True)]
        # Layers 2-4: (N, c, s, s) -> (N, c/2, 2s, 2s): 4 -> 8 -> 16 -> 32
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(True)]
        # Output layer: (N, w, 32, 32) -> (N, 3, 64, 64), Tanh
        layers += [nn.ConvTranspose2d(chans[-1], channels, 4, stride=2, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] for a batch of latent vectors."""
        if z.dim() != 2 or z.shape[1] != self.latent:
            raise ValueError(f"expected latent vectors of shape (N, {self.latent}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])                  # (N, latent) -> (N, latent, 1, 1)


class SignDiscriminator(nn.Module):
    """images (N, channels, size, size) in [-1, 1] -> probability of 'real' (N,).

    The network ends in the logit; ``forward`` applies the Sigmoid of Table 2. Training uses
    :meth:`logits` with BCE-with-logits, the same loss as Sigmoid + BCE but computed as
    log-sum-exp: once D is confident, Sigmoid saturates to exactly 0 or 1 in float32 and BCELoss
    clamps log(0), which cuts the gradient the generator needs.
    """

    def __init__(self, size: int = 64, channels: int = 3, width: int = FEATURES, dropout: float = DROPOUT) -> None:
        super().__init__()
        _check_positive(channels=channels, width=width)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.size, self.channels, self.width = size, channels, width
        d = doublings(size)
        chans = [width * 2 ** i for i in range(d)]             # 64 px: w, 2w, 4w, 8w  (64, 128, 256, 512)
        # Layer 1: (N, 3, 64, 64) -> (N, w, 32, 32), no BatchNorm (Table 2)
        layers: list[nn.Module] = [nn.Conv2d(channels, chans[0], 4, stride=2, padding=1),
                                   nn.LeakyReLU(SLOPE, True), nn.Dropout(dropout)]
        # Layers 2-4: (N, c, s, s) -> (N, 2c, s/2, s/2): 32 -> 16 -> 8 -> 4
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(SLOPE, True), nn.Dropout(dropout)]
        # Output layer: (N, 8w, 4, 4) -> (N, 1, 1, 1), one logit per image
        layers += [nn.Conv2d(chans[-1], 1, 4, stride=1, padding=0)]
        self.net = nn.Sequential(*layers)
        self.prob = nn.Sigmoid()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores (N,): large means 'real'."""
        expected = (self.channels, self.size, self.size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        return self.net(x).flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """D(x): the probability that each image is real (N,)."""
        return self.prob(self.logits(x))


def init_weights(module: nn.Module) -> None:
    """Document 001's manual initialisation (after Radford et al. 2015), for ``model.apply``.

    Conv / ConvTranspose weights ~ N(0, 0.02); BatchNorm scales ~ N(1, 0.02), shifts 0.
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def noisy_targets(n: int, real: bool, label_noise: float = LABEL_NOISE,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Discriminator targets (n,) with label noise: real ~ U[1 - label_noise, 1], fake ~ U[0, label_noise].

    Document 001 "introduces noise into labels" without saying how; this is our reading, a two-sided
    form of Salimans et al.'s label smoothing ("Improved techniques for training GANs", 2016) with a
    fresh draw for every image. ``label_noise`` = 0 gives exact 1s and 0s. The generator's own
    targets always stay 1.
    """
    if not 0 <= label_noise < 0.5:
        raise ValueError(f"label_noise must be in [0, 0.5), got {label_noise!r}")
    u = torch.rand(n, generator=generator) * label_noise
    return 1.0 - u if real else u


def sign_gan_step(G: SignGenerator, D: SignDiscriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                  real: torch.Tensor, z: torch.Tensor, label_noise: float = LABEL_NOISE,
                  generator: torch.Generator | None = None) -> dict[str, float]:
    """One update of D, then of G, on ``real`` images in [-1, 1]; losses and mean D(x), D(G(z))."""
    bce = F.binary_cross_entropy_with_logits          # = BCELoss(Sigmoid(logit)), computed stably
    fake = G(z)
    # discriminator: maximise log D(x) + log(1 - D(G(z)))  (Goodfellow et al. 2014, eq. 1), noisy targets
    opt_d.zero_grad(set_to_none=True)
    logit_real, logit_fake = D.logits(real), D.logits(fake.detach())
    loss_d = (bce(logit_real, noisy_targets(len(real), True, label_noise, generator))
              + bce(logit_fake, noisy_targets(len(z), False, label_noise, generator)))
    loss_d.backward()
    opt_d.step()
    # generator, non-saturating form (Goodfellow et al. 2014, Sec. 3): maximise log D(G(z)), target 1
    opt_g.zero_grad(set_to_none=True)
    loss_g = bce(D.logits(fake), torch.ones(len(z)))
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(logit_real.detach()).mean().item(),
            "d_fake": torch.sigmoid(logit_fake.detach()).mean().item()}


def param_count(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# One class's trained pair and its per-epoch history (loss_d, loss_g, d_real, d_fake): the same record as 08's DCGAN.
SignDCGANRun = DCGANRun


def train_sign_dcgan(images: torch.Tensor, *, epochs: int, latent: int = LATENT, width: int = FEATURES,
                     dropout: float = DROPOUT, label_noise: float = LABEL_NOISE, batch_size: int = 32,
                     lr: float = 2e-4, seed: int = 0, checkpoint: Path | str | None = None,
                     checkpoint_every: int = 50, retrain: bool = False, progress: bool = True,
                     desc: str = "DCGAN epochs") -> SignDCGANRun:
    """Train one DCGAN (Table 2) on ``images`` (N, C, H, W) in [0, 1]; resume or load a checkpoint.

    Pixels are mapped to [-1, 1] to match the Tanh output. Each epoch visits every image once in
    shuffled batches; z ~ N(0, I). The state is saved atomically every ``checkpoint_every`` epochs and
    at the end, so a longer run continues a shorter one.
    """
    check_unit_images(images)
    if not isinstance(epochs, int) or epochs < 1 or not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"epochs must be at least 1 and batch_size at least 2, got {epochs!r}, {batch_size!r}")
    if len(images) < 2:
        raise ValueError(f"need at least 2 images (BatchNorm needs two per batch), got {len(images)}")
    _, channels, size, _ = images.shape
    torch.manual_seed(seed)
    G, D = SignGenerator(latent, size, channels, width), SignDiscriminator(size, channels, width, dropout)
    G.apply(init_weights), D.apply(init_weights)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))   # document 001: Adam 2e-4, (0.5, 0.999)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)              # batches, z and label noise
    run = SignDCGANRun(G, D)
    path = Path(checkpoint) if checkpoint is not None else None
    state = load_verified(path) if path is not None and not retrain else None
    if state is not None:
        for module, key in ((G, "G"), (D, "D"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(state[key])
        gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])            # dropout draws from the global generator
        run.epochs = list(state["epochs"])
        run.resumed_from = len(run.epochs)

    def save() -> None:
        if path is not None:
            save_atomic({"G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(),
                         "opt_d": opt_d.state_dict(), "rng": gen.get_state(), "torch_rng": torch.get_rng_state(),
                         "epochs": run.epochs}, path)

    data = images * 2 - 1                                  # [0, 1] -> [-1, 1], the Tanh range
    n = len(data)
    bar = tqdm(range(len(run.epochs), epochs), desc=desc, disable=not progress, initial=min(len(run.epochs), epochs),
               total=epochs, leave=False)
    G.train(), D.train()
    for epoch in bar:
        order = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        steps = 0
        for batch in even_batches(order, batch_size):  # near-equal batches: no tiny leftover for BatchNorm
            real = data[batch]
            z = torch.randn(len(real), latent, generator=gen)
            for k, v in sign_gan_step(G, D, opt_g, opt_d, real, z, label_noise, gen).items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        record = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}}
        if not all(math.isfinite(v) for v in record.values()):
            raise TrainingDiverged(f"DCGAN losses became NaN/inf in epoch {epoch + 1}: {record}; "
                                   "lower the learning rate or check the images")
        run.epochs.append(record)
        if (epoch + 1) % checkpoint_every == 0:
            save()
        bar.set_postfix(loss_d=round(record["loss_d"], 3), loss_g=round(record["loss_g"], 3))
    if len(run.epochs) > run.resumed_from or (path is not None and not path.exists()):
        save()
    G.eval(), D.eval()
    return run


def train_sign_dcgan_per_class(images_by_class: Mapping[str, torch.Tensor], epochs: int | Mapping[str, int], *,
                               latent: int = LATENT, width: int = FEATURES, dropout: float = DROPOUT,
                               label_noise: float = LABEL_NOISE, batch_size: int = 32, lr: float = 2e-4,
                               seed: int = 0, name: str = "sign-dcgan", retrain: bool = False,
                               progress: bool = True, threads: int | None = 1) -> dict[str, SignDCGANRun]:
    """One DCGAN per class (checkpoints in the cache, keyed by settings and data); class name -> run.

    ``epochs``: one number for every class, or a mapping class name -> epochs (e.g. more for small
    classes, for the same number of optimizer steps). The epoch count is not part of the checkpoint
    key, so asking for more epochs continues a cached run.
    """
    if not isinstance(images_by_class, Mapping) or not images_by_class:
        raise ValueError("images_by_class must be a non-empty mapping of class name -> images (N, C, H, W)")
    per_class = epochs_by_class(epochs, images_by_class)
    runs: dict[str, SignDCGANRun] = {}
    with torch_threads(threads):
        bar = tqdm(list(enumerate(images_by_class.items())), desc="classes", disable=not progress)
        for k, (cls, x) in bar:
            bar.set_postfix_str(str(cls))
            check_unit_images(x, f"class {cls!r}")
            if len(x) < 2:
                raise ValueError(f"class {cls!r} has {len(x)} image(s); a DCGAN needs at least 2 (BatchNorm)")
            ckpt = checkpoint_path(f"{name}-{cls}", latent=latent, width=width, dropout=dropout,
                                   label_noise=label_noise, batch_size=batch_size, lr=lr, seed=seed + k,
                                   shape=list(x.shape), data=x)  # hashed by content
            runs[cls] = train_sign_dcgan(x, epochs=per_class[cls], latent=latent, width=width, dropout=dropout,
                                         label_noise=label_noise, batch_size=batch_size, lr=lr, seed=seed + k,
                                         checkpoint=ckpt, retrain=retrain, progress=progress, desc=f"DCGAN {cls}")
            if progress and runs[cls].resumed_from:  # it came from the cache
                print(loaded_message(cls, runs[cls].resumed_from, per_class[cls]))
    return runs


@torch.no_grad()
def generate(G: SignGenerator, n: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """``n`` new images (n, C, H, W) in [0, 1] from z ~ N(0, I) (seeded), in eval mode."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a whole number of at least 1, got {n!r}")
    G.eval()
    z = torch.randn(n, G.latent, generator=torch.Generator().manual_seed(seed))
    out = torch.cat([G(z[i:i + batch_size]) for i in range(0, n, batch_size)])
    return ((out + 1) / 2).clamp_(0, 1)                    # Tanh range [-1, 1] -> [0, 1]


def throughput(G: SignGenerator, n: int = 200, repeats: int = 3, threads: int | None = None) -> float:
    """Images generated per second by :func:`generate` (best of ``repeats`` runs of ``n`` images)."""
    from course_lib.generative_metrics import images_per_second

    return images_per_second(lambda k, seed: generate(G, k, seed=seed), n, repeats, threads)


__all__ = ["LATENT", "FEATURES", "DROPOUT", "LABEL_NOISE", "doublings", "SignGenerator", "SignDiscriminator",
           "init_weights", "noisy_targets", "sign_gan_step", "param_count", "SignDCGANRun", "train_sign_dcgan",
           "train_sign_dcgan_per_class", "generate", "throughput"]
