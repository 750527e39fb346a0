"""A DCGAN of any square image size and channel count, trained one per class (documents 004 and 001).

Architecture after A. Radford, L. Metz and S. Chintala, "Unsupervised representation learning with
deep convolutional generative adversarial networks" (2015): the generator projects z to a small
feature map and doubles it with stride-2 transposed convolutions (BatchNorm + ReLU), the
discriminator halves the image with stride-2 convolutions (LeakyReLU 0.2). Document 004's Table 2
fixes the training: latent size 100, Adam lr 2e-4 with betas (0.5, 0.999), batch 32, binary
cross-entropy, z ~ N(0, 1); one generator per class, each trained on that class's 40 images.

The loss and one update step are notebook 03's (:func:`course_lib.models.gan.gan_step`: D on real
and fake, then G with the non-saturating loss). Images are in [0, 1] (sigmoid output).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.evolution import torch_threads
from course_lib.models.gan import gan_step
from course_lib.train import TrainingDiverged, checkpoint_path, load_verified, loaded_message, save_atomic

LATENT = 100  # Table 2: latent dimension


def halvings(size: int, max_halvings: int = 4) -> int:
    """How many stride-2 steps fit ``size`` (each exact, ending at a map of at least 4 px)."""
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"image size must be an int of at least 8 pixels, got {size!r}")
    k = 0
    while k < max_halvings and size % 2 ** (k + 1) == 0 and size // 2 ** (k + 1) >= 4:
        k += 1
    if k == 0:
        raise ValueError(f"image size {size} cannot be halved exactly; use an even size such as 32, 64 or 132")
    return k


class DCGenerator(nn.Module):
    """z (N, latent) -> images (N, channels, size, size) in [0, 1]."""

    def __init__(self, latent: int = LATENT, size: int = 64, channels: int = 1, width: int = 64) -> None:
        super().__init__()
        if width < 1 or channels < 1 or latent < 1:
            raise ValueError(f"latent, channels and width must be positive, got {latent}, {channels}, {width}")
        self.latent, self.size, self.channels = latent, size, channels
        k = halvings(size)
        start = size // 2 ** k                                   # e.g. 64 -> 4x4, 32 -> 4x4, 132 -> 33x33
        chans = [width * 2 ** (k - 1 - i) for i in range(k)]     # e.g. 8w, 4w, 2w, w
        layers: list[nn.Module] = [nn.Linear(latent, chans[0] * start * start, bias=False),
                                   nn.BatchNorm1d(chans[0] * start * start), nn.ReLU(),
                                   nn.Unflatten(1, (chans[0], start, start))]
        for c_in, c_out in zip(chans[:-1], chans[1:]):           # each step doubles height and width
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [nn.ConvTranspose2d(chans[-1], channels, 4, stride=2, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images for a batch of latent vectors."""
        if z.dim() != 2 or z.shape[1] != self.latent:
            raise ValueError(f"expected latent vectors of shape (N, {self.latent}), got {tuple(z.shape)}")
        return self.net(z)


