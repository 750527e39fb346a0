"""Notebook 05b's exercises: the reparameterisation trick and the VAE's KL term (Kingma & Welling 2014)."""

from __future__ import annotations

import numpy as np
import torch

from course_lib.exercises import Exercise


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2): a sample that gradients can flow through."""
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) summed over latent units, averaged over the batch (K&W, Appendix B)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) / len(mu)


def _gaussian(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, k = int(rng.integers(1, 6)), int(rng.integers(2, 9))
    draw = lambda scale: torch.from_numpy(rng.normal(0, scale, (n, k)).astype(np.float32))  # noqa: E731
    return draw(1.0), draw(1.5), draw(1.0)


REPARAMETERISE = Exercise(
    "reparameterise", reparameterise, _gaussian,
    hint="the encoder gives the log of the variance; the standard deviation is exp(logvar / 2), not exp(logvar)",
    idea="z = mu + exp(0.5 * logvar) * eps: the randomness is all in eps, so mu and logvar get gradients")

KL_DIVERGENCE = Exercise(
    "kl_divergence", kl_divergence, lambda rng: _gaussian(rng)[:2],
    hint="sum 1 + logvar - mu^2 - exp(logvar) over all units, multiply by -1/2, then divide by the batch size",
    idea="KLD = -1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2) / N; it is 0 exactly when mu = 0 and sigma = 1",
    rtol=1e-4, fixed_inputs=((torch.zeros(2, 3), torch.zeros(2, 3)),))
