"""The denoising diffusion model of document 001 (Table 3), built with diffusers and trained per class.

A DDPM (J. Ho, A. Jain and P. Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020) adds
Gaussian noise to an image over T = 1000 steps, q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), and
trains a network eps_theta(x_t, t) to predict that noise with the simple loss of their Eq. 14,
|| eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2. Sampling runs the chain backwards
from pure noise; DDIM (J. Song, C. Meng and S. Ermon, ICLR 2021) reuses the same trained network and
skips most steps, which is why we offer it for speed.

Table 3 and the text fix: ``UNet2DModel`` at 64x64x3, two layers per block, block channels
(64, 64, 128, 128, 256, 256), attention in the fifth down block and the second up block; AdamW lr 1e-4;
a cosine learning-rate schedule with 500 warm-up steps; 500 epochs per class; ``DDPMScheduler`` with
1000 steps; fp16 mixed precision through Accelerate; generation through a diffusers pipeline.

Differences, said openly: the document sets the schedule's length to (images per class x epochs); we use
the number of optimizer steps actually taken (batches per epoch x epochs), so the cosine reaches zero at
the end. Mixed precision is fp16 only when CUDA is available (fp16 on a CPU is not supported), else off.
Images enter as [0, 1] and are mapped to [-1, 1] for the network (the diffusers convention); the
pipelines map samples back to [0, 1]. Everything is built from a config: no weights are downloaded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from course_lib.data.imageset import check_unit_images
from course_lib.evolution import torch_threads
from course_lib.sign_generators import SETTINGS as _SIGN_SETTINGS
from course_lib.train import (TrainingDiverged, checkpoint_path, epochs_by_class, load_verified,
                              loaded_message, save_atomic, untrusted_reason)

TABLE3_CHANNELS = (64, 64, 128, 128, 256, 256)
TABLE3_LAYERS_PER_BLOCK = 2
TIMESTEPS = 1000          # DDPMScheduler(num_train_timesteps=1000)
WARMUP_STEPS = 500        # cosine schedule warm-up

# The UNet of each profile, read from the settings notebook 05 trains with (``paper`` is Table 3), so
# that a preset can never describe another network than the one sign_generators trains.
UNET_PRESETS: dict[str, dict] = {
    profile: {"size": S.size, "block_out_channels": tuple(S.block_out_channels), "layers_per_block": S.layers_per_block}
    for profile, S in _SIGN_SETTINGS["ddpm"].items()
}


def make_unet(size: int = 64, block_out_channels: Sequence[int] = TABLE3_CHANNELS,
              layers_per_block: int = TABLE3_LAYERS_PER_BLOCK, channels: int = 3,
              attention_down: int | None = None) -> "UNet2DModel":  # noqa: F821
    """A diffusers ``UNet2DModel`` laid out like Table 3, built from its config (random weights).

    Attention goes into down block ``attention_down`` (default: the second-to-last, i.e. the fifth of
    six) and into its mirror among the up blocks (the second of six). Every block but the last halves
    the image, so ``size`` must be divisible by 2 ** (blocks - 1).
    """
    from diffusers import UNet2DModel

    chans = tuple(int(c) for c in block_out_channels)
    n = len(chans)
    if n < 2 or any(c < 1 for c in chans):
        raise ValueError(f"block_out_channels needs at least two positive entries, got {block_out_channels!r}")
    if not isinstance(size, int) or size % 2 ** (n - 1) or size < 2 ** (n - 1):
        raise ValueError(f"size must be a multiple of 2**{n - 1} = {2 ** (n - 1)} for {n} blocks, got {size!r}")
    if layers_per_block < 1 or channels < 1:
        raise ValueError(f"layers_per_block and channels must be positive, got {layers_per_block}, {channels}")
    a = n - 2 if attention_down is None else attention_down
    if not 0 <= a < n:
        raise ValueError(f"attention_down must index one of the {n} down blocks, got {attention_down}")
    down = tuple("AttnDownBlock2D" if i == a else "DownBlock2D" for i in range(n))
    up = tuple("AttnUpBlock2D" if i == n - 1 - a else "UpBlock2D" for i in range(n))   # mirror position
    groups = reduce(math.gcd, chans, 32)            # GroupNorm groups must divide every channel count (32 for Table 3)
    head_dim = min(8, groups)                        # diffusers' default attention head size is 8
    return UNet2DModel(sample_size=size, in_channels=channels, out_channels=channels, layers_per_block=layers_per_block,
                       block_out_channels=chans, down_block_types=down, up_block_types=up,
                       norm_num_groups=groups, attention_head_dim=head_dim)


def param_count(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def unet_from_state(state: Mapping) -> "UNet2DModel":  # noqa: F821
    """Rebuild a UNet from a checkpoint dict holding ``config`` and ``unet`` (its state_dict)."""
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_config(dict(state["config"]))
    unet.load_state_dict(state["unet"])
    return unet.eval()


def load_unet(path: Path | str) -> "UNet2DModel":  # noqa: F821
    """Load a trained UNet saved by :func:`train_ddpm`, after checking its SHA-256 and that its weights are finite."""
    reason, state = untrusted_reason(Path(path))
    if reason is not None:
        raise ValueError(f"{path} is not a usable UNet checkpoint: {reason}; train it again with train_ddpm")
    return unet_from_state(state)


def _plain(value: object) -> object:
    """Config values as plain Python containers (what ``torch.load(weights_only=True)`` accepts)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass
