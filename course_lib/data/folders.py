"""Image data sets a user brings as one folder per class (traffic signs, HuSHeM, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from course_lib.data.imageset import ImageSet

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".gif", ".tif", ".tiff")
# Files and folders that operating systems and archivers leave beside pictures: names starting with
# a dot (macOS "._x.png" AppleDouble resource forks, .DS_Store), Windows' Thumbs.db and desktop.ini,
# and the __MACOSX folder of zips made on a Mac. They are never pictures, so listings skip them.
SYSTEM_NAMES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "__macosx"})
ASCII_DIGITS = frozenset("0123456789")


def is_hidden(path: Path | str) -> bool:
    """True for dotfiles (``._x.png``, ``.DS_Store``) and operating-system leftovers (Thumbs.db, __MACOSX)."""
    name = Path(path).name
    return name.startswith(".") or name.lower() in SYSTEM_NAMES


def under_hidden(path: Path | str, root: Path | str) -> bool:
    """True if ``path`` or any folder between ``root`` and it is hidden (see :func:`is_hidden`)."""
    return any(is_hidden(part) for part in Path(path).relative_to(root).parts)


def image_files(folder: Path | str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """The picture files directly in ``folder``, sorted, without hidden and system files."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() in suffixes and not is_hidden(p) and p.is_file())


def class_number(name: str) -> int | None:
    """A class folder's number ('12' or '00012' -> 12), or None if the name is not a number.

    Only the ASCII digits 0-9 count; names Python would also call digits ('²', Arabic-Indic digits)
    are refused with a message, since int() cannot read some of them and they look like numbers.
    """
    if name and set(name) <= ASCII_DIGITS:
        return int(name)
    if name.isdigit():
        raise ValueError(f"folder name {name!r} is made of non-ASCII digit characters; name numbered class "
                         "folders with the digits 0-9 only (rename it, e.g. to '2')")
    return None


def numbered_folders(root: Path | str) -> dict[int, Path]:
    """Sub-folders of ``root`` named by a class number, by number; two names for one number are refused."""
    found: dict[int, Path] = {}
    for d in sorted(Path(root).iterdir()):
        if not d.is_dir() or is_hidden(d):
            continue
        number = class_number(d.name)
        if number is None:
            continue
        if number in found:
            raise ValueError(f"class folders '{found[number].name}' and '{d.name}' in {root} both name class "
                             f"{number}; keep one of them (move its images into the other)")
        found[number] = d
    return found


def _class_key(name: str) -> tuple:
    # numeric class folders sort as numbers (2 before 10), others alphabetically
    number = class_number(name)
    return (0, number, "") if number is not None else (1, 0, name)


def load_image_folder(root: Path | str, size: int | tuple[int, int], mode: str = "RGB",
                      name: str | None = None, classes: list[str] | None = None) -> ImageSet:
    """Load ``root/<class>/<image>`` into an ImageSet resized to ``size``; ``mode`` is 'RGB' or 'L'."""
    root = Path(root)
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; expected one sub-folder per class holding images")
    height, width = (size, size) if isinstance(size, int) else size
    found = sorted((d.name for d in root.iterdir() if d.is_dir() and not is_hidden(d)), key=_class_key)
    numbered_folders(root)  # two folders for one class number ('12' and '012') are refused, naming both
    classes = classes if classes is not None else found
    missing = [c for c in classes if c not in found]
    if missing:
        raise FileNotFoundError(f"class folder(s) {missing} not found in {root}; found {found}")
    if not classes:
        raise ValueError(f"{root} has no class sub-folders; expected e.g. {root}/0/img.png, {root}/1/img.png")
    images, labels = [], []
    for label, cls in enumerate(classes):
        files = image_files(root / cls)
        if not files:
            raise ValueError(f"class folder {root / cls} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        for path in files:
            try:
                with Image.open(path) as im:
                    im = im.convert(mode).resize((width, height), Image.BILINEAR)
                    arr = np.asarray(im, dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                raise ValueError(f"cannot read image {path}: {exc}; replace or delete this file") from None
            images.append(arr[None] if mode == "L" else arr.transpose(2, 0, 1))
            labels.append(label)
    x = torch.from_numpy(np.stack(images))
    return ImageSet(x, torch.tensor(labels), list(classes), name or root.name, f"image folders under {root}")
