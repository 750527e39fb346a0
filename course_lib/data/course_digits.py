"""The "course digits": handwriting by other people than MNIST's writers, in MNIST's geometry.

The document's own course-made digit set is unpublished. We use a real stand-in: the digits shipped
with scikit-learn (``load_digits``: the test part of the UCI handwritten digits, 1,797 digits by 13
writers, 8x8, values 0..16; no writer ids, so a random split shares writers between its sides), plus any digits students draw and save in the notebook. Each image is brought to
MNIST's geometry by the steps MNIST itself used (LeCun et al. 1998): the digit's bounding box is
scaled so its longer side fits a ``box`` (20 px for MNIST), then placed in a 28x28 frame with its
centre of mass at the centre. Each step is a parameter, so a student can undo or exaggerate it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from skimage.morphology import dilation, disk, erosion
from skimage.transform import resize

from course_lib.data.cache import atomic_path, cache_dir
from course_lib.data.folders import image_files
from course_lib.data.imageset import ImageSet, stratified_split

FRAME = 28
DIGITS = [str(d) for d in range(10)]
MIN_INK_FRACTION = 0.005  # below this share of inked pixels a drawing counts as empty


class EmptyDigitError(ValueError):
    """An image holds no digit (blank or nearly blank)."""


@dataclass(frozen=True)
class DigitPrep:
    """How a digit is framed: longer side of its box (px), centring rule, stroke change (px)."""

    box: int = 20  # MNIST: the digit's bounding box is scaled to fit 20x20
    center: str = "mass"  # "mass" (MNIST) or "box" (bounding-box centre)
    thickness: int = 0  # > 0 thickens strokes by that many pixels, < 0 thins them

    def __post_init__(self) -> None:
        if not 4 <= self.box <= FRAME:
            raise ValueError(f"box must be between 4 and {FRAME} pixels, got {self.box}")
        if self.center not in ("mass", "box"):
            raise ValueError(f"center must be 'mass' or 'box', got {self.center!r}")
        if not -2 <= self.thickness <= 3:
            raise ValueError(f"thickness must be between -2 and 3 pixels, got {self.thickness}")


MNIST_LIKE = DigitPrep(box=20, center="mass", thickness=0)
ZOOMED_IN = DigitPrep(box=28, center="box", thickness=0)  # fills the frame, like the document's digits


def to_gray(image: np.ndarray) -> np.ndarray:
    """A 2-D float image in [0, 1], ink bright on dark, from gray, RGB or RGBA input of any range."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[..., 3] / (255.0 if img.max() > 1 else 1.0)
        # a canvas drawing is ink in the alpha channel; an opaque image carries it in its colours
        img = alpha if alpha.min() < 0.99 else img[..., :3].mean(axis=2)
    elif img.ndim == 3 and img.shape[2] in (1, 3):
        img = img.mean(axis=2)
    elif img.ndim != 2:
        raise ValueError(f"expected a gray (H, W), RGB or RGBA (H, W, 3|4) image, got shape {img.shape}")
    if min(img.shape) < 8:
        raise ValueError(f"image of {img.shape[1]}x{img.shape[0]} pixels is too small; expected at least 8x8")
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or infinite values")
    hi = img.max()
    if hi > 1.0:
        img = img / (255.0 if hi > 16 else 16.0)  # 8-bit images, or load_digits' 0..16 scale
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    if border.mean() > 0.5:  # dark ink on a light page: invert
        img = 1.0 - img
    return np.clip(img, 0.0, 1.0)


def prepare_digit(image: np.ndarray, prep: DigitPrep = MNIST_LIKE) -> np.ndarray:
    """Bring one digit image to a 28x28 float32 frame following ``prep``."""
    img = to_gray(image)
    ink = img > 0.1 * img.max() if img.max() > 0 else np.zeros_like(img, dtype=bool)
    if ink.mean() < MIN_INK_FRACTION:
        raise EmptyDigitError(
            f"the image is empty or nearly empty ({ink.sum()} inked pixels); draw or load a digit first"
        )
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = img[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    # scale the bounding box so its longer side is `box` pixels, keeping the aspect ratio
    scale = prep.box / max(crop.shape)
    new_shape = (max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))
    digit = resize(crop, new_shape, order=1, anti_aliasing=scale < 1, mode="constant")
    if prep.thickness > 0:
        digit = dilation(np.pad(digit, prep.thickness), disk(prep.thickness))
    elif prep.thickness < 0:
        digit = erosion(digit, disk(-prep.thickness))
    h, w = digit.shape
    if prep.center == "mass" and digit.sum() > 0:
        cy, cx = ndimage.center_of_mass(digit)
        top, left = round((FRAME - 1) / 2 - cy), round((FRAME - 1) / 2 - cx)
    else:
        top, left = (FRAME - h) // 2, (FRAME - w) // 2
    frame = np.zeros((FRAME, FRAME))
    # paste with clipping: parts that would leave the frame are cut off
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, FRAME), min(left + w, FRAME)
    frame[y0:y1, x0:x1] = digit[y0 - top: y1 - top, x0 - left: x1 - left]
    peak = frame.max()
    return (frame / peak if peak > 0 else frame).astype(np.float32)


