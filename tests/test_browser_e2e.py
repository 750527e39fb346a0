"""End-to-end: the notebooks in a real JupyterLab, in a real (headless) Chromium, used as a student would.

For notebooks 00, 01, 02, 03 and 05e (the others are in test_browser_e2e_more.py, so the two files
run side by side): open, Run All Cells from the menu, no error output, every widget rendered, the
layout fits (no cut-off label, no shrunk or stretched picture, no table wider than the notebook), a
slider or dropdown moved and its picture redrawn; on 02 a digit drawn with the mouse gets a
prediction. A deliberately broken widget and a deliberately bad layout must make these checks fail. Screenshots of
every step go to ``build/e2e-screenshots/`` (look at them: they are what a student sees).

Needs Debian's ``chromium`` (``make test`` installs it when it can) and the ``playwright`` package;
Playwright's own browser download is never used. Without Chromium the tests are skipped, except
under CI, where that is a failure.
"""

from __future__ import annotations

import pytest

from browser import BrowserTestError, lab_server, launch_chromium
from browser_fixtures import chromium, run_notebook, server, student  # noqa: F401  (pytest fixtures)

pytestmark = pytest.mark.slow


def test_00_start_here(student):
    run_notebook(student, "00_start_here.ipynb", widgets=1)
    student.set_slider("box (px)", 26, "00")
    student.pick("centring", "bounding box", "00")


def test_01_autoencoder(student):
    run_notebook(student, "01_autoencoder_energy.ipynb", widgets=1)
    student.set_slider("view angle", 30, "01")


def test_02_lenet_and_drawing_pad(student):
    run_notebook(student, "02_lenet_digit_sets.ipynb", widgets=2)
    student.set_slider("box (px)", 26, "02")
    message = student.draw_digit("02")
    assert "Top score" in message


def test_03_gan_threshold_and_snapshots(student):
    run_notebook(student, "03_gan_judge.ipynb", widgets=3)
    student.set_slider("threshold", 0.3, "03")  # the notebook's own check leaves it at 0.8


def test_05e_model_and_class_pickers(student):
    run_notebook(student, "05e_generated_images_and_the_classifier.ipynb", widgets=2)
    student.pick("model", "DCGAN", "05e")      # the generated-image browser: another generator's signs
    student.pick("class", "24", "05e")         # and the smallest class


def test_a_broken_widget_fails_the_checks(student):
    """Negative check: an observer that raises must not pass as a working widget."""
    run_notebook(student, "zz_broken_widget.ipynb", widgets=1)
    with pytest.raises(BrowserTestError, match="logged an exception"):
        student.set_slider("broken", 7, "broken")


def test_cut_labels_and_oversized_pictures_fail_the_layout_check(student):
    """Negative check: a label that does not fit and a picture wider than the notebook must be caught."""
    student.open_notebook("zz_bad_layout.ipynb")
    student.run_all("zz_bad_layout.ipynb")
    student.check_widgets_rendered(1)
    with pytest.raises(BrowserTestError, match="layout problems"):
        student.check_layout("zz_bad_layout.ipynb")
    problems = student.notebook.evaluate(f"_ => ({student.LAYOUT_JS})()")
    assert any("label cut off" in p for p in problems) and any("3000 px wide" in p for p in problems), problems


def test_a_server_that_cannot_start_fails_fast_with_its_log(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(BrowserTestError, match="exited with status") as failure:
        with lab_server(root, tmp_path / "work", extra_args=("--ServerApp.port=not-a-port",), start_timeout=60):
            pass
    assert "Server log" in str(failure.value) and "not-a-port" in str(failure.value)


def test_a_browser_that_cannot_start_fails_fast(chromium, server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, pytest.raises(BrowserTestError, match="did not start"):
        launch_chromium(p, "/bin/false", tmp_path / "profile", server, timeout=20)
