"""Execute notebooks in the smoke profile and keep only the outputs nbval checks.

Cells marked ``# NBVAL_CHECK_OUTPUT`` keep their outputs (nbval compares them on every test run);
every other cell is cleared, and widget state is dropped, so the committed notebooks stay small.

    .venv/bin/python scripts/refresh_notebook_outputs.py notebooks/00_start_here.ipynb [...]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

MARK = "# NBVAL_CHECK_OUTPUT"


def refresh(path: Path) -> None:
    """Run ``path`` under COURSE_PROFILE=smoke and offline, then strip unchecked outputs in place."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    counter = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(MARK):
            counter += 1
            cell.execution_count = counter
            for out in cell.outputs:
                if "execution_count" in out:
                    out.execution_count = counter
                out.get("metadata", {}).pop("course_lib", None)
        else:
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("course_lib", None)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    print(f"{path}: kept outputs of {counter} checked cell(s)")


if __name__ == "__main__":
    from course_lib.runtime import thread_env

    os.environ.update(COURSE_PROFILE="smoke", COURSE_OFFLINE="1", **thread_env())  # as the tests run them
    os.environ.setdefault("COURSE_DATA", tempfile.mkdtemp(prefix="course-lib-refresh-"))
    for arg in sys.argv[1:] or sorted(str(p) for p in Path("notebooks").glob("*.ipynb")):
        refresh(Path(arg))
