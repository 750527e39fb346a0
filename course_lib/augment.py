"""Per-image random geometric augmentation for batches held as tensors.

``torchvision.transforms.v2.RandomAffine`` draws one set of parameters per call, so applied to a
batch it would move every image the same way. Here each image gets its own rotation, scale and
shift, through one ``affine_grid`` / ``grid_sample`` call on the whole batch (fast on a CPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, degrees: float = 10.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1), generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate by up to ``degrees``, shift by up to ``translate`` of the size, rescale within ``scale``, per image."""
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
    n = x.shape[0]
    u = torch.rand(n, 4, generator=generator, device=x.device)  # one row of random numbers per image
    angle = (u[:, 0] * 2 - 1) * math.radians(degrees)
    zoom = scale[0] + u[:, 1] * (scale[1] - scale[0])
    # affine_grid works in [-1, 1] coordinates: a shift of 2 spans the whole image
    shift = (u[:, 2:] * 2 - 1) * translate * 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # theta maps output coordinates to input coordinates, one 2x3 matrix per image: (N, 2, 3)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
