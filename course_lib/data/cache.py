"""Where the course keeps downloaded data, weights and checkpoints: ``$COURSE_DATA``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

ENV_VAR = "COURSE_DATA"
OFFLINE_VAR = "COURSE_OFFLINE"


def cache_dir(*parts: str, create: bool = True) -> Path:
    """The cache folder (``$COURSE_DATA``, else the user's cache folder), or a sub-folder of it."""
    root = os.environ.get(ENV_VAR)
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "course_lib"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def offline_requested() -> bool:
    """True when ``$COURSE_OFFLINE`` asks loaders not to try the network at all."""
    return os.environ.get(OFFLINE_VAR, "").strip().lower() in {"1", "true", "yes"}


def folder_size(path: Path) -> int:
    """Total size in bytes of the files under ``path`` (0 if it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the permissions of any new file, so that a
        # cache folder an instructor shares with a class stays readable for everyone
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)  # atomic on one file system: readers see the old file or the new one
    finally:
        Path(tmp).unlink(missing_ok=True)
