"""A small DCGAN-style GAN for 28x28 digits (notebook 03).

Document 000 names its model StyleGAN but describes and shows a plain GAN; we build the plain,
convolutional kind: Radford, Metz and Chintala, "Unsupervised representation learning with deep
convolutional generative adversarial networks" (2015), trained with the non-saturating loss of
Goodfellow et al., "Generative adversarial nets" (2014).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.train import TrainingDiverged, load_verified, save_atomic


class Generator(nn.Module):
    """z (N, latent) -> image (N, 1, 28, 28) in [0, 1]."""

    def __init__(self, latent: int = 64, width: int = 64) -> None:
        super().__init__()
        self.latent = latent
        self.project = nn.Sequential(nn.Linear(latent, 2 * width * 7 * 7), nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU())
        self.net = nn.Sequential(
            nn.Unflatten(1, (2 * width, 7, 7)),                                              # (N, 2w, 7, 7)
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),  # (N, w, 14, 14)
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1), nn.Sigmoid(),              # (N, 1, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images for a batch of latent vectors."""
        return self.net(self.project(z))


class Discriminator(nn.Module):
    """image (N, 1, 28, 28) -> logit (N,): large means 'real'."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),                          # (N, w, 14, 14)
            # no BatchNorm here: D must score single images in eval mode exactly as it judged batches
            # in training (batch statistics of all-real or all-fake batches would not carry over)
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),          # (N, 2w, 7, 7)
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * width * 7 * 7, 1),                          # (N, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, one per image."""
        return self.net(x).squeeze(1)

    @torch.no_grad()
    def score(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """D(x): the probability that each image is real, in eval mode."""
        was_training = self.training
        self.eval()
        out = torch.cat([torch.sigmoid(self(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])
        self.train(was_training)
        return out


def gan_step(G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             real: torch.Tensor, z: torch.Tensor, smoothing: float = 0.0) -> dict[str, float]:
    """One update of D then G; returns the losses and the mean D(x), D(G(z)).

    ``smoothing`` > 0 trains D towards 1 - smoothing on real images (one-sided label smoothing,
    Salimans et al. 2016, "Improved techniques for training GANs"), so D never becomes overconfident.
    """
    bce = nn.functional.binary_cross_entropy_with_logits
    ones, zeros = torch.full((len(real),), 1.0 - smoothing), torch.zeros(len(z))
    fake = G(z)
    # discriminator: maximise log D(x) + log(1 - D(G(z)))  (Goodfellow et al. 2014, eq. 1)
    opt_d.zero_grad(set_to_none=True)
    logit_real, logit_fake = D(real), D(fake.detach())
    loss_d = bce(logit_real, ones) + bce(logit_fake, zeros)
    loss_d.backward()
    opt_d.step()
    # generator, non-saturating form: maximise log D(G(z)) instead of minimising log(1 - D(G(z)))
    opt_g.zero_grad(set_to_none=True)
    loss_g = bce(D(fake), torch.ones(len(z)))
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(logit_real.detach()).mean().item(), "d_fake": torch.sigmoid(logit_fake.detach()).mean().item()}


@dataclass
class GanHistory:
    """Per-epoch means of the losses and D outputs, snapshots of a fixed grid, evaluations, alerts."""

    epochs: list[dict] = field(default_factory=list)
    grids: dict[int, torch.Tensor] = field(default_factory=dict)  # epoch -> (n, 1, 28, 28) from fixed z
    alerts: list[str] = field(default_factory=list)

    def column(self, key: str) -> list[float]:
        """One quantity over the epochs (only epochs that recorded it)."""
        return [e[key] for e in self.epochs if key in e]


def _collapse_alert(history: GanHistory, patience: int) -> str | None:
    recent = history.epochs[-patience:]
    if len(recent) < patience:
        return None
    if all(e["d_real"] > 0.99 and e["d_fake"] < 0.01 for e in recent):
        return (f"epochs {recent[0]['epoch']}-{recent[-1]['epoch']}: the discriminator wins outright "
                "(D(x) > 0.99, D(G(z)) < 0.01): the generator gets almost no gradient")
    if all(abs(e["d_real"] - 0.5) < 0.02 and abs(e["d_fake"] - 0.5) < 0.02 and e["loss_d"] > 1.38 for e in recent):
        return f"epochs {recent[0]['epoch']}-{recent[-1]['epoch']}: the discriminator is stuck at chance (D = 0.5)"
    return None


def train_gan(G: Generator, D: Discriminator, images: torch.Tensor, *, epochs: int, batch_size: int = 64,
              lr: float = 2e-4, seed: int = 0, checkpoint: Path | None = None, snapshot_every: int = 1,
              evaluate: Callable[[Generator], dict[str, float]] | None = None, patience: int = 5,
              smoothing: float = 0.0, progress: bool = True) -> GanHistory:
    """Train the GAN on ``images`` (N, 1, 28, 28) in [0, 1]; checkpoint each epoch, resume or load."""
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)
    fixed_z = torch.randn(64, G.latent, generator=torch.Generator().manual_seed(seed + 1))
    history = GanHistory()
    state = load_verified(checkpoint)
    if state is not None:
        for module, key in ((G, "G"), (D, "D"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(state[key])
        gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        history = GanHistory(list(state["epochs"]), dict(state["grids"]), list(state["alerts"]))
        if progress:
            done = len(history.epochs)
            print(f"Loaded {done} trained epochs from {Path(checkpoint).name}"
                  + (" (finished)." if done >= epochs else f"; continuing to {epochs}."))
    else:
        torch.manual_seed(seed)
    n = len(images)
    bar = tqdm(range(len(history.epochs), epochs), desc="GAN epochs", disable=not progress,
               initial=len(history.epochs), total=epochs)
    for epoch in bar:
        G.train(), D.train()
        order = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        steps = 0
        for i in range(0, n - batch_size + 1, batch_size):  # full batches only (BatchNorm)
            z = torch.randn(batch_size, G.latent, generator=gen)
            for k, v in gan_step(G, D, opt_g, opt_d, images[order[i:i + batch_size]], z, smoothing).items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        record = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}}
        if not all(torch.isfinite(torch.tensor(v)) for v in record.values()):
            raise TrainingDiverged(f"GAN losses became NaN/inf in epoch {epoch + 1}: {record}; lower the learning rate")
        if (epoch + 1) % snapshot_every == 0 or epoch + 1 == epochs:
            G.eval()
            with torch.no_grad():
                history.grids[epoch + 1] = G(fixed_z)
            if evaluate is not None:
                record.update(evaluate(G))
            G.train()
        history.epochs.append(record)
        alert = _collapse_alert(history, patience)
        if alert and alert not in history.alerts:
            history.alerts.append(alert)
            bar.write(f"warning: {alert}")
        if checkpoint is not None:
            save_atomic({"G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(),
                         "opt_d": opt_d.state_dict(), "rng": gen.get_state(), "torch_rng": torch.get_rng_state(),
                         "epochs": history.epochs, "grids": history.grids, "alerts": history.alerts}, Path(checkpoint))
        bar.set_postfix(loss_d=round(record["loss_d"], 3), loss_g=round(record["loss_g"], 3))
    G.eval(), D.eval()
    return history


@torch.no_grad()
def sample(G: Generator, n: int, seed: int = 0) -> torch.Tensor:
    """n generated images (n, 1, 28, 28) from a seeded latent draw, in eval mode."""
    G.eval()
    z = torch.randn(n, G.latent, generator=torch.Generator().manual_seed(seed))
    return torch.cat([G(z[i:i + 500]) for i in range(0, n, 500)])
