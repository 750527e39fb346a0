"""Your-turn exercises: the student's function is checked against the library's reference on fresh inputs.

An :class:`Exercise` names the reference implementation, a generator of fresh random inputs and two
levels of help. :func:`check` runs the student's function on new inputs every time (never reads the
student's text) and answers in one line: correct, not yet written, or what differs on which input,
with a hint after the second failed try and the idea of the solution after the third.
:func:`solution` hands the rest of the lesson the student's function once it passes, the reference
until then, and says which in one line, so an unsolved exercise never breaks the lesson.

For graders: :func:`passed` is what a hidden nbgrader test asserts; the student edition written by
``course-lib student`` (nbgrader's own preprocessors) drops those tests and the solutions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

_attempts: dict[str, int] = {}
_passed: dict[str, bool] = {}


@dataclass(frozen=True)
class Exercise:
    """One exercise: its reference, fresh inputs for each trial, and help that grows with the failed tries."""

    name: str
    reference: Callable[..., Any]
    make_inputs: Callable[[np.random.Generator], Sequence[Any]]  # one trial's positional arguments
    hint: str  # shown after the second failed try
    idea: str  # the solution's idea, after the third
    trials: int = 5
    rtol: float = 1e-5
    atol: float = 1e-6
    fixed_inputs: tuple[Sequence[Any], ...] = field(default=())  # edge cases tried before the random ones


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _describe(args: Sequence[Any]) -> str:
    """Short text for a trial's arguments: numbers as numbers, arrays with a few values."""
    parts = []
    for a in args:
        arr = _as_array(a)
        if arr.ndim == 0 and np.issubdtype(arr.dtype, np.number):
            parts.append(f"{arr.item():g}")
        else:
            parts.append(np.array2string(arr, precision=3, threshold=6))
    return "(" + ", ".join(parts) + ")"


def difference(got: Any, expected: Any, rtol: float, atol: float) -> str | None:
    """None when ``got`` matches ``expected`` (shape and values within tolerance); else what differs, in words."""
    g, e = _as_array(got), _as_array(expected)
    if g.shape != e.shape:
        return f"your result has shape {g.shape}, expected {e.shape}"
    if not np.issubdtype(g.dtype, np.number) and g.dtype != bool:
        return f"your result holds {g.dtype} values, expected numbers"
    g, e = g.astype(float), e.astype(float)
    bad = ~np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=False)
    if not bad.any():
        return None
    i = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
    where = f" at index {tuple(int(k) for k in i)}" if i else ""
    return (f"{int(bad.sum())} of {bad.size} values differ; the first{where} is {g[i]:.6g}, expected {e[i]:.6g} "
            f"(off by {abs(g[i] - e[i]):.3g})")


def _trial_inputs(exercise: Exercise, seed: int | None) -> list[Sequence[Any]]:
    rng = np.random.default_rng(seed)
    return [*exercise.fixed_inputs, *(exercise.make_inputs(rng) for _ in range(exercise.trials))]


def verdict(exercise: Exercise, candidate: Callable[..., Any], seed: int | None = None) -> str | None:
    """None when ``candidate`` agrees with the reference on every trial; else the first problem, in words.

    Raises NotImplementedError when the candidate is still the unsolved stub.
    """
    for args in _trial_inputs(exercise, seed):
        expected = exercise.reference(*args)
        try:
            got = candidate(*args)
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - the student's code may raise anything; say what and where
            return f"your function raised {type(exc).__name__}: {exc} on input {_describe(args)}"
        problem = difference(got, expected, exercise.rtol, exercise.atol)
        if problem:
            return f"on input {_describe(args)}: {problem}"
    return None


def check(exercise: Exercise, candidate: Callable[..., Any], seed: int | None = None) -> bool:
    """Check ``candidate`` on fresh inputs and answer in one line (with a hint or the idea after repeated failures)."""
    try:
        problem = verdict(exercise, candidate, seed)
    except NotImplementedError:
        print(f"{exercise.name}: not yet written. The lesson uses the library's version meanwhile.")
        _passed[exercise.name] = False
        return False
    if problem is None:
        print(f"{exercise.name}: correct on {exercise.trials + len(exercise.fixed_inputs)} fresh inputs. Well done!")
        _passed[exercise.name] = True
        return True
    tries = _attempts[exercise.name] = _attempts.get(exercise.name, 0) + 1
    help_text = f" Hint: {exercise.hint}" if tries == 2 else f" The idea: {exercise.idea}" if tries >= 3 else ""
    print(f"{exercise.name}: not quite: {problem}.{help_text}")
    _passed[exercise.name] = False
    return False


def passed(name: str) -> bool:
    """Whether the last :func:`check` of exercise ``name`` in this kernel succeeded (what a hidden grading test asserts)."""
    return _passed.get(name, False)


def solution(exercise: Exercise, candidate: Callable[..., Any]) -> Callable[..., Any]:
    """The student's function once it passes its check, else the reference; one line says which is used."""
    try:
        ok = verdict(exercise, candidate, seed=12345) is None
    except NotImplementedError:
        ok = False
    print(f"{exercise.name}: using {'your function' if ok else 'the library reference until yours passes its check'}.")
    return candidate if ok else exercise.reference


def reset(name: str | None = None) -> None:
    """Forget the tries counted so far (for one exercise, or all)."""
    for store in (_attempts, _passed):
        if name is None:
            store.clear()
        else:
            store.pop(name, None)
