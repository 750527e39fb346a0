import numpy as np
import pytest
import torch
from scipy import ndimage

from course_lib.data.course_digits import (MNIST_LIKE, ZOOMED_IN, DigitPrep, EmptyDigitError, load_course_digits,
                                           load_drawn_digits, prepare_digit, save_drawn_digit, split_course_digits)


def bar_image() -> np.ndarray:
    img = np.zeros((8, 8))
    img[1:7, 3:5] = 16  # a "1": tall and narrow, scale 0..16 like load_digits
    return img


def bbox(frame: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(frame.any(1)), np.flatnonzero(frame.any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_mnist_geometry_box_and_centre_of_mass():
    frame = prepare_digit(bar_image(), MNIST_LIKE)
    assert frame.shape == (28, 28) and frame.dtype == np.float32 and frame.max() == pytest.approx(1.0)
    assert bbox(frame > 0.05)[0] in (20, 21)  # longer side fits the 20-px box
    cy, cx = ndimage.center_of_mass(frame)
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1


def test_zoomed_in_fills_the_frame_and_thickness_adds_ink():
    zoomed = prepare_digit(bar_image(), ZOOMED_IN)
    assert bbox(zoomed > 0.05)[0] == 28
    thin = prepare_digit(bar_image(), DigitPrep(20, "mass", 0))
    thick = prepare_digit(bar_image(), DigitPrep(20, "mass", 2))
    assert (thick > 0.5).sum() > (thin > 0.5).sum()


def test_dark_ink_on_white_is_inverted():
    white_page = 255 - np.pad(np.full((10, 4), 255), ((5, 5), (8, 8)))  # black bar on white
    frame = prepare_digit(white_page.astype(np.uint8))
    assert frame[14, 14] > 0.5 and frame[0, 0] == 0


@pytest.mark.parametrize("bad, message", [
    (np.zeros((28, 28)), "empty"),
    (np.zeros((4, 4)), "too small"),
    (np.zeros((28, 28, 2)), "expected a gray"),
])
def test_bad_images_get_one_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        prepare_digit(bad)


def test_empty_drawing_is_not_saved(tmp_path):
    with pytest.raises(EmptyDigitError, match="draw a digit"):
        save_drawn_digit(np.zeros((100, 100, 4), np.uint8), 3, tmp_path)
    assert not any(tmp_path.rglob("*.png"))
    with pytest.raises(ValueError, match="label"):
        save_drawn_digit(np.ones((10, 10)), 12, tmp_path)


def test_drawn_digits_round_trip_into_the_course_set(tmp_path):
    canvas = np.zeros((200, 200, 4), np.uint8)  # RGBA canvas: ink in the alpha channel
    canvas[40:160, 90:110, 3] = 255
    path = save_drawn_digit(canvas, 1, tmp_path)
    assert path.parent.name == "1" and path.suffix == ".png"
    drawn = load_drawn_digits(tmp_path)
    assert len(drawn) == 1 and int(drawn.y[0]) == 1 and drawn.x.shape == (1, 1, 28, 28)
    digits = load_course_digits(drawn_folder=tmp_path, quiet=True)
    assert len(digits) == 1797 + 1 and "1 drawn by students" in digits.source
    assert load_drawn_digits(tmp_path / "none") is None


def test_course_digits_set_and_split():
    digits = load_course_digits(include_drawn=False, quiet=True)
    assert digits.x.shape == (1797, 1, 28, 28) and digits.real
    train, test = split_course_digits(digits, 0.2, seed=0)
    assert len(train) + len(test) == 1797 and abs(len(test) - 360) <= 10
    assert set(test.y.tolist()) == set(range(10))
    train2, _ = split_course_digits(digits, 0.2, seed=0)
    assert torch.equal(train.y, train2.y)


def test_prep_validates_its_parameters():
    with pytest.raises(ValueError, match="box"):
        DigitPrep(box=40)
    with pytest.raises(ValueError, match="center"):
        DigitPrep(center="middle")
