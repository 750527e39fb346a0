"""Downloads that never leave a half-written file, and archive extraction that stays in its folder.

``download`` tries each mirror in turn, streams to a temporary file beside the target, checks the
byte count against the server's Content-Length (and an expected size when known) and the checksum,
and only then renames the file into place. ``safe_extract`` refuses any archive member that would
land outside the target folder (``../``, absolute paths, links pointing out) and extracts into a
temporary folder that is renamed into place when complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from course_lib.data.cache import offline_requested

CHUNK = 1 << 16
DEFAULT_TIMEOUT = 10.0  # seconds to wait for a server before trying the next mirror

# After one failed connection in this process, later loads skip the network instead of waiting again.
_network_failed = False


class DownloadError(RuntimeError):
    """No mirror delivered a complete file with the expected checksum."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the target folder."""


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
    progress: bool = True,
) -> Path:
    """Download ``dest`` from the first mirror that delivers it complete and with the right checksum."""
    global _network_failed
    dest = Path(dest)
    if verify(dest, md5, sha256, size) is None:
        return dest
    if md5 is None and sha256 is None:
        raise ValueError("download needs an md5 or sha256 checksum to verify the file")
    if not urls:
        raise ValueError("download needs at least one URL")
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    use_network = network_allowed()  # decided once per call: a dead mirror must not hide the next one
    remote_tried = unreachable = 0
    for url in urls:
        is_remote = not url.startswith("file:")
        if is_remote and not use_network:
            errors.append(f"{url}: skipped (offline)")
            continue
        remote_tried += is_remote
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                declared = response.headers.get("Content-Length")
                declared = int(declared) if declared and declared.isdigit() else None
                received = 0
                with tqdm(total=declared, unit="B", unit_scale=True, desc=dest.name,
                          disable=not progress, leave=False) as bar:
                    for chunk in iter(lambda: response.read(CHUNK), b""):
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
            if declared is not None and received != declared:
                raise DownloadError(f"truncated: received {received} of {declared} bytes")
            problem = verify(tmp, md5, sha256, size)
            if problem:
                raise DownloadError(problem)
            os.replace(tmp, dest)  # atomic on one file system
            return dest
        except (urllib.error.URLError, OSError, DownloadError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            errors.append(f"{url}: {reason}")
            if is_remote and isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError)) \
                    and not isinstance(exc, urllib.error.HTTPError):
                unreachable += 1
        finally:
            tmp.unlink(missing_ok=True)
    if remote_tried and unreachable == remote_tried:
        _network_failed = True  # no server answered: later loads in this process skip the network
    raise DownloadError(f"could not download {dest.name}:\n  " + "\n  ".join(errors))


def _check_member(name: str, target: Path) -> None:
    resolved = (target / name).resolve()
    if os.path.isabs(name) or not resolved.is_relative_to(target.resolve()):
        raise UnsafeArchiveError(f"archive member {name!r} would be written outside {target}; refusing to extract")


def safe_extract(archive: Path, target: Path) -> Path:
    """Extract a .zip, .tar, .tar.gz or .tgz into ``target`` (created whole, or not at all)."""
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; remove it to extract {archive.name} again")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".part", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member(info.filename, staging)
                    # a symlink in a zip is a member whose external attributes say S_IFLNK
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise UnsafeArchiveError(f"archive member {info.filename!r} is a symbolic link; refusing")
                zf.extractall(staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_member(member.name, staging)
                    if member.issym() or member.islnk():
                        _check_member(os.path.join(os.path.dirname(member.name), member.linkname), staging)
                    if member.isdev():
                        raise UnsafeArchiveError(f"archive member {member.name!r} is a device file; refusing")
                tf.extractall(staging, filter="data")  # the standard library's own guard, as a second net
        else:
            raise ValueError(f"{archive} is not a zip or tar archive")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
