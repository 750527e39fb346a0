"""Traffic signs (notebook 05): folder and GTSRB loaders on fixture folders, the stand-in, the augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.data import traffic_signs as ts
from course_lib.data.imageset import ImageSet


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (20, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture
def class_folders(tmp_path) -> Path:
    """The document's layout: 12/, 13/, ... 6/ with 3 PNGs each (class k tinted by k)."""
    root = tmp_path / "Train"
    for k, c in enumerate(ts.CLASSES):
        for i in range(3):
            _png(root / str(c) / f"img{i}.png", (20 * k, 100, 200 - 10 * i))
    return root


def _gtsrb(root: Path, classes=ts.GTSRB_CLASSES, tracks: int = 3, per_track: int = 4,
           columns: list[str] | None = None) -> Path:
    """GTSRB's layout: 000NN/GT-000NN.csv plus PPM images whose ROI is red inside a blue frame.

    The green channel of the ROI encodes (class, track), so tests can tell where an image came from.
    """
    for c in classes:
        folder = root / f"{c:05d}"
        folder.mkdir(parents=True)
        rows = []
        for t in range(tracks):
            for i in range(per_track):
                name = f"{t:05d}_{i:05d}.ppm"
                im = Image.new("RGB", (30, 26), (0, 0, 255))
                im.paste(Image.new("RGB", (20, 16), (255, 4 * c + 50 * t, 0)), (5, 5))  # ROI (5,5)-(24,20)
                im.save(folder / name)
                rows.append(f"{name};30;26;5;5;24;20;{c}")
        header = ";".join(columns or ts.GTSRB_COLUMNS)
        (folder / f"GT-{c:05d}.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return root


# ----------------------------------------------------------------------------- the document's folders
def test_class_folders_load_as_75px_rgb_named_by_number(class_folders):
    data = ts.load_class_folders(class_folders)
    assert isinstance(data, ImageSet) and data.x.shape == (30, 3, 75, 75)
    assert data.classes == [str(c) for c in ts.CLASSES]
    assert set(data.class_counts().values()) == {3}
    # class k's images carry red = 20 k / 255 (resizing a flat colour keeps it)
    for k in range(10):
        assert torch.allclose(data.x[data.y == k][:, 0], torch.tensor(20 * k / 255), atol=1e-3)


def test_class_folders_accept_zero_padded_names_and_other_sizes(tmp_path):
    for c in (1, 2):
        _png(tmp_path / f"{c:05d}" / "a.png", (10, 20, 30))
    data = ts.load_class_folders(tmp_path, classes=(2, 1), size=64)
    assert data.x.shape == (2, 3, 64, 64) and data.classes == ["2", "1"]


def test_missing_class_folder_is_a_clear_error(class_folders):
    (class_folders / "24" / "img0.png").unlink()
    for f in (class_folders / "24").iterdir():
        f.unlink()
    (class_folders / "24").rmdir()
    with pytest.raises(FileNotFoundError, match=r"class folder\(s\) \[24\] not found"):
        ts.load_class_folders(class_folders)


def test_empty_folder_and_unreadable_image_are_clear_errors(class_folders):
    for f in (class_folders / "13").iterdir():
        f.unlink()
    with pytest.raises(ValueError, match="holds no images"):
        ts.load_class_folders(class_folders)
    (class_folders / "13" / "broken.png").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="cannot read image"):
        ts.load_class_folders(class_folders)


# ----------------------------------------------------------------------------- GTSRB
def test_gtsrb_crops_the_roi(tmp_path):
    root = _gtsrb(tmp_path / "Images", classes=(1, 2), tracks=1, per_track=2)
    data = ts.load_gtsrb(root, classes=(1, 2), size=32)
    assert data.x.shape == (4, 3, 32, 32) and data.classes == ["1", "2"]
    assert data.y.tolist() == [0, 0, 1, 1]
    # inside the ROI the picture is red with no blue frame left over
    assert float(data.x[:, 0].min()) > 0.99 and float(data.x[:, 2].max()) < 0.01


