"""Issue 20: nothing in a shared cache may run code, write outside its folder, or be used unverified."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import socket
import stat
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.data import status
from course_lib.data.archives import ArchiveSource, cifar10_source, fetch_archive, load_cifar10
from course_lib.data.cache import folder_size
from course_lib.data.download import DownloadError, UnsafeArchiveError, UntrustedFile, download, safe_extract
from course_lib.train import checksum_path, fit, load_verified, save_atomic

PAYLOAD = bytes(range(256)) * 400  # 100 kB


# ---------------------------------------------------------------- 1. no code from a planted pickle

class _Plant:
    """Unpickling this creates a marker file: the proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _planted_cifar_folder(cache: Path, marker: Path) -> Path:
    batches = cache / "cifar10" / "cifar-10-python" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    evil = pickle.dumps({"data": _Plant(marker), "labels": [0]})
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (batches / name).write_bytes(evil)
    return batches


def test_a_planted_cifar_pickle_is_refused_by_its_pinned_md5(cache, tmp_path):
    marker = tmp_path / "pwned"
    _planted_cifar_folder(cache, marker)
    with pytest.raises(UntrustedFile, match="MD5 .* so it was not read"):
        load_cifar10(cifar10_source(), quiet=True)  # torchvision's pinned MD5s
    assert not marker.exists()


def test_even_with_a_matching_md5_the_unpickler_builds_arrays_only(cache, tmp_path):
    marker = tmp_path / "pwned"
    batches = _planted_cifar_folder(cache, marker)
    digest = hashlib.md5((batches / "data_batch_1").read_bytes()).hexdigest()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    source = ArchiveSource("cifar10", "file:///nowhere/cifar-10-python.tar.gz", "0" * 32,
                           tuple((n, digest) for n in names))
    with pytest.raises(UntrustedFile, match="refusing to load posixpath|refusing to load pathlib"):
        load_cifar10(source, quiet=True)
    assert not marker.exists()


def test_a_missing_batch_file_says_the_folder_is_incomplete(cache, tmp_path):
    batches = _planted_cifar_folder(cache, tmp_path / "m")
    (batches / "test_batch").unlink()
    (batches / "data_batch_1").unlink()
    with pytest.raises(UntrustedFile, match="incomplete"):
        load_cifar10(cifar10_source(), quiet=True)


# ---------------------------------------------------------------- 2. links and specials in archives

