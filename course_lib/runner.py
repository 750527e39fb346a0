"""Run the course notebooks headless and collect their "document vs. this run" tables in one report.

Kernels talk to the runner over ZeroMQ's IPC transport (Unix sockets in a private temporary folder),
not over loopback TCP: a run needs no network at all (it works with networking switched off, e.g.
under ``unshare -n``), no other user on the machine can connect to a kernel's port, and the kernel
no longer warns that it runs over TCP without encryption.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from course_lib.data.cache import atomic_path
from course_lib.profiles import ENV_VAR as PROFILE_VAR
from course_lib.profiles import PROFILES
from course_lib.reference import REPORT_KEY
from course_lib.runtime import thread_env

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
BUILD_DIR = REPO_ROOT / "build"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in tracebacks


@dataclass
class RunResult:
    """The outcome of executing one notebook."""

    name: str
    ok: bool
    seconds: float
    output: Path
    error: str = ""
    peak_mb: float | None = None  # the kernel's peak resident memory (Linux), None where it cannot be read


def find_notebooks(names: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Notebooks in ``folder`` matching ``names`` (a number like '01', a stem, or a file); all if none."""
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder {folder} not found; run from a clone of the course repository")
    available = sorted(p for p in folder.glob("*.ipynb"))
    if not names:
        return available
    chosen = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            chosen.append(path.resolve())
            continue
        matches = [p for p in available if p.stem == name or p.stem.startswith(f"{name}_") or p.name == name]
        if len(matches) != 1:
            raise ValueError(f"notebook {name!r} matches {len(matches)} of {[p.stem for p in available]}; "
                             "give its number (e.g. 01) or its file name")
        chosen.append(matches[0])
    return chosen


@contextlib.contextmanager
def _environment(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ipc_kernel_config(folder: Path | str):
    """Traitlets config that makes nbclient's kernel managers use IPC sockets named ``folder/kernel-<n>``."""
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(folder) / "kernel")  # for IPC, "ip" is the sockets' path prefix
    return config


COUNTER = re.compile(r"\d+/\d+")  # "84/100": what a progress bar or an "epoch 84/100" line shows
TAGS = re.compile(r"<[^>]+>")


def progress_text(text: str) -> str | None:
    """The last line of ``text`` that reports progress (a tqdm counter, "epoch 84/100"), tidied; else None."""
    lines = [TAGS.sub(" ", line).replace("\r", "\n") for line in str(text).splitlines()]
    lines = [part for line in lines for part in line.split("\n")]
    found = [" ".join(html.unescape(line).split()) for line in lines if COUNTER.search(line)]
    return found[-1][:80] if found else None


def _progress_client(on_progress: Callable[[str], None]) -> type:
    """A NotebookClient that forwards the progress a cell reports (widget bars, printed counters) as it runs."""
    from nbclient import NotebookClient

    class ProgressClient(NotebookClient):
        def handle_comm_msg(self, outs: list, msg: dict, cell_index: int) -> None:
            super().handle_comm_msg(outs, msg, cell_index)
            value = msg["content"].get("data", {}).get("state", {}).get("value")  # tqdm's HTML counter widget
            if isinstance(value, str) and (text := progress_text(value)):
                on_progress(text)

        def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int):
            if msg["msg_type"] == "stream" and (text := progress_text(msg["content"].get("text", ""))):
                on_progress(text)
            return super().output(outs, msg, display_id, cell_index)

    return ProgressClient


def kernel_peak_mb(client: object) -> float | None:
    """Peak resident memory of a running notebook client's kernel process in MB (Linux's VmHWM), else None."""
    try:
        pid = client.km.provisioner.process.pid  # type: ignore[attr-defined]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB -> MB
    except (AttributeError, OSError, ValueError):
        return None
    return None


def _write_atomic(nb: nbformat.NotebookNode, path: Path) -> None:
    with atomic_path(path) as tmp:
        nbformat.write(nb, tmp)


