"""Caltech 101 Silhouettes loader, on small .mat fixtures written in the published file's layout."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from scipy.io import savemat

from course_lib.data import silhouettes as sil
from course_lib.data.mnist import DataUnavailable


def _fixture(path, n=(6, 4, 5), classes=3, drop: str | None = None):
    """A .mat with the published variable names; image k of each split has a bar in row k (MATLAB order)."""
    rng = np.random.default_rng(0)
    mat = {}
    for split, count in zip(sil.SPLITS, n):
        images = np.ones((count, 28, 28))           # background 1, object 0, as in the real file
        for k in range(count):
            images[k, k, 2:20] = 0.0                 # a dark bar along row k
        mat[f"{split}_data"] = images.transpose(0, 2, 1).reshape(count, 784)  # stored column by column
        mat[f"{split}_labels"] = (rng.integers(0, classes, count) + 1).reshape(-1, 1).astype(np.uint8)
    mat[f"{sil.SPLITS[0]}_labels"][0, 0] = classes   # make sure the top class occurs
    mat["classnames"] = np.array([[np.array([f"thing{i}"]) for i in range(classes)]], dtype=object)
    if drop:
        del mat[drop]
    savemat(path, mat)
    return mat


def test_reads_fixture_layout_labels_and_names(tmp_path):
    path = tmp_path / sil.FILENAME
    mat = _fixture(path)
    sets = sil.read_silhouettes_mat(path)
    assert {k: len(v) for k, v in sets.items()} == {"train": 6, "val": 4, "test": 5}
    train = sets["train"]
    assert train.x.shape == (6, 1, 28, 28) and train.x.dtype == torch.float32
    # transposed back to rows and inverted: the bar of image k is bright in row k, columns 2..19
    assert torch.all(train.x[3, 0, 3, 2:20] == 1.0) and train.x[3, 0, 3, 25] == 0.0
    assert train.x[3, 0, 2:20, 3].sum() == 1.0  # not in column 3 (that would be the untransposed layout)
    assert torch.equal(train.y, torch.from_numpy(mat["train_labels"].ravel().astype(np.int64) - 1))
    assert train.classes == ["thing0", "thing1", "thing2"]


def test_load_merges_validation_into_train(tmp_path):
    path = tmp_path / sil.FILENAME
    _fixture(path)
    train, test = sil.load_silhouettes(path, quiet=True)
    assert len(train) == 10 and len(test) == 5
    train_only, _ = sil.load_silhouettes(path, merge_val=False, quiet=True)
    assert len(train_only) == 6


def test_missing_variable_is_named(tmp_path):
    path = tmp_path / "bad.mat"
    _fixture(path, drop="val_labels")
    with pytest.raises(ValueError, match=r"missing variables \['val_labels'\]"):
        sil.read_silhouettes_mat(path)


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "junk.mat"
    path.write_bytes(b"this is not matlab")
    with pytest.raises(ValueError, match="not a readable MATLAB"):
        sil.read_silhouettes_mat(path)


def test_offline_without_file_says_how_to_get_it(cache):
    with pytest.raises(DataUnavailable, match="Caltech 101 Silhouettes is not in the course cache"):
        sil.load_silhouettes(quiet=True)
    with pytest.raises(DataUnavailable, match="course-lib data fetch caltech-silhouettes"):
        sil.load_silhouettes(sha256="0" * 64, quiet=True)


def test_downloads_with_checksum_from_a_server(cache, online, http_server, tmp_path, monkeypatch):
    base, root, _ = http_server
    _fixture(root / sil.FILENAME)
    digest = hashlib.sha256((root / sil.FILENAME).read_bytes()).hexdigest()
    monkeypatch.setattr(sil, "URL", f"{base}/{sil.FILENAME}")
    train, test = sil.load_silhouettes(sha256=digest, quiet=True)
    assert len(train) == 10 and sil.silhouettes_path().is_file()
    # a wrong checksum is refused and leaves no file behind
    sil.silhouettes_path().unlink()
    with pytest.raises(DataUnavailable, match="sha256"):
        sil.load_silhouettes(sha256="0" * 64, quiet=True)
    assert not sil.silhouettes_path().exists()
