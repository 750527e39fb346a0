"""Video for the style-transfer lesson: read, generate, stylize frame by frame, measure flicker, write.

Reading and MP4 writing go through imageio with the ffmpeg binary that the imageio-ffmpeg package
ships (no system ffmpeg needed); GIFs are written by Pillow. Every file is written to a temporary
name beside the target and renamed when complete, so a crash never leaves half a video.

Flicker. A per-frame stylizer knows nothing about the previous frame, so small changes in the input
can flip brush strokes from one frame to the next. We measure it as the mean absolute difference
between consecutive frames (pixel values in [0, 1]):

    flicker(x) = 1 / (T - 1) * sum_t mean |x_t - x_(t-1)|

and compare it with the same number for the input clip (which moves too: a pan is not flicker).
The reduction option is an exponential moving average of the stylized frames,

    y_t = a * y_(t-1) + (1 - a) * s_t,   y_0 = s_0,

which damps frame-to-frame changes at the price of ghosting behind fast motion (a = 0 turns it off).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from course_lib.data.cache import atomic_path
from course_lib.images import ImageInput, load_rgb, to_uint8


class VideoError(ValueError):
    """A file that cannot be used as a video: not a video at all, or without a single frame."""


class TruncatedVideoWarning(UserWarning):
    """A video gave fewer frames than asked for or than its header announces (a cut or damaged file)."""


# Ours: frame counts estimated from a header's duration x frame rate can be off by rounding, so up to
# this share of them (and at least one frame) may be missing before a video counts as truncated.
MISSING_FRAMES_TOLERANCE = 0.05


@dataclass
class Clip:
    """Frames (T, H, W, 3) as floats in [0, 1], with their frame rate and where they came from."""

    frames: np.ndarray
    fps: float
    source: str

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def read_video(path: str | os.PathLike, max_frames: int | None = None, max_side: int | None = None) -> Clip:
    """Read a video file (any format ffmpeg knows) into a :class:`Clip`; optionally cap frames and size."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video file not found: {path}")
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(reader)  # ffmpeg's description of the first video stream
    except (RuntimeError, OSError, StopIteration) as exc:
        reader.close()
        text = str(exc)
        if "Input #0" in text and "Video:" not in text:  # ffmpeg read the container but found no picture stream
            raise VideoError(f"'{path.name}' contains no video frames (an audio-only or empty file?)") from None
        raise VideoError(f"'{path.name}' is not a video file ffmpeg can read (expected e.g. MP4, MOV, AVI, "
                         "WebM or an animated GIF)") from None
    fps = float(meta.get("fps") or 25.0)
    width, height = meta["size"]
    duration = float(meta.get("duration") or 0.0)
    # what the header promises (GIFs and streams may not say, and then a cut file cannot be told apart)
    announced = round(duration * fps) if duration > 0 else None
    capped = max_frames is not None and announced is not None and max_frames < announced
    asked = max_frames if capped else announced
    frames, damage = [], ""
    try:
        for i, raw in enumerate(reader):
            if max_frames is not None and i >= max_frames:
                break
            img = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3).astype(np.float32) / 255
            if max_side and max(img.shape[:2]) > max_side:
                from course_lib.images import resize
                img = resize(img, max_side)
            frames.append(img)
    except (RuntimeError, OSError, ValueError) as exc:
        if not frames:
            raise VideoError(f"'{path.name}' could not be decoded: {str(exc).splitlines()[0]}") from None
        damage = str(exc).splitlines()[0] if str(exc) else type(exc).__name__  # a damaged tail: keep what decoded
    finally:
        reader.close()
    if not frames:
        raise VideoError(f"'{path.name}' contains no video frames")
    if asked is not None and asked - len(frames) > max(1, math.floor(MISSING_FRAMES_TOLERANCE * asked)):
        what = f"{asked} frames asked for" if capped else f"{asked} frames its header announces"
        warnings.warn(f"'{path.name}': read only {len(frames)} of the {what} ({duration:.2f} s at {fps:g} fps); "
                      f"the file looks truncated or damaged{f' ({damage})' if damage else ''}. Using the "
                      f"{len(frames)} frames that decoded; re-export or re-download the video for all of them.",
                      TruncatedVideoWarning, stacklevel=2)
    elif damage:
        warnings.warn(f"'{path.name}': decoding stopped after {len(frames)} frames ({damage}); using those.",
                      TruncatedVideoWarning, stacklevel=2)
    return Clip(np.stack(frames), fps, str(path))


def _even(frames: np.ndarray) -> np.ndarray:
    """Crop to even width and height (H.264 with 4:2:0 colour needs them)."""
    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    return frames[:, :h, :w]


