"""The convolutional VAE of document 001 (Table 1), trained one model per class.

A variational autoencoder (D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014)
encodes an image to the mean and log-variance of a Gaussian over a latent vector z, samples z with the
reparameterisation trick, and decodes z back to an image. Table 1 of the document fixes the layers:

* encoder: six Conv2d (kernel 3, stride 2, padding 1) with 32, 64, ..., 1024 channels, each followed
  by LeakyReLU(0.02) and BatchNorm2d; flatten; Linear to 1024, SELU, BatchNorm1d; two Linear heads
  (mu and log-variance) of size 512;
* decoder, the mirror image: Linear from 512 back to the flattened size with SELU; five
  ConvTranspose2d (512, 256, ..., 32 channels) with LeakyReLU(0.02) and BatchNorm2d; a last
  ConvTranspose2d to 3 channels and a Sigmoid, so pixels land in [0, 1];
* loss: binary cross-entropy of the reconstruction plus the KL divergence to N(0, I); Adam, lr 1e-4;
  10,000 epochs per class; no augmentation.

One reading had to be chosen: Table 1 says the flattened encoder output has 4096 values, but six
stride-2 halvings of a 64x64 image leave a 1x1 map of 1024 channels, i.e. 1024 values (4096 = 1024 x 2 x
2 is what a 75x75 or a 128x128 input would leave). We keep the six layers as listed and let the
flattened size follow from the image size; :func:`table1_param_count` computes the count both ways.

``width`` scales every channel count and the hidden layer (1.0 = the document), ``latent`` the size
of z, ``depth`` the number of stride-2 layers (6 = the document; fewer for small test images).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_lib.data.imageset import check_unit_images
from course_lib.evolution import torch_threads
from course_lib.train import (TrainingDiverged, checkpoint_path, epochs_by_class, even_batches, load_verified,
                              loaded_message, save_atomic)

TABLE1_CHANNELS = (32, 64, 128, 256, 512, 1024)  # encoder layers 1-6
TABLE1_HIDDEN = 1024                              # encoder layer 7 (Linear, SELU, BatchNorm1d)
TABLE1_LATENT = 512                               # mu and log-variance
TABLE1_FLATTEN = 4096                             # as printed in Table 1 (see the module docstring)
SLOPE = 0.02                                      # LeakyReLU negative slope


def _scaled(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


class ConvVAE(nn.Module):
    """images (N, channels, size, size) in [0, 1] -> (reconstruction, mu, logvar)."""

    def __init__(self, size: int = 64, channels: int = 3, width: float = 1.0, latent: int = TABLE1_LATENT,
                 depth: int = 6) -> None:
        super().__init__()
        if not (isinstance(depth, int) and 1 <= depth <= len(TABLE1_CHANNELS)):
            raise ValueError(f"depth must be an int from 1 to {len(TABLE1_CHANNELS)}, got {depth!r}")
        if not isinstance(size, int) or size < 2 ** depth or size % 2 ** depth:
            raise ValueError(f"image size must be a multiple of 2**depth = {2 ** depth}, got {size!r}")
        if width <= 0 or latent < 1 or channels < 1:
            raise ValueError(f"width, latent and channels must be positive, got {width}, {latent}, {channels}")
        self.size, self.channels, self.width, self.latent, self.depth = size, channels, width, latent, depth
        chans = [_scaled(c, width) for c in TABLE1_CHANNELS[:depth]]        # e.g. 32, 64, ..., 1024
        hidden = _scaled(TABLE1_HIDDEN, width)
        self.end = size // 2 ** depth                                       # 64 px, depth 6 -> 1x1
        self.flat = chans[-1] * self.end * self.end                         # 1024 at 64 px, full width

        enc: list[nn.Module] = []
        c_in = channels
        for c_out in chans:               # (N, c_in, s, s) -> (N, c_out, s/2, s/2): 64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1
            enc += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(SLOPE), nn.BatchNorm2d(c_out)]
            c_in = c_out
        enc += [nn.Flatten(),                                               # (N, 1024, 1, 1) -> (N, 1024)
                nn.Linear(self.flat, hidden), nn.SELU(), nn.BatchNorm1d(hidden)]   # (N, 1024) -> (N, 1024)
        self.encoder = nn.Sequential(*enc)
        self.mu = nn.Linear(hidden, latent)                                 # (N, 1024) -> (N, 512)
        self.logvar = nn.Linear(hidden, latent)                             # (N, 1024) -> (N, 512)

        dec: list[nn.Module] = [nn.Linear(latent, self.flat), nn.SELU(),    # (N, 512) -> (N, 1024)
                                nn.Unflatten(1, (chans[-1], self.end, self.end))]  # -> (N, 1024, 1, 1)
        rev = chans[::-1]                                                   # 1024, 512, ..., 32
        for c_in, c_out in zip(rev[:-1], rev[1:]):   # (N, c_in, s, s) -> (N, c_out, 2s, 2s): 1 -> 2 -> ... -> 32
            dec += [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
                    nn.LeakyReLU(SLOPE), nn.BatchNorm2d(c_out)]
        dec += [nn.ConvTranspose2d(rev[-1], channels, 3, stride=2, padding=1, output_padding=1),  # -> (N, 3, 64, 64)
                nn.Sigmoid()]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x), each (N, latent)."""
        expected = (self.channels, self.size, self.size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}")
        h = self.encoder(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (N, channels, size, size) in [0, 1] for latent vectors (N, latent)."""
        if z.dim() != 2 or z.shape[1] != self.latent:
            raise ValueError(f"expected latent vectors of shape (N, {self.latent}), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction, mu and logvar; z = mu + sigma * eps (reparameterisation, Kingma & Welling Sec. 2.4)."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z), mu, logvar


def vae_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, bce, kld), each summed over pixels / latent units and averaged over the batch.

    Negative evidence lower bound of Kingma & Welling (2014), Eq. 10 with the Gaussian KL term of their
    Appendix B:  KLD = -1/2 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2),  and a Bernoulli decoder,
    whose negative log-likelihood is the binary cross-entropy of the pixels.
    """
    n = len(x)
    bce = F.binary_cross_entropy(recon, x, reduction="sum") / n
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / n
    return bce + kld, bce, kld


def table1_param_count(size: int = 64, channels: int = 3, flatten: int | None = None) -> int:
    """Parameters of Table 1's full-size VAE counted from the table's layer list (not from a model).

    ``flatten``: the flattened encoder size; None follows from ``size`` (1024 at 64 px), pass
    :data:`TABLE1_FLATTEN` for the table's printed 4096.
    """
    if flatten is None:
        flatten = TABLE1_CHANNELS[-1] * (size // 2 ** len(TABLE1_CHANNELS)) ** 2
    conv = lambda a, b: a * b * 9 + b             # 3x3 kernel + bias  # noqa: E731
    lin = lambda a, b: a * b + b                  # noqa: E731
    bn = lambda c: 2 * c                          # weight and bias (running stats are buffers)  # noqa: E731
    total, c_in = 0, channels
    for c in TABLE1_CHANNELS:                     # encoder layers 1-6
        total += conv(c_in, c) + bn(c)
        c_in = c
    total += lin(flatten, TABLE1_HIDDEN) + bn(TABLE1_HIDDEN)        # layer 7
    total += 2 * lin(TABLE1_HIDDEN, TABLE1_LATENT)                   # mu, logvar
    total += lin(TABLE1_LATENT, flatten)                             # decoder layer 1
    rev = TABLE1_CHANNELS[::-1]
    for a, b in zip(rev[:-1], rev[1:]):                              # decoder layers 2-6
        total += conv(a, b) + bn(b)
    total += conv(rev[-1], channels)                                 # output layer
    return total


def param_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass
class VAERun:
    """One class's trained VAE and its per-epoch history (mean loss, BCE and KLD per image)."""

    model: ConvVAE
    epochs: list[dict] = field(default_factory=list)
    resumed_from: int = 0

    def column(self, key: str) -> list[float]:
        """One quantity over the epochs."""
        return [e[key] for e in self.epochs]


def train_vae(images: torch.Tensor, *, epochs: int, width: float = 1.0, latent: int = TABLE1_LATENT,
              depth: int = 6, batch_size: int = 32, lr: float = 1e-4, seed: int = 0,
              checkpoint: Path | str | None = None, checkpoint_every: int = 50, retrain: bool = False,
              progress: bool = True, desc: str = "VAE epochs") -> VAERun:
    """Train one VAE on ``images`` (N, C, H, W) in [0, 1] with Adam (Table 1); resume or load a checkpoint."""
    check_unit_images(images)
    if epochs < 1 or batch_size < 2:
        raise ValueError(f"epochs must be at least 1 and batch_size at least 2, got {epochs}, {batch_size}")
    if len(images) < 2:
        raise ValueError(f"need at least 2 images (BatchNorm), got {len(images)}")
    _, channels, size, _ = images.shape
    torch.manual_seed(seed)
    model = ConvVAE(size, channels, width, latent, depth)
    opt = torch.optim.Adam(model.parameters(), lr=lr)                      # Table 1: Adam, lr 1e-4
    gen = torch.Generator().manual_seed(seed)                              # batches and eps
    run = VAERun(model)
    path = Path(checkpoint) if checkpoint is not None else None
    state = load_verified(path) if path is not None and not retrain else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["rng"])
        run.epochs = list(state["epochs"])
        run.resumed_from = len(run.epochs)

    def save() -> None:
        if path is not None:
            save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "rng": gen.get_state(),
                         "epochs": run.epochs}, path)

    n = len(images)
    bar = tqdm(range(len(run.epochs), epochs), desc=desc, disable=not progress, initial=min(len(run.epochs), epochs),
               total=epochs, leave=False)
    model.train()
    for epoch in bar:
        order = torch.randperm(n, generator=gen)
        sums = {"loss": 0.0, "bce": 0.0, "kld": 0.0}
        seen = 0
        for batch in even_batches(order, batch_size):     # near-equal batches: no tiny leftover for BatchNorm
            x = images[batch]
            recon, mu, logvar = model(x, generator=gen)
            loss, bce, kld = vae_loss(recon, x, mu, logvar)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for k, v in (("loss", loss), ("bce", bce), ("kld", kld)):
                sums[k] += float(v.detach()) * len(x)
            seen += len(x)
        record = {"epoch": epoch + 1, **{k: v / seen for k, v in sums.items()}}
        if not all(math.isfinite(v) for v in record.values()):
            raise TrainingDiverged(f"VAE loss became NaN/inf in epoch {epoch + 1}: {record}; "
                                   "lower the learning rate or check the images")
        run.epochs.append(record)
        if (epoch + 1) % checkpoint_every == 0:
            save()
        bar.set_postfix(loss=round(record["loss"], 2))
    if len(run.epochs) > run.resumed_from or (path is not None and not path.exists()):
        save()
    model.eval()
    return run


