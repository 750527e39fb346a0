"""Pictures from anywhere, checked and converted to one format: RGB floats in [0, 1], shape (H, W, 3).

Style transfer takes photographs and paintings from students' disks, uploads and phones, so the
input can be grayscale, carry an alpha channel, use a palette, store 16 bits per channel, be a few
pixels wide, be enormous, or not be an image at all. :func:`load_rgb` turns every readable case into
the same array and answers the others with one :class:`ImageError` that says what was expected.

The colour statistics at the bottom (hue and saturation, in HSV) measure how a stylization moves
colours: notebook 04 uses them to test document 000's claim that outputs drift toward red and
pastel hues whatever the style.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 32      # the style networks downsample by 8-16: smaller pictures have nothing left to style
MAX_SIDE = 2048    # larger pictures are shrunk (with a note) before anything else happens
# Ours: pictures above 80 megapixels are refused. Phone cameras write 12-50 MP by default; above
# this, even the cheapest full decode (8-bit RGBA, 4 bytes a pixel) needs over 300 MB before any
# shrinking, and Pillow itself starts warning about decompression bombs at about 89 MP.
MAX_PIXELS = 80_000_000
# Ours: the longer side may be at most 8 times the shorter. At the usual output size (256 px on the
# longer side) the shorter side then keeps at least MIN_SIDE (32) pixels, the least the style
# networks can work with; a 4000x40 strip would otherwise come out as a 256x3 sliver.
MAX_ASPECT = 8.0
ORIENTATION_TAG = 0x0112  # EXIF "Orientation"; values 5 to 8 mean the picture is stored turned by 90 degrees

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray


class ImageError(ValueError):
    """A picture that cannot be used: unreadable, too small, or of an unsupported shape or type."""


def _describe(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{Path(source).name}'"
    if isinstance(source, bytes):
        return f"the uploaded file ({len(source):,} bytes)"
    return f"the {type(source).__name__}"


def _check_geometry(what: str, width: int, height: int, min_side: int, max_aspect: float | None) -> None:
    """Refuse a picture by its size alone (before decoding): too many pixels, too small, or too elongated."""
    if width * height > MAX_PIXELS:
        raise ImageError(f"{what} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); the limit is "
                         f"{MAX_PIXELS:,} pixels ({MAX_PIXELS / 1e6:.0f} megapixels). Shrink it first, e.g. to "
                         f"{MAX_SIDE} pixels on its longer side in any photo editor.")
    if min(width, height) < min_side:
        raise ImageError(f"{what} is {width}x{height} pixels; both sides need at least {min_side} pixels")
    if max_aspect is not None and max(width, height) > max_aspect * min(width, height):
        raise ImageError(f"{what} is {width}x{height} pixels: its longer side is "
                         f"{max(width, height) / min(width, height):.0f} times its shorter, and the limit is "
                         f"{max_aspect:g} times (so at least {math.ceil(max(width, height) / max_aspect)} pixels "
                         f"on the shorter side here). Crop it to a less elongated part.")


def _open(source: str | os.PathLike | bytes, max_side: int, min_side: int,
          max_aspect: float | None) -> tuple[Image.Image, tuple[int, int]]:
    """Open and check a picture file, decode it already shrunk where the format allows; (image, size as shown)."""
    what = _describe(source)
    try:
        with warnings.catch_warnings():  # our own limit (MAX_PIXELS) is lower than Pillow's warning level
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {source}") from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow opens"
        raise ImageError(f"{what} has {count}; the limit is {MAX_PIXELS:,} pixels ({MAX_PIXELS / 1e6:.0f} "
                         f"megapixels). Shrink it first, e.g. to {MAX_SIDE} pixels on its longer side.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what} is not a readable image (expected a PNG, JPEG, BMP, GIF, TIFF or WebP file): "
                         f"{exc}") from None
    try:
        width, height = img.size
        _check_geometry(what, width, height, min_side, max_aspect)  # from the header, before decoding
        if max(width, height) > max_side:
            # JPEG decodes at 1/2, 1/4 or 1/8 scale for almost nothing; other formats ignore this
            scale = max_side / max(width, height)
            img.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
        try:
            img.load()  # decode now, so a truncated file fails here and not later
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"{what} is not a readable image (expected a PNG, JPEG, BMP, GIF, TIFF or WebP "
                             f"file): {exc}") from None
        if img.getexif().get(ORIENTATION_TAG, 1) in (5, 6, 7, 8):  # stored turned by 90 degrees
            width, height = height, width
        return ImageOps.exif_transpose(img), (width, height)  # phone photos store their rotation in EXIF
    except BaseException:
        img.close()
        raise


def _shrink_pil(img: Image.Image, max_side: int) -> Image.Image:
    """Shrink a PIL picture so its longer side is ``max_side``, in its own pixel type (no float copy at full size)."""
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    if img.mode == "1":
        img = img.convert("L")
    elif img.mode in ("P", "PA"):  # palette indices cannot be averaged: go to real colours first
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if img.mode.startswith("I;16"):  # Pillow cannot reduce 16-bit pictures: do it in 32-bit, then back
        return img.convert("I").resize(size, Image.LANCZOS, reducing_gap=3.0).convert("I;16")
    # reduce by whole factors first (cheap box averaging), then Lanczos over the last factor of 3 or less;
    # Pillow resizes RGBA and LA premultiplied, so transparent pixels do not bleed colour
    return img.resize(size, Image.LANCZOS, reducing_gap=3.0)


def _pil_to_float(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> (H, W, 3) float32 in [0, 1]; transparency is laid over white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit or 32-bit single channel
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        if img.mode == "F" and arr.max() <= 1.0:
            top = 1.0
        gray = np.clip(arr / top, 0, 1).astype(np.float32)
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info or img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def _check_array_shape(arr: np.ndarray) -> None:
    """Refuse arrays that are not (H, W) or (H, W, 1, 3 or 4 channels)."""
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"got an array of shape {arr.shape}, which looks channels-first; "
                         "expected (height, width) or (height, width, 1, 3 or 4 channels)")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"got an array of shape {arr.shape}; expected (height, width) or "
                         "(height, width, channels) with 1, 3 or 4 channels")


def _array_to_float(arr: np.ndarray) -> np.ndarray:
    """A NumPy picture (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of any common dtype -> RGB floats."""
    _check_array_shape(arr)
    if arr.dtype == bool:
        out = arr.astype(np.float32)
    elif arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageError("the image array contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ImageError(f"a float image must hold values in [0, 1]; this one spans [{lo:.3g}, {hi:.3g}] "
                             "(divide by 255 if it came from 8-bit pixels)")
        out = np.clip(arr, 0, 1).astype(np.float32)
    else:
        raise ImageError(f"unsupported pixel type {arr.dtype}; expected uint8, uint16, bool or float in [0, 1]")
    if out.ndim == 2:
        out = out[..., None]
    if out.shape[2] == 4:  # lay transparent pixels over white, as for files
        alpha = out[..., 3:]
        out = out[..., :3] * alpha + (1 - alpha)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out, dtype=np.float32)


def load_rgb(source: ImageInput, *, max_side: int = MAX_SIDE, min_side: int = MIN_SIDE,
             max_aspect: float | None = MAX_ASPECT, quiet: bool = False) -> np.ndarray:
    """Read a path, file bytes, PIL image or array as RGB floats in [0, 1], shape (H, W, 3).

    Grayscale, palette, alpha (laid over white) and 16-bit pictures are converted. Pictures with a
    side under ``min_side``, more than :data:`MAX_PIXELS` pixels or a longer side over ``max_aspect``
    times the shorter are refused; pictures with a side over ``max_side`` are shrunk with a note,
    files and PIL images while still in their own pixel type (JPEGs already while decoding).
    """
    if isinstance(source, np.ndarray):
        _check_array_shape(source)
        _check_geometry(_describe(source), source.shape[1], source.shape[0], min_side, max_aspect)
        arr = _array_to_float(source)
        h, w = arr.shape[:2]
        if max(h, w) > max_side:
            arr = resize(arr, max_side)
    elif isinstance(source, (Image.Image, str, os.PathLike, bytes)):
        if isinstance(source, Image.Image):
            img = ImageOps.exif_transpose(source)
            w, h = img.size
            _check_geometry(_describe(source), w, h, min_side, max_aspect)
        else:
            img, (w, h) = _open(source, max_side, min_side, max_aspect)
        arr = _pil_to_float(_shrink_pil(img, max_side))
    else:
        raise ImageError(f"cannot read a picture from a {type(source).__name__}; expected a file path, "
                         "file bytes, a PIL image or a NumPy array")
    if max(h, w) > max_side and not quiet:
        print(f"Note: {_describe(source)} is {w}x{h} pixels; shrunk to {arr.shape[1]}x{arr.shape[0]} "
              f"(longer side {max_side}) to keep memory and time reasonable.")
    return arr


def resize(arr: np.ndarray, longer_side: int) -> np.ndarray:
    """Scale an (H, W, 3) float picture so that its longer side is ``longer_side`` (Lanczos)."""
    h, w = arr.shape[:2]
    scale = longer_side / max(h, w)
    return resize_to(arr, max(1, round(h * scale)), max(1, round(w * scale)))


def resize_to(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale an (H, W, 3) float picture to exactly ``height`` x ``width`` (Lanczos)."""
    if arr.shape[:2] == (height, width):
        return arr
    channels = [Image.fromarray(np.ascontiguousarray(arr[..., c], dtype=np.float32)).resize((width, height),
                                                                                             Image.LANCZOS)
                for c in range(arr.shape[2])]
    return np.clip(np.stack([np.asarray(c) for c in channels], axis=2), 0, 1).astype(np.float32)


def center_square(arr: np.ndarray, side: int) -> np.ndarray:
    """The largest centred square of a picture, scaled to ``side`` x ``side``."""
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return resize(arr[top:top + s, left:left + s], side)


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Float picture in [0, 1] -> uint8 (rounded)."""
    return (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)


def png_bytes(arr: np.ndarray) -> bytes:
    """PNG file bytes of a float or uint8 RGB picture (for ipywidgets.Image)."""
    buf = io.BytesIO()
    Image.fromarray(arr if arr.dtype == np.uint8 else to_uint8(arr)).save(buf, format="PNG")
    return buf.getvalue()


# ---- colour statistics ----------------------------------------------------------------------------
# Hue h in [0, 1) is an angle on the colour wheel (0 = red, 1/3 = green, 2/3 = blue); saturation s
# in [0, 1] is how far a colour is from gray. Pixels with almost no saturation or brightness have no
# meaningful hue, so hue statistics skip them.

RED_BAND = 1 / 12          # hues within 30 degrees of pure red count as "red"
PASTEL_S = (0.1, 0.45)     # pastel: light (value >= 0.7) and softly saturated
PASTEL_MIN_V = 0.7
MIN_S_FOR_HUE, MIN_V_FOR_HUE = 0.1, 0.1


def hsv(arr: np.ndarray) -> np.ndarray:
    """HSV channels (H, W, 3) in [0, 1] of an RGB float picture."""
    from skimage.color import rgb2hsv
    return rgb2hsv(np.clip(arr, 0, 1))


def colour_stats(arr: np.ndarray) -> dict[str, float]:
    """Hue and saturation summary: red share, pastel share, mean saturation, circular mean hue (degrees)."""
    h, s, v = np.moveaxis(hsv(arr), 2, 0)
    chromatic = (s >= MIN_S_FOR_HUE) & (v >= MIN_V_FOR_HUE)
    hues = h[chromatic]
    red = np.minimum(hues, 1 - hues) <= RED_BAND  # distance around the wheel to hue 0
    angle = 2 * np.pi * hues
    mean_hue = float(np.degrees(np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())) % 360) if hues.size else float("nan")
    pastel = (s >= PASTEL_S[0]) & (s <= PASTEL_S[1]) & (v >= PASTEL_MIN_V)
    return {"red_share": float(red.mean()) if hues.size else 0.0,
            "pastel_share": float(pastel.mean()),
            "mean_saturation": float(s.mean()),
            "mean_hue_deg": mean_hue,
            "chromatic_share": float(chromatic.mean())}


def hue_histogram(arr: np.ndarray, bins: int = 36) -> np.ndarray:
    """Share of chromatic pixels in each of ``bins`` equal hue sectors (sums to 1, or all zeros if gray)."""
    h, s, v = np.moveaxis(hsv(arr), 2, 0)
    hues = h[(s >= MIN_S_FOR_HUE) & (v >= MIN_V_FOR_HUE)]
    counts, _ = np.histogram(hues, bins=bins, range=(0, 1))
    return counts / counts.sum() if counts.sum() else counts.astype(float)


def histogram_overlap(p: np.ndarray, q: np.ndarray) -> float:
    """Overlap of two normalised histograms, sum(min(p, q)): 1 = identical, 0 = disjoint."""
    return float(np.minimum(p, q).sum())


def hue_shift(content: np.ndarray, style: np.ndarray, output: np.ndarray, bins: int = 36) -> dict[str, float]:
    """How the output's colours sit between content and style, in numbers.

    ``red_gain`` is the output's red share minus the larger of content's and style's: positive means
    more red than either input explains (the document's claim). ``overlap_style`` and
    ``overlap_content`` are hue-histogram overlaps of the output with each input.
    """
    c, s, o = colour_stats(content), colour_stats(style), colour_stats(output)
    ho = hue_histogram(output, bins)
    return {"red_content": c["red_share"], "red_style": s["red_share"], "red_output": o["red_share"],
            "red_gain": o["red_share"] - max(c["red_share"], s["red_share"]),
            "pastel_content": c["pastel_share"], "pastel_style": s["pastel_share"], "pastel_output": o["pastel_share"],
            "sat_content": c["mean_saturation"], "sat_style": s["mean_saturation"], "sat_output": o["mean_saturation"],
            "overlap_style": histogram_overlap(ho, hue_histogram(style, bins)),
            "overlap_content": histogram_overlap(ho, hue_histogram(content, bins))}


__all__ = ["ImageError", "load_rgb", "resize", "resize_to", "center_square", "to_uint8", "png_bytes", "hsv", "colour_stats",
           "hue_histogram", "histogram_overlap", "hue_shift", "MIN_SIDE", "MAX_SIDE", "MAX_PIXELS", "MAX_ASPECT"]