class DCDiscriminator(nn.Module):
    """images (N, channels, size, size) -> logits (N,): large means 'real'."""

    def __init__(self, size: int = 64, channels: int = 1, width: int = 64) -> None:
        super().__init__()
        k = halvings(size)
        end = size // 2 ** k
        chans = [width * 2 ** i for i in range(k)]               # w, 2w, 4w, 8w
        layers: list[nn.Module] = [nn.Conv2d(channels, chans[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(chans[:-1], chans[1:]):           # each step halves height and width
            # no BatchNorm: with 40 images a class, batch statistics of all-real / all-fake batches are noisy
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers += [nn.Flatten(), nn.Linear(chans[-1] * end * end, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, one per image."""
        return self.net(x).squeeze(1)


@dataclass
class DCGANRun:
    """One class's trained pair and its per-epoch history (mean losses, D(x), D(G(z)))."""

    G: DCGenerator
    D: DCDiscriminator
    epochs: list[dict] = field(default_factory=list)
    resumed_from: int = 0

    def column(self, key: str) -> list[float]:
        """One quantity over the epochs."""
        return [e[key] for e in self.epochs]


def train_dcgan(images: torch.Tensor, *, epochs: int, latent: int = LATENT, width: int = 64, batch_size: int = 32,
                lr: float = 2e-4, seed: int = 0, checkpoint: Path | str | None = None, checkpoint_every: int = 50,
                retrain: bool = False, progress: bool = True, desc: str = "DCGAN epochs") -> DCGANRun:
    """Train one DCGAN on ``images`` (N, C, H, W) in [0, 1] (Table 2 settings); resume or load a checkpoint.

    Every epoch visits all images in shuffled batches of ``batch_size`` (the last one may be smaller);
    z ~ N(0, 1). The state is saved atomically every ``checkpoint_every`` epochs and at the end.
    """
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"expected square images (N, C, H, W), got {tuple(images.shape)}")
    if not (images.min() >= 0 and images.max() <= 1):
        raise ValueError("images must be in [0, 1]")
    if epochs < 1 or batch_size < 2:
        raise ValueError(f"epochs must be at least 1 and batch_size at least 2, got {epochs}, {batch_size}")
    _, channels, size, _ = images.shape
    torch.manual_seed(seed)
    G, D = DCGenerator(latent, size, channels, width), DCDiscriminator(size, channels, width)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))   # Table 2
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)
    run = DCGANRun(G, D)
    path = Path(checkpoint) if checkpoint is not None else None
    state = load_verified(path) if path is not None and not retrain else None
    if state is not None:
        for module, key in ((G, "G"), (D, "D"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(state[key])
        gen.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        run.epochs = list(state["epochs"])
        run.resumed_from = len(run.epochs)

    def save() -> None:
        if path is not None:
            save_atomic({"G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                         "rng": gen.get_state(), "torch_rng": torch.get_rng_state(), "epochs": run.epochs}, path)

    n = len(images)
    bar = tqdm(range(len(run.epochs), epochs), desc=desc, disable=not progress, initial=min(len(run.epochs), epochs),
               total=epochs, leave=False)
    G.train(), D.train()
    for epoch in bar:
        order = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        steps = 0
        for i in range(0, n, batch_size):
            real = images[order[i:i + batch_size]]
            if len(real) < 2:        # BatchNorm needs two samples; a lone leftover image waits for the next epoch
                continue
            z = torch.randn(len(real), latent, generator=gen)   # Table 2: noise from N(0, 1)
            for k, v in gan_step(G, D, opt_g, opt_d, real, z).items():
                sums[k] = sums.get(k, 0.0) + v
            steps += 1
        record = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}}
        if not all(torch.isfinite(torch.tensor(v)) for v in record.values()):
            save()
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


def train_per_class(images: torch.Tensor, labels: torch.Tensor, classes: list[str], *, epochs: int,
                    latent: int = LATENT, width: int = 64, batch_size: int = 32, lr: float = 2e-4, seed: int = 0,
                    name: str = "dcgan", retrain: bool = False, progress: bool = True,
                    threads: int | None = 1) -> dict[str, DCGANRun]:
    """One DCGAN per class (checkpoints in the cache, keyed by settings and data); class name -> run.

    ``threads``: torch threads while training (one by default: small batches gain little from more).
    """
    with torch_threads(threads):
        return _train_per_class(images, labels, classes, epochs=epochs, latent=latent, width=width,
                                batch_size=batch_size, lr=lr, seed=seed, name=name, retrain=retrain, progress=progress)


def _train_per_class(images: torch.Tensor, labels: torch.Tensor, classes: list[str], *, epochs: int, latent: int,
                     width: int, batch_size: int, lr: float, seed: int, name: str, retrain: bool,
                     progress: bool) -> dict[str, DCGANRun]:
    runs = {}
    bar = tqdm(list(enumerate(classes)), desc="classes", disable=not progress)
    for label, cls in bar:
        bar.set_postfix_str(cls)
        x = images[labels == label]
        if len(x) < 2:
            raise ValueError(f"class {cls!r} has {len(x)} images; a GAN needs at least 2")
        ckpt = checkpoint_path(f"{name}-{cls}", latent=latent, width=width, batch_size=batch_size, lr=lr,
                               seed=seed + label, shape=list(x.shape), data=x)  # hashed by content
        runs[cls] = train_dcgan(x, epochs=epochs, latent=latent, width=width, batch_size=batch_size, lr=lr,
                                seed=seed + label, checkpoint=ckpt, retrain=retrain, progress=progress,
                                desc=f"DCGAN {cls}")
        if progress and runs[cls].resumed_from:  # it came from the cache
            print(loaded_message(cls, runs[cls].resumed_from, epochs))
    return runs


@torch.no_grad()
def generate(G: DCGenerator, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Decode latent vectors (N, latent) to images in eval mode, in chunks."""
    G.eval()
    return torch.cat([G(z[i:i + batch_size]) for i in range(0, len(z), batch_size)])


__all__ = ["LATENT", "DCGenerator", "DCDiscriminator", "DCGANRun", "train_dcgan", "train_per_class", "generate",
           "halvings"]
