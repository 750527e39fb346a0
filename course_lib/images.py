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
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 32      # the style networks downsample by 8-16: smaller pictures have nothing left to style
MAX_SIDE = 2048    # larger pictures are shrunk (with a note) before anything else happens

ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray


class ImageError(ValueError):
    """A picture that cannot be used: unreadable, too small, or of an unsupported shape or type."""


def _describe(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{Path(source).name}'"
    if isinstance(source, bytes):
        return f"the uploaded file ({len(source):,} bytes)"
    return f"the {type(source).__name__}"


def _open(source: str | os.PathLike | bytes) -> Image.Image:
    what = _describe(source)
    try:
        img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        img.load()  # decode now, so a truncated file fails here and not later
    except FileNotFoundError:
        raise ImageError(f"image file not found: {source}") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{what} is too large to open safely ({exc}); shrink it below about 90 megapixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{what} is not a readable image (expected a PNG, JPEG, BMP, GIF, TIFF or WebP file): "
                         f"{exc}") from None
    return ImageOps.exif_transpose(img)  # phone photos store their rotation in EXIF


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


def _array_to_float(arr: np.ndarray) -> np.ndarray:
    """A NumPy picture (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of any common dtype -> RGB floats."""
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"got an array of shape {arr.shape}, which looks channels-first; "
                         "expected (height, width) or (height, width, 1, 3 or 4 channels)")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"got an array of shape {arr.shape}; expected (height, width) or "
                         "(height, width, channels) with 1, 3 or 4 channels")
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
             quiet: bool = False) -> np.ndarray:
    """Read a path, file bytes, PIL image or array as RGB floats in [0, 1], shape (H, W, 3).

    Grayscale, palette, alpha (laid over white) and 16-bit pictures are converted; pictures with a
    side under ``min_side`` are refused; pictures with a side over ``max_side`` are shrunk with a note.
    """
    if isinstance(source, np.ndarray):
        arr = _array_to_float(source)
    elif isinstance(source, Image.Image):
        arr = _pil_to_float(ImageOps.exif_transpose(source))
    elif isinstance(source, (str, os.PathLike, bytes)):
        arr = _pil_to_float(_open(source))
    else:
        raise ImageError(f"cannot read a picture from a {type(source).__name__}; expected a file path, "
                         "file bytes, a PIL image or a NumPy array")
    h, w = arr.shape[:2]
    if min(h, w) < min_side:
        raise ImageError(f"{_describe(source)} is {w}x{h} pixels; both sides need at least {min_side} pixels")
    if max(h, w) > max_side:
        arr = resize(arr, max_side)
        if not quiet:
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
           "hue_histogram", "histogram_overlap", "hue_shift", "MIN_SIDE", "MAX_SIDE"]
