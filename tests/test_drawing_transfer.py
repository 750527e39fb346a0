import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from course_lib.data.course_digits import EmptyDigitError
from course_lib.drawing import classifier_scores, drawing_pad, score_drawing
from course_lib.models import LeNet5
from course_lib.widgets import transfer_explorer

CLASSES = [str(i) for i in range(10)]


def stroke_canvas() -> np.ndarray:
    """What the browser sends after a vertical white stroke on the black pad: RGBA, 280x280."""
    img = np.zeros((280, 280, 4), np.uint8)
    img[..., 3] = 255
    img[40:240, 130:150, :3] = 255
    return img


def test_score_drawing_frames_and_scores():
    torch.manual_seed(0)
    framed, scores = score_drawing(stroke_canvas(), classifier_scores(LeNet5(), CLASSES))
    assert framed.shape == (28, 28) and framed.max() == pytest.approx(1.0)
    assert list(scores) == CLASSES and sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(EmptyDigitError):
        score_drawing(np.zeros((280, 280, 4), np.uint8), classifier_scores(LeNet5(), CLASSES))


def test_pad_callback_updates_scores_and_refuses_empty(tmp_path):
    seen = []

    def score_fn(image):
        seen.append(tuple(image.shape))
        return {"real": 0.8}

    pad = drawing_pad(score_fn, save_folder=tmp_path)
    pad.update_from_image(stroke_canvas())
    assert seen == [(1, 1, 28, 28)] and pad.image.value[:4] == b"\x89PNG" and "real" in pad.message.value
    pad.update_from_image(np.zeros((280, 280, 4), np.uint8))
    assert "empty" in pad.message.value
    pad.controls["save"].click()
    assert "Nothing to save" in pad.message.value and not any(tmp_path.rglob("*.png"))


def test_pad_saves_a_valid_png_with_its_label(tmp_path):
    pad = drawing_pad(lambda image: {"x": 1.0}, save_folder=tmp_path)
    pad.update_from_image(stroke_canvas())
    pad.controls["label"].value = 1
    pad.controls["save"].click()
    files = list((tmp_path / "1").glob("*.png"))
    assert len(files) == 1 and "Saved" in pad.message.value
    with Image.open(files[0]) as im:
        assert im.mode == "L" and im.size == (280, 280)
    assert not list(tmp_path.rglob("*.part"))  # written atomically


def test_transfer_explorer_rescores_on_framing_changes():
    digits = load_digits()
    torch.manual_seed(0)
    ui = transfer_explorer(LeNet5(), digits.images[:100], digits.target[:100])
    seen = {ui.image.value}
    for name, value in (("box", 28), ("center", "box"), ("thickness", 1)):
        ui.controls[name].value = value
        assert ui.image.value not in seen
        seen.add(ui.image.value)
    assert "Accuracy of the model on all 100 course digits" in ui.info.value


def test_pad_starts_with_a_picture_and_proposes_the_predicted_label(tmp_path):
    pad = drawing_pad(lambda image: {str(d): 0.9 if d == 7 else 0.01 for d in range(10)}, save_folder=tmp_path)
    assert pad.image.value[:8] == b"\x89PNG\r\n\x1a\n"  # not an empty Image (a broken-image icon in the browser)
    assert pad.controls["label"].value is None
    pad.controls["save"].click()
    assert "Nothing to save" in pad.message.value
    pad.update_from_image(stroke_canvas())
    assert pad.controls["label"].value == 7  # the model's guess, not a default 0
    pad.controls["save"].click()
    assert len(list((tmp_path / "7").glob("*.png"))) == 1


def test_pad_refuses_to_save_without_a_label(tmp_path):
    pad = drawing_pad(lambda image: {"real": 0.8}, save_folder=tmp_path)  # classes that are not digits
    pad.update_from_image(stroke_canvas())
    assert pad.controls["label"].value is None
    pad.controls["save"].click()
    assert "Pick the digit" in pad.message.value and not any(tmp_path.rglob("*.png"))


def test_pad_and_transfer_explorer_are_busy_while_working(tmp_path):
    from course_lib.widgets import BUSY_TEXT
    seen = []
    pad = drawing_pad(lambda image: seen.append((pad.busy.value, pad.controls["save"].disabled)) or {"1": 1.0},
                      save_folder=tmp_path)
    pad.update_from_image(stroke_canvas())
    assert seen == [(BUSY_TEXT, True)] and pad.busy.value == "" and not pad.controls["save"].disabled
    digits = load_digits()
    ui = transfer_explorer(LeNet5(), digits.images[:50], digits.target[:50])
    during = []
    ui.image.observe(lambda _c: during.append((ui.busy.value, ui.controls["box"].disabled)), names="value")
    ui.controls["box"].value = 24
    assert during == [(BUSY_TEXT, True)] and ui.busy.value == "" and not ui.controls["box"].disabled
