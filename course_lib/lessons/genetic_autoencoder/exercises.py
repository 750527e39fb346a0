"""Notebook 06's exercises: the fitness (mean absolute error per agent) and the mutation step of document 002."""

from __future__ import annotations

import numpy as np
import torch

from course_lib.evolution import mae_fitness
from course_lib.exercises import Exercise


def mutate(parent: torch.Tensor, positions: torch.Tensor, u: torch.Tensor, step: float) -> torch.Tensor:
    """A child of ``parent`` (n_params,): the parameters at ``positions`` shifted by step * (2u - 1), the rest copied."""
    child = parent.clone()
    child[positions] += step * (2 * u - 1)   # uniform(-step, step) from u in [0, 1)
    return child


def _agents(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    p, n, d = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(2, 10))
    outputs = torch.from_numpy(rng.random((p, n, d)).astype(np.float32))
    return outputs, torch.from_numpy(rng.random((n, d)).astype(np.float32))


def _parent(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    n = int(rng.integers(5, 40))
    k = int(rng.integers(1, min(n, 6) + 1))
    parent = torch.from_numpy(rng.normal(size=n).astype(np.float32))
    positions = torch.from_numpy(rng.choice(n, size=k, replace=False))
    return parent, positions, torch.from_numpy(rng.random(k).astype(np.float32)), float(rng.choice([1.0, 0.3]))


MAE_FITNESS = Exercise(
    "mae_fitness", mae_fitness, _agents,
    hint="subtract the targets from every agent's outputs (broadcasting over the first axis), take abs, then a mean "
         "over everything but the agent axis",
    idea="(outputs - targets).abs().flatten(1).mean(1): one number per agent, lower is fitter")

MUTATE = Exercise(
    "mutate", mutate, _parent,
    hint="only the chosen positions change; 2u - 1 turns u in [0, 1) into [-1, 1), then scale by step; "
         "clone the parent first so it stays as it was",
    idea="child = parent.clone(); child[positions] += step * (2 * u - 1)")
