"""Issue 19: data as users bring it - wrong files named as such, one error type, honest ``data list``."""

from __future__ import annotations

import pytest

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
