"""Inputs that used to exhaust memory or give silent, degenerate results (issue 20, items 7 and 8)."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_lib import images
from course_lib.images import MAX_PIXELS, ImageError, load_rgb
from course_lib.style import MIN_OUTPUT_SIDE, StyleBackend


# ---- item 7: huge pictures are shrunk while decoding, and refused above a stated limit ---------------

def _gradient(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], axis=2).astype(np.uint8)


def _peak_traced(fn) -> tuple[object, int]:
    """Run ``fn``; return its result and the peak of memory traced by tracemalloc (NumPy arrays included)."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_files_never_become_full_size_float_arrays(tmp_path, fmt, capsys):
    h, w = 1500, 2400
    path = tmp_path / f"big.{fmt.lower()}"
    Image.fromarray(_gradient(h, w)).save(path, format=fmt)
    full_float = h * w * 3 * 4  # what converting before shrinking allocates (float32 RGB)
    out, peak = _peak_traced(lambda: load_rgb(path, max_side=200))
    assert out.shape == (125, 200, 3) and out.dtype == np.float32
    assert peak < full_float / 10, f"peak {peak:,} bytes: the full picture was converted to floats"
    # the shrunk picture still looks like the original (a smooth gradient)
    expected = _gradient(h, w)[::12, ::12][:125, :200] / 255
    assert np.abs(out - expected).mean() < 0.02
    assert "2400x1500 pixels; shrunk to 200x125" in capsys.readouterr().out


def test_jpeg_is_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    path = tmp_path / "big.jpg"
    Image.fromarray(_gradient(1600, 2400)).save(path, quality=90)
    seen: list[tuple[int, int]] = []
    shrink = images._shrink_pil
    monkeypatch.setattr(images, "_shrink_pil", lambda img, side: (seen.append(img.size), shrink(img, side))[1])
    load_rgb(path, max_side=200, quiet=True)
    assert seen == [(300, 200)]  # the decoder's 1/8 scale: the full 2400x1600 was never decoded


