"""HuSHeM, the Human Sperm Head Morphology data set (document 004), or an honest offline stand-in.

The real set (F. Shaker, "Human sperm head morphology dataset (HuSHeM)", Mendeley Data, 2018) is
216 stained sperm-head photographs in four class folders of BMP images, about 131x131 RGB:
Normal 54, Tapered 53, Pyriform 57, Amorphous 52. Document 004 works on them as 132x132
grayscale and keeps 40 images per class for training and cross-validation, the rest for testing.

The licence does not let the course ship the images. :func:`load_hushem` looks for them in a folder
the user passes or in the course cache (``cache_dir("hushem")``); when they are absent it returns
:func:`hushem_standin`, a deterministic set of drawn head silhouettes with the same shapes, classes
and counts, and says so in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from course_lib.data.cache import cache_dir
from course_lib.data.folders import is_hidden, load_image_folder, under_hidden
from course_lib.data.imageset import ImageSet

CLASSES: tuple[str, ...] = ("Normal", "Tapered", "Pyriform", "Amorphous")
COUNTS: dict[str, int] = {"Normal": 54, "Tapered": 53, "Pyriform": 57, "Amorphous": 52}
SIZE = 132          # the document's working size: 132x132x1
TRAIN_PER_CLASS = 40
HOW_TO_GET = ("download HuSHeM (F. Shaker, Mendeley Data, 2018) and unpack it so that "
              "its four class folders (e.g. 01_Normal ... 04_Amorphous) sit under {folder}, "
              "or pass folder=... to load_hushem")


# ----------------------------------------------------------------------------- the real folders
def _class_of(folder_name: str) -> str | None:
    name = folder_name.lower()
    hits = [c for c in CLASSES if c.lower() in name]
    return hits[0] if len(hits) == 1 else None


def find_hushem_root(folder: Path | str) -> Path | None:
    """The folder under ``folder`` (itself or up to 3 levels down) that holds the four class folders."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    candidates = [folder] + [p for depth in ("*", "*/*", "*/*/*") for p in sorted(folder.glob(depth))
                             if p.is_dir() and not under_hidden(p, folder)]  # not __MACOSX/ or .Trash/
    for cand in candidates:
        found = {_class_of(d.name) for d in cand.iterdir() if d.is_dir() and not is_hidden(d)}
        if set(CLASSES) <= found:
            return cand
    return None


def load_hushem_folder(folder: Path | str, size: int = SIZE) -> ImageSet:
    """Read HuSHeM's published layout (one folder per class, BMP images) as ``size`` x ``size`` grayscale."""
    root = find_hushem_root(folder)
    if root is None:
        raise FileNotFoundError(f"no HuSHeM class folders under {folder}: expected four sub-folders whose names "
                                f"contain {', '.join(CLASSES)} (e.g. 01_Normal), each holding BMP images")
    by_class = {_class_of(d.name): d.name for d in root.iterdir()
                if d.is_dir() and not is_hidden(d) and _class_of(d.name)}
    names = [by_class[c] for c in CLASSES]
    data = load_image_folder(root, size, mode="L", name="HuSHeM", classes=names)
    # RGB -> L uses ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), resized bilinearly from ~131 px to `size`
    data.classes = list(CLASSES)
    data.source = f"HuSHeM class folders under {root}, converted to {size}x{size} grayscale"
    return data


# ----------------------------------------------------------------------------- the stand-in
def _head_radius(kind: str, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Radius (in units of the head's half-length) of a head outline at angle ``theta`` (0 = the tip)."""
    c, s = np.cos(theta), np.sin(theta)
    if kind == "Normal":        # an oval: length 1, width about 0.62
        a, b = 1.0, rng.uniform(0.52, 0.70)
        return a * b / np.sqrt((b * c) ** 2 + (a * s) ** 2)
    if kind == "Tapered":       # long and thin, a cigar
        a, b = 1.0, rng.uniform(0.40, 0.56)
        return a * b / np.sqrt((b * c) ** 2 + (a * s) ** 2)
    if kind == "Pyriform":      # pear: wide at the front (theta = pi), narrow towards the tail (theta = 0)
        a, b = 1.0, rng.uniform(0.56, 0.68)
        k = rng.uniform(0.15, 0.40)
        base = a * b / np.sqrt((b * c) ** 2 + (a * s) ** 2)
        return base * (1 - k * np.clip(c, 0, None) * np.abs(s) * 2.0)
    if kind == "Amorphous":     # irregular: an oval with random bumps
        a, b = 1.0, rng.uniform(0.55, 0.80)
        base = a * b / np.sqrt((b * c) ** 2 + (a * s) ** 2)
        bumps = sum(rng.uniform(0.03, 0.12) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4, 5))
        return base * (1 + bumps)
    raise ValueError(f"unknown head shape {kind!r}; expected one of {CLASSES}")


def _draw_head(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """One grayscale picture (size, size) in [0, 1]: a dark stained head on a bright, noisy background."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    half = size * rng.uniform(0.30, 0.38)                       # head half-length in pixels (scale)
    cx, cy = size / 2 + rng.normal(0, size * 0.04, 2)            # pose: position
    angle = rng.normal(0, 0.35) + np.pi * rng.integers(2)      # pose: roughly level, pointing left or right
    u = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / half
    v = (-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)) / half
    rho, theta = np.hypot(u, v), np.arctan2(v, u)
    edge = _head_radius(kind, theta, rng)
    inside = 1 / (1 + np.exp(-(edge - rho) * half / 1.5))       # soft outline, about 1.5 px wide
    acrosome = 1 / (1 + np.exp(-(-u - 0.15) * 8))                # the front part stains lighter
    stain = rng.uniform(0.45, 0.65)
    head = inside * (stain - 0.18 * acrosome + 0.05 * rng.standard_normal((size, size)))
    tail = (np.abs(v) < 0.05) & (u > 0.9) & (u < 1.6)          # a stub of the midpiece behind the head
    background = rng.uniform(0.78, 0.92) + 0.04 * rng.standard_normal((size, size))
    image = background - head - 0.35 * tail
    return np.clip(image, 0, 1).astype(np.float32)


def hushem_standin(size: int = SIZE, seed: int = 0) -> ImageSet:
    """A deterministic stand-in for HuSHeM: 216 drawn head silhouettes, same classes, counts and shape."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, kind in enumerate(CLASSES):
        for _ in range(COUNTS[kind]):
            images.append(_draw_head(kind, rng, size)[None])
            labels.append(label)
    return ImageSet(torch.from_numpy(np.stack(images)), torch.tensor(labels), list(CLASSES),
                    "HuSHeM stand-in", f"drawn head silhouettes (course_lib stand-in, seed {seed}), not HuSHeM",
                    real=False)


# ----------------------------------------------------------------------------- loading and splitting
def load_hushem(folder: Path | str | None = None, size: int = SIZE, fallback: bool = True,
                quiet: bool = False) -> ImageSet:
    """HuSHeM from ``folder`` or the cache as ``size`` x ``size`` grayscale; else the stand-in, said in one line."""
    if folder is not None and find_hushem_root(folder) is None:
        raise FileNotFoundError(f"no HuSHeM class folders under {folder}; "
                                + HOW_TO_GET.format(folder="that folder"))
    place = Path(folder) if folder is not None else cache_dir("hushem")
    if find_hushem_root(place) is not None:
        data = load_hushem_folder(place, size)
        if not quiet:
            print(f"HuSHeM: {len(data)} real images from {data.source}.")
        return data
    if not fallback:
        raise FileNotFoundError("HuSHeM is not in the course cache; " + HOW_TO_GET.format(folder=place))
    data = hushem_standin(size)
    if not quiet:
        print(f"HuSHeM is not in the course cache, so this run uses a GENERATED STAND-IN ({len(data)} drawn "
              f"head silhouettes, same classes and counts); to use the real images, "
              + HOW_TO_GET.format(folder=place) + ".")
    return data


def split_hushem(data: ImageSet, train_per_class: int = TRAIN_PER_CLASS, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """The document's split: ``train_per_class`` images of each class for training/CV, the rest for testing."""
    rng = np.random.default_rng(seed)
    labels = data.y.numpy()
    train, test = [], []
    for c in range(len(data.classes)):
        idx = np.flatnonzero(labels == c)
        if len(idx) <= train_per_class:
            raise ValueError(f"class {data.classes[c]} has {len(idx)} images; need more than {train_per_class} "
                             "to keep some for testing")
        idx = rng.permutation(idx)
        train.append(np.sort(idx[:train_per_class]))
        test.append(np.sort(idx[train_per_class:]))
    return (data.subset(np.concatenate(train), name=f"{data.name} train/CV"),
            data.subset(np.concatenate(test), name=f"{data.name} test"))


def resize(data: ImageSet, size: int) -> ImageSet:
    """The same images at ``size`` x ``size`` (area-averaged down, bilinear up)."""
    if size == data.x.shape[-1]:
        return data
    mode = "area" if size < data.x.shape[-1] else "bilinear"
    x = torch.nn.functional.interpolate(data.x, size=(size, size), mode=mode).clamp(0, 1)
    return ImageSet(x.contiguous(), data.y.clone(), list(data.classes), data.name,
                    data.source + f", resized to {size}x{size}", data.real, list(data.notes))


__all__ = ["CLASSES", "COUNTS", "load_hushem", "load_hushem_folder", "find_hushem_root", "hushem_standin",
           "split_hushem", "resize"]
