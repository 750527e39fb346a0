"""The semi-supervised adversarial VAE of document 003 (notebook 07).

R. Zemouri, "Semi-Supervised Adversarial Variational Autoencoder", Machine Learning and Knowledge
Extraction 2 (3), 2020. Training happens in two steps:

1. **Step 1 (Algorithm 1)**: an encoder and a classifier on the latent vector are trained together
   (the "variational encoder classifier", VEC) with the KL term plus a categorical cross-entropy
   (eq. 6), so the labels shape the latent space.
2. **Step 2 (Algorithm 2)**: encoder and classifier are frozen. A decoder learns to rebuild images,
   judged not pixel by pixel but through the features of the encoder's first three layers (eq. 9),
   plus beta times a least-squares adversarial term (eq. 10) and gamma times a latent term that asks
   the rebuilt image to be classified like the original (eq. 11). A discriminator with targets +1
   (real) and -1 (generated) is updated ``n_dis`` times per decoder step.

The networks follow section 4.2 / Fig. 6; the document gives layer counts but not widths, so the
widths are parameters (narrow in the smoke and class profiles). The residual block is the usual
conv-BN-LeakyReLU-conv-BN plus identity, as in Hou et al. (2019), the document's reference [54].

A plain VAE (Kingma and Welling 2013; eqs. 2-4) with the same encoder and decoder is the baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_lib.train import History, TrainingDiverged, load_verified, save_atomic

ALPHAS: tuple[float, float, float] = (1.0, 0.1, 0.01)  # section 4.3.2: weights of the three feature layers
REAL_TARGET, FAKE_TARGET = 1.0, -1.0                     # section 3.3.2: linear critic output, +1 real, -1 generated
SLOPE = 0.2                                              # LeakyReLU slope (not stated in the document)


def _check_width(**widths: int) -> None:
    for name, value in widths.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


# --------------------------------------------------------------------------------------------------
# The four networks (section 4.2, Fig. 6)
# --------------------------------------------------------------------------------------------------

class ResidualBlock(nn.Module):
    """x -> x + BN(conv(LReLU(BN(conv(x))))): shape-preserving, (N, c, H, W) -> (N, c, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.LeakyReLU(SLOPE),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Identity plus the residual branch."""
        return x + self.body(x)


class DenseResidualBlock(nn.Module):
    """The fully connected twin of :class:`ResidualBlock`: (N, d) -> (N, d)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, features, bias=False), nn.BatchNorm1d(features),
                                  nn.LeakyReLU(SLOPE), nn.Linear(features, features, bias=False),
                                  nn.BatchNorm1d(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Identity plus the residual branch."""
        return x + self.body(x)


class Encoder(nn.Module):
    """Image (N, C, 28, 28) -> (mu, log-variance), each (N, latent).

    Six 3x3 stride-1 convolutions, each followed by a residual block and a LeakyReLU; 2x2 max-pools
    after the second and fourth; then three LeakyReLU FC layers and two linear heads (section 4.2).
    The outputs of the first three conv stages are the features phi_1..phi_3 of eq. 9.
    """

    def __init__(self, in_channels: int = 1, latent: int = 2, width: int = 16, hidden: int = 256,
                 size: int = 28) -> None:
        super().__init__()
        _check_width(in_channels=in_channels, latent=latent, width=width, hidden=hidden)
        if size % 4:
            raise ValueError(f"image size must be divisible by 4 (two 2x2 pools), got {size}")
        self.in_channels, self.latent, self.size = in_channels, latent, size
        chans = [in_channels, width, width, 2 * width, 2 * width, 4 * width, 4 * width]

        def stage(i: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1),
                                 ResidualBlock(chans[i + 1]), nn.LeakyReLU(SLOPE))

        self.stages = nn.ModuleList([stage(i) for i in range(6)])
        # stage shapes: 1-2 (N, w, 28, 28); pool; 3-4 (N, 2w, 14, 14); pool; 5-6 (N, 4w, 7, 7)
        self.pool_after = {1, 3}
        flat = 4 * width * (size // 4) ** 2
        self.fc = nn.Sequential(nn.Flatten(),                                   # (N, 4w*7*7)
                                nn.Linear(flat, hidden), nn.LeakyReLU(SLOPE),   # (N, hidden)
                                nn.Linear(hidden, hidden), nn.LeakyReLU(SLOPE),
                                nn.Linear(hidden, hidden), nn.LeakyReLU(SLOPE))
        self.mu = nn.Linear(hidden, latent)       # (N, latent)
        self.logvar = nn.Linear(hidden, latent)   # (N, latent)

    def forward_with_features(self, x: torch.Tensor, n_features: int = 3) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(mu, logvar, [phi_1(x), ..., phi_n(x)]): one pass gives the code and the eq. 9 features."""
        if x.ndim != 4 or x.shape[1:] != (self.in_channels, self.size, self.size):
            raise ValueError(f"expected images (N, {self.in_channels}, {self.size}, {self.size}), got {tuple(x.shape)}")
        feats = []
        h = x
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i < n_features:
                feats.append(h)
            if i in self.pool_after:
                h = F.max_pool2d(h, 2)
        h = self.fc(h)
        return self.mu(h), self.logvar(h), feats

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x)."""
        mu, logvar, _ = self.forward_with_features(x, n_features=0)
        return mu, logvar

    def features(self, x: torch.Tensor, n: int = 3) -> list[torch.Tensor]:
        """The first ``n`` conv-stage outputs phi_i(x) (eq. 9); stops early instead of running the whole net."""
        feats, h = [], x
        for i, stage in enumerate(self.stages[:n]):
            h = stage(h)
            feats.append(h)
            if i in self.pool_after:
                h = F.max_pool2d(h, 2)
        return feats


class Classifier(nn.Module):
    """Latent vector (N, latent) -> class logits (N, n_classes); softmax gives Class(z).

    Three FC layers with batch norm and LeakyReLU, each followed by a residual block (section 4.2).
    """

    def __init__(self, latent: int = 2, n_classes: int = 10, hidden: int = 64) -> None:
        super().__init__()
        _check_width(latent=latent, n_classes=n_classes, hidden=hidden)
        layers: list[nn.Module] = []
        d = latent
        for _ in range(3):
            layers += [nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(SLOPE), DenseResidualBlock(hidden)]
            d = hidden
        self.body = nn.Sequential(*layers)       # (N, hidden)
        self.out = nn.Linear(hidden, n_classes)  # (N, n_classes) logits

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits; ``softmax(logits)`` is the document's Class(z)."""
        return self.out(self.body(z))

    def proba(self, z: torch.Tensor) -> torch.Tensor:
        """Class(z): softmax probabilities (N, n_classes)."""
        return torch.softmax(self(z), dim=1)