def train_vae_per_class(images_by_class: Mapping[str, torch.Tensor], epochs: int | Mapping[str, int], *,
                        width: float = 1.0,
                        latent: int = TABLE1_LATENT, depth: int = 6, batch_size: int = 32, lr: float = 1e-4,
                        seed: int = 0, name: str = "conv-vae", retrain: bool = False, progress: bool = True,
                        threads: int | None = 1) -> dict[str, VAERun]:
    """One VAE per class (checkpoints in the cache, keyed by settings and data); class name -> run.

    ``epochs``: one number for every class, or a mapping class name -> epochs.
    """
    if not isinstance(images_by_class, Mapping) or not images_by_class:
        raise ValueError("images_by_class must be a non-empty mapping of class name -> images (N, C, H, W)")
    per_class = epochs_by_class(epochs, images_by_class)
    runs: dict[str, VAERun] = {}
    with torch_threads(threads):
        bar = tqdm(list(enumerate(images_by_class.items())), desc="classes", disable=not progress)
        for k, (cls, x) in bar:
            bar.set_postfix_str(str(cls))
            check_unit_images(x, f"class {cls!r}")
            ckpt = checkpoint_path(f"{name}-{cls}", width=width, latent=latent, depth=depth, batch_size=batch_size,
                                   lr=lr, seed=seed + k, shape=list(x.shape), data=x)  # hashed by content
            runs[cls] = train_vae(x, epochs=per_class[cls], width=width, latent=latent, depth=depth, batch_size=batch_size,
                                  lr=lr, seed=seed + k, checkpoint=ckpt, retrain=retrain, progress=progress,
                                  desc=f"VAE {cls}")
            if progress and runs[cls].resumed_from:  # it came from the cache
                print(loaded_message(cls, runs[cls].resumed_from, per_class[cls]))
    return runs


@torch.no_grad()
def sample(model: ConvVAE, n: int, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """``n`` new images (n, C, H, W) in [0, 1]: decode z ~ N(0, I) (the prior), in eval mode."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model.latent, generator=gen)
    return torch.cat([model.decode(z[i:i + batch_size]) for i in range(0, n, batch_size)])


def throughput(model: ConvVAE, n: int = 200, repeats: int = 3, threads: int | None = None) -> float:
    """Images generated per second by :func:`sample` (best of ``repeats`` runs of ``n`` images)."""
    from course_lib.generative_metrics import images_per_second

    return images_per_second(lambda k, seed: sample(model, k, seed=seed), n, repeats, threads)


__all__ = ["TABLE1_CHANNELS", "TABLE1_HIDDEN", "TABLE1_LATENT", "TABLE1_FLATTEN", "ConvVAE", "vae_loss",
           "table1_param_count", "param_count", "VAERun", "train_vae", "train_vae_per_class", "sample", "throughput"]