def test_gtsrb_resized_copies_with_the_original_csv_are_cropped_to_their_real_roi(tmp_path, capsys):
    # a common form on data-sharing sites: images resized, the original CSVs (sizes, ROI boxes) kept
    root = _gtsrb(tmp_path / "Images", classes=(1, 2), tracks=1, per_track=2)
    for ppm in root.rglob("*.ppm"):
        with Image.open(ppm) as im:
            im.resize((60, 52), Image.NEAREST).save(ppm)  # twice the listed 30x26
    data = ts.load_gtsrb(root, classes=(1, 2), size=32)
    # the crop is red inside the ROI: no black padding, no blue frame
    assert float(data.x[:, 0].min()) > 0.99 and float(data.x[:, 2].max()) < 0.01
    assert any("4 of 4 images are resized copies" in n for n in data.notes)
    for ppm in root.rglob("*.ppm"):  # and smaller than listed
        with Image.open(ppm) as im:
            im.resize((15, 13), Image.NEAREST).save(ppm)
    small = ts.load_gtsrb(root, classes=(1, 2), size=32)
    assert float(small.x[:, 0].min()) > 0.9 and float(small.x[:, 2].max()) < 0.1


def test_gtsrb_csv_that_leaves_no_roi_is_a_clear_error(tmp_path):
    root = _gtsrb(tmp_path / "Images", classes=(1,), tracks=1, per_track=1)
    csv = root / "00001" / "GT-00001.csv"
    csv.write_text(csv.read_text().replace(";30;26;5;5;24;20;", ";30;26;29;25;29;25;"))
    with pytest.raises(ValueError, match="leaves less than 2 pixels"):
        ts.load_gtsrb(root, classes=(1,))


def test_gtsrb_csv_with_wrong_columns_is_a_clear_error(tmp_path):
    root = _gtsrb(tmp_path / "Images", classes=(1,), tracks=1, per_track=1,
                  columns=["Filename", "Width", "Height", "X1", "Y1", "X2", "Y2", "ClassId"])
    with pytest.raises(ValueError, match="expected the ';'-separated GTSRB columns"):
        ts.load_gtsrb(root, classes=(1,))


def test_gtsrb_missing_class_and_per_class_subsample(tmp_path):
    root = _gtsrb(tmp_path / "Images", classes=(1, 2), tracks=2, per_track=3)
    with pytest.raises(FileNotFoundError, match="00007"):
        ts.load_gtsrb(root, classes=(1, 7))
    data = ts.load_gtsrb(root, classes=(1, 2), size=16, per_class=[2, 5])
    assert data.class_counts() == {"1": 2, "2": 5}


def test_gtsrb_split_keeps_tracks_apart(tmp_path):
    root = _gtsrb(tmp_path / "Images", tracks=3, per_track=4)
    train, test = ts.split_gtsrb(root, size=16, train_counts=[4] * 10, test_per_class=3)
    assert len(train) == 40 and len(test) == 30
    # green encodes (class, track): no (class, track) pair appears on both sides
    key = lambda d: {(int(y), round(float(g) * 255)) for y, g in zip(d.y, d.x[:, 1, 8, 8])}  # noqa: E731
    assert key(train).isdisjoint(key(test))


# ----------------------------------------------------------------------------- the stand-in
@pytest.fixture(scope="module")
def standin() -> tuple[ImageSet, ImageSet]:
    return ts.make_standin()


def test_standin_has_the_documents_size_and_imbalance(standin):
    train, test = standin
    counts = train.class_counts()
    assert len(train) == 277 and train.x.shape[1:] == (3, 75, 75)
    assert counts["6"] == 78 and counts["24"] == 8
    assert all(8 <= n <= 78 for n in counts.values()) and max(counts, key=counts.get) == "6"
    assert min(counts, key=counts.get) == "24"
    assert train.classes == [str(c) for c in ts.CLASSES]
    assert set(test.class_counts().values()) == {ts.STANDIN_TEST_PER_CLASS}
    for d in (train, test):
        assert not d.real and "STAND-IN" in d.source
        assert d.x.dtype == torch.float32 and 0 <= float(d.x.min()) and float(d.x.max()) <= 1


