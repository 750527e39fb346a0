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
    """Total size in bytes of the finished files under ``path`` (0 if none; ``*.part`` and locks not counted)."""
    if path.is_file():
        return path.stat().st_size
    if not path.exists():
        return 0
    unfinished = (".part", ".lock")
    return sum(p.stat().st_size for p in path.rglob("*")
               if p.is_file() and not p.name.endswith(unfinished)
               and not any(part.endswith(".part") for part in p.relative_to(path).parts))


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode a new file gets under this process's umask (0o644 under the usual 022)."""
    return 0o666 & ~_umask()


def shared_permissions(folder: Path) -> None:
    """Give ``folder`` and everything under it the permissions of new files and folders (umask applied).

    Temporary folders are created private (0700); a cache folder an instructor shares with a class
    must stay readable (and, where the umask allows, writable) for everyone.
    """
    mask = _umask()
    for path in [Path(folder), *Path(folder).rglob("*")]:
        if path.is_symlink():
            continue
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask | (path.stat().st_mode & 0o111 if path.is_file() else 0))


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
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)  # atomic on one file system: readers see the old file or the new one
    finally:
        Path(tmp).unlink(missing_ok=True)
