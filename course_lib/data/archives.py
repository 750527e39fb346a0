"""Data sets published as archives: CIFAR-10 (a tar.gz) and Omniglot (two zips).

Addresses and MD5 checksums are taken from torchvision's dataset classes. Each archive is
downloaded into the course cache, verified, and extracted safely into its own folder; offline and
uncached, the loader raises one clear error naming the fetch command (no stand-in exists).
CIFAR-10's batches are pickles, which can run code: each is read only after its bytes match the MD5
torchvision pins for it, and then through an unpickler that builds nothing but NumPy arrays.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from course_lib.data.cache import cache_dir
from course_lib.data.download import (DownloadError, UntrustedFile, cache_lock, download, remove_stale_parts,
                                      safe_extract, unavailable_error)
from course_lib.data.folders import is_hidden, load_image_folder, under_hidden
from course_lib.data.imageset import ImageSet
from course_lib.data.errors import UnusableData


@dataclass(frozen=True)
class ArchiveSource:
    """One downloadable archive: URL, MD5, and the cache folder it is extracted into."""

    name: str  # cache sub-folder
    url: str
    md5: str
    members: tuple[tuple[str, str], ...] = ()  # (file name, MD5) of extracted files that must be verified before use

    @property
    def filename(self) -> str:
        """The archive's file name, from its URL."""
        return self.url.rsplit("/", 1)[-1]