def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w") as tf:
        for info in members:
            payload = (data or {}).get(info.name)
            if payload is not None:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
            else:
                tf.addfile(info)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize("kind,what", [(tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link"),
                                       (tarfile.FIFOTYPE, "special file")])
def test_tar_links_and_specials_are_refused_even_pointing_inside(tmp_path, kind, what):
    tar = _tar(tmp_path / "a.tar", [_info("a.txt"), _info("b", kind, "a.txt")], {"a.txt": b"a"})
    with pytest.raises(UnsafeArchiveError, match=what):
        safe_extract(tar, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_symlink_chain_then_hardlink_shape_writes_nothing_outside(tmp_path):
    # the shape of CVE-2025-4517: nested symlinks that resolve elsewhere, then a hardlink through them
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    members = [_info("d", tarfile.DIRTYPE)]
    members += [_info(f"d/l{i}", tarfile.SYMTYPE, "." if i else "..") for i in range(3)]
    members += [_info("d/l0/l1/l2/x", tarfile.LNKTYPE, "../victim.txt"), _info("d/l0/l1/l2/x")]
    tar = _tar(tmp_path / "cve.tar", members, {"d/l0/l1/l2/x": b"overwritten"})
    with pytest.raises(UnsafeArchiveError):
        safe_extract(tar, tmp_path / "out")
    assert victim.read_text() == "keep me"


# ---------------------------------------------------------------- 10. archive bombs

def test_an_archive_bomb_is_refused_by_its_ratio(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(20_000_000))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(UnsafeArchiveError, match="archive bomb"):
        safe_extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_archive_above_the_size_limit_is_refused(tmp_path):
    tar = _tar(tmp_path / "big.tar", [_info("a.bin")], {"a.bin": os.urandom(50_000)})
    with pytest.raises(UnsafeArchiveError, match="above the limit"):
        safe_extract(tar, tmp_path / "out", max_bytes=10_000)
    assert (safe_extract(tar, tmp_path / "ok") / "a.bin").stat().st_size == 50_000


# ---------------------------------------------------------------- 6. a cache shared by a class

def test_extracted_folders_are_readable_by_everyone_under_the_usual_umask(tmp_path):
    tar = _tar(tmp_path / "a.tar", [_info("top", tarfile.DIRTYPE), _info("top/a.txt")], {"top/a.txt": b"a"})
    old = os.umask(0o022)
    try:
        out = safe_extract(tar, tmp_path / "out")
    finally:
        os.umask(old)
    for path in (out, out / "top"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, oct(path.stat().st_mode)
    assert stat.S_IMODE((out / "top" / "a.txt").stat().st_mode) & 0o044 == 0o044


def test_two_processes_fetching_one_archive_both_get_it(cache, tmp_path):
    src = tmp_path / "www" / "pack.tar"
    src.parent.mkdir()
    _tar(src, [_info("pack/a.txt")], {"pack/a.txt": b"a" * 1000})
    source = ArchiveSource("shared", src.as_uri(), hashlib.md5(src.read_bytes()).hexdigest())
    start, results = threading.Barrier(4), []

    def fetch() -> None:
        start.wait()
        try:
            results.append(fetch_archive(source, progress=False))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            results.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4 and all(isinstance(r, Path) for r in results), results
    assert (results[0] / "pack" / "a.txt").read_bytes() == b"a" * 1000
    assert not list((cache / "shared").glob("*.part"))


def test_safe_extract_uses_a_winners_folder_instead_of_failing(tmp_path, monkeypatch):
    tar = _tar(tmp_path / "a.tar", [_info("a.txt")], {"a.txt": b"mine"})
    target = tmp_path / "out"
    real_replace = os.replace

    def winner_first(src, dst):  # another process renames its copy into place just before us
        if Path(dst) == target and not target.exists():
            target.mkdir()
            (target / "a.txt").write_bytes(b"winner")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", winner_first)
    assert (safe_extract(tar, target) / "a.txt").read_bytes() == b"winner"
    assert [p.name for p in tmp_path.iterdir()] == ["a.tar", "out"]  # our staging copy is gone


# ---------------------------------------------------------------- 5. downloads that misbehave

def _raw_server(reply) -> tuple[str, threading.Thread]:
    """A one-shot TCP server on loopback; ``reply(conn)`` writes whatever it likes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            try:
                reply(conn)
            except OSError:
                pass
        sock.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}/file.bin", thread


def test_a_garbled_status_line_moves_on_to_the_next_mirror(http_server, tmp_path, online):
    base, www, _ = http_server
    (www / "file.bin").write_bytes(PAYLOAD)
    garbage, _ = _raw_server(lambda c: c.sendall(b"not http at all\r\n\r\n"))
    dest = download([garbage, f"{base}/file.bin"], tmp_path / "file.bin", md5=hashlib.md5(PAYLOAD).hexdigest(),
                    progress=False, timeout=5)
    assert dest.read_bytes() == PAYLOAD


def test_a_cut_connection_is_a_download_error_not_a_traceback(tmp_path, online):
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(PAYLOAD)}\r\n\r\n".encode()
    url, _ = _raw_server(lambda c: c.sendall(head + PAYLOAD[:5000]))
    with pytest.raises(DownloadError, match="file.bin"):
        download([url], tmp_path / "file.bin", md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_a_trickling_server_is_cut_off_by_the_deadline(tmp_path, online):
    stop = threading.Event()

    def trickle(conn) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(PAYLOAD)}\r\n\r\n".encode())
        while not stop.is_set():
            conn.sendall(b"x")
            time.sleep(0.05)

    url, _ = _raw_server(trickle)
    t0 = time.monotonic()
    try:
        with pytest.raises(DownloadError, match="too slow"):
            download([url], tmp_path / "file.bin", md5="0" * 32, progress=False, timeout=5, deadline=1.0)
    finally:
        stop.set()
    assert time.monotonic() - t0 < 10
    assert list(tmp_path.iterdir()) == []


def test_parts_of_a_killed_download_are_removed_and_not_counted_as_data(cache, tmp_path):
    folder = cache / "mnist"
    folder.mkdir(parents=True)
    stale = folder / "train-images-idx3-ubyte.gz.abc123.part"
    stale.write_bytes(b"half a file")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = folder / "train-images-idx3-ubyte.gz.def456.part"  # perhaps another process's live download
    fresh.write_bytes(b"in progress")
    assert folder_size(folder) == 0
    assert status().set_index("name").loc["mnist", "in cache"] == "missing"
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    download([src.as_uri()], folder / "train-images-idx3-ubyte.gz", md5=hashlib.md5(PAYLOAD).hexdigest(),
             progress=False)
    assert not stale.exists() and fresh.exists()


# ---------------------------------------------------------------- 3 and 4. checkpoints and cached artefacts

def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0).long()


def _trained(path: Path) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    fit(model, _data(), epochs=3, lr=0.1, batch_size=16, checkpoint=path, progress=False)
    return model


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(len(data) // 3, len(data) - 100, 40):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["garbled", "truncated", "empty", "no checksum"])
def test_a_damaged_checkpoint_is_reported_in_one_line_and_trained_again(tmp_path, capsys, damage):
    path = tmp_path / "ck.pt"
    _trained(path)
    assert checksum_path(path).is_file()
    if damage == "garbled":
        _garble(path)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        checksum_path(path).unlink()
    capsys.readouterr()
    model = nn.Linear(4, 2)
    history = fit(model, _data(), epochs=3, lr=0.1, batch_size=16, checkpoint=path, progress=True)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("Not using")]
    assert len(lines) == 1 and str(path) in lines[0], out
    assert history.resumed_from == 0 and len(history) == 3  # trained again, not loaded
    assert load_verified(path) is not None  # and the new checkpoint is trusted


def test_a_checkpoint_with_nan_weights_is_not_used_even_with_a_matching_checksum(tmp_path, capsys):
    path = tmp_path / "ck.pt"
    save_atomic({"model": {"weight": torch.tensor([1.0, float("nan")])}}, path)
    assert load_verified(path) is None
    assert "NaN or infinite" in capsys.readouterr().out


def test_an_intact_checkpoint_loads_as_a_finished_run(tmp_path, capsys):
    path = tmp_path / "ck.pt"
    first = _trained(path)
    model = nn.Linear(4, 2)
    history = fit(model, _data(), epochs=3, lr=0.1, batch_size=16, checkpoint=path, progress=False)
    assert history.resumed_from == 3
    assert torch.equal(model.weight, first.weight)
    assert "Not using" not in capsys.readouterr().out


def test_load_unet_refuses_a_garbled_file_with_the_reason(tmp_path):
    from course_lib.models.ddpm import load_unet
    path = tmp_path / "unet.pt"
    save_atomic({"unet": {"w": torch.zeros(3)}, "config": {}}, path)
    _garble(path)
    with pytest.raises(ValueError, match="not a usable UNet checkpoint: its SHA-256"):
        load_unet(path)


# ---------------------------------------------------------------- issue 19: keys by the data's content

def test_checkpoint_keys_change_when_the_images_change_in_place():
    from course_lib.data.imageset import ImageSet
    from course_lib.train import checkpoint_path
    x = torch.rand(6, 1, 4, 4)
    swapped = x.clone()
    swapped[0, 0, 0, 0], swapped[0, 0, 0, 1] = x[0, 0, 0, 1], x[0, 0, 0, 0]  # same name, count and sum
    y = torch.arange(6)
    same = checkpoint_path("m", data=ImageSet(x, y, list("abcdef"), "set", "test"), epochs=2)
    assert same == checkpoint_path("m", data=ImageSet(x.clone(), y.clone(), list("abcdef"), "set", "test"), epochs=2)
    assert same != checkpoint_path("m", data=ImageSet(swapped, y, list("abcdef"), "set", "test"), epochs=2)
    assert checkpoint_path("m", data=x) != checkpoint_path("m", data=swapped)
    assert checkpoint_path("m", data=x) != checkpoint_path("m", data=x.double())  # dtype is content too


def test_a_content_length_in_other_digits_is_ignored_not_a_raw_error(tmp_path, online):
    head = "HTTP/1.0 200 OK\r\nContent-Length: \u00b2\r\n\r\n".encode("latin-1")  # '²'.isdigit() is True
    url, _ = _raw_server(lambda c: c.sendall(head + PAYLOAD))
    dest = download([url], tmp_path / "file.bin", md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False, timeout=5)
    assert dest.read_bytes() == PAYLOAD