def _as_uint8(frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or len(arr) == 0:
        raise VideoError(f"expected frames of shape (T, H, W, 3) with T >= 1, got {arr.shape}")
    return arr if arr.dtype == np.uint8 else to_uint8(arr)


def write_mp4(frames: Sequence[np.ndarray] | np.ndarray, path: str | os.PathLike, fps: float) -> Path:
    """Write frames as an H.264 MP4 (playable in browsers), atomically."""
    import imageio_ffmpeg

    arr = _even(_as_uint8(frames))
    path = Path(path)
    with atomic_path(path) as tmp:  # the temporary name has no .mp4 ending, so name the format
        writer = imageio_ffmpeg.write_frames(str(tmp), (arr.shape[2], arr.shape[1]), fps=fps, codec="libx264",
                                             pix_fmt_out="yuv420p", quality=7, macro_block_size=1,
                                             output_params=["-f", "mp4", "-movflags", "+faststart"],
                                             ffmpeg_log_level="error")
        writer.send(None)  # start ffmpeg
        try:
            for frame in arr:
                writer.send(np.ascontiguousarray(frame))
        finally:
            writer.close()
    return path


def gif_delays(n_frames: int, fps: float) -> list[int]:
    """Per-frame GIF delays in ms, multiples of 10, whose running sum stays within 10 ms of ``i / fps``.

    GIF stores delays in hundredths of a second, so 30 fps (33.3 ms) cannot be written as one delay:
    every frame at 30 ms plays 11 % fast. Rounding the *cumulative* time instead alternates 30 and 40 ms.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    ends = [round(100 * (i + 1) / fps) * 10 for i in range(n_frames)]
    return [max(b - a, 10) for a, b in zip([0, *ends[:-1]], ends)]


def write_gif(frames: Sequence[np.ndarray] | np.ndarray, path: str | os.PathLike, fps: float) -> Path:
    """Write frames as a looping GIF, atomically, playing at ``fps`` on average (see :func:`gif_delays`)."""
    import imageio.v3 as iio

    arr = _as_uint8(frames)
    path = Path(path)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, list(arr), extension=".gif", plugin="pillow", duration=gif_delays(len(arr), fps), loop=0)
    return path


def make_clip(n_frames: int = 24, width: int = 256, height: int = 144, fps: float = 12.0,
              image: ImageInput | None = None) -> Clip:
    """A short camera move over a photograph: pan from left to right while zooming in 1x -> 1.6x.

    Default photograph: scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain), a face
    with hair and a flag, the kind of content the document stylized. Deterministic.
    """
    from PIL import Image

    if n_frames < 1 or width < 32 or height < 32:
        raise ValueError("make_clip needs at least 1 frame and at least 32 x 32 pixels")
    if image is None:
        import skimage.data
        image = skimage.data.astronaut()
    photo = Image.fromarray(to_uint8(load_rgb(image, quiet=True)))
    pw, ph = photo.size
    aspect = width / height
    base_w = min(pw, ph * aspect)  # the widest window of the clip's shape that fits the photo
    frames = []
    for t in np.linspace(0, 1, n_frames):
        zoom = 1 + 0.6 * t
        w = base_w / zoom
        h = w / aspect
        cx = w / 2 + (pw - w) * (0.15 + 0.6 * t)    # drift right, towards the face
        cy = h / 2 + (ph - h) * (0.2 + 0.1 * t)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        frames.append(np.asarray(photo.resize((width, height), Image.BICUBIC, box=box), dtype=np.float32) / 255)
    return Clip(np.clip(np.stack(frames), 0, 1), fps, "generated: pan and zoom over scikit-image's astronaut")


def flicker(frames: Sequence[np.ndarray] | np.ndarray) -> float:
    """Mean absolute difference between consecutive frames (values in [0, 1]); 0 for a single frame."""
    arr = np.asarray(frames, dtype=np.float32)
    if arr.ndim != 4 or len(arr) == 0:
        raise ValueError(f"expected frames of shape (T, H, W, C), got {arr.shape}")
    if len(arr) < 2:
        return 0.0
    return float(np.abs(np.diff(arr, axis=0)).mean())


def smooth_frames(frames: Iterable[np.ndarray], alpha: float) -> np.ndarray:
    """Exponential moving average y_t = alpha * y_(t-1) + (1 - alpha) * x_t (alpha = 0: unchanged)."""
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"smoothing alpha must be in [0, 1), got {alpha}")
    out, prev = [], None
    for frame in frames:
        frame = np.asarray(frame, dtype=np.float32)
        prev = frame if prev is None else alpha * prev + (1 - alpha) * frame
        out.append(prev)
    return np.stack(out)


def stylize_clip(clip: Clip, backend, style, strength: float = 1.0, size: int | None = None,
                 smooth: float = 0.0, progress: bool = True) -> Clip:
    """Stylize every frame with one style (prepared once), optionally smoothed against flicker."""
    size = size or max(clip.size)
    run = backend.stylizer(style, strength, size)
    frames = [run(f) for f in tqdm(clip.frames, desc=f"stylizing ({backend.name})", unit="frame",
                                    disable=not progress, leave=False)]
    out = smooth_frames(frames, smooth) if smooth else np.stack(frames)
    return Clip(out, clip.fps, f"{clip.source}, stylized by {backend.name}" + (f", smoothed a={smooth}" if smooth else ""))


def side_by_side(original: np.ndarray, stylized: np.ndarray, gap: int = 4) -> np.ndarray:
    """One picture with the original frame on the left and the stylized one on the right (Fig. 20)."""
    from course_lib.images import resize
    h = original.shape[0]
    if stylized.shape[0] != h:
        stylized = resize(stylized, max(h, round(stylized.shape[1] * h / stylized.shape[0])))[:h]
    return np.concatenate([original, np.ones((h, gap, 3), np.float32), stylized], axis=1)


def show_video(path: str | os.PathLike, width: int = 480):
    """A playable video (MP4) or animation (GIF) embedded in the notebook; a GIF is never blown up past 1.5x its size."""
    from IPython.display import HTML, Image
    from PIL import Image as Picture
    path = Path(path)
    if path.suffix.lower() == ".gif":
        with Picture.open(path) as im:
            native = im.size[0]
        return Image(data=path.read_bytes(), format="gif", width=min(width, int(1.5 * native)))
    import base64
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return HTML(f'<video width="{width}" controls loop muted autoplay>'
                f'<source src="data:video/mp4;base64,{data}" type="video/mp4"></video>')


__all__ = ["Clip", "VideoError", "TruncatedVideoWarning", "read_video", "write_mp4", "write_gif", "gif_delays", "make_clip",
           "flicker", "smooth_frames", "stylize_clip", "side_by_side", "show_video"]