class DDPMRun:
    """One class's trained UNet and its per-epoch history (mean noise-prediction MSE, learning rate)."""

    unet: object
    epochs: list[dict] = field(default_factory=list)
    resumed_from: int = 0
    mixed_precision: str = "no"
    total_steps: int = 0
    warmup_steps: int = 0

    def column(self, key: str) -> list[float]:
        """One quantity over the epochs."""
        return [e[key] for e in self.epochs]


def train_ddpm(images: torch.Tensor, *, epochs: int, block_out_channels: Sequence[int] = TABLE3_CHANNELS,
               layers_per_block: int = TABLE3_LAYERS_PER_BLOCK, attention_down: int | None = None,
               batch_size: int = 16, lr: float = 1e-4, warmup_steps: int = WARMUP_STEPS, seed: int = 0,
               checkpoint: Path | str | None = None, checkpoint_every: int = 10, retrain: bool = False,
               progress: bool = True, desc: str = "DDPM epochs") -> DDPMRun:
    """Train one UNet on ``images`` (N, C, H, W) in [0, 1] to predict the added noise; resume or load a checkpoint.

    Table 3 settings: DDPMScheduler(1000), AdamW lr 1e-4, cosine schedule with warm-up, Accelerate
    (fp16 on CUDA). The image size sets the UNet's ``sample_size``. The cosine schedule spans the
    ``epochs`` asked for, so resume a checkpoint with the same ``epochs`` (the per-class cache key has it).
    """
    from accelerate import Accelerator
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_cosine_schedule_with_warmup

    check_unit_images(images)
    if epochs < 1 or batch_size < 1 or warmup_steps < 0:
        raise ValueError(f"epochs and batch_size must be at least 1 and warmup_steps not negative, "
                         f"got {epochs}, {batch_size}, {warmup_steps}")
    n, channels, size, _ = images.shape
    torch.manual_seed(seed)
    unet = make_unet(size, block_out_channels, layers_per_block, channels, attention_down)
    noise_scheduler = DDPMScheduler(num_train_timesteps=TIMESTEPS)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr)
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs
    lr_scheduler = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps, num_training_steps=total)
    gen = torch.Generator().manual_seed(seed)            # batches, noise and timesteps: our own stream
    run = DDPMRun(unet, total_steps=total, warmup_steps=warmup_steps)
    path = Path(checkpoint) if checkpoint is not None else None
    state = load_verified(path) if path is not None and not retrain else None
    if state is not None:
        unet.load_state_dict(state["unet"])
        optimizer.load_state_dict(state["opt"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        gen.set_state(state["rng"])
        run.epochs = list(state["epochs"])
        run.resumed_from = len(run.epochs)

    mixed = "fp16" if torch.cuda.is_available() else "no"
    accelerator = Accelerator(mixed_precision=mixed, gradient_accumulation_steps=1)
    run.mixed_precision = mixed
    model, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    device = accelerator.device

    def save() -> None:
        if path is not None:
            net = accelerator.unwrap_model(model)
            save_atomic({"unet": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                         "config": _plain(net.config), "opt": optimizer.state_dict(),
                         "lr_scheduler": lr_scheduler.state_dict(), "rng": gen.get_state(), "epochs": run.epochs},
                        path)

    x0_all = images * 2 - 1                               # [0, 1] -> [-1, 1]
    bar = tqdm(range(len(run.epochs), epochs), desc=desc, disable=not progress, initial=min(len(run.epochs), epochs),
               total=epochs, leave=False)
    model.train()
    for epoch in bar:
        order = torch.randperm(n, generator=gen)
        total_loss, seen = 0.0, 0
        for i in range(0, n, batch_size):
            x0 = x0_all[order[i:i + batch_size]]
            noise = torch.randn(x0.shape, generator=gen)
            t = torch.randint(0, TIMESTEPS, (len(x0),), generator=gen)
            # forward process in closed form: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al., Eq. 4)
            xt = noise_scheduler.add_noise(x0, noise, t)
            with accelerator.accumulate(model):
                pred = model(xt.to(device), t.to(device), return_dict=False)[0]
                loss = F.mse_loss(pred.float(), noise.to(device))          # simple loss, Ho et al. Eq. 14
                if not torch.isfinite(loss):
                    raise TrainingDiverged(f"DDPM loss became NaN/inf in epoch {epoch + 1} (step {i // batch_size + 1}); "
                                           "lower the learning rate or check the images")
                accelerator.backward(loss)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            total_loss += float(loss.detach()) * len(x0)
            seen += len(x0)
        record = {"epoch": epoch + 1, "loss": total_loss / seen, "lr": float(lr_scheduler.get_last_lr()[0])}
        run.epochs.append(record)
        if (epoch + 1) % checkpoint_every == 0:
            save()
        bar.set_postfix(loss=round(record["loss"], 4))
    if len(run.epochs) > run.resumed_from or (path is not None and not path.exists()):
        save()
    run.unet = accelerator.unwrap_model(model).eval()
    return run


def train_ddpm_per_class(images_by_class: Mapping[str, torch.Tensor], epochs: int | Mapping[str, int], *,
                         block_out_channels: Sequence[int] = TABLE3_CHANNELS,
                         layers_per_block: int = TABLE3_LAYERS_PER_BLOCK, attention_down: int | None = None,
                         batch_size: int = 16, lr: float = 1e-4, warmup_steps: int = WARMUP_STEPS, seed: int = 0,
                         name: str = "ddpm", retrain: bool = False, progress: bool = True,
                         threads: int | None = None) -> dict[str, DDPMRun]:
    """One DDPM per class (checkpoints in the cache, keyed by settings and data); class name -> run.

    ``epochs``: one number for every class, or a mapping class name -> epochs.
    """
    if not isinstance(images_by_class, Mapping) or not images_by_class:
        raise ValueError("images_by_class must be a non-empty mapping of class name -> images (N, C, H, W)")
    per_class = epochs_by_class(epochs, images_by_class)
    runs: dict[str, DDPMRun] = {}
    with torch_threads(threads):
        bar = tqdm(list(enumerate(images_by_class.items())), desc="classes", disable=not progress)
        for k, (cls, x) in bar:
            bar.set_postfix_str(str(cls))
            check_unit_images(x, f"class {cls!r}")
            ckpt = checkpoint_path(f"{name}-{cls}", channels=list(block_out_channels), layers=layers_per_block,
                                   attention=attention_down, batch_size=batch_size, lr=lr, warmup=warmup_steps,
                                   epochs=per_class[cls], seed=seed + k, shape=list(x.shape), data=x)  # hashed by content
            runs[cls] = train_ddpm(x, epochs=per_class[cls], block_out_channels=block_out_channels,
                                   layers_per_block=layers_per_block, attention_down=attention_down,
                                   batch_size=batch_size, lr=lr, warmup_steps=warmup_steps, seed=seed + k,
                                   checkpoint=ckpt, retrain=retrain, progress=progress, desc=f"DDPM {cls}")
            if progress and runs[cls].resumed_from:  # it came from the cache
                print(loaded_message(cls, runs[cls].resumed_from, per_class[cls]))
    return runs


@torch.no_grad()
def generate(unet: "UNet2DModel", n: int, steps: int = 50, sampler: str = "ddim", seed: int = 0,  # noqa: F821
             batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """``n`` images (n, C, H, W) in [0, 1] from a diffusers pipeline (DDIM with ``steps`` steps, or DDPM)."""
    from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler

    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}")
    if n < 1 or not 1 <= steps <= TIMESTEPS:
        raise ValueError(f"n must be at least 1 and steps between 1 and {TIMESTEPS}, got {n}, {steps}")
    if sampler == "ddim":
        pipe = DDIMPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=TIMESTEPS))
    else:
        pipe = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=TIMESTEPS))
    pipe.set_progress_bar_config(disable=not progress)
    unet.eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch_size):
        images = pipe(batch_size=min(batch_size, n - i), generator=gen, num_inference_steps=steps,
                      output_type="pt").images
        out.append(images.float().cpu())
    return torch.cat(out)


def throughput(unet: "UNet2DModel", n: int = 8, steps: int = 20, sampler: str = "ddim",  # noqa: F821
               threads: int | None = None) -> dict[str, float | int | str]:
    """Time one :func:`generate` call: images per second, seconds, and the sampler and step count used."""
    with torch_threads(threads):
        generate(unet, 1, steps=1, sampler=sampler)              # warm-up
        t0 = time.perf_counter()
        generate(unet, n, steps=steps, sampler=sampler)
        seconds = time.perf_counter() - t0
    return {"sampler": sampler, "steps": steps, "images": n, "seconds": seconds, "images_per_second": n / seconds}


__all__ = ["TABLE3_CHANNELS", "TABLE3_LAYERS_PER_BLOCK", "TIMESTEPS", "WARMUP_STEPS", "UNET_PRESETS", "make_unet",
           "param_count", "unet_from_state", "load_unet", "DDPMRun", "train_ddpm", "train_ddpm_per_class", "generate",
           "throughput"]
