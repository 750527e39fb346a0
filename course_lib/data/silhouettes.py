"""Caltech 101 Silhouettes (B. Marlin et al., AISTATS 2010): 28x28 binary object outlines of 101 classes.

The data set is published as one MATLAB file, ``caltech101_silhouettes_28_split1.mat``, on Benjamin
Marlin's data page. We assume the variable names that the file's documentation and the many loaders
written for it use: ``train_data`` / ``val_data`` / ``test_data`` (N x 784, values 0 or 1),
``train_labels`` / ``val_labels`` / ``test_labels`` (N x 1, classes numbered 1..101) and ``classnames``
(1 x 101 cell array of names). Sizes: 4,100 train, 2,264 validation, 2,307 test images (document 003
merges train and validation: 6,364). Each row is a 28x28 image stored column by column (MATLAB
order), with the object dark (0) on a light background (1); we transpose and invert it so that, as
in MNIST, the object is bright on a dark background.

No checksum of the file could be confirmed while writing this loader (no network), so
:data:`SHA256` is ``None`` and the loader will not download without one: pass ``sha256=...`` once
you have verified the file, or copy the file into the cache folder yourself. Whatever its origin, the
file's contents are checked (variables, shapes, label range) before use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from course_lib.data.cache import cache_dir
from course_lib.data.download import DownloadError, download, verify
from course_lib.data.imageset import ImageSet
from course_lib.data.errors import DataUnavailable, UnusableData

FILENAME = "caltech101_silhouettes_28_split1.mat"
URL = "https://people.cs.umass.edu/~marlin/data/" + FILENAME
SHA256: str | None = None  # not confirmed offline; fill in after checking a downloaded copy
CACHE_FOLDER = "caltech-silhouettes"
SPLITS = ("train", "val", "test")
SIDE = 28


def silhouettes_path() -> Path:
    """Where the .mat file is expected in the course cache."""
    return cache_dir(CACHE_FOLDER, create=False) / FILENAME


def _names(raw: object, n_classes: int) -> list[str]:
    try:
        names = [str(np.asarray(v).squeeze()) for v in np.asarray(raw).ravel()]
    except Exception:  # noqa: BLE001 - any odd layout: fall back to numbers
        names = []
    return names if len(names) == n_classes else [f"class {i + 1}" for i in range(n_classes)]


def read_silhouettes_mat(path: Path | str) -> dict[str, ImageSet]:
    """Read the published .mat file into {'train', 'val', 'test'} image sets (N, 1, 28, 28) in [0, 1]."""
    from scipy.io import loadmat

    path = Path(path)
    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises several types for a corrupt or non-MATLAB file
        raise ValueError(f"{path} is not a readable MATLAB .mat file ({exc})") from exc
    expected = [f"{s}_{k}" for s in SPLITS for k in ("data", "labels")]
    missing = [k for k in expected if k not in mat]
    if missing:
        have = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path.name}: missing variables {missing}; expected {expected} (found {have})")
    all_labels = np.concatenate([np.asarray(mat[f"{s}_labels"]).ravel() for s in SPLITS])
    if all_labels.size == 0 or all_labels.min() < 1:
        raise ValueError(f"{path.name}: labels must be class numbers starting at 1")
    n_classes = int(all_labels.max())
    classes = _names(mat.get("classnames"), n_classes)
    sets = {}
    for split in SPLITS:
        data = np.asarray(mat[f"{split}_data"], dtype=np.float32)
        labels = np.asarray(mat[f"{split}_labels"]).ravel().astype(np.int64) - 1
        if data.ndim != 2 or data.shape[1] != SIDE * SIDE:
            raise ValueError(f"{path.name}: {split}_data must be N x {SIDE * SIDE}, got {data.shape}")
        if len(labels) != len(data):
            raise ValueError(f"{path.name}: {len(data)} {split} images but {len(labels)} labels")
        if data.min() < 0 or data.max() > 1:
            raise ValueError(f"{path.name}: {split}_data must hold values in [0, 1]")
        # column-major rows -> (N, 28, 28) via transpose; invert so the object is bright
        images = 1.0 - data.reshape(-1, SIDE, SIDE).transpose(0, 2, 1)
        sets[split] = ImageSet(torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1), torch.from_numpy(labels),
                               classes, f"Caltech Silhouettes {split}", f"Caltech 101 Silhouettes ({path})")
    return sets


def load_silhouettes(path: Path | str | None = None, sha256: str | None = SHA256, merge_val: bool = True,
                     quiet: bool = False) -> tuple[ImageSet, ImageSet]:
    """Caltech 101 Silhouettes (train, test); train includes the validation split unless ``merge_val=False``."""
    target = Path(path) if path is not None else silhouettes_path()
    if target.is_file() and sha256 is not None and (problem := verify(target, sha256=sha256)) is not None:
        raise UnusableData(target, f"the published {URL.rsplit('/', 1)[-1]} (SHA-256 {sha256[:12]}...)", problem,
                           "Delete it and download it again.")
    if not target.is_file():
        if sha256 is None:
            raise DataUnavailable(
                f"Caltech 101 Silhouettes is not in the course cache ({target}). Download {URL} and save it "
                f"as {target} (the loader checks its contents), or run `course-lib data fetch caltech-silhouettes` "
                "once a checksum for it is registered.")
        try:
            download([URL], target, sha256=sha256)
        except DownloadError as exc:
            raise DataUnavailable(
                f"Caltech 101 Silhouettes is not in the course cache and could not be downloaded. On a machine "
                f"with network run `course-lib data fetch caltech-silhouettes`, or save {URL} as {target}.\n{exc}"
            ) from exc
    sets = read_silhouettes_mat(target)
    train, test = sets["train"], sets["test"]
    if merge_val:
        val = sets["val"]
        train = ImageSet(torch.cat([train.x, val.x]), torch.cat([train.y, val.y]), train.classes,
                         "Caltech Silhouettes train+val", train.source)
    if not quiet:
        print(f"Caltech 101 Silhouettes: {len(train)} train / {len(test)} test images, "
              f"{len(train.classes)} classes, from {target}")
    return train, test
