"""Issue 24: exercises with checks, the student edition (nbgrader's preprocessors) and grading by nbgrader's rule."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_lib import exercises
from course_lib.editions import autograde, exercise_cells, restore_tests, student_notebook, write_student_edition
from course_lib.lessons.gan_judge import exercises as ex03
from course_lib.runner import NOTEBOOK_DIR

NB03 = NOTEBOOK_DIR / "03_gan_judge.ipynb"


# ---------------------------------------------------------------- the checks answer in one line, and can fail

def test_a_right_answer_passes_and_wrong_ones_say_what_differs(capsys):
    exercises.reset()
    assert exercises.check(ex03.OPTIMAL_DISCRIMINATOR, ex03.optimal_discriminator)
    assert "correct on" in capsys.readouterr().out

    def forgot_smoothing(p_data, p_g, s):
        return np.asarray(p_data) / (np.asarray(p_data) + np.asarray(p_g))

    replies = []
    for _ in range(3):
        assert not exercises.check(ex03.OPTIMAL_DISCRIMINATOR, forgot_smoothing)
        replies.append(capsys.readouterr().out)
    assert all(r.count("\n") == 1 for r in replies)  # one line each
    assert "values differ" in replies[0] and "expected 0.45" in replies[0] and "Hint" not in replies[0]
    assert "Hint:" in replies[1] and "The idea:" in replies[2]
    assert not exercises.passed("optimal_discriminator")


def test_ties_at_the_threshold_are_tried(capsys):
    def at_least(scores, threshold):  # >= instead of >: wrong exactly on ties
        return float(np.mean(np.asarray(scores) >= threshold))
    assert not exercises.check(ex03.SHARE_CALLED_REAL, at_least)
    assert "expected 0.333" in capsys.readouterr().out


def test_unsolved_stub_and_crashing_code_fall_back_to_the_reference(capsys):
    def stub(p_data, p_g, s):
        raise NotImplementedError()

    def crashes(p_data, p_g, s):
        return p_data["x"]

    assert not exercises.check(ex03.OPTIMAL_DISCRIMINATOR, stub)
    assert "not yet written" in capsys.readouterr().out
    assert exercises.solution(ex03.OPTIMAL_DISCRIMINATOR, stub) is ex03.optimal_discriminator
    assert "library reference" in capsys.readouterr().out
    assert not exercises.check(ex03.OPTIMAL_DISCRIMINATOR, crashes)
    assert "raised IndexError" in capsys.readouterr().out
    mine = lambda p_data, p_g, s: (1 - s) * np.asarray(p_data) / (np.asarray(p_data) + np.asarray(p_g))  # noqa: E731
    assert exercises.solution(ex03.OPTIMAL_DISCRIMINATOR, mine) is mine


# ---------------------------------------------------------------- the two editions

def test_the_student_edition_has_no_solutions_and_no_hidden_tests(tmp_path):
    instructor = nbformat.read(NB03, as_version=4)
    roles = exercise_cells(instructor)
    assert roles["solution"] == ["optimal_discriminator", "share_called_real"]
    assert roles["test"] == ["check_optimal_discriminator", "check_share_called_real"]
    (path,) = write_student_edition([NB03], tmp_path)
    text = path.read_text()
    for gone in ("BEGIN SOLUTION", "HIDDEN TESTS", "(1 - smoothing) * p_data", "> threshold))"):
        assert gone not in text, gone
    assert text.count("raise NotImplementedError()") == 2
    assert exercise_cells(nbformat.read(path, as_version=4)) == roles  # nbgrader can still grade it


def _execute(nb: nbformat.NotebookNode, tmp_path: Path, allow_errors: bool = False) -> nbformat.NotebookNode:
    from nbclient import NotebookClient
    NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    return nb


def _outputs(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_student_edition_runs_unsolved_and_a_solved_submission_gets_full_marks(tmp_path):
    instructor = nbformat.read(NB03, as_version=4)
    student = student_notebook(instructor)
    # 1. handed out as it is: runs top to bottom, the lesson on the library's reference
    ran = _execute(nbformat.reads(nbformat.writes(student), 4), tmp_path)
    out = _outputs(ran)
    assert out.count("not yet written") == 2 and out.count("library reference until yours passes") == 2
    assert "All checks passed." in out
    # 2. graded as nbgrader's autograder would: tests restored (hidden ones included), nbgrader's rule
    unsolved = _execute(restore_tests(student, instructor), tmp_path, allow_errors=True)
    assert autograde(unsolved, instructor) == (0.0, 2.0)
    solved = nbformat.reads(nbformat.writes(student), 4)  # the student writes the solutions in
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in instructor.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    for cell in solved.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = "\n".join(line for line in answers[grade_id].splitlines() if "### " not in line)
    graded = _execute(restore_tests(solved, instructor), tmp_path, allow_errors=True)
    assert autograde(graded, instructor) == (2.0, 2.0)
    assert "using your function" in _outputs(graded)


# ---------------------------------------------------------------- the other lessons' exercises can fail and pass

def _lesson_cases():
    import torch

    from course_lib.lessons.genetic_autoencoder import exercises as ex06
    from course_lib.lessons.latent_evolution import exercises as ex08
    from course_lib.lessons.traffic_signs import exercises as ex05

    def no_half(mu, logvar, eps):
        return mu + torch.exp(logvar) * eps

    def kl_no_batch_mean(mu, logvar):
        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    def mae_all(outputs, targets):
        return (outputs - targets).abs().mean()

    def mutate_in_place(parent, positions, u, step):
        parent[positions] += step * u
        return parent

    def centred(a, b):
        a, b = a - a.mean((-3, -2, -1), keepdim=True), b - b.mean((-3, -2, -1), keepdim=True)
        return (a * b).sum((-3, -2, -1)) / (a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1))

    return [(ex05.REPARAMETERISE, no_half, "values differ"), (ex05.KL_DIVERGENCE, kl_no_batch_mean, "values differ"),
            (ex06.MAE_FITNESS, mae_all, "shape"), (ex06.MUTATE, mutate_in_place, "values differ"),
            (ex08.NCC, centred, "values differ")]


@pytest.mark.parametrize("case", range(5))
def test_each_lesson_exercise_passes_its_reference_and_catches_a_typical_mistake(case, capsys):
    exercise, wrong, says = _lesson_cases()[case]
    assert exercises.check(exercise, exercise.reference)
    assert not exercises.check(exercise, wrong)
    assert says in capsys.readouterr().out


def test_every_notebooks_student_edition_is_clean_and_each_exercise_has_a_check(tmp_path):
    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    with_exercises = 0
    for path in write_student_edition(paths, tmp_path):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, path.name
        roles = exercise_cells(nbformat.read(path, as_version=4))
        assert [f"check_{g}" for g in roles["solution"]] == roles["test"], path.name  # a check right after each
        with_exercises += bool(roles["solution"])
    assert with_exercises >= 4  # 03, 05b, 06, 08 so far
