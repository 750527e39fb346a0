"""Notebook 08's exercise: the uncentred normalised cross-correlation the fitness of eq. 4 is built on."""

from __future__ import annotations

import numpy as np
import torch

from course_lib.exercises import Exercise
from course_lib.latent_ga import ncc_correlation


def _images(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n, c, h = int(rng.integers(1, 5)), int(rng.choice([1, 3])), int(rng.integers(3, 9))
    a = torch.from_numpy(rng.random((n, c, h, h)).astype(np.float32))
    b = torch.from_numpy(rng.random((n, c, h, h)).astype(np.float32))
    return a, b


NCC = Exercise(
    "ncc", ncc_correlation, _images,
    hint="per image: the sum of A*B over channels and pixels, divided by the product of the two images' L2 norms",
    idea="(a * b).sum((-3, -2, -1)) / (a.norm over (-3, -2, -1) * b.norm over (-3, -2, -1)); 1 for identical images",
    rtol=1e-4, atol=1e-5)
