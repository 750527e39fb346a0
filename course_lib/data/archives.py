"""Data sets published as archives: CIFAR-10 (a tar.gz) and Omniglot (two zips).

Addresses and MD5 checksums are taken from torchvision's dataset classes. Each archive is
downloaded into the course cache, verified, and extracted safely into its own folder; offline and
uncached, the loader raises one clear error naming the fetch command (no stand-in exists).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from course_lib.data.cache import cache_dir
from course_lib.data.download import DownloadError, download, safe_extract
from course_lib.data.imageset import ImageSet
from course_lib.data.mnist import DataUnavailable


@dataclass(frozen=True)
class ArchiveSource:
    """One downloadable archive: URL, MD5, and the cache folder it is extracted into."""

    name: str  # cache sub-folder
    url: str
    md5: str

    @property
    def filename(self) -> str:
        """The archive's file name, from its URL."""
        return self.url.rsplit("/", 1)[-1]


def cifar10_source() -> ArchiveSource:
    """CIFAR-10's python-format archive as torchvision lists it."""
    from torchvision.datasets import CIFAR10
    return ArchiveSource("cifar10", CIFAR10.url, CIFAR10.tgz_md5)


def omniglot_sources() -> list[ArchiveSource]:
    """Omniglot's two archives (background, evaluation) as torchvision lists them."""
    from torchvision.datasets import Omniglot
    return [ArchiveSource("omniglot", f"{Omniglot.download_url_prefix}/{name}.zip", md5)
            for name, md5 in Omniglot.zips_md5.items()]


def fetch_archive(source: ArchiveSource, progress: bool = True) -> Path:
    """Download (if needed) and extract ``source`` into the cache; returns the extracted folder."""
    root = cache_dir(source.name)
    extracted = root / (source.filename.split(".")[0])
    if extracted.is_dir():
        return extracted
    archive = download([source.url], root / source.filename, md5=source.md5, progress=progress)
    return safe_extract(archive, extracted)


def _unavailable(name: str, fetch_name: str, exc: Exception) -> DataUnavailable:
    return DataUnavailable(
        f"{name} is not in the course cache and could not be downloaded. On a machine with network "
        f"run `course-lib data fetch {fetch_name}` (then copy the cache folder {cache_dir(create=False)} here).\n{exc}"
    )


def load_cifar10(source: ArchiveSource | None = None, quiet: bool = False) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10 (train, test) as 3x32x32 images in [0, 1]."""
    source = source or cifar10_source()
    try:
        folder = fetch_archive(source)
    except DownloadError as exc:
        raise _unavailable("CIFAR-10", "cifar10", exc) from exc
    batches = folder / "cifar-10-batches-py"

    def read(names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for n in names:
            with open(batches / n, "rb") as f:
                # CIFAR-10 ships as pickled dicts of arrays; only ever read the verified archive's files
                entry = pickle.load(f, encoding="latin1")
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(entry["labels"], dtype=np.int64))
        return torch.from_numpy(np.concatenate(xs)).float() / 255.0, torch.from_numpy(np.concatenate(ys))

    with open(batches / "batches.meta", "rb") as f:
        classes = list(pickle.load(f, encoding="latin1")["label_names"])
    train = ImageSet(*read([f"data_batch_{i}" for i in range(1, 6)]), classes, "CIFAR-10 train", f"CIFAR-10 ({folder})")
    test = ImageSet(*read(["test_batch"]), classes, "CIFAR-10 test", f"CIFAR-10 ({folder})")
    if not quiet:
        print(f"CIFAR-10: {len(train)} train / {len(test)} test images from {folder}")
    return train, test


def load_omniglot(size: int = 28, sources: list[ArchiveSource] | None = None, quiet: bool = False) -> tuple[ImageSet, ImageSet]:
    """Omniglot (background, evaluation) resized to ``size`` px, ink bright on dark; classes = alphabet/character."""
    sources = sources or omniglot_sources()
    try:
        folders = [fetch_archive(s) for s in sources]
    except DownloadError as exc:
        raise _unavailable("Omniglot", "omniglot", exc) from exc
    parts = []
    for folder in folders:
        pngs = sorted(folder.rglob("*.png"))
        if not pngs:
            raise ValueError(f"no PNG images found under {folder}")
        names = sorted({f"{p.parent.parent.name}/{p.parent.name}" for p in pngs})
        index = {n: i for i, n in enumerate(names)}
        images = np.stack([
            1.0 - np.asarray(Image.open(p).convert("L").resize((size, size), Image.BILINEAR), np.float32) / 255.0
            for p in pngs
        ])
        labels = torch.tensor([index[f"{p.parent.parent.name}/{p.parent.name}"] for p in pngs])
        parts.append(ImageSet(torch.from_numpy(images).unsqueeze(1), labels, names,
                              f"Omniglot {folder.name}", f"Omniglot ({folder})"))
    if not quiet:
        print("Omniglot: " + ", ".join(f"{p.name}: {len(p)} images, {len(p.classes)} characters" for p in parts))
    return parts[0], parts[1]