class Decoder(nn.Module):
    """Latent vector (N, latent) -> image (N, C, 28, 28) in [0, 1]: the encoder's mirror.

    Three FC layers with batch norm and LeakyReLU; seven 3x3 stride-1 convolutions, each but the last
    followed by batch norm, LeakyReLU and a residual block; two 2x up-samplings (section 4.2).
    """

    def __init__(self, out_channels: int = 1, latent: int = 2, width: int = 16, hidden: int = 256,
                 size: int = 28) -> None:
        super().__init__()
        _check_width(out_channels=out_channels, latent=latent, width=width, hidden=hidden)
        if size % 4:
            raise ValueError(f"image size must be divisible by 4 (two 2x up-samplings), got {size}")
        self.latent, self.out_channels, self.size = latent, out_channels, size
        s = size // 4
        self.fc = nn.Sequential(
            nn.Linear(latent, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(SLOPE),          # (N, hidden)
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(SLOPE),
            nn.Linear(hidden, 4 * width * s * s), nn.BatchNorm1d(4 * width * s * s), nn.LeakyReLU(SLOPE),
            nn.Unflatten(1, (4 * width, s, s)))                                              # (N, 4w, 7, 7)

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(SLOPE), ResidualBlock(cout)]

        self.convs = nn.Sequential(
            *block(4 * width, 4 * width), *block(4 * width, 4 * width),                      # (N, 4w, 7, 7)
            nn.Upsample(scale_factor=2, mode="nearest"),                                     # (N, 4w, 14, 14)
            *block(4 * width, 2 * width), *block(2 * width, 2 * width),                      # (N, 2w, 14, 14)
            nn.Upsample(scale_factor=2, mode="nearest"),                                     # (N, 2w, 28, 28)
            *block(2 * width, width), *block(width, width),                                  # (N, w, 28, 28)
            nn.Conv2d(width, out_channels, 3, padding=1), nn.Sigmoid())                      # (N, C, 28, 28)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images for a batch of latent vectors."""
        if z.ndim != 2 or z.shape[1] != self.latent:
            raise ValueError(f"expected latent vectors (N, {self.latent}), got {tuple(z.shape)}")
        return self.convs(self.fc(z))


