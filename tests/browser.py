"""Helpers for the end-to-end tests: a throwaway JupyterLab on loopback, driven by headless Chromium.

The notebooks are used the way a student uses them: opened in JupyterLab, run with the menu, widgets
moved with the mouse and keyboard. Everything here is bounded in time and fails with the server log
instead of hanging; the server is stopped and its port freed whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

# Chromium switches: no background traffic to outside hosts, no first-run UI, root-friendly.
CHROMIUM_ARGS = [
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--disable-sync", "--disable-domain-reliability", "--disable-breakpad",
    "--disable-client-side-phishing-detection", "--metrics-recording-only", "--no-first-run",
    "--no-default-browser-check", "--no-sandbox", "--disable-dev-shm-usage",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    # every host name but this machine's resolves to nothing: no request can leave
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
WIDGET_PROBLEMS = ("Loading widget", "model not found", "Error displaying widget")


class BrowserTestError(AssertionError):
    """What a student would have seen go wrong, with the server log attached."""


def find_chromium() -> str | None:
    """Path of the system Chromium (Debian's ``chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: its URL, token, notebook folder and log file."""

    url: str
    token: str
    root: Path
    log_path: Path
    process: subprocess.Popen

    def log(self, tail: int = 80) -> str:
        """The last ``tail`` lines of the server's (and kernels') output."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def api(self, path: str, method: str = "GET") -> object:
        """Call the server's REST API; the JSON answer (None if empty)."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every notebook session (and its kernel), as closing the tabs would."""
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE")


def _write_settings(folder: Path) -> None:
    """Lab settings for a test run: every cell in the DOM (no windowing), no news pop-ups."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
    }
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@contextlib.contextmanager
def lab_server(root: Path, work: Path, env: dict[str, str] | None = None, start_timeout: float = 120,
               extra_args: tuple[str, ...] = ()) -> Iterator[LabServer]:
    """Start JupyterLab from this Python environment on a free loopback port; stop it afterwards."""
    port, token = free_port(), secrets.token_hex(16)
    for sub in ("config", "data", "runtime", "settings", "workspaces"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    _write_settings(work / "settings")
    environment = {**os.environ, **(env or {}),
                   "JUPYTER_CONFIG_DIR": str(work / "config"), "JUPYTER_DATA_DIR": str(work / "data"),
                   "JUPYTER_RUNTIME_DIR": str(work / "runtime"), "JUPYTER_PLATFORM_DIRS": "1",
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log_path = work / "server.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={work / 'settings'}", f"--LabApp.workspaces_dir={work / 'workspaces'}",
               "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly", "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI and containers run as root
        command.append("--allow-root")
    command += list(extra_args)
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment,
                                   start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log_path, process)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise BrowserTestError(f"JupyterLab exited with status {process.returncode} before it was ready.\n"
                                       f"Server log:\n{server.log()}")
            try:
                server.api("/api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise BrowserTestError(f"JupyterLab did not answer on {server.url} within {start_timeout:.0f} s.\n"
                                       f"Server log:\n{server.log()}")
            time.sleep(0.5)
        yield server
    finally:
        _stop(process)


def launch_chromium(playwright, executable: str, profile: Path, server: LabServer, timeout: float = 60):
    """A headless Chromium with a fresh profile; a clear failure (with the server log) if it cannot start."""
    try:
        return playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, timeout=timeout * 1000)
    except Exception as exc:  # playwright's errors: missing binary, crash at start, time-out
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BrowserTestError(f"Chromium ({executable}) did not start within {timeout:.0f} s: {first}\n"
                               f"Server log (tail):\n{server.log(20)}") from None


def _stop(process: subprocess.Popen) -> None:
    """Stop the server and its kernels (the whole process group): SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@dataclass
class Student:
    """One browser tab in JupyterLab, with the checks a student's eyes would make."""

    page: object  # playwright.sync_api.Page
    server: LabServer
    shots: Path
    blocked: list[str] = field(default_factory=list)
    step: int = 0

    def shot(self, name: str) -> Path:
        """Save a screenshot of the tab as ``NN-name.png`` among the artifacts."""
        self.step += 1
        path = self.shots / f"{self.step:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def fail(self, message: str) -> None:
        """Fail with a screenshot and the server log."""
        path = self.shot("failure")
        raise BrowserTestError(f"{message}\nScreenshot: {path}\nServer log (tail):\n{self.server.log(40)}")

    def open_notebook(self, name: str, timeout: float = 120) -> None:
        """Open ``name`` in JupyterLab and wait until its kernel is idle."""
        # a workspace of its own, reset: only this notebook open, whatever earlier tests opened
        self.page.goto(f"{self.server.url}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={self.server.token}")
        try:
            self.notebook.locator(".jp-Cell").first.wait_for(timeout=timeout * 1000)
        except Exception:
            self.fail(f"{name} did not open within {timeout:.0f} s")
        self.wait_idle(name, timeout)
        self.shot(f"{Path(name).stem}-opened")

    @property
    def notebook(self):
        """The notebook in the visible tab."""
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first

    def kernel_state(self, name: str) -> str | None:
        """The execution state of the kernel of notebook ``name`` (from the server), or None."""
        for session in self.server.api("/api/sessions"):
            if session.get("path", "").endswith(name) and session.get("kernel"):
                return session["kernel"].get("execution_state")
        return None

    def wait_idle(self, name: str, timeout: float) -> None:
        """Wait until the kernel of ``name`` exists and is idle."""
        deadline = time.monotonic() + timeout
        while self.kernel_state(name) != "idle":
            if time.monotonic() > deadline:
                self.fail(f"the kernel of {name} was not idle within {timeout:.0f} s "
                          f"(state: {self.kernel_state(name)})")
            time.sleep(0.5)

    def menu(self, top: str, item: str) -> None:
        """Click a main-menu entry, e.g. ``menu('Run', 'Run All Cells')``."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first.click()

    def run_all(self, name: str, timeout: float = 300) -> None:
        """Run all cells with the menu; wait until every code cell has run and the kernel is idle."""
        self.notebook.click()
        self.menu("Run", "Run All Cells")
        deadline = time.monotonic() + timeout
        time.sleep(1.0)
        while True:
            prompts = self.notebook.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
            finished = prompts and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts)
            if finished and self.kernel_state(name) == "idle":
                break
            if time.monotonic() > deadline:
                waiting = sum(1 for p in prompts if not re.fullmatch(r"\[\d+\]:", p.strip()))
                self.fail(f"{name}: {waiting} of {len(prompts)} code cells had not finished after {timeout:.0f} s")
            time.sleep(1.0)
        self.shot(f"{Path(name).stem}-ran")

    def saved_errors(self, name: str) -> list[str]:
        """Save the notebook from the browser and return the error outputs stored in the file."""
        self.notebook.click()
        self.page.keyboard.press("Control+s")
        path = self.server.root / name
        deadline = time.monotonic() + 30
        errors: list[str] | None = None
        while time.monotonic() < deadline:
            try:
                nb = json.loads(path.read_text())
            except json.JSONDecodeError:  # caught while the server was writing it: read it again
                time.sleep(0.5)
                continue
            counts = [c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"]
            if counts and all(counts):  # the saved file holds this run's outputs
                errors = [f"{o.get('ename')}: {o.get('evalue')}" for c in nb["cells"] if c["cell_type"] == "code"
                          for o in c.get("outputs", []) if o.get("output_type") == "error"]
                break
            time.sleep(0.5)
        if errors is None:
            self.fail(f"{name} was not saved with its outputs within 30 s")
        return errors

    def check_widgets_rendered(self, expect_at_least: int, timeout: float = 60) -> None:
        """Every widget has rendered: no placeholder or 'model not found' left on the page."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.notebook.inner_text()
            problems = [p for p in WIDGET_PROBLEMS if p in text]
            rendered = self.notebook.locator(".jp-OutputArea-output", has=self.page.locator(".jupyter-widgets")).count()
            if not problems and rendered >= expect_at_least:
                return
            if time.monotonic() > deadline:
                self.fail(f"widgets did not render within {timeout:.0f} s: {rendered} rendered "
                          f"(expected at least {expect_at_least}); on the page: {problems or 'no placeholder'}")
            time.sleep(0.5)

    LAYOUT_JS = """() => {
        const problems = [];
        const seen = el => el.offsetParent !== null;           // rendered (not in a hidden tab)
        for (const el of document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .widget-label')) {
            if (seen(el) && el.textContent.trim() && el.scrollWidth > el.clientWidth + 1)
                problems.push(`widget label cut off: "${el.textContent.trim()}"`);
        }
        for (const img of document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img')) {
            const box = img.closest('.jp-OutputArea-output');
            if (!seen(img) || !img.complete || !box) continue;
            const declared = Number(img.getAttribute('width')) || img.naturalWidth;   // the size it asks to be shown at
            if (img.getBoundingClientRect().width < declared - 2)
                problems.push(`picture ${declared} px wide shown at ${Math.round(img.getBoundingClientRect().width)} px ` +
                              `in a ${box.clientWidth} px notebook${img.closest('.jupyter-widgets') ? ' (in a widget)' : ''} ` +
                              `(shrunk, hard to read)`);
            else if (img.getBoundingClientRect().width > 1.5 * img.naturalWidth + 2)
                problems.push(`picture of ${img.naturalWidth} px stretched to ${Math.round(img.getBoundingClientRect().width)} px`);
        }
        for (const el of document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output table')) {
            const box = el.closest('.jp-OutputArea-output');
            if (seen(el) && box && el.getBoundingClientRect().width > box.clientWidth + 2)
                problems.push(`table ${Math.round(el.getBoundingClientRect().width)} px wide in a ${box.clientWidth} px notebook`);
        }
        return problems;
    }"""

    def check_layout(self, name: str, allowed: tuple[str, ...] = ()) -> None:
        """No cut-off widget label, no picture wider than the notebook or stretched past 1.5x, no table wider than it."""
        problems = [p for p in self.notebook.evaluate(f"_ => ({self.LAYOUT_JS})()")
                    if not any(a in p for a in allowed)]
        if problems:
            self.shot(f"{Path(name).stem}-layout")
            self.fail(f"{name}: layout problems: " + "; ".join(sorted(set(problems))[:8]))

    def widget_area(self, label: str, kind: str = ".widget-slider"):
        """The output area of the cell whose widget ``kind`` carries the description ``label``."""
        control = self.notebook.locator(kind, has=self.page.locator(".widget-label", has_text=re.compile(
            f"^{re.escape(label)}$"))).first
        if control.count() == 0:
            self.fail(f"no widget {kind} labelled {label!r} on the page")
        control.scroll_into_view_if_needed()
        return control, control.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea')][1]")

    @staticmethod
    def picture(area) -> list[str]:
        """What a student sees change in an output area: its images and its text/HTML widgets."""
        images = area.locator("img").evaluate_all("els => els.map(e => e.src)")
        texts = area.locator(".widget-html-content").all_inner_texts()
        return images + texts

    def logged_errors(self) -> int:
        """The count JupyterLab's status bar shows for messages in its log console (0 if none)."""
        item = self.page.locator(".jp-LogConsoleStatusItem")
        text = item.first.inner_text().strip() if item.count() else ""
        return int(text) if text.isdigit() else 0

    def wait_for_change(self, area, before: list[str], what: str, logged_before: int, timeout: float = 60) -> None:
        """Wait until the output area looks different from ``before``; fail at once if the kernel logs an error."""
        deadline = time.monotonic() + timeout
        while self.picture(area) == before:
            if self.logged_errors() > logged_before:
                self.fail(f"{what}: the kernel logged an exception (JupyterLab's log console) and the output "
                          "did not change")
            if time.monotonic() > deadline:
                self.fail(f"{what}: the output did not change within {timeout:.0f} s")
            time.sleep(0.3)
        if self.logged_errors() > logged_before:
            self.fail(f"{what}: the kernel logged an exception (JupyterLab's log console)")

    def set_slider(self, label: str, value: float, name: str) -> None:
        """Type a new value into a slider's readout (as a student can) and check its output changed."""
        control, area = self.widget_area(label, ".widget-slider")
        before, logged = self.picture(area), self.logged_errors()
        readout = control.locator(".widget-readout")
        if readout.inner_text().strip() == str(value):
            self.fail(f"slider {label!r} already shows {value}: choose another value to test a change")
        readout.click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.type(str(value))
        self.page.keyboard.press("Enter")
        self.wait_for_change(area, before, f"slider {label!r} set to {value}", logged)
        self.shot(f"{name}-slider-{re.sub(r'[^a-z0-9]+', '-', label.lower()).strip('-')}")

    def pick(self, label: str, option: str, name: str) -> None:
        """Choose ``option`` in the dropdown ``label`` and check its output changed."""
        control, area = self.widget_area(label, ".widget-dropdown")
        before, logged = self.picture(area), self.logged_errors()
        control.locator("select").select_option(label=option)
        self.wait_for_change(area, before, f"dropdown {label!r} set to {option!r}", logged)
        self.shot(f"{name}-dropdown-{re.sub(r'[^a-z0-9]+', '-', label.lower()).strip('-')}")

    def draw_digit(self, name: str, expect: str = "Top score") -> str:
        """Draw a '7' on the first drawing pad with mouse events; return the message that appears."""
        canvas = self.notebook.locator(".jp-OutputArea-output canvas").first
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        if box is None:
            self.fail("the drawing pad's canvas is not visible")
        area = canvas.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea')][1]")
        before, logged = self.picture(area), self.logged_errors()
        x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
        stroke = [(0.25, 0.2), (0.75, 0.2), (0.55, 0.5), (0.45, 0.8)]  # a 7: top bar, then down-left
        mouse = self.page.mouse
        mouse.move(x0 + stroke[0][0] * w, y0 + stroke[0][1] * h)
        mouse.down()
        for fx, fy in stroke[1:]:
            mouse.move(x0 + fx * w, y0 + fy * h, steps=12)
            time.sleep(0.05)
        mouse.up()
        self.wait_for_change(area, before, "drawing on the pad", logged)
        deadline = time.monotonic() + 60
        message = ""
        while expect not in message:
            message = " ".join(area.locator(".widget-html-content").all_inner_texts())
            if time.monotonic() > deadline:
                self.fail(f"after drawing, no {expect!r} message appeared (saw: {message!r})")
            time.sleep(0.3)
        self.shot(f"{name}-drawn")
        return message


def is_loopback(url: str) -> bool:
    """True for URLs on this machine (127.0.0.0/8, localhost, ::1) and for data:/blob: URLs."""
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "chrome", "devtools"):
        return True
    host = parsed.hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")
