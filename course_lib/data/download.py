"""Downloads that never leave a half-written file, and archive extraction that stays in its folder.

``download`` tries each mirror in turn, streams to a temporary file beside the target, checks the
byte count against the server's Content-Length (and an expected size when known) and the checksum,
and only then renames the file into place. A broken response (truncated, garbled status line) moves on
to the next mirror, and an overall deadline cuts off a server that trickles. ``safe_extract`` extracts
regular files and folders only (no symbolic or hard links, no devices), refuses members that would
land outside the target folder and archives that would unpack to more than a stated size or ratio,
and extracts into a temporary folder that is renamed into place when complete. Two processes
extracting the same archive into a shared cache do not collide: the second uses the first's result.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from course_lib.data.cache import cache_dir, new_file_mode, offline_requested, shared_permissions
from course_lib.data.errors import DataUnavailable, UnusableData

CHUNK = 1 << 16
DEFAULT_TIMEOUT = 10.0  # seconds to wait for a server before trying the next mirror
DEFAULT_DEADLINE = 1800.0  # seconds one mirror may take in all (CIFAR-10's 170 MB at 100 kB/s fits)
MAX_EXTRACTED_BYTES = 16 * 1024**3  # no course archive unpacks to more than a few GB
MAX_EXPANSION_RATIO = 200  # unpacked size / archive size; the course's archives are below 2

# After one failed connection in this process, later loads skip the network instead of waiting again.
_network_failed = False


class DownloadError(RuntimeError):
    """No mirror delivered a complete file with the expected checksum.

    ``bad_cached`` is (path, what is wrong) when a file was already in the cache but was not the
    expected one: the loader then says so instead of blaming the network.
    """

    def __init__(self, message: str, bad_cached: tuple[Path, str] | None = None) -> None:
        super().__init__(message)
        self.bad_cached = bad_cached


def unavailable_error(name: str, fetch_name: str, exc: DownloadError) -> DataUnavailable:
    """What a loader raises when its files cannot be had: UnusableData naming a wrong file in the cache,
    else DataUnavailable naming the fetch command (and why the network was not used)."""
    if exc.bad_cached is not None:
        path, problem = exc.bad_cached
        return UnusableData(path, f"{name}'s published file {path.name}", problem,
                            f"Delete it and run `course-lib data fetch {fetch_name}` (or copy a good file there).\n{exc}")
    return DataUnavailable(
        f"{name} is not in the course cache and could not be downloaded ({not_cached_reason(exc)}). On a machine "
        f"with network run `course-lib data fetch {fetch_name}` (then copy the cache folder "
        f"{cache_dir(create=False)} here).\n{exc}")


def not_cached_reason(exc: DownloadError) -> str:
    """Why a download-backed file is not usable, in words for a loader's message."""
    if exc.bad_cached is not None:
        path, problem = exc.bad_cached
        return f"{path} is in the cache but is not the published file ({problem})"
    return "COURSE_OFFLINE is set" if offline_requested() else "its mirrors could not be reached"


class UnsafeArchiveError(ValueError):
    """An archive member is a link or device, would land outside the target, or the archive is a bomb."""