def test_standin_is_deterministic_and_its_test_split_is_new_images(standin):
    a, _ = ts.make_standin(seed=0, size=32)
    b, _ = ts.make_standin(seed=0, size=32)
    c, _ = ts.make_standin(seed=1, size=32)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    train, test = standin
    # no test image equals a training image
    assert torch.cdist(test.x.flatten(1), train.x.flatten(1)).min() > 1.0


def test_standin_classes_differ_in_colour(standin):
    train, _ = standin
    # the centre of a blue sign (38) is bluer than the centre of a yellow one (12)
    centre = train.x[:, :, 30:45, 30:45].mean((2, 3))
    blue = centre[train.y == train.classes.index("38")]
    yellow = centre[train.y == train.classes.index("12")]
    assert (blue[:, 2] - blue[:, 0]).mean() > (yellow[:, 2] - yellow[:, 0]).mean() + 0.2


def test_load_traffic_signs_falls_back_to_the_standin_and_says_so(cache, capsys):
    train, test = ts.load_traffic_signs()
    assert "GENERATED STAND-IN" in capsys.readouterr().out
    assert len(train) == 277 and not train.real and len(test) == 100
    with pytest.raises(FileNotFoundError, match="traffic-signs"):
        ts.load_traffic_signs(fallback=False)


def test_load_traffic_signs_reads_real_layouts(class_folders, tmp_path, capsys):
    train, test = ts.load_traffic_signs(class_folders, test_fraction=0.34)
    assert train.real and len(train) + len(test) == 30 and set(test.class_counts().values()) == {1}
    assert "class folders" in capsys.readouterr().out
    root = _gtsrb(tmp_path / "GTSRB" / "Final_Training" / "Images")
    train, test = ts.load_traffic_signs(tmp_path / "GTSRB", size=16)
    assert "GTSRB" in train.source and train.classes == [str(c) for c in ts.GTSRB_CLASSES]
    assert root.exists()
    with pytest.raises(FileNotFoundError, match="no traffic-sign class folders"):
        ts.load_traffic_signs(tmp_path / "nothing-here")


# ----------------------------------------------------------------------------- augmentation
def test_augmentation_changes_every_image_and_keeps_shapes(standin):
    x = standin[0].x[::25]
    out = ts.augment_images(x, seed=0)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert bool(((out - x).abs().flatten(1).mean(1) > 0.01).all())  # p = 1: nothing passes through unchanged
    assert torch.equal(out, ts.augment_images(x, seed=0))


def test_augmentation_mirrors_borders_instead_of_padding_black():
    grey = torch.full((4, 3, 40, 40), 0.6)
    out = ts.augment_images(grey, ts.augment_pipeline(40, hue=0.0, saturation=0.0), seed=1)
    assert float(out.min()) > 0.3  # rotation and perspective would leave black corners without reflection


def test_resize_for_the_generators(standin):
    small = ts.resize(standin[1], 64)
    assert small.x.shape == (100, 3, 64, 64) and torch.equal(small.y, standin[1].y) and "64x64" in small.source


def test_enlarge_triples_the_set(standin):
    small = standin[0].subset(np.arange(0, 277, 30))
    big = ts.enlarge(small, factor=3)
    assert len(big) == 3 * len(small) and torch.equal(big.y, small.y.repeat(3))
    assert torch.equal(big.x[:len(small)], small.x)
    assert not torch.equal(big.x[len(small):2 * len(small)], small.x)
    with pytest.raises(ValueError, match="factor"):
        ts.enlarge(small, factor=0)