def cifar10_source() -> ArchiveSource:
    """CIFAR-10's python-format archive as torchvision lists it."""
    from torchvision.datasets import CIFAR10
    files = [*CIFAR10.train_list, *CIFAR10.test_list, [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    return ArchiveSource("cifar10", CIFAR10.url, CIFAR10.tgz_md5, tuple((name, md5) for name, md5 in files))


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
    with cache_lock(root / source.filename):  # a second process waits here, then finds the folder made
        if extracted.is_dir():
            return extracted
        for leftover in (root / source.filename, extracted):
            remove_stale_parts(leftover, older_than=0)  # under the lock, any .part is a killed run's
        archive = download([source.url], root / source.filename, md5=source.md5, progress=progress)
        return safe_extract(archive, extracted)


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that can build NumPy arrays (and plain containers) and nothing else."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)


def read_verified_pickle(path: Path, md5: str, refetch: str) -> dict:
    """Unpickle ``path`` only if its bytes have MD5 ``md5``; else raise UntrustedFile saying what to do (``refetch``)."""
    data = path.read_bytes()  # hash and unpickle the same bytes: nothing can change in between
    got = hashlib.md5(data).hexdigest()
    if got != md5.lower():
        raise UntrustedFile(path, f"the published file (MD5 {md5})", f"MD5 {got}, so it was not read", refetch)
    try:
        return _ArraysOnly(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise UntrustedFile(path, "a pickled dict of NumPy arrays", str(exc), refetch) from exc


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def cifar10_folders(root: Path) -> tuple[Path, Path] | None:
    """``root/train`` and ``root/test`` when they hold CIFAR-10 as class folders (the ImageFolder layout), else None."""
    train, test = root / "train", root / "test"
    if not (train.is_dir() and test.is_dir()):
        return None
    for part in (train, test):
        found = sorted(d.name for d in part.iterdir() if d.is_dir() and not is_hidden(d))
        if found != sorted(CIFAR10_CLASSES):
            raise UnusableData(part, f"CIFAR-10's ten class folders ({', '.join(CIFAR10_CLASSES)})",
                               f"{', '.join(found) or 'no folders'}",
                               "Rename the folders, or use the python archive (`course-lib data fetch cifar10`).")
    return train, test


def load_cifar10(source: ArchiveSource | None = None, quiet: bool = False) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10 (train, test) as 3x32x32 images in [0, 1]: the published python archive, or ``train/`` and
    ``test/`` class folders of PNG/JPEG images (a layout many copies use) in the cache's ``cifar10`` folder."""
    folders = cifar10_folders(cache_dir("cifar10"))
    if folders is not None:
        sets = [load_image_folder(part, 32, mode="RGB", name=f"CIFAR-10 {part.name}", classes=list(CIFAR10_CLASSES))
                for part in folders]
        for part, where in zip(sets, folders):
            part.source = f"CIFAR-10 as class folders of images ({where}), read at 32x32 RGB"
        if not quiet:
            print(f"CIFAR-10: {len(sets[0])} train / {len(sets[1])} test images from class folders under "
                  f"{folders[0].parent}")
        return sets[0], sets[1]
    source = source or cifar10_source()
    try:
        folder = fetch_archive(source)
    except DownloadError as exc:
        raise unavailable_error("CIFAR-10", "cifar10", exc) from exc
    batches = folder / "cifar-10-batches-py"
    pinned = dict(source.members)
    if not pinned:
        raise ValueError("a CIFAR-10 source needs the MD5 of every batch file (members) before it is unpickled")
    refetch = (f"Delete {folder} and fetch again (`course-lib data fetch cifar10`, or copy a verified cache "
               f"folder to {cache_dir(create=False)}).")
    missing = [name for name in pinned if not (batches / name).is_file()]
    if missing:
        raise UntrustedFile(batches, f"CIFAR-10's {len(pinned)} batch files", f"{', '.join(missing)} missing "
                            "(the folder is incomplete)", refetch)

    def unpickle(name: str) -> dict:
        if name not in pinned:
            raise ValueError(f"no pinned MD5 for CIFAR-10 file {name!r}; refusing to unpickle it")
        return read_verified_pickle(batches / name, pinned[name], refetch)

    def read(names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for n in names:
            entry = unpickle(n)
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(entry["labels"], dtype=np.int64))
        return torch.from_numpy(np.concatenate(xs)).float() / 255.0, torch.from_numpy(np.concatenate(ys))

    classes = list(unpickle("batches.meta")["label_names"])
    train = ImageSet(*read([f"data_batch_{i}" for i in range(1, 6)]), classes, "CIFAR-10 train", f"CIFAR-10 ({folder})")
    test = ImageSet(*read(["test_batch"]), classes, "CIFAR-10 test", f"CIFAR-10 ({folder})")
    if not quiet:
        print(f"CIFAR-10: {len(train)} train / {len(test)} test images from {folder}")
    return train, test


SMALL_BACKGROUND = ("images_background_small1", "images_background_small2")


def _omniglot_folder(source: ArchiveSource) -> Path:
    """The extracted folder of one Omniglot archive; for the background set, an unpacked small set stands in."""
    root = cache_dir(source.name)
    stem = source.filename.split(".")[0]
    if stem == "images_background" and not (root / stem).is_dir():
        for small in SMALL_BACKGROUND:
            if (root / small).is_dir():
                return root / small
            if (root / f"{small}.zip").is_file():
                raise UnusableData(root / f"{small}.zip", f"the unpacked folder {small}/ (no checksum is "
                                   "published for the small sets, so the course does not extract them itself)",
                                   "only the zip", f"Unpack it into {root / small} (or fetch the full set with "
                                   "`course-lib data fetch omniglot`).")
    return fetch_archive(source)


def load_omniglot(size: int = 28, sources: list[ArchiveSource] | None = None, quiet: bool = False) -> tuple[ImageSet, ImageSet]:
    """Omniglot (background, evaluation) resized to ``size`` px, ink bright on dark; classes = alphabet/character."""
    sources = sources or omniglot_sources()
    try:
        folders = [_omniglot_folder(s) for s in sources]
    except DownloadError as exc:
        raise unavailable_error("Omniglot", "omniglot", exc) from exc
    parts = []
    for folder in folders:
        pngs = sorted(p for p in folder.rglob("*.png") if not under_hidden(p, folder))
        if not pngs:
            raise UnusableData(folder, "Omniglot's alphabet/character/*.png images", "no PNG images",
                               f"Delete {folder} and run `course-lib data fetch omniglot`.")
        names = sorted({f"{p.parent.parent.name}/{p.parent.name}" for p in pngs})
        index = {n: i for i, n in enumerate(names)}

        def read(path: Path) -> np.ndarray:
            try:
                with Image.open(path) as im:
                    return 1.0 - np.asarray(im.convert("L").resize((size, size), Image.BILINEAR), np.float32) / 255.0
            except (OSError, ValueError) as exc:
                raise UnusableData(path, "a PNG image", f"a file PIL cannot read ({exc})",
                                   "Delete it, or fetch Omniglot again.") from exc

        images = np.stack([read(p) for p in pngs])
        labels = torch.tensor([index[f"{p.parent.parent.name}/{p.parent.name}"] for p in pngs])
        parts.append(ImageSet(torch.from_numpy(images).unsqueeze(1), labels, names,
                              f"Omniglot {folder.name}", f"Omniglot ({folder})"))
    if not quiet:
        print("Omniglot: " + ", ".join(f"{p.name}: {len(p)} images, {len(p.classes)} characters" for p in parts))
    return parts[0], parts[1]
