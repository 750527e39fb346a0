"""Browser-test fixtures shared by the test_browser_e2e*.py files: Chromium, a JupyterLab server, a student.

Each test file gets its own server (module scope), so ``pytest --dist loadfile`` runs the files on
different workers at the same time.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from browser import Student, find_chromium, is_loopback, lab_server, launch_chromium

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "build" / "e2e-screenshots"


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
