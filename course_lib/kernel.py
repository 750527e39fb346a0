"""The course's Jupyter kernel: ipykernel started with the thread policy of :mod:`course_lib.runtime`.

OpenMP reads its wait policy when torch loads, which is too late for any notebook cell, so the policy
has to be in the kernel's environment when it starts. ``python -m course_lib.kernel -f FILE`` sets it
and replaces itself with ``python -m ipykernel_launcher -f FILE``. ``python -m course_lib.kernel
install`` writes the ``python3`` kernel spec of this environment (``sys.prefix``) to start that way, so
JupyterLab, ``course-lib run`` and any tool that asks for the notebooks' ``python3`` kernel get it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from course_lib.runtime import thread_env

KERNEL_NAME = "python3"  # the name the notebooks' metadata asks for


def spec() -> dict:
    """The kernel spec: this interpreter, started through this module."""
    return {"argv": [sys.executable, "-m", "course_lib.kernel", "-f", "{connection_file}"],
            "display_name": "Python 3 (course_lib)", "language": "python",
            "metadata": {"debugger": True}, "kernel_protocol_version": "5.5"}


def install(prefix: Path | str = sys.prefix) -> Path:
    """Write the ``python3`` kernel spec under ``prefix/share/jupyter/kernels``; returns its folder."""
    folder = Path(prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(spec(), indent=1) + "\n", encoding="utf-8")
    return folder


def launch(argv: list[str]) -> None:
    """Set the thread policy, then become ``python -m ipykernel_launcher`` with the same arguments."""
    os.environ.update(thread_env())
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        print(f"kernel spec written to {install()}")
    else:
        launch(sys.argv[1:])
