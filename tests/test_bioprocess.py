import numpy as np
import pandas as pd
import pytest

from course_lib.data.bioprocess import COLUMNS, load_process_csv, make_process_dataset, split_and_scale


def test_data_sets_are_deterministic_and_documented_shape():
    a, b = make_process_dataset(1), make_process_dataset(1)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == COLUMNS and a.shape == (200, 3)
    assert not make_process_dataset(1).equals(make_process_dataset(2))
    assert a.t.is_monotonic_increasing
    # a batch culture: COD is consumed, biomass grows
    assert a.COD1.iloc[-1] < 0.2 * a.COD1.iloc[0] and a.Xv1.max() > 5 * a.Xv1.iloc[0]


def test_bad_condition_and_size():
    with pytest.raises(ValueError, match="condition"):
        make_process_dataset(3)
    with pytest.raises(ValueError, match="n_samples"):
        make_process_dataset(1, n_samples=5)


def test_split_and_scale():
    s = split_and_scale(make_process_dataset(1), seed=0)
    assert (len(s.train), len(s.test), len(s.validation)) == (140, 30, 30)
    assert s.train.min() == 0 and s.train.max() == 1
    np.testing.assert_allclose(s.unscale(s.train).min(axis=0), s.minimum)
    with pytest.raises(ValueError, match="fractions"):
        split_and_scale(make_process_dataset(1), fractions=(0.5, 0.5, 0.5))


def write(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


GOOD_ROWS = "".join(f"{i},{100 - i},{i * 2}\n" for i in range(25))


def test_user_csv_round_trip(tmp_path):
    df = load_process_csv(write(tmp_path, "Xv1, t, COD1\n" + GOOD_ROWS))
    assert list(df.columns) == COLUMNS and len(df) == 25


@pytest.mark.parametrize("text, message", [
    ("time,COD,X\n" + GOOD_ROWS, r"expected exactly the columns \['t', 'COD1', 'Xv1'\], found \['time'"),
    ("t,COD1\n" + "1,2\n" * 25, "found"),
    ("t,COD1,Xv1\n" + GOOD_ROWS + "3,abc,4\n", r"column 'COD1' must be numeric; row 27 holds 'abc'"),
    ("t,COD1,Xv1\n" + GOOD_ROWS + "3,,4\n", r"NaN values in column\(s\) \['COD1'\] on line\(s\) \[27\]"),
    ("t,COD1,Xv1\n1,2,3\n", "too few"),
])
def test_user_csv_errors(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        load_process_csv(write(tmp_path, text))


def test_missing_csv(tmp_path):
    with pytest.raises(FileNotFoundError, match="t, COD1, Xv1"):
        load_process_csv(tmp_path / "nope.csv")
