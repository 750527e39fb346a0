"""Where the course keeps downloaded data, weights and checkpoints: ``$COURSE_DATA``."""

from __future__ import annotations

import os
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
