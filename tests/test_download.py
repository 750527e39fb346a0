import hashlib
import io
import tarfile
import zipfile

import pytest

from course_lib.data.download import DownloadError, UnsafeArchiveError, download, safe_extract


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


PAYLOAD = bytes(range(256)) * 400  # 100 kB


def test_download_over_loopback_http(http_server, tmp_path, online):
    base, www, _ = http_server
    (www / "file.bin").write_bytes(PAYLOAD)
    dest = download([f"{base}/file.bin"], tmp_path / "out" / "file.bin", md5=md5(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert list(dest.parent.iterdir()) == [dest]  # no temporary file left behind


def test_download_from_file_url_with_sha256(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = download([src.as_uri()], tmp_path / "dest.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                    size=len(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_wrong_checksum_is_refused_and_nothing_is_written(http_server, tmp_path, online):
    base, www, _ = http_server
    (www / "file.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(DownloadError, match="md5"):
        download([f"{base}/file.bin"], dest, md5="0" * 32, progress=False)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_truncated_transfer_is_detected(http_server, tmp_path, online):
    base, www, truncate = http_server
    (www / "file.bin").write_bytes(PAYLOAD)
    truncate["file.bin"] = 1000
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="truncated|IncompleteRead|incomplete"):
        download([f"{base}/file.bin"], dest, md5=md5(PAYLOAD), progress=False, timeout=5)
    assert not dest.exists()


def test_next_mirror_is_tried_when_the_first_fails(http_server, tmp_path, online):
    base, www, _ = http_server
    (www / "file.bin").write_bytes(PAYLOAD)
    dest = download([f"{base}/missing.bin", f"{base}/file.bin"], tmp_path / "file.bin", md5=md5(PAYLOAD),
                    progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_server_gone_reports_every_mirror(tmp_path, online):
    import socket
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError) as info:
        download([f"http://127.0.0.1:{port}/a.bin"], tmp_path / "a.bin", md5="0" * 32, progress=False, timeout=2)
    assert f"127.0.0.1:{port}/a.bin" in str(info.value)


def test_cached_file_with_right_checksum_is_not_downloaded_again(tmp_path):
    dest = tmp_path / "a.bin"
    dest.write_bytes(PAYLOAD)
    assert download(["http://127.0.0.1:9/never"], dest, md5=md5(PAYLOAD), progress=False) == dest


def _tar_with(tmp_path, members: dict[str, bytes], name="a.tar.gz", link: tuple[str, str] | None = None):
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tf.addfile(info)
    return path


def test_safe_extract_tar_and_zip(tmp_path):
    tar = _tar_with(tmp_path, {"top/a.txt": b"a", "top/sub/b.txt": b"b"})
    out = safe_extract(tar, tmp_path / "tar_out")
    assert (out / "top" / "sub" / "b.txt").read_bytes() == b"b"
    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("x/y.txt", "y")
    assert (safe_extract(zpath, tmp_path / "zip_out") / "x" / "y.txt").read_text() == "y"


@pytest.mark.parametrize("member", ["../escape.txt", "top/../../escape.txt", "/abs/escape.txt"])
def test_archive_member_escaping_target_is_refused(tmp_path, member):
    tar = _tar_with(tmp_path, {"ok.txt": b"ok", member: b"evil"})
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(tar, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.tar.gz"]  # no staging folder left

    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(member, "evil")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(zpath, tmp_path / "zout")
    assert not (tmp_path / "zout").exists()


def test_symlink_pointing_out_is_refused(tmp_path):
    tar = _tar_with(tmp_path, {"a.txt": b"a"}, link=("link", "../../etc/passwd"))
    with pytest.raises(UnsafeArchiveError):
        safe_extract(tar, tmp_path / "out")


def test_extract_refuses_to_overwrite(tmp_path):
    tar = _tar_with(tmp_path, {"a.txt": b"a"})
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        safe_extract(tar, tmp_path / "out")


def test_atomic_path_gives_new_files_ordinary_permissions_and_cleans_up_on_error(tmp_path):
    import os
    import stat

    from course_lib.data.cache import atomic_path

    old = os.umask(0o022)
    try:
        target = tmp_path / "shared" / "file.bin"
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"data")
        assert target.read_bytes() == b"data"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644  # readable by the class, not only its owner
        with pytest.raises(RuntimeError):
            with atomic_path(tmp_path / "shared" / "broken.bin") as tmp:
                tmp.write_bytes(b"half")
                raise RuntimeError("interrupted")
        assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["file.bin"]  # nothing half-written
    finally:
        os.umask(old)
