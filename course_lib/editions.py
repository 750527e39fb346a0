"""The student edition of the notebooks, written with nbgrader's own preprocessors, and nbgrader's grading rule.

The notebooks in ``notebooks/`` are the instructor edition: each exercise's solution sits between
nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers in a cell marked as a solution, and
each check cell is an nbgrader test cell with points whose hidden part (``### BEGIN HIDDEN TESTS``)
asserts that the check passed. :func:`write_student_edition` clears outputs, replaces solutions by
nbgrader's stub (``raise NotImplementedError()``) and drops the hidden tests, so the student edition
runs top to bottom on the library's reference while exercises are unsolved. An instructor who uses
nbgrader imports the instructor edition as an assignment unchanged.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from course_lib.data.cache import atomic_path


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of one instructor notebook (a copy): no outputs, solutions stubbed, hidden tests removed."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    nb = nbformat.reads(nbformat.writes(nb), 4)  # a copy: the instructor edition stays as it is
    resources: dict = {}
    for step in (ClearOutput(), ClearSolutions(), ClearHiddenTests()):
        nb, resources = step.preprocess(nb, resources)
    nb.metadata.pop("widgets", None)
    return nb


def exercise_cells(nb: nbformat.NotebookNode) -> dict[str, list[str]]:
    """The grade ids of a notebook's nbgrader cells, by role: 'solution' and 'test'."""
    found: dict[str, list[str]] = {"solution": [], "test": []}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            found["solution"].append(meta["grade_id"])
        elif meta.get("grade"):
            found["test"].append(meta["grade_id"])
    return found


def write_student_edition(paths: list[Path], out_dir: Path) -> list[Path]:
    """Write the student edition of each notebook in ``paths`` into ``out_dir`` (atomically); returns the files."""
    out_dir = Path(out_dir)
    written = []
    for path in paths:
        nb = student_notebook(nbformat.read(path, as_version=4))
        target = out_dir / Path(path).name
        with atomic_path(target) as tmp:
            nbformat.write(nb, tmp)
        written.append(target)
    return written


def autograde(nb: nbformat.NotebookNode, instructor: nbformat.NotebookNode) -> tuple[float, float]:
    """(points, maximum) of an *executed* submission, scored as nbgrader's autograder scores it.

    Test cells are first restored from the instructor edition (what nbgrader's OverwriteCells does,
    hidden tests included) by the caller before execution; this reads each test cell's outputs with
    nbgrader's own ``determine_grade`` (an error or stderr output: no points).
    """
    from nbgrader.utils import determine_grade, is_grade

    wanted = set(exercise_cells(instructor)["test"])
    got = total = 0.0
    seen = set()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if is_grade(cell) and not meta.get("solution"):
            points, maximum = determine_grade(cell)
            got += points or 0.0
            total += maximum
            seen.add(meta["grade_id"])
    if seen != wanted:
        raise ValueError(f"the submission's test cells {sorted(seen)} are not the assignment's {sorted(wanted)}")
    return got, total


def restore_tests(submission: nbformat.NotebookNode, instructor: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``submission`` whose test cells carry the instructor edition's source (hidden tests included)."""
    sources = {c.metadata["nbgrader"]["grade_id"]: c.source for c in instructor.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}
    nb = nbformat.reads(nbformat.writes(submission), 4)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id") in sources:
            cell.source = sources[meta["grade_id"]]
    return nb
