import hashlib
import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.data import SOURCES, DataUnavailable, load_image_folder, status
from course_lib.data.archives import ArchiveSource, load_cifar10, load_omniglot
from course_lib.data.idx import read_idx, write_idx
from course_lib.data.mnist import IdxSource, load_fashion_mnist, load_mnist

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz"]


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_idx_fixture(folder, n_train=30, n_test=10) -> IdxSource:
    """Four gzipped IDX files in MNIST's real format, with their checksums."""
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), np.arange(n_train) % 10,
              rng.integers(0, 256, (n_test, 28, 28)), np.arange(n_test) % 10]
    for name, arr in zip(FILES, arrays):
        write_idx(folder / name, arr)
    return arrays, [(name, md5(folder / name)) for name in FILES]


def test_idx_round_trip_and_bad_magic(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx.gz", arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), arr)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", arr)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-3])
    with pytest.raises(ValueError, match="header says"):
        read_idx(tmp_path / "short")


def test_full_mnist_from_a_loopback_mirror(http_server, cache, online, capsys):
    base, www, _ = http_server
    arrays, files = make_idx_fixture(www)
    source = IdxSource("mnist", ("http://127.0.0.1:9/dead-mirror/", base + "/"), tuple(files))
    train, test = load_mnist(source)
    assert train.x.shape == (30, 1, 28, 28) and test.x.shape == (10, 1, 28, 28)
    assert torch.equal(train.y, torch.arange(30) % 10)
    np.testing.assert_allclose(train.x[3, 0].numpy(), arrays[0][3] / 255.0, atol=1e-6)
    assert train.source.startswith("full MNIST") and "full MNIST" in capsys.readouterr().out
    # second load comes from the cache, even with the server gone
    train2, _ = load_mnist(IdxSource("mnist", ("http://127.0.0.1:9/",), tuple(files)))
    assert torch.equal(train2.x, train.x)


def test_mnist_falls_back_to_the_shipped_subset_and_says_so(cache, capsys):
    train, test = load_mnist()
    assert (len(train), len(test)) == (4000, 1000)
    assert train.class_counts() == {str(d): 400 for d in range(10)}
    assert train.x.min() >= 0 and train.x.max() <= 1
    out = capsys.readouterr().out
    assert "5,000-image subset" in out and "course-lib data fetch mnist" in out
    # deterministic split, and train/test disjoint
    train2, _ = load_mnist(quiet=True)
    assert torch.equal(train2.x, train.x)
    assert len(set(test.y[:50].tolist())) >= 8  # the first images mix classes (the source is sorted by class)
    assert not set(map(bytes, train.x[:50].numpy())) & set(map(bytes, test.x.numpy()))


def test_corrupt_cached_file_is_replaced_or_falls_back(cache, capsys):
    (cache / "mnist").mkdir(parents=True)
    (cache / "mnist" / FILES[0]).write_bytes(b"garbage")
    train, _ = load_mnist(quiet=True)
    assert len(train) == 4000  # the checksum failed, the network is off: fallback


def test_fashion_mnist_offline_names_the_fetch_command(cache):
    with pytest.raises(DataUnavailable, match="course-lib data fetch fashion-mnist"):
        load_fashion_mnist()


def test_fashion_mnist_from_file_urls(tmp_path, cache):
    www = tmp_path / "www"
    www.mkdir()
    _, files = make_idx_fixture(www, n_train=20, n_test=20)
    train, test = load_fashion_mnist(IdxSource("fashion-mnist", (www.as_uri() + "/",), tuple(files)), quiet=True)
    assert train.classes[0] == "T-shirt/top" and len(test) == 20


def _cifar_fixture(tmp_path) -> ArchiveSource:
    rng = np.random.default_rng(0)
    buf = tmp_path / "cifar-10-python.tar.gz"
    members = []
    with tarfile.open(buf, "w:gz") as tf:
        def add(name, obj):
            data = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            members.append((name, hashlib.md5(data).hexdigest()))
        for i in range(1, 6):
            add(f"data_batch_{i}", {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]})
        add("test_batch", {"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), "labels": [9] * 6})
        add("batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    return ArchiveSource("cifar10", buf.as_uri(), md5(buf), tuple(members))


def test_cifar10_from_a_verified_archive(tmp_path, cache):
    train, test = load_cifar10(_cifar_fixture(tmp_path), quiet=True)
    assert train.x.shape == (20, 3, 32, 32) and test.x.shape == (6, 3, 32, 32)
    assert train.classes[9] == "c9" and int(test.y[0]) == 9


def test_cifar10_offline_names_the_fetch_command(cache):
    with pytest.raises(DataUnavailable, match="course-lib data fetch cifar10"):
        load_cifar10()


def test_omniglot_from_zips(tmp_path, cache):
    sources = []
    for part in ("images_background", "images_evaluation"):
        zpath = tmp_path / f"{part}.zip"
        with zipfile.ZipFile(zpath, "w") as zf:
            for alphabet in ("Latin", "Greek"):
                for ch in ("character01", "character02"):
                    img = Image.new("L", (105, 105), 255)
                    img.paste(0, (40, 20, 60, 90))  # a black bar on white paper
                    png = io.BytesIO()
                    img.save(png, format="PNG")
                    zf.writestr(f"{part}/{alphabet}/{ch}/0001_01.png", png.getvalue())
        sources.append(ArchiveSource("omniglot", zpath.as_uri(), md5(zpath)))
    background, evaluation = load_omniglot(size=28, sources=sources, quiet=True)
    assert background.x.shape == (4, 1, 28, 28) and len(background.classes) == 4
    assert background.x[0, 0, 14, 14] > 0.9 and background.x[0, 0, 1, 1] < 0.1  # ink bright on dark


def test_image_folder_loader(tmp_path):
    for cls, n in (("10", 2), ("2", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / cls / f"{i}.png")
    imgs = load_image_folder(tmp_path, 16)
    assert imgs.classes == ["2", "10"]  # numeric order
    assert imgs.x.shape == (5, 3, 16, 16) and imgs.class_counts() == {"2": 3, "10": 2}
    gray = load_image_folder(tmp_path, (8, 12), mode="L")
    assert gray.x.shape == (5, 1, 8, 12)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="one sub-folder per class"):
        load_image_folder(tmp_path / "nope", 8)
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path, 8)
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_image_folder(tmp_path, 8)
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image .*broken.png"):
        load_image_folder(tmp_path, 8)
    with pytest.raises(FileNotFoundError, match=r"\['b'\] not found"):
        load_image_folder(tmp_path, 8, classes=["a", "b"])


def test_status_lists_every_source(cache):
    table = status()
    assert set(SOURCES) | {"course-digits"} == set(table.name)
    assert {"mnist", "fashion-mnist", "omniglot", "cifar10", "the-scream", "tfhub-stylization"} <= set(SOURCES)
    assert (table[table.name == "mnist"]["in cache"] == "missing").all()
