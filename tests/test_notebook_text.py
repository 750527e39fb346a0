"""Notebook 00's list and table of notebooks name every notebook that is in the folder."""

import re
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _start_here() -> str:
    return "\n".join(c.source for c in nbformat.read(NOTEBOOKS / "00_start_here.ipynb", as_version=4).cells)


def test_start_here_glob_lists_every_notebook():
    pattern = re.search(r'glob\("([^"]+)"\)', _start_here()).group(1)
    found = {p.name for p in NOTEBOOKS.glob(pattern)}
    every = {p.name for p in NOTEBOOKS.glob("*.ipynb") if p.name[:2].isdigit()}
    assert found == every, f"notebook 00's glob {pattern!r} misses {sorted(every - found)}"


def test_start_here_table_names_every_notebook():
    rows = {line.split("|")[1].split()[0] for line in _start_here().splitlines() if re.match(r"\| \d\d", line)}
    prefixes = {p.name.split("_")[0] for p in NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")} - {"00"}
    assert rows == prefixes, f"table rows {sorted(rows)} vs. notebooks {sorted(prefixes)}"


def test_start_here_says_to_shut_kernels_down():
    assert "Shut Down Kernel" in _start_here()