class Discriminator(nn.Module):
    """Image (N, C, 28, 28) -> score (N,): a least-squares critic, +1 for real, -1 for generated.

    Three 3x3 stride-1 convolutions with LeakyReLU, two 2x2 max-pools, four LeakyReLU FC layers and
    one linear output unit (section 4.2). No batch norm: it judges all-real and all-fake batches.
    """

    def __init__(self, in_channels: int = 1, width: int = 16, hidden: int = 128, size: int = 28) -> None:
        super().__init__()
        _check_width(in_channels=in_channels, width=width, hidden=hidden)
        s = size // 4
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(SLOPE), nn.MaxPool2d(2),     # (N, w, 14, 14)
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.LeakyReLU(SLOPE), nn.MaxPool2d(2),       # (N, 2w, 7, 7)
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.LeakyReLU(SLOPE), nn.Flatten(),      # (N, 2w*7*7)
            nn.Linear(2 * width * s * s, hidden), nn.LeakyReLU(SLOPE),                             # (N, hidden) x4
            nn.Linear(hidden, hidden), nn.LeakyReLU(SLOPE),
            nn.Linear(hidden, hidden), nn.LeakyReLU(SLOPE),
            nn.Linear(hidden, hidden), nn.LeakyReLU(SLOPE),
            nn.Linear(hidden, 1))                                                                   # (N, 1) linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One unbounded score per image."""
        return self.net(x).squeeze(1)


@dataclass
class AdversarialVAE:
    """The four networks together, with the sizes they were built with."""

    encoder: Encoder
    classifier: Classifier
    decoder: Decoder
    discriminator: Discriminator

    @classmethod
    def build(cls, in_channels: int = 1, latent: int = 2, n_classes: int = 10, width: int = 16,
              hidden: int = 256, cls_hidden: int = 64, dis_width: int = 16, dis_hidden: int = 128,
              size: int = 28, seed: int = 0) -> "AdversarialVAE":
        """Fresh networks, seeded so the same arguments give the same initial weights."""
        torch.manual_seed(seed)
        return cls(Encoder(in_channels, latent, width, hidden, size), Classifier(latent, n_classes, cls_hidden),
                   Decoder(in_channels, latent, width, hidden, size),
                   Discriminator(in_channels, dis_width, dis_hidden, size))

    def with_new_decoder(self, seed: int = 0) -> "AdversarialVAE":
        """The same (trained) encoder and classifier with a fresh decoder and discriminator of the same sizes."""
        dec, dis = self.decoder, self.discriminator
        torch.manual_seed(seed)
        width = dec.convs[-2].in_channels
        hidden = dec.fc[0].out_features
        dis_width, dis_hidden = dis.net[0].out_channels, dis.net[-1].in_features
        return AdversarialVAE(self.encoder, self.classifier,
                              Decoder(dec.out_channels, dec.latent, width, hidden, dec.size),
                              Discriminator(dec.out_channels, dis_width, dis_hidden, dec.size))


# --------------------------------------------------------------------------------------------------
# Losses, each next to the equation it implements
# --------------------------------------------------------------------------------------------------

def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 1, the sampling layer: z = mu + sigma * eps, eps ~ N(0, I), sigma = exp(logvar / 2)."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Eq. 4: D_kl(N(mu, sigma^2) || N(0, I)) = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2), batch mean."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def categorical_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. 7: L_cat = -E[y . log Class(z)], with y one-hot (given here as class indices)."""
    log_p = torch.log_softmax(logits, dim=1)
    return -log_p.gather(1, y.view(-1, 1)).mean()


def vec_loss(mu: torch.Tensor, logvar: torch.Tensor, logits: torch.Tensor, y: torch.Tensor,
             kl_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 6: L_VEC = L_kl + L_cat (step 1); also returns the two terms as numbers.

    ``kl_weight`` = 1 is the document's equation. With the KL summed over the latent dimensions, a
    2-D code that separates 10 classes costs more nats of KL than it saves in cross-entropy, and we
    measured the code collapse to noise (10 % accuracy); a weight below 1 lets the labels win.
    """
    kl, cat = kl_loss(mu, logvar), categorical_loss(logits, y)
    return kl_weight * kl + cat, {"kl": kl.item(), "cat": cat.item()}


def feature_reconstruction_loss(real_features: Sequence[torch.Tensor], fake_features: Sequence[torch.Tensor],
                                alphas: Sequence[float] = ALPHAS) -> torch.Tensor:
    """Eq. 9: L_rec = sum_i alpha_i * E||phi_i(X) - phi_i(X^)||^2.

    The expectation is a mean over the batch *and* over the elements of each feature map (a per-element
    mean squared error, as a Keras ``mse`` would compute it); the document does not say which.
    """
    if not (len(real_features) == len(fake_features) == len(alphas)):
        raise ValueError(f"need as many alphas as feature layers, got {len(alphas)} alphas for "
                         f"{len(real_features)} and {len(fake_features)} feature maps")
    return sum(a * (f - g).pow(2).mean() for a, f, g in zip(alphas, real_features, fake_features))


