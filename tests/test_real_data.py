"""Issue 19: data as users bring it - wrong files named as such, one error type, honest ``data list``."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import DataUnavailable, load_mnist
from course_lib.data.errors import UnusableData
from course_lib.data.mnist import mnist_source

FILES = [name for name, _ in mnist_source().files]


def test_a_wrong_file_in_the_cache_is_named_not_blamed_on_the_network(cache, capsys):
    (cache / "mnist").mkdir(parents=True)
    bad = cache / "mnist" / FILES[0]
    bad.write_bytes(b"garbage")
    with pytest.raises(UnusableData) as info:
        load_mnist(fallback=False, quiet=True)
    message = str(info.value)
    assert str(bad) in message and "md5" in message and "could not be reached" not in message
    assert isinstance(info.value, DataUnavailable)  # notebooks that skip missing data skip this too
    load_mnist()  # with the fallback: the line says which file is wrong
    out = capsys.readouterr().out
    assert f"{bad} is in the cache but is not the published file" in out


def test_offline_the_mirrors_are_not_tried_and_the_message_says_why(cache):
    with pytest.raises(DataUnavailable) as info:
        load_mnist(fallback=False, quiet=True)
    message = str(info.value)
    assert "not tried (COURSE_OFFLINE is set)" in message and "course-lib data fetch mnist" in message
    assert "(offline)" not in message


def test_data_list_reports_what_the_loader_would_use(cache, tmp_path):
    from course_lib.cli import main
    from course_lib.data import status
    from course_lib.data.idx import write_idx
    import numpy as np
    (cache / "mnist").mkdir(parents=True)
    # MNIST with only its test files (valid IDX, but not the published ones): not "real data"
    write_idx(cache / "mnist" / FILES[2], np.zeros((2, 28, 28), np.uint8))
    write_idx(cache / "mnist" / FILES[3], np.zeros(2, np.uint8))
    (cache / "cifar10" / "cifar-10-python" / "airplane").mkdir(parents=True)  # an ImageFolder copy, say
    (cache / "cifar10" / "cifar-10-python" / "airplane" / "0.png").write_bytes(b"x" * 100)
    table = status().set_index("name")
    assert table.loc["mnist", "in cache"] == "unusable"  # the test files there are not the published ones
    assert "4 of 4 files of mnist are not usable" in table.loc["mnist", "detail"]
    assert table.loc["cifar10", "in cache"] == "unusable"
    assert "incomplete" in table.loc["cifar10", "detail"]
    assert table.loc["fashion-mnist", "in cache"] == "missing"
    assert main(["data", "list"]) == 0


def test_data_fetch_prints_the_whole_cause(cache, capsys):
    from course_lib.cli import main
    assert main(["data", "fetch", "fashion-mnist"]) == 1
    out = capsys.readouterr().out
    assert "fashion-mnist" in out and "not tried (COURSE_OFFLINE is set)" in out  # the cause, not only line one


def _png(path, colour=(200, 10, 10), size=(32, 32), mode="RGB"):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def test_cifar10_as_class_folders_of_images(cache, capsys):
    from course_lib.data.archives import CIFAR10_CLASSES, load_cifar10
    for part, n in (("train", 2), ("test", 1)):
        for k, cls in enumerate(CIFAR10_CLASSES):
            for i in range(n):
                _png(cache / "cifar10" / part / cls / f"{i}.png", (20 * k, 0, 0))
    (cache / "cifar10" / "train" / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS litter
    train, test = load_cifar10()
    assert train.x.shape == (20, 3, 32, 32) and test.x.shape == (10, 3, 32, 32)
    assert train.classes == list(CIFAR10_CLASSES)
    k = CIFAR10_CLASSES.index("dog")
    assert abs(float(train.x[train.y == k][:, 0].mean()) - 20 * k / 255) < 1e-3  # labels follow CIFAR's order
    assert "class folders" in train.source and "class folders" in capsys.readouterr().out


def test_cifar10_class_folders_with_other_names_say_what_is_expected(cache):
    from course_lib.data.archives import load_cifar10
    _png(cache / "cifar10" / "train" / "plane" / "0.png")
    _png(cache / "cifar10" / "test" / "plane" / "0.png")
    with pytest.raises(UnusableData, match="expected CIFAR-10's ten class folders .* found plane"):
        load_cifar10(quiet=True)


def test_omniglot_small_background_set_is_used_when_unpacked(cache):
    from course_lib.data.archives import load_omniglot
    for part in ("images_background_small1", "images_evaluation"):
        for ch in ("character01", "character02"):
            _png(cache / "omniglot" / part / "Latin" / ch / "0001_01.png", 255, (105, 105), "L")
    background, evaluation = load_omniglot(quiet=True)
    assert "images_background_small1" in background.source and len(background.classes) == 2
    (cache / "omniglot" / "images_background_small1").rename(cache / "omniglot" / "elsewhere")
    (cache / "omniglot" / "images_background_small2.zip").write_bytes(b"PK")
    with pytest.raises(UnusableData, match="Unpack it into"):
        load_omniglot(quiet=True)


def test_omniglot_folder_without_pngs_is_unusable_data_not_a_raw_error(cache):
    from course_lib.data.archives import load_omniglot
    for part in ("images_background", "images_evaluation"):
        (cache / "omniglot" / part / "Latin").mkdir(parents=True)
    with pytest.raises(UnusableData, match="no PNG images"):
        load_omniglot(quiet=True)


NAMES = {12: "priority road", 13: "yield", 24: "road narrows", 38: "keep right", 39: "keep left",
         44: "info", 46: "panel", 49: "stop", 50: "no entry", 6: "speed limit"}


def _named_sign_folders(root):
    for k, (number, name) in enumerate(NAMES.items()):
        for i in range(3):
            _png(root / name / f"{i}.png", (20 * k, 100, 100), (40, 40))


def test_named_traffic_sign_folders_say_what_is_expected(cache, capsys):
    from course_lib.data.traffic_signs import load_traffic_signs
    root = cache / "traffic-signs"
    _named_sign_folders(root)
    with pytest.raises(FileNotFoundError, match="Found folders named .*instead of class numbers.*classes.csv"):
        load_traffic_signs(fallback=False, quiet=True)
    load_traffic_signs()  # with the stand-in: the line says what it found and what to do
    assert "instead of class numbers" in capsys.readouterr().out


def test_named_traffic_sign_folders_with_a_classes_csv(cache):
    from course_lib.data.traffic_signs import CLASSES, load_traffic_signs
    root = cache / "traffic-signs"
    _named_sign_folders(root)
    (root / "classes.csv").write_text("folder,class\n" + "".join(f"{n},{c}\n" for c, n in NAMES.items()))
    train, test = load_traffic_signs(quiet=True)
    assert train.classes == [str(c) for c in CLASSES] and len(train) + len(test) == 30
    k = list(NAMES).index(38)  # "keep right" is class 38 whatever its folder is called
    both = torch.cat([train.x[train.y == CLASSES.index(38)], test.x[test.y == CLASSES.index(38)]])
    assert torch.allclose(both[:, 0], torch.tensor(20 * k / 255), atol=1e-3)
    (root / "classes.csv").write_text("folder,class\nyield,13\nstop,13\n")
    with pytest.raises(ValueError, match="maps both 'yield' and 'stop' to class 13"):
        load_traffic_signs(quiet=True)


def test_a_quick_status_looks_for_files_without_loading_them(cache, monkeypatch):
    from course_lib import data
    (cache / "mnist").mkdir(parents=True)
    (cache / "mnist" / FILES[0]).write_bytes(b"garbage")
    monkeypatch.setattr(data, "check", lambda source: pytest.fail("a quick status must not run the loaders"))
    table = data.status(deep=False).set_index("name")
    assert table.loc["mnist", "in cache"] == "present, not checked"
    assert table.loc["cifar10", "in cache"] == "missing"