def run_notebooks(paths: list[Path], profile: str = "class", out_dir: Path | None = None,
                  cell_timeout: int = 3600, offline: bool = False, progress: bool = True,
                  on_progress: Callable[[str], None] | None = None) -> list[RunResult]:
    """Execute each notebook in a fresh kernel under ``profile``; write executed copies to ``out_dir``.

    While a long cell runs, the progress it reports (its own progress bars, "epoch 84/100" lines)
    is shown beside the run's bar, or passed to ``on_progress``.
    """
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    out_dir = Path(out_dir or BUILD_DIR / "executed" / profile)
    notebooks = [(p, nbformat.read(p, as_version=4)) for p in paths]
    total = sum(1 for _, nb in notebooks for c in nb.cells if c.cell_type == "code")
    # the kernels inherit these: the profile, inline figures, and the thread policy (read before torch loads)
    env = {PROFILE_VAR: profile, "MPLBACKEND": "module://matplotlib_inline.backend_inline", **thread_env()}
    if offline:
        env["COURSE_OFFLINE"] = "1"
    results = []
    # a private folder (mode 0700) for the kernels' IPC sockets; Unix socket paths must stay short
    with _environment(**env), tempfile.TemporaryDirectory(prefix="course-lib-ipc-") as sockets, \
            tqdm(total=total, desc="notebooks", unit="cell", disable=not progress) as bar:
        current: dict[str, object] = {}

        def cell_done(**_: object) -> None:
            bar.set_postfix_str("")
            bar.update(1)
            peak = kernel_peak_mb(current.get("client"))  # the high-water mark only grows: the last read is the peak
            if peak is not None:
                current["peak"] = peak

        client_class = _progress_client(on_progress or (lambda text: bar.set_postfix_str(text)))
        for path, nb in notebooks:
            bar.set_description(path.stem)
            client = client_class(nb, timeout=cell_timeout, kernel_name="python3",
                                  resources={"metadata": {"path": str(path.parent)}},
                                  on_cell_executed=cell_done, config=ipc_kernel_config(sockets))
            current.clear()
            current["client"] = client
            start, error = time.perf_counter(), ""
            try:
                client.execute()
            except (CellExecutionError, CellTimeoutError) as exc:
                text = ANSI.sub("", str(exc)).strip()
                error = text.splitlines()[-1][:500] if text else type(exc).__name__
            except Exception as exc:  # a kernel that died, a missing kernel: report and go on
                error = f"{type(exc).__name__}: {exc}"[:500]
            seconds = time.perf_counter() - start
            peak = current.get("peak")
            nb.metadata[REPORT_KEY] = {"profile": profile, "seconds": round(seconds, 1), "ok": not error,
                                      "error": error, "executed_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                                      "peak_mb": None if peak is None else round(float(peak))}
            output = out_dir / path.name
            _write_atomic(nb, output)
            results.append(RunResult(path.stem, not error, seconds, output, error,
                                     None if peak is None else float(peak)))
            if error:
                bar.write(f"{path.stem}: FAILED - {error}")
    return results


def collect_tables(nb: nbformat.NotebookNode) -> list[dict]:
    """The tagged results tables of an executed notebook, in order."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get(REPORT_KEY)
            if meta:
                found.append(dict(meta))
    return found


def build_report(executed_dir: Path | None = None, out: Path | None = None) -> tuple[Path, Path]:
    """Write report.md and report.html from the executed notebooks in ``executed_dir``."""
    import mistune

    executed_dir = Path(executed_dir or BUILD_DIR / "executed" / "class")
    files = sorted(executed_dir.glob("*.ipynb"))
    if not files:
        raise FileNotFoundError(f"no executed notebooks in {executed_dir}; run `course-lib run` first")
    out = Path(out or executed_dir.parent.parent / "report")
    lines = ["# course_lib: results report", "",
             f"Executed notebooks from `{executed_dir}`; report written {time.strftime('%Y-%m-%d %H:%M')}.", "",
             "| notebook | profile | status | minutes | peak memory (MB) |", "|---|---|---|---|---|"]
    sections = []
    for path in files:
        nb = nbformat.read(path, as_version=4)
        meta = nb.metadata.get(REPORT_KEY, {})
        status = "ok" if meta.get("ok") else f"FAILED: {meta.get('error', 'not run by course-lib')}"
        lines.append(f"| {path.stem} | {meta.get('profile', '?')} | {status.replace('|', '/')} | "
                     f"{meta.get('seconds', 0) / 60:.1f} | {meta.get('peak_mb') or '-'} |")
        tables = collect_tables(nb)
        body = "\n\n".join(t["markdown"] for t in tables) if tables else "*No results tables in this notebook.*"
        sections.append(f"## {path.stem}\n\n{body}")
    text = "\n".join(lines) + "\n\n" + "\n\n".join(sections) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    md, html = out.with_suffix(".md"), out.with_suffix(".html")
    render = mistune.create_markdown(plugins=["table"])
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>course_lib results</title><style>"
            "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.2em .6em;"
            "text-align:right}th{background:#eee}</style></head><body>" + render(text) + "</body></html>")
    for target, content in ((md, text), (html, page)):
        with atomic_path(target) as tmp:
            tmp.write_text(content, encoding="utf-8")
    return md, html