def adversarial_loss(dis_real: torch.Tensor, dis_fake: torch.Tensor) -> torch.Tensor:
    """Eq. 10: L_adv = E[(Dis(X) - Dis(X^))^2]: the decoder wants its images scored like the real ones."""
    return (dis_real - dis_fake).pow(2).mean()


def latent_loss(class_z: torch.Tensor, class_z_hat: torch.Tensor) -> torch.Tensor:
    """Eq. 11: L_latent = E||Class(Z) - Class(Z^)||^2 over class-probability vectors (sum over classes, batch mean)."""
    return (class_z - class_z_hat).pow(2).sum(dim=1).mean()


def decoder_loss(rec: torch.Tensor, adv: torch.Tensor, lat: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """Eq. 8: L_Dec = L_rec + beta * L_adv + gamma * L_latent."""
    return rec + beta * adv + gamma * lat


def discriminator_loss(scores: torch.Tensor, target: float) -> torch.Tensor:
    """Algorithm 2, part 1: L_dis = E[(G - Dis(x))^2] with G = +1 for real and -1 for generated images."""
    if target not in (REAL_TARGET, FAKE_TARGET):
        raise ValueError(f"discriminator targets are {REAL_TARGET} (real) or {FAKE_TARGET} (generated), got {target}")
    return (target - scores).pow(2).mean()


def vae_loss(x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 2 for the plain VAE: L = L_rec + L_kl, with L_rec (eq. 3) the pixel cross-entropy summed per image."""
    rec = F.binary_cross_entropy(x_hat, x, reduction="none").flatten(1).sum(1).mean()
    kl = kl_loss(mu, logvar)
    return rec + kl, {"rec": rec.item(), "kl": kl.item()}


# --------------------------------------------------------------------------------------------------
# One resumable training loop for step 1, step 2 and the baseline
# --------------------------------------------------------------------------------------------------

StepFn = Callable[[torch.Tensor, torch.Generator], dict[str, float]]


def _run_epochs(name: str, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                step: StepFn, n: int, *, epochs: int, batch_size: int, seed: int, checkpoint: Path | str | None,
                retrain: bool, progress: bool, train_modes: dict[str, bool],
                on_epoch_end: Callable[[int], dict[str, float]] | None = None) -> History:
    """Shuffled mini-batches of indices into ``step``; checkpoint each epoch; resume or load; stop on NaN."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 (batch norm), got {batch_size}")
    if n < batch_size:
        raise ValueError(f"need at least one full batch: {n} images for batch_size {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    history = History()
    path = Path(checkpoint) if checkpoint is not None else None
    state = load_verified(path) if path is not None and not retrain else None
    if state is not None:
        for key, module in modules.items():
            module.load_state_dict(state["modules"][key])
        for key, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][key])
        gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        history.epochs = list(state["history"])
        history.resumed_from = len(history.epochs)
        if progress:
            verb = "Loaded a finished" if history.resumed_from >= epochs else "Resuming a"
            print(f"{verb} run of {history.resumed_from}/{epochs} epochs from {path.name}.")
    else:
        torch.manual_seed(seed)
    for key, module in modules.items():
        module.train(train_modes.get(key, True))
    bar = tqdm(range(history.resumed_from, epochs), desc=name, disable=not progress,
               initial=history.resumed_from, total=epochs)
    for epoch in bar:
        start = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        steps = 0
        for i in range(0, n - batch_size + 1, batch_size):  # full batches only (batch norm)
            for k, v in step(order[i:i + batch_size], gen).items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        record = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}}
        if not all(np.isfinite(v) for v in record.values()):
            raise TrainingDiverged(f"{name}: a loss became NaN or infinite in epoch {epoch + 1}: {record}; "
                                   "try a smaller learning rate or a smaller beta")
        if on_epoch_end is not None:
            record.update(on_epoch_end(epoch + 1))
            for key, module in modules.items():
                module.train(train_modes.get(key, True))
        record["seconds"] = time.perf_counter() - start
        history.epochs.append(record)
        if path is not None:
            save_atomic({"modules": {k: m.state_dict() for k, m in modules.items()},
                         "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                         "rng": gen.get_state(), "torch_rng": torch.get_rng_state(), "history": history.epochs}, path)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k not in ("epoch", "seconds")})
    for module in modules.values():
        module.eval()
    return history


def freeze(*modules: nn.Module) -> None:
    """Eval mode and no gradients: the weights (and batch-norm statistics) stay exactly as they are."""
    for m in modules:
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)


def train_step1(model: AdversarialVAE, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int = 64,
                lr: float = 1e-3, kl_weight: float = 1.0, seed: int = 0, checkpoint: Path | str | None = None,
                retrain: bool = False, val: tuple[torch.Tensor, torch.Tensor] | None = None,
                progress: bool = True) -> History:
    """Algorithm 1: train encoder + classifier (the VEC) with kl_weight * L_kl + L_cat (eq. 6 when it is 1)."""
    enc, clf = model.encoder, model.classifier
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if int(y.max()) >= clf.out.out_features or int(y.min()) < 0:
        raise ValueError(f"labels must be 0..{clf.out.out_features - 1}, got {int(y.min())}..{int(y.max())}")
    opt = torch.optim.Adam([*enc.parameters(), *clf.parameters()], lr=lr)

    def step(idx: torch.Tensor, gen: torch.Generator) -> dict[str, float]:
        xb, yb = x[idx], y[idx]
        mu, logvar = enc(xb)                       # Z <- Enc(X): the sampling layer follows
        z = reparameterize(mu, logvar, gen)
        loss, parts = vec_loss(mu, logvar, clf(z), yb, kl_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), **parts}

    def validate(_epoch: int) -> dict[str, float]:
        return {"val_accuracy": latent_accuracy(model, *val)} if val is not None else {}

    return _run_epochs("step 1: encoder + classifier", {"encoder": enc, "classifier": clf}, {"vec": opt}, step, len(x),
                       epochs=epochs, batch_size=batch_size, seed=seed, checkpoint=checkpoint, retrain=retrain,
                       progress=progress, train_modes={}, on_epoch_end=validate if val is not None else None)


