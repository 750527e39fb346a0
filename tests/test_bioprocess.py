import numpy as np
import pandas as pd
import pytest

from course_lib.data.bioprocess import (COLUMNS, CONDITIONS, MIN_ROWS, BatchCulture, load_process_csv,
                                        make_process_dataset, split_and_scale)


def test_data_sets_are_deterministic_and_documented_shape():
    a, b = make_process_dataset(1), make_process_dataset(1)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == COLUMNS == ["t", "COD1", "Xv1"] and a.shape == (200, 3)
    assert not make_process_dataset(1).equals(make_process_dataset(2))
    assert not make_process_dataset(1, seed=0).equals(make_process_dataset(1, seed=1))
    assert a.t.is_monotonic_increasing and (a.to_numpy() >= 0).all()
    # a batch culture: COD is consumed, biomass grows
    assert a.COD1.iloc[-1] < 0.2 * a.COD1.iloc[0] and a.Xv1.max() > 5 * a.Xv1.iloc[0]
    assert isinstance(CONDITIONS[1], BatchCulture) and CONDITIONS[1] != CONDITIONS[2]


def test_noise_level_is_a_parameter():
    clean = make_process_dataset(2, n_samples=50, noise=0.0)
    default = make_process_dataset(2, n_samples=50)  # condition 2's own noise level
    noisy = make_process_dataset(2, n_samples=50, noise=0.2)
    # no noise: the model curve, whatever the seed
    pd.testing.assert_frame_equal(clean, make_process_dataset(2, n_samples=50, noise=0.0, seed=7))
    scatter = lambda df: float(np.abs(df.Xv1 / clean.Xv1 - 1).mean())  # mean relative deviation
    assert scatter(default) < scatter(noisy)
    np.testing.assert_array_equal(clean.t, noisy.t)
    with pytest.raises(ValueError, match="noise"):
        make_process_dataset(1, noise=-0.1)


def test_bad_condition_and_size():
    with pytest.raises(ValueError, match="condition"):
        make_process_dataset(3)
    with pytest.raises(ValueError, match="n_samples"):
        make_process_dataset(1, n_samples=5)


def test_split_and_scale():
    df = make_process_dataset(1)
    s = split_and_scale(df, seed=0)
    assert (s.train.shape, s.test.shape, s.validation.shape) == ((140, 3), (30, 3), (30, 3))
    assert s.train.min() == 0 and s.train.max() == 1
    # every row lands in exactly one split, and unscale inverts the scaling
    back = np.concatenate([s.unscale(part) for part in (s.train, s.test, s.validation)])
    np.testing.assert_allclose(np.sort(back, axis=0), np.sort(df.to_numpy(), axis=0))
    np.testing.assert_allclose(s.scale(s.unscale(s.test)), s.test)
    np.testing.assert_array_equal(split_and_scale(df, seed=0).train, s.train)
    assert not np.array_equal(split_and_scale(df, seed=1).train, s.train)


@pytest.mark.parametrize("kwargs, frame, message", [
    ({"fractions": (0.5, 0.5, 0.5)}, None, "fractions"),
    ({}, pd.DataFrame({"t": [1.0], "COD": [2.0], "Xv1": [3.0]}), r"lacks column\(s\) \['COD1'\]"),
    ({}, pd.DataFrame({"t": [1.0, 2.0], "COD1": [np.nan, 2.0], "Xv1": [3.0, 4.0]}), "NaN"),
    ({}, pd.DataFrame({"t": [1.0, 2, 3], "COD1": [2.0, 3, 4], "Xv1": [3.0, 4, 5]}), "too few to split"),
])
def test_split_errors(kwargs, frame, message):
    with pytest.raises(ValueError, match=message):
        split_and_scale(make_process_dataset(1) if frame is None else frame, **kwargs)


def write(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding=encoding)
    return path


GOOD_ROWS = "".join(f"{i},{100 - i},{i * 2}\n" for i in range(25))


def test_user_csv_round_trip(tmp_path):
    df = load_process_csv(write(tmp_path, "Xv1, t, COD1\n" + GOOD_ROWS))
    assert list(df.columns) == COLUMNS and len(df) == 25
    # columns are matched by name, not position: the file's first column is Xv1
    assert df.Xv1.tolist() == list(range(25)) and df.t.tolist() == [100 - i for i in range(25)]
    assert df.dtypes.eq(float).all()
    # a spreadsheet's byte-order mark before the first header is not part of the name
    assert len(load_process_csv(write(tmp_path, "t,COD1,Xv1\n" + GOOD_ROWS, encoding="utf-8-sig"))) == 25


@pytest.mark.parametrize("text, message", [
    # wrong names: both what was expected and what was found
    ("time,COD,X\n" + GOOD_ROWS,
     r"expected exactly the columns \['t', 'COD1', 'Xv1'\], found \['time', 'COD', 'X'\]; "
     r"missing \['t', 'COD1', 'Xv1'\], unexpected \['time', 'COD', 'X'\]"),
    # a missing column
    ("t,COD1\n" + "1,2\n" * 25, r"found \['t', 'COD1'\]; missing \['Xv1'\]"),
    # an extra column
    ("t,COD1,Xv1,pH\n" + "1,2,3,7\n" * 25, r"unexpected \['pH'\]"),
    # semicolons from a European spreadsheet
    ("t;COD1;Xv1\n" + "1;2;3\n" * 25, "seems to use ';'"),
    # text in a numeric column: the column and an example value with its line
    ("t,COD1,Xv1\n" + GOOD_ROWS + "3,abc,4\n", r"column 'COD1' must be numeric; line 27 holds 'abc'"),
    # NaN / empty cells: which columns and which lines
    ("t,COD1,Xv1\n" + GOOD_ROWS + "3,,4\n" + "4,5,NaN\n",
     r"NaN values in column\(s\) \['COD1', 'Xv1'\] on line\(s\) \[27, 28\]"),
    ("t,COD1,Xv1\n1,2,3\n", f"1 rows is too few; expected at least {MIN_ROWS}"),
    ("", "the file is empty"),
])
def test_user_csv_errors(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_process_csv(write(tmp_path, text))


def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="t, COD1, Xv1"):
        load_process_csv(tmp_path / "nope.csv")
