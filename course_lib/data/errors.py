"""The two ways a data set can fail to load, shared by every loader and by ``course-lib data list``."""

from __future__ import annotations

from pathlib import Path


class DataUnavailable(RuntimeError):
    """A data set is neither cached nor reachable, and has no offline stand-in."""


class UnusableData(DataUnavailable):
    """Data is there but cannot be used as it is; the message names the path, what was expected and what was found.

    A subclass of :class:`DataUnavailable`, so a notebook that skips an optional data set when it is
    missing skips it (and says why) when it is unusable too.
    """

    def __init__(self, path: Path | str, expected: str, found: str, todo: str = "") -> None:
        self.path, self.expected, self.found, self.todo = Path(path), expected, found, todo
        super().__init__(f"{path}: expected {expected}; found {found}." + (f" {todo}" if todo else ""))