class UntrustedFile(UnusableData):
    """A file in the cache does not match the checksum it must have; it was not read."""


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """Hex digest of a file (``md5`` or ``sha256``)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, md5: str | None = None, sha256: str | None = None, size: int | None = None) -> str | None:
    """Return None if ``path`` matches the given size and checksums, else a reason why not."""
    if not path.is_file():
        return f"{path} does not exist"
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size {actual_size} bytes, expected {size}"
    if md5 is not None and (got := file_digest(path, "md5")) != md5.lower():
        return f"md5 {got}, expected {md5}"
    if sha256 is not None and (got := file_digest(path, "sha256")) != sha256.lower():
        return f"sha256 {got}, expected {sha256}"
    return None


def network_allowed() -> bool:
    """False when offline mode is requested or a connection already failed in this process."""
    return not offline_requested() and not _network_failed


def reset_network_state() -> None:
    """Forget an earlier connection failure (used by tests and after reconnecting)."""
    global _network_failed
    _network_failed = False


def download(
    urls: Sequence[str],
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    progress: bool = True,
) -> Path:
    """Download ``dest`` from the first mirror that delivers it complete and with the right checksum.

    ``timeout`` bounds each wait for the server; ``deadline`` bounds one mirror's whole transfer.
    """
    global _network_failed
    dest = Path(dest)
    cached_problem = verify(dest, md5, sha256, size)
    if cached_problem is None:
        return dest
    if md5 is None and sha256 is None:
        raise ValueError("download needs an md5 or sha256 checksum to verify the file")
    if not urls:
        raise ValueError("download needs at least one URL")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(dest)
    errors: list[str] = []
    if dest.exists():  # a file the user placed, or an earlier download, that is not the expected one
        errors.append(f"{dest} is in the cache but is not the expected file ({cached_problem})")
    use_network = network_allowed()  # decided once per call: a dead mirror must not hide the next one
    why_not = "COURSE_OFFLINE is set" if offline_requested() else "no server answered earlier in this process"
    remote_tried = unreachable = 0
    for url in urls:
        is_remote = not url.startswith("file:")
        if is_remote and not use_network:
            errors.append(f"{url}: not tried ({why_not})")
            continue
        remote_tried += is_remote
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                declared = response.headers.get("Content-Length")
                declared = int(declared) if declared and declared.isascii() and declared.isdigit() else None
                received = 0
                give_up = time.monotonic() + deadline
                with tqdm(total=declared, unit="B", unit_scale=True, desc=dest.name,
                          disable=not progress, leave=False) as bar:
                    # read1: return what has arrived instead of waiting to fill the chunk, so a
                    # server that trickles meets the deadline check below
                    for chunk in iter(lambda: response.read1(CHUNK), b""):
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                        if time.monotonic() > give_up:
                            raise DownloadError(f"too slow: {received} bytes in {deadline:g} s (the deadline); "
                                                "try another network or fetch the file by hand")
            if declared is not None and received != declared:
                raise DownloadError(f"truncated: received {received} of {declared} bytes")
            problem = verify(tmp, md5, sha256, size)
            if problem:
                raise DownloadError(problem)
            os.replace(tmp, dest)  # atomic on one file system
            return dest
        except (urllib.error.URLError, OSError, DownloadError, ValueError, http.client.HTTPException) as exc:
            # HTTPException: IncompleteRead (a cut connection), BadStatusLine (not an HTTP answer), ...
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            errors.append(f"{url}: {reason}")
            if is_remote and isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError)) \
                    and not isinstance(exc, urllib.error.HTTPError):
                unreachable += 1
        finally:
            tmp.unlink(missing_ok=True)
    if remote_tried and unreachable == remote_tried:
        _network_failed = True  # no server answered: later loads in this process skip the network
    raise DownloadError(f"could not download {dest.name}:\n  " + "\n  ".join(errors),
                        bad_cached=(dest, cached_problem) if dest.exists() else None)


def remove_stale_parts(dest: Path, older_than: float = DEFAULT_DEADLINE + 60) -> None:
    """Delete ``<dest>.*.part`` files left by a download that was killed (older than any live download)."""
    now = time.time()
    for part in Path(dest).parent.glob(Path(dest).name + ".*.part"):
        with contextlib.suppress(OSError):
            if now - part.stat().st_mtime > older_than:
                if part.is_dir():
                    shutil.rmtree(part)
                else:
                    part.unlink()


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (POSIX ``flock``), so one process fetches while others wait."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic renames still keep every file whole
        yield
        return
    lock = Path(path).with_name(Path(path).name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, new_file_mode())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _check_member(name: str, target: Path) -> None:
    resolved = (target / name).resolve()
    if os.path.isabs(name) or not resolved.is_relative_to(target.resolve()):
        raise UnsafeArchiveError(f"archive member {name!r} would be written outside {target}; refusing to extract")


def _check_size(archive: Path, total: int, max_bytes: int, max_ratio: float) -> None:
    packed = max(archive.stat().st_size, 1)
    if total > max_bytes:
        raise UnsafeArchiveError(f"{archive.name} would unpack to {total / 1e9:.1f} GB, above the limit of "
                                 f"{max_bytes / 1e9:.1f} GB; refusing (pass max_bytes to allow more)")
    if total / packed > max_ratio:
        raise UnsafeArchiveError(f"{archive.name} would unpack to {total / packed:.0f} times its size "
                                 f"({total} bytes from {packed}), above the limit of {max_ratio:g}; it looks "
                                 "like an archive bomb, refusing")


def safe_extract(archive: Path, target: Path, *, max_bytes: int = MAX_EXTRACTED_BYTES,
                 max_ratio: float = MAX_EXPANSION_RATIO) -> Path:
    """Extract a .zip, .tar, .tar.gz or .tgz into ``target`` (created whole, or not at all): regular files only."""
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; remove it to extract {archive.name} again")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".part", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    _check_member(info.filename, staging)
                    kind = (info.external_attr >> 16) & 0o170000  # the Unix file type, where the zip records one
                    if kind not in (0, 0o100000, 0o040000):
                        what = "a symbolic link" if kind == 0o120000 else "not a regular file or folder"
                        raise UnsafeArchiveError(f"archive member {info.filename!r} is {what}; refusing")
                # zipfile stops each member at its declared size, so the declared sizes bound the output
                _check_size(archive, sum(i.file_size for i in infos), max_bytes, max_ratio)
                zf.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for member in members:
                    _check_member(member.name, staging)
                    if not (member.isreg() or member.isdir()):
                        what = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
                                else "a device or special file")
                        raise UnsafeArchiveError(f"archive member {member.name!r} is {what}; only regular files "
                                                 "and folders are extracted, refusing the archive")
                _check_size(archive, sum(m.size for m in members if m.isreg()), max_bytes, max_ratio)
                tf.extractall(staging, members=members, filter="data")  # the standard library's guard as a second net
        else:
            raise ValueError(f"{archive} is not a zip or tar archive")
        shared_permissions(staging)
        try:
            os.replace(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # another process extracted it first: use its copy
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
