"""Notebook 03's exercises: Table III's "called real" share and the discriminator's optimum with label smoothing."""

from __future__ import annotations

import numpy as np

from course_lib.exercises import Exercise


def share_called_real(scores: np.ndarray, threshold: float) -> float:
    """Table III of document 000: the share of scores strictly above ``threshold`` (a score equal to it is 'fake')."""
    scores = np.asarray(scores, dtype=float)
    return float(np.mean(scores > threshold))


def optimal_discriminator(p_data: np.ndarray, p_g: np.ndarray, smoothing: float) -> np.ndarray:
    """D*(x) = (1 - s) p_data / (p_data + p_G): the best discriminator for a fixed G when real targets are 1 - s."""
    p_data, p_g = np.asarray(p_data, dtype=float), np.asarray(p_g, dtype=float)
    return (1 - smoothing) * p_data / (p_data + p_g)


def _scores(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    scores = rng.random(int(rng.integers(5, 40)))
    threshold = float(rng.choice([0.5, rng.random()]))
    scores[: int(rng.integers(0, 3))] = threshold  # ties: a score equal to the threshold is not "real"
    return scores, threshold


def _densities(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    n = int(rng.integers(3, 12))
    return rng.random(n) + 1e-3, rng.random(n) + 1e-3, float(rng.choice([0.0, 0.1, rng.random() * 0.3]))


SHARE_CALLED_REAL = Exercise(
    "share_called_real", share_called_real, _scores,
    hint="count the scores that are strictly greater than the threshold, then divide by how many scores there are",
    idea="the mean of the boolean array (scores > threshold) is exactly that share",
    fixed_inputs=((np.array([0.2, 0.5, 0.9]), 0.5),))

OPTIMAL_DISCRIMINATOR = Exercise(
    "optimal_discriminator", optimal_discriminator, _densities,
    hint="without smoothing the optimum is p_data / (p_data + p_G); smoothing lowers every real target to 1 - s",
    idea="D* = (1 - s) * p_data / (p_data + p_G), computed element by element",
    fixed_inputs=((np.array([1.0]), np.array([1.0]), 0.1),))