def prepare_digits(images: np.ndarray, prep: DigitPrep = MNIST_LIKE) -> np.ndarray:
    """``prepare_digit`` over a stack of images: (N, H, W[, C]) -> (N, 28, 28) float32."""
    return np.stack([prepare_digit(im, prep) for im in images]) if len(images) else np.zeros((0, FRAME, FRAME), np.float32)


def drawn_digits_folder() -> Path:
    """Where students' own digits are kept: one sub-folder per label."""
    return cache_dir("course_digits", "drawn")


def save_drawn_digit(image: np.ndarray, label: int, folder: Path | None = None) -> Path:
    """Save a drawn digit (raw, unframed) as a PNG under ``folder/<label>/``; refuse empty drawings."""
    if not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a digit 0-9, got {label!r}")
    gray = to_gray(image)
    if (gray > 0.1).mean() < MIN_INK_FRACTION:
        raise EmptyDigitError("the drawing is empty or nearly empty; draw a digit before saving")
    target = Path(folder or drawn_digits_folder()) / str(int(label))
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}.png"
    with atomic_path(path) as tmp:
        Image.fromarray((gray * 255).round().astype(np.uint8), mode="L").save(tmp, format="PNG")
    return path


def load_drawn_digits(folder: Path | None = None, prep: DigitPrep = MNIST_LIKE) -> ImageSet | None:
    """The students' saved digits (``folder/<label>/*.png``), framed by ``prep``; None if there are none."""
    folder = Path(folder or drawn_digits_folder())
    images, labels = [], []
    for label in range(10):
        sub = folder / str(label)
        for png in image_files(sub, (".png",)) if sub.is_dir() else []:  # skips ._x.png, .DS_Store, ...
            try:
                with Image.open(png) as im:
                    raw = np.asarray(im.convert("L"))
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                raise ValueError(f"cannot read drawn digit {png}: {exc}; delete this file or draw it again") \
                    from None
            images.append(prepare_digit(raw, prep))
            labels.append(label)
    if not images:
        return None
    x = torch.from_numpy(np.stack(images)).unsqueeze(1)
    return ImageSet(x, torch.tensor(labels), DIGITS, "drawn digits", f"digits drawn by students ({folder})")


def load_course_digits(prep: DigitPrep = MNIST_LIKE, include_drawn: bool = True,
                       drawn_folder: Path | None = None, quiet: bool = False) -> ImageSet:
    """scikit-learn's 1,797 handwritten digits (13 writers, UCI test set) in a 28x28 frame, plus students' drawings."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    x = torch.from_numpy(prepare_digits(bunch.images, prep)).unsqueeze(1)  # (1797, 1, 28, 28)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    source = f"UCI handwritten digits, test set (scikit-learn load_digits, 13 writers, 8x8) framed as {prep}"
    digits = ImageSet(x, y, DIGITS, "course digits", source)
    drawn = load_drawn_digits(drawn_folder, prep) if include_drawn else None
    if drawn is not None:
        digits = ImageSet(torch.cat([digits.x, drawn.x]), torch.cat([digits.y, drawn.y]), DIGITS,
                          "course digits", f"{source}; plus {len(drawn)} drawn by students")
    if not quiet:
        print(f"Course digits: {len(digits)} images - {digits.source}")
    return digits


def split_course_digits(digits: ImageSet, test_fraction: float = 0.2, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Per-class deterministic (train, test) split of the course digits."""
    train_idx, test_idx = stratified_split(digits.y, test_fraction, seed)
    return digits.subset(train_idx, "course digits train"), digits.subset(test_idx, "course digits test")