def test_16_bit_and_transparent_files_keep_their_values_when_shrunk(tmp_path):
    deep = np.tile(np.linspace(0, 65535, 1600), (1000, 1)).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    out, peak = _peak_traced(lambda: load_rgb(path, max_side=160, quiet=True))
    assert out.shape == (100, 160, 3) and peak < deep.size * 8 / 10  # no full-size float64 copy
    assert out[0, 0, 0] < 0.01 and out[0, -1, 0] > 0.99 and 0.45 < out[0, 80, 0] < 0.55  # scaled by 65535
    rgba = np.zeros((800, 800, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :400, 3] = 255  # left half opaque red, right half transparent (black underneath)
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(path)
    out = load_rgb(path, max_side=80, quiet=True)
    assert np.allclose(out[5, 5], [1, 0, 0], atol=0.01) and np.allclose(out[5, 75], [1, 1, 1], atol=0.01)


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` RGB pixels, with one tiny (wrong) data chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


def test_pictures_over_the_pixel_limit_are_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(12000, 12000))  # 144 megapixels, the size of the example
    with pytest.raises(ImageError, match=r"is 12000x12000 pixels \(144 megapixels\); the limit is 80,000,000 "
                                         r"pixels .*Shrink it first"):
        load_rgb(path)
    with pytest.raises(ImageError, match=r"has 200,000,000 pixels; the limit is 80,000,000"):
        load_rgb(_png_claiming(20000, 10000))  # beyond Pillow's own bomb limit: the same kind of message
    assert MAX_PIXELS == 80_000_000


def test_the_pixel_limit_applies_to_arrays_and_pil_images(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    for picture in (np.zeros((100, 200, 3), np.uint8), Image.new("RGB", (200, 100))):
        with pytest.raises(ImageError, match=r"200x100 pixels .*the limit is 10,000 pixels"):
            load_rgb(picture)
    assert load_rgb(np.zeros((99, 100, 3), np.uint8)).shape == (99, 100, 3)


def test_exif_rotated_photos_are_reported_and_shrunk_as_shown(tmp_path, capsys):
    exif = Image.Exif()
    exif[images.ORIENTATION_TAG] = 6  # stored lying on its side
    path = tmp_path / "phone.jpg"
    Image.fromarray(_gradient(300, 900)).save(path, exif=exif)
    out = load_rgb(path, max_side=90)
    assert out.shape == (90, 30, 3) and "is 300x900 pixels; shrunk to 30x90" in capsys.readouterr().out


# ---- item 8: very thin content pictures ---------------------------------------------------------

def test_very_elongated_pictures_are_refused_with_the_limit():
    with pytest.raises(ImageError, match=r"4000x40 pixels: its longer side is 100 times its shorter, and the "
                                         r"limit is 8 times \(so at least 500 pixels on the shorter side"):
        load_rgb(np.zeros((40, 4000, 3), np.uint8))
    with pytest.raises(ImageError, match="limit is 8 times"):
        StyleBackend.prepare_content(np.zeros((40, 4000, 3), np.uint8), 128)  # the 1x128 output
    assert load_rgb(np.zeros((40, 320, 3), np.uint8)).shape == (40, 320, 3)  # 8:1 is still allowed


def test_a_content_picture_too_thin_for_the_output_size_names_a_size_that_works():
    content = np.zeros((40, 300, 3), np.uint8)  # 7.5:1, allowed as a picture
    with pytest.raises(ImageError, match=rf"at size 64 .* come out 64x9 pixels; the shorter side needs at "
                                         rf"least {MIN_OUTPUT_SIDE} pixels: choose a size of at least 114"):
        StyleBackend.prepare_content(content, 64)
    assert StyleBackend.prepare_content(content, 120).shape == (16, 120, 3)


# ---- item 8: class folders: duplicate numbers, non-ASCII digits, hidden and system files -------------

def _picture(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 16), colour).save(path)
    return path


def _litter(folder: Path) -> None:
    """What a Mac, Windows or a zip tool leaves beside pictures: none of it is a picture."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "._img0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble resource fork, not a PNG")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 thumbnail cache")
    (folder / ".hidden.jpg").write_bytes(b"not a jpeg")


def _traffic_sign_folders(root: Path) -> Path:
    from course_lib.data.traffic_signs import CLASSES
    for k, c in enumerate(CLASSES):
        for i in range(2):
            _picture(root / str(c) / f"img{i}.png", (20 * k, 100, 200))
    return root


def test_two_folders_for_one_class_number_are_refused_naming_both(tmp_path):
    from course_lib.data import traffic_signs as ts
    from course_lib.data.folders import load_image_folder
    root = _traffic_sign_folders(tmp_path / "signs")
    _picture(root / "012" / "other.png")  # beside 12/: the same class number
    message = r"class folders '012' and '12' in .*signs both name class 12; keep one of them"
    for load in (lambda: ts.load_class_folders(root), lambda: ts.load_traffic_signs(root, quiet=True),
                 lambda: load_image_folder(root, 8)):
        with pytest.raises(ValueError, match=message):
            load()


def test_class_folders_named_with_non_ascii_digits_get_a_clear_message(tmp_path):
    from course_lib.data import traffic_signs as ts
    from course_lib.data.folders import class_number, load_image_folder
    assert "²".isdigit()  # why a plain isdigit() check let it through to int()
    root = _traffic_sign_folders(tmp_path / "signs")
    _picture(root / "²" / "a.png")
    message = r"folder name '²' is made of non-ASCII digit characters; name numbered class folders with the digits 0-9"
    for load in (lambda: ts.load_class_folders(root), lambda: load_image_folder(root, 8)):
        with pytest.raises(ValueError, match=message):
            load()
    with pytest.raises(ValueError, match="non-ASCII"):
        class_number("١٢")  # Arabic-Indic twelve: int() would read it, but it is no folder number
    assert (class_number("00012"), class_number("Normal"), class_number("")) == (12, None, None)


def test_hidden_and_system_files_are_skipped_by_the_folder_loaders(tmp_path):
    from course_lib.data import traffic_signs as ts
    from course_lib.data.folders import load_image_folder
    root = tmp_path / "plain"
    for cls in ("a", "b"):
        _picture(root / cls / "img0.png")
        _litter(root / cls)
    _picture(root / "__MACOSX" / "a" / "img0.png")  # a zip made on a Mac: not a class
    _litter(root / ".Trashes" / "x")
    data = load_image_folder(root, 8)
    assert data.classes == ["a", "b"] and len(data) == 2
    # a Mac zip of the traffic signs: __MACOSX/signs/12/._img0.png sorts before signs/ and must not be taken
    zipped = tmp_path / "unzipped"
    _traffic_sign_folders(zipped / "signs")
    from course_lib.data.traffic_signs import CLASSES
    for c in CLASSES:
        _litter(zipped / "signs" / str(c))
        _litter(zipped / "__MACOSX" / "signs" / str(c))
    train, test = ts.load_traffic_signs(zipped, quiet=True)
    assert len(train) + len(test) == 2 * len(CLASSES) and "unzipped/signs" in train.source


def test_hushem_skips_hidden_folders_and_files(tmp_path):
    from course_lib.data.hushem import find_hushem_root, load_hushem_folder
    root = tmp_path / "download"
    for c in ("01_Normal", "02_Tapered", "03_Pyriform", "04_Amorphous"):
        _picture(root / "HuSHeM" / c / "image_00.BMP")
        _litter(root / "HuSHeM" / c)
        _litter(root / "__MACOSX" / "HuSHeM" / c)
    assert find_hushem_root(root) == root / "HuSHeM"
    assert len(load_hushem_folder(root)) == 4


def test_students_drawn_digits_load_beside_macos_leftovers(tmp_path, cache):
    from course_lib.data import status
    from course_lib.data.course_digits import drawn_digits_folder, load_course_digits, save_drawn_digit
    canvas = np.zeros((200, 200, 4), np.uint8)
    canvas[40:160, 90:110, 3] = 255
    save_drawn_digit(canvas, 1)
    _litter(drawn_digits_folder() / "1")
    _litter(drawn_digits_folder())
    digits = load_course_digits(quiet=True)  # what notebook 02 calls
    assert len(digits) == 1797 + 1 and "1 drawn by students" in digits.source
    table = status()
    assert table.loc[table.name == "course-digits", "in cache"].item() == "1 drawn digits"


def test_an_unreadable_real_image_gets_one_message_with_its_path(tmp_path):
    from course_lib.data.course_digits import load_drawn_digits
    from course_lib.data.folders import load_image_folder
    _picture(tmp_path / "set" / "a" / "good.png")
    (tmp_path / "set" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    with pytest.raises(ValueError, match=r"cannot read image .*set/a/broken.png: .*replace or delete") as info:
        load_image_folder(tmp_path / "set", 8)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # one message, not two tracebacks
    (tmp_path / "drawn" / "3").mkdir(parents=True)
    (tmp_path / "drawn" / "3" / "x.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"cannot read drawn digit .*drawn/3/x.png") as info:
        load_drawn_digits(tmp_path / "drawn")
    assert info.value.__suppress_context__


# ---- item 8: a running-away NumPy autoencoder stops with TrainingDiverged ----------------------------

def test_numpy_training_stops_when_the_energy_explodes():
    from course_lib.data.bioprocess import make_process_dataset, split_and_scale
    from course_lib.models.numpy_autoencoder import EXPLODED_FACTOR, NumpyAutoencoder, energy, train_numpy
    from course_lib.train import TrainingDiverged
    splits = split_and_scale(make_process_dataset(1, n_samples=60), seed=0)
    model = NumpyAutoencoder.create(7, seed=0)
    start = max(energy(model(splits.train), splits.train), energy(np.zeros_like(splits.train), splits.train))
    with pytest.raises(TrainingDiverged, match=r"the energy exploded to \S+ \(over 1000 times its start, "
                                               r"0.913\) in epoch (\d+) of 10; lower the learning rate "
                                               r"\(now 1000.0\), e.g. to 100") as info:
        train_numpy(model, splits.train, epochs=10, lr=1e3)
    exploded = float(str(info.value).split("exploded to ")[1].split(" ")[0])
    assert np.isfinite(exploded) and exploded > EXPLODED_FACTOR * start  # finite: caught before infinity
    sane = train_numpy(NumpyAutoencoder.create(7, seed=0), splits.train, epochs=10, lr=0.5)  # a good rate runs on
    assert len(sane.train_energy) == 10 and sane.train_energy[-1] < start
