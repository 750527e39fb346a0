"""Shared test set-up: an empty throwaway cache, no network, and a loopback file server."""

from __future__ import annotations

import functools
import http.server
import os
import tempfile
import threading
from pathlib import Path

import pytest

# Set before anything imports course_lib or starts a notebook kernel (kernels inherit os.environ).
os.environ.setdefault("COURSE_DATA", tempfile.mkdtemp(prefix="course-lib-test-cache-"))
os.environ.setdefault("COURSE_PROFILE", "smoke")
os.environ["COURSE_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# One compute thread per process (pytest workers and the notebook kernels they start: tests run two
# workers on two cores), with the wait policy of course_lib.runtime, set before anything loads torch.
os.environ.setdefault("COURSE_THREADS", "1")
from course_lib import runtime  # noqa: E402  (course_lib applies the policy before it imports torch)

runtime.apply()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh, empty course cache for one test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA", str(folder))
    return folder


@pytest.fixture
def online(monkeypatch):
    """Allow the loaders to use the (loopback-only) network in this test."""
    from course_lib.data.download import reset_network_state
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    reset_network_state()
    yield
    reset_network_state()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    truncate: dict[str, int] = {}  # file name -> bytes to actually send (Content-Length stays full)

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def copyfile(self, source, outputfile) -> None:
        name = Path(self.path).name
        if name in self.truncate:
            outputfile.write(source.read(self.truncate[name]))
        else:
            super().copyfile(source, outputfile)


@pytest.fixture
def http_server(tmp_path):
    """Serve ``tmp_path/'www'`` on 127.0.0.1; yields (base_url, folder, truncate map); stops afterwards."""
    root = tmp_path / "www"
    root.mkdir()
    truncate: dict[str, int] = {}
    handler = type("Handler", (_QuietHandler,), {"truncate": truncate})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, truncate
    finally:
        server.shutdown()
        server.server_close()
