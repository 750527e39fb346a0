"""Image data sets a user brings as one folder per class (traffic signs, HuSHeM, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from course_lib.data.imageset import ImageSet

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".gif", ".tif", ".tiff")


def _class_key(name: str) -> tuple:
    # numeric class folders sort as numbers (2 before 10), others alphabetically
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def load_image_folder(root: Path | str, size: int | tuple[int, int], mode: str = "RGB",
                      name: str | None = None, classes: list[str] | None = None) -> ImageSet:
    """Load ``root/<class>/<image>`` into an ImageSet resized to ``size``; ``mode`` is 'RGB' or 'L'."""
    root = Path(root)
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; expected one sub-folder per class holding images")
    height, width = (size, size) if isinstance(size, int) else size
    found = sorted((d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=_class_key)
    classes = classes if classes is not None else found
    missing = [c for c in classes if c not in found]
    if missing:
        raise FileNotFoundError(f"class folder(s) {missing} not found in {root}; found {found}")
    if not classes:
        raise ValueError(f"{root} has no class sub-folders; expected e.g. {root}/0/img.png, {root}/1/img.png")
    images, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"class folder {root / cls} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        for path in files:
            try:
                with Image.open(path) as im:
                    im = im.convert(mode).resize((width, height), Image.BILINEAR)
                    arr = np.asarray(im, dtype=np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as exc:
                raise ValueError(f"cannot read image {path}: {exc}") from exc
            images.append(arr[None] if mode == "L" else arr.transpose(2, 0, 1))
            labels.append(label)
    x = torch.from_numpy(np.stack(images))
    return ImageSet(x, torch.tensor(labels), list(classes), name or root.name, f"image folders under {root}")
