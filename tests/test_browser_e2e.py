"""End-to-end: the notebooks in a real JupyterLab, in a real (headless) Chromium, used as a student would.

For notebooks 00, 01, 02 and 03 (the GAN): open, Run All Cells from the menu, no error output, every
widget rendered, a slider or dropdown moved and its picture redrawn; on 02 a digit drawn with the
mouse gets a prediction. A deliberately broken widget must make these checks fail. Screenshots of
every step go to ``build/e2e-screenshots/`` (look at them: they are what a student sees).

Needs Debian's ``chromium`` (``make test`` installs it when it can) and the ``playwright`` package;
Playwright's own browser download is never used. Without Chromium the tests are skipped, except
under CI, where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from browser import BrowserTestError, Student, find_chromium, is_loopback, lab_server, launch_chromium

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "build" / "e2e-screenshots"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium() -> str:
    if os.environ.get("COURSE_BROWSER_TESTS", "1") == "0":
        pytest.skip("browser tests switched off (make test BROWSER=0)")
    path = find_chromium()
    if path is None:
        message = "Chromium is not installed: `apt-get install chromium` (make test does it when run as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright", reason="the playwright package is missing: make install")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """JupyterLab on a copy of notebooks/ (saving in the browser never touches the repository)."""
    work = tmp_path_factory.mktemp("lab")
    root = work / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    _write_broken_widget_notebook(root / "zz_broken_widget.ipynb")
    _write_bad_layout_notebook(root / "zz_bad_layout.ipynb")
    env = {"COURSE_PROFILE": "smoke", "COURSE_OFFLINE": "1"}
    with lab_server(root, work, env) as running:
        yield running


@pytest.fixture
def student(chromium, server, request, tmp_path):
    """A fresh headless Chromium (new profile, outside traffic blocked) with one JupyterLab tab."""
    from playwright.sync_api import sync_playwright

    shots = SHOTS / request.node.name.replace("[", "-").replace("]", "")
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    with sync_playwright() as p:
        context = launch_chromium(p, chromium, tmp_path / "profile", server)
        me = Student(context.pages[0] if context.pages else context.new_page(), server, shots)

        def watch(request) -> None:  # anything aimed beyond this machine (the resolver rules block it)
            if not is_loopback(request.url):
                me.blocked.append(request.url)

        context.on("request", watch)
        me.page.set_default_timeout(60_000)
        try:
            yield me
        finally:
            context.close()
            server.shut_down_kernels()
    assert not me.blocked, f"the page tried to reach outside hosts: {sorted(set(me.blocked))[:5]}"


def run_notebook(student: Student, name: str, widgets: int) -> None:
    student.open_notebook(name)
    student.run_all(name)
    errors = student.saved_errors(name)
    if errors:
        student.fail(f"{name} has error output(s): {errors}")
    student.check_widgets_rendered(widgets)
    student.check_layout(name)


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


def _write_bad_layout_notebook(path: Path) -> None:
    """Two cells: a slider whose long label is cut to the default width, and a 3000 px wide picture."""
    cells = ['import ipywidgets as w\nw.IntSlider(description="a learning rate label far too long to fit")',
             "import io\nfrom IPython.display import Image\nfrom PIL import Image as Picture\nbuf = io.BytesIO()\n"
             "Picture.new('RGB', (3000, 40), 'gray').save(buf, 'PNG')\nImage(data=buf.getvalue())"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _write_broken_widget_notebook(path: Path) -> None:
    """A one-cell notebook whose slider observer raises before it can redraw anything."""
    source = '''import ipywidgets as w

slider = w.IntSlider(value=3, min=0, max=10, description="broken", continuous_update=False)
picture = w.HTML("value 3")


def redraw(change):
    raise RuntimeError("deliberately broken observer")
    picture.value = f"value {change['new']}"


slider.observe(redraw, names="value")
w.VBox([slider, picture])'''
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    path.write_text(json.dumps(nb, indent=1))


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