def train_step2(model: AdversarialVAE, x: torch.Tensor, *, epochs: int, beta: float, gamma: float,
                alphas: Sequence[float] = ALPHAS, n_dis: int = 1, batch_size: int = 64, lr: float = 1e-3,
                lr_dis: float = 1e-4, seed: int = 0, checkpoint: Path | str | None = None, retrain: bool = False,
                progress: bool = True) -> History:
    """Algorithm 2: encoder and classifier frozen; decoder on eq. 8, discriminator n_dis times per step.

    With beta = 0 the discriminator cannot influence the decoder, so it is not trained (saves time).
    """
    if beta < 0 or gamma < 0:
        raise ValueError(f"beta and gamma must be >= 0, got {beta}, {gamma}")
    if n_dis < 1:
        raise ValueError(f"n_dis must be at least 1, got {n_dis}")
    enc, clf, dec, dis = model.encoder, model.classifier, model.decoder, model.discriminator
    freeze(enc, clf)
    opt_dec = torch.optim.Adam(dec.parameters(), lr=lr)
    opt_dis = torch.optim.Adam(dis.parameters(), lr=lr_dis)
    n = len(x)

    def encode_sample(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        mu, logvar = enc(xb)
        return reparameterize(mu, logvar, gen)

    def step(idx: torch.Tensor, gen: torch.Generator) -> dict[str, float]:
        out: dict[str, float] = {}
        # 1. the discriminator, n_dis times: real images towards +1, generated ones towards -1
        if beta > 0:
            for _ in range(n_dis):
                real = x[torch.randint(n, (len(idx),), generator=gen)]
                loss_real = discriminator_loss(dis(real), REAL_TARGET)
                opt_dis.zero_grad(set_to_none=True)
                loss_real.backward()
                opt_dis.step()
                with torch.no_grad():
                    fake = dec(encode_sample(x[torch.randint(n, (len(idx),), generator=gen)], gen))
                loss_fake = discriminator_loss(dis(fake), FAKE_TARGET)
                opt_dis.zero_grad(set_to_none=True)
                loss_fake.backward()
                opt_dis.step()
            out.update(dis_real=loss_real.item(), dis_fake=loss_fake.item())
        # 2. the decoder
        xb = x[idx]
        with torch.no_grad():
            mu, logvar, real_feats = enc.forward_with_features(xb)
            z = reparameterize(mu, logvar, gen)                    # Z <- Enc(X)
            class_z = clf.proba(z) if gamma > 0 else None
            dis_real = dis(xb) if beta > 0 else None
        x_hat = dec(z)                                             # X^ <- Dec(Z)
        if gamma > 0:  # one pass through the frozen encoder gives phi_1..3(X^) and Z^
            mu_h, logvar_h, fake_feats = enc.forward_with_features(x_hat)
            z_hat = reparameterize(mu_h, logvar_h, gen)            # Z^ <- Enc(X^)
            lat = latent_loss(class_z, clf.proba(z_hat))
        else:          # only the first three layers are needed
            fake_feats, lat = enc.features(x_hat), torch.zeros(())
        rec = feature_reconstruction_loss(real_feats, fake_feats, alphas)
        adv = adversarial_loss(dis_real, dis(x_hat)) if beta > 0 else torch.zeros(())
        loss = decoder_loss(rec, adv, lat, beta, gamma)
        opt_dec.zero_grad(set_to_none=True)
        loss.backward()
        opt_dec.step()
        dis.zero_grad(set_to_none=True)  # the decoder's backward pass also reached the discriminator
        out.update(loss=loss.item(), rec=rec.item(), adv=adv.item(), latent=lat.item())
        return out

    return _run_epochs(f"step 2: decoder (beta={beta:g}, gamma={gamma:g})", {"decoder": dec, "discriminator": dis},
                       {"decoder": opt_dec, "discriminator": opt_dis}, step, n, epochs=epochs, batch_size=batch_size,
                       seed=seed, checkpoint=checkpoint, retrain=retrain, progress=progress, train_modes={})


def train_decoder_grid(model: AdversarialVAE, x: torch.Tensor, cells: Sequence[tuple[float, float]], *,
                       name: str, epochs: int, checkpoint_config: dict | None = None, progress: bool = True,
                       **step2_kwargs: object) -> dict[tuple[float, float], tuple[AdversarialVAE, History]]:
    """Step 2 once per (beta, gamma) cell, each with its own fresh decoder and discriminator, same seed.

    Every cell is checkpointed in the cache under ``name`` plus the cell and ``checkpoint_config``.
    """
    from course_lib.train import checkpoint_path

    results = {}
    for beta, gamma in cells:
        cell = model.with_new_decoder(seed=int(step2_kwargs.get("seed", 0)))
        path = checkpoint_path(f"{name}-b{beta:g}-g{gamma:g}", beta=beta, gamma=gamma, epochs=epochs,
                               **(checkpoint_config or {}),
                               **{k: v for k, v in step2_kwargs.items() if k not in ("retrain",)})
        history = train_step2(cell, x, epochs=epochs, beta=beta, gamma=gamma, checkpoint=path, progress=progress,
                              **step2_kwargs)
        results[(beta, gamma)] = (cell, history)
    return results


class PlainVAE(nn.Module):
    """The baseline: the same encoder and decoder, trained end to end with eq. 2 and no labels."""

    def __init__(self, in_channels: int = 1, latent: int = 2, width: int = 16, hidden: int = 256, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = Encoder(in_channels, latent, width, hidden)
        self.decoder = Decoder(in_channels, latent, width, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the mean code (no sampling)."""
        return self.decoder(self.encoder(x)[0])


def train_vae(vae: PlainVAE, x: torch.Tensor, *, epochs: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
              checkpoint: Path | str | None = None, retrain: bool = False, progress: bool = True) -> History:
    """The baseline VAE trained on eq. 2 (pixel cross-entropy + KL)."""
    opt = torch.optim.Adam(vae.parameters(), lr=lr)

    def step(idx: torch.Tensor, gen: torch.Generator) -> dict[str, float]:
        xb = x[idx]
        mu, logvar = vae.encoder(xb)
        x_hat = vae.decoder(reparameterize(mu, logvar, gen))
        loss, parts = vae_loss(xb, x_hat, mu, logvar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), **parts}

    return _run_epochs("plain VAE", {"vae": vae}, {"vae": opt}, step, len(x), epochs=epochs, batch_size=batch_size,
                       seed=seed, checkpoint=checkpoint, retrain=retrain, progress=progress, train_modes={})


# --------------------------------------------------------------------------------------------------
# Measurements the document does not give
# --------------------------------------------------------------------------------------------------

@torch.no_grad()
def encode_mean(encoder: Encoder, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The mean codes mu(x), (N, latent), in eval mode."""
    encoder.eval()
    return torch.cat([encoder(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)])


@torch.no_grad()
def decode(decoder: Decoder, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Images for latent vectors z, in eval mode."""
    decoder.eval()
    return torch.cat([decoder(z[i:i + batch_size]) for i in range(0, len(z), batch_size)])


@torch.no_grad()
def latent_accuracy(model: AdversarialVAE, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of images whose mean code the latent classifier labels correctly."""
    model.classifier.eval()
    pred = model.classifier(encode_mean(model.encoder, x)).argmax(1)
    return float((pred == y).float().mean())


def class_centre_neighbours(codes: torch.Tensor, labels: torch.Tensor) -> tuple[dict[int, int], dict[int, float]]:
    """Per class: the class whose centre (mean code) is nearest to its own, and that distance.

    The measure behind 003's 'the shoe classes lie together in the 2-D space' (section 4.4.1).
    """
    codes, labels = torch.as_tensor(codes, dtype=torch.float32), torch.as_tensor(labels)
    if codes.dim() != 2 or len(codes) != len(labels):
        raise ValueError(f"expected codes (N, latent) and N labels; got {tuple(codes.shape)} and {tuple(labels.shape)}")
    classes = sorted(int(c) for c in labels.unique())
    if len(classes) < 2:
        raise ValueError(f"need codes of at least two classes to find neighbours; found classes {classes}")
    centres = torch.stack([codes[labels == c].mean(0) for c in classes])
    dist = torch.cdist(centres, centres)
    dist.fill_diagonal_(float("inf"))
    nearest = dist.min(1)
    return ({c: classes[int(j)] for c, j in zip(classes, nearest.indices)},
            {c: float(d) for c, d in zip(classes, nearest.values)})


def laplacian_variance(images: torch.Tensor) -> torch.Tensor:
    """Sharpness of each image (N, C, H, W): variance of its 3x3 Laplacian (blurry images score low)."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    gray = images.mean(dim=1, keepdim=True)
    return F.conv2d(gray, kernel).flatten(1).var(dim=1)


@torch.no_grad()
def reconstruction_scores(model: AdversarialVAE, x: torch.Tensor, y: torch.Tensor | None = None,
                          decoder: Decoder | None = None, fid_features: nn.Module | None = None,
                          x_hat: torch.Tensor | None = None, judge: nn.Module | None = None) -> dict[str, float]:
    """Numbers for one decoder: pixel MSE, class agreement between Z and Z^, sharpness, feature FID.

    ``x_hat`` defaults to Dec(mu(x)). Class agreement is the share of images whose reconstruction
    the frozen latent classifier puts in the same class as the original (Class(Z) vs. Class(Z^)).
    Step 2 trained the decoder through that same encoder, so an outside ``judge`` (an image
    classifier that never saw the VAE) gives a second, independent agreement.
    """
    from course_lib.metrics import feature_fid

    if x_hat is None:
        x_hat = decode(decoder or model.decoder, encode_mean(model.encoder, x))
    model.classifier.eval()
    pred = model.classifier(encode_mean(model.encoder, x)).argmax(1)
    pred_hat = model.classifier(encode_mean(model.encoder, x_hat)).argmax(1)
    scores = {"pixel_mse": float((x_hat - x).pow(2).mean()),
              "class_agreement": float((pred == pred_hat).float().mean()),
              "sharpness": float(laplacian_variance(x_hat).mean())}
    if y is not None:
        scores["recon_label_accuracy"] = float((pred_hat == y).float().mean())
    if judge is not None:
        from course_lib.metrics import predict_proba
        scores["judge_agreement"] = float((predict_proba(judge, x).argmax(1) == predict_proba(judge, x_hat).argmax(1))
                                          .float().mean())
    if fid_features is not None:
        scores["feature_fid"] = feature_fid(x, x_hat, fid_features)
    return scores


@torch.no_grad()
def latent_grid(decoder: Decoder, lo: float = -3.0, hi: float = 3.0, n: int = 15) -> tuple[torch.Tensor, np.ndarray]:
    """Fig. 8: decode an n x n grid over [lo, hi]^2 of a 2-D latent space; returns images and the grid points."""
    if decoder.latent != 2:
        raise ValueError(f"a latent grid needs a 2-D latent space, this decoder has {decoder.latent}")
    axis = np.linspace(lo, hi, n)
    points = np.array([(a, b) for b in axis[::-1] for a in axis], dtype=np.float32)  # rows top to bottom: z2 falls
    return decode(decoder, torch.from_numpy(points)), points


# --------------------------------------------------------------------------------------------------
# One experiment of the notebook: step 1, a grid of step-2 cells, and their numbers
# --------------------------------------------------------------------------------------------------

@dataclass
class Experiment:
    """A trained VEC (step 1), one decoder per (beta, gamma) cell (step 2), and the cells' measurements."""

    name: str
    model: AdversarialVAE                    # encoder + classifier of step 1 (its own decoder is untrained)
    step1: History
    test_accuracy: float                     # latent classifier on the test images' mean codes
    cells: dict                              # (beta, gamma) -> (AdversarialVAE sharing the encoder, History)
    x_eval: torch.Tensor                     # the test images every cell reconstructs
    y_eval: torch.Tensor
    recon: dict                              # (beta, gamma) -> reconstructions of x_eval
    scores: pd.DataFrame                     # one row per cell

    @property
    def latent(self) -> int:
        """Kz, the size of the latent space."""
        return self.model.encoder.latent


def run_experiment(name: str, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                   n_classes: int, *, latent: int, cells: Sequence[tuple[float, float]], width: int, hidden: int,
                   kl_weight: float, vec_epochs: int, dec_epochs: int, n_dis: int = 1, batch_size: int = 64,
                   alphas: Sequence[float] = ALPHAS, n_eval: int = 500, fid_features: nn.Module | None = None,
                   judge: nn.Module | None = None, seed: int = 0, progress: bool = True) -> Experiment:
    """Step 1 then step 2 for every (beta, gamma) cell on (train, test); all checkpointed in the cache."""
    from course_lib.train import checkpoint_path, fingerprint

    (x, y), (xt, yt) = train, test
    config = dict(data=name, content=fingerprint(x) + fingerprint(y), n=len(x), latent=latent, width=width, hidden=hidden, classes=n_classes, seed=seed,
                  channels=x.shape[1], size=x.shape[-1])
    model = AdversarialVAE.build(x.shape[1], latent, n_classes, width, hidden, cls_hidden=max(16, hidden // 2),
                                 dis_width=width, dis_hidden=hidden, size=x.shape[-1], seed=seed)
    step1 = train_step1(model, x, y, epochs=vec_epochs, batch_size=batch_size, kl_weight=kl_weight, seed=seed,
                        val=(xt, yt), progress=progress,
                        checkpoint=checkpoint_path(f"avae-step1-{name}-kz{latent}", epochs=vec_epochs,
                                                   kl_weight=kl_weight, batch=batch_size, **config))
    freeze(model.encoder, model.classifier)
    trained = train_decoder_grid(model, x, cells, name=f"avae-step2-{name}-kz{latent}", epochs=dec_epochs,
                                 checkpoint_config=dict(vec_epochs=vec_epochs, kl_weight=kl_weight,
                                                        **{k: v for k, v in config.items() if k != "seed"}),
                                 progress=progress, alphas=tuple(alphas), n_dis=n_dis, batch_size=batch_size, seed=seed)
    pick = torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed))[:n_eval]
    x_eval, y_eval = xt[pick], yt[pick]
    recon, rows = {}, []
    for cell, (cell_model, history) in trained.items():
        recon[cell] = decode(cell_model.decoder, encode_mean(model.encoder, x_eval))
        scores = reconstruction_scores(model, x_eval, y_eval, x_hat=recon[cell], fid_features=fid_features,
                                       judge=judge)
        rows.append({"beta": cell[0], "gamma": cell[1], **scores,
                     "train_seconds": sum(e["seconds"] for e in history.epochs)})
    table = pd.DataFrame(rows).set_index(["beta", "gamma"])
    return Experiment(name, model, step1, latent_accuracy(model, xt, yt), trained, x_eval, y_eval, recon, table)


def run_baseline(experiment: Experiment, train_x: torch.Tensor, *, epochs: int, width: int, hidden: int,
                 batch_size: int = 64, fid_features: nn.Module | None = None, judge: nn.Module | None = None,
                 seed: int = 0, progress: bool = True) -> tuple[PlainVAE, History, dict[str, float]]:
    """The plain VAE on the same images and latent size, scored with the experiment's frozen classifier."""
    from course_lib.train import checkpoint_path

    vae = PlainVAE(train_x.shape[1], experiment.latent, width, hidden, seed=seed)
    path = checkpoint_path(f"plain-vae-{experiment.name}-kz{experiment.latent}", content=train_x, epochs=epochs,
                           width=width, hidden=hidden, batch=batch_size, seed=seed, size=train_x.shape[-1])
    history = train_vae(vae, train_x, epochs=epochs, batch_size=batch_size, seed=seed, checkpoint=path,
                        progress=progress)
    x_hat = decode(vae.decoder, encode_mean(vae.encoder, experiment.x_eval))
    scores = reconstruction_scores(experiment.model, experiment.x_eval, experiment.y_eval, x_hat=x_hat,
                                   fid_features=fid_features, judge=judge)
    scores["train_seconds"] = sum(e["seconds"] for e in history.epochs)
    return vae, history, scores
