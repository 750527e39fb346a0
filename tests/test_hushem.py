"""HuSHeM loader (published folder layout, fixture BMPs written here), offline stand-in, split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.data.cache import cache_dir
from course_lib.data.hushem import (CLASSES, COUNTS, find_hushem_root, hushem_standin, load_hushem,
                                    load_hushem_folder, resize, split_hushem)

FOLDERS = ("01_Normal", "02_Tapered", "03_Pyriform", "04_Amorphous")


def _write_fixture(root, per_class: int = 3, size: int = 131) -> None:
    for c, folder in enumerate(FOLDERS):
        (root / folder).mkdir(parents=True)
        for i in range(per_class):
            rgb = np.zeros((size, size, 3), np.uint8)
            rgb[..., c % 3] = 40 * (i + 1)          # a flat colour: its grey level is known
            Image.fromarray(rgb).save(root / folder / f"image_{i:02d}.BMP", format="BMP")


def test_loader_reads_the_published_layout(tmp_path):
    root = tmp_path / "HuSHeM"
    _write_fixture(root)
    data = load_hushem_folder(root)
    assert data.x.shape == (12, 1, 132, 132) and data.x.dtype == torch.float32
    assert data.classes == list(CLASSES) and data.real
    assert data.class_counts() == {c: 3 for c in CLASSES}
    # grey = 0.299 R + 0.587 G + 0.114 B (PIL's 'L'): class 0 is red, class 1 green, class 2 blue
    for label, weight in ((0, 0.299), (1, 0.587), (2, 0.114)):
        first = data.x[data.y == label][0]
        assert float(first.mean()) == pytest.approx(weight * 40 / 255, abs=2 / 255)


def test_loader_finds_nested_folders_and_the_cache(tmp_path, cache, capsys):
    _write_fixture(tmp_path / "download" / "HuSHeM" / "Images")
    assert find_hushem_root(tmp_path / "download") == tmp_path / "download" / "HuSHeM" / "Images"
    assert len(load_hushem(tmp_path / "download", quiet=True)) == 12
    _write_fixture(cache_dir("hushem") / "HuSHeM", per_class=2)
    data = load_hushem()
    assert len(data) == 8 and data.real
    assert "real images" in capsys.readouterr().out


def test_missing_or_broken_data_gets_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="four sub-folders"):
        load_hushem_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="no HuSHeM class folders"):
        load_hushem(tmp_path)
    root = tmp_path / "bad"
    _write_fixture(root, per_class=1)
    (root / "01_Normal" / "broken.bmp").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        load_hushem_folder(root)


def test_standin_when_absent(cache, capsys):
    data = load_hushem()
    out = capsys.readouterr().out
    assert "STAND-IN" in out and "download HuSHeM" in out and out.count("\n") == 1
    assert not data.real and "stand-in" in data.describe()
    assert data.x.shape == (216, 1, 132, 132)
    assert data.class_counts() == COUNTS
    assert 0 <= float(data.x.min()) and float(data.x.max()) <= 1
    assert torch.equal(data.x, hushem_standin().x)               # deterministic
    with pytest.raises(FileNotFoundError, match="not in the course cache"):
        load_hushem(fallback=False)


def test_standin_classes_differ_in_shape():
    data = hushem_standin(size=64)
    dark = (data.x < 0.55).float().flatten(1).sum(1)             # head area in pixels
    areas = [float(dark[data.y == c].mean()) for c in range(4)]
    assert areas[1] < areas[0]                                   # tapered heads are thinner than normal ones


def test_split_keeps_forty_per_class_for_training():
    data = hushem_standin(size=32)
    train, test = split_hushem(data)
    assert train.class_counts() == {c: 40 for c in CLASSES}
    assert test.class_counts() == {c: COUNTS[c] - 40 for c in CLASSES}
    assert len(train) + len(test) == 216
    with pytest.raises(ValueError, match="need more than"):
        split_hushem(data, train_per_class=60)
    assert resize(train, 16).x.shape == (160, 1, 16, 16)
