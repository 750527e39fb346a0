"""course_lib: the helpers behind the course notebooks (see README.md and DESIGN notes)."""

from __future__ import annotations

from typing import Any

from course_lib import runtime as _runtime

_runtime.apply()  # the thread policy, before this process loads torch where it has not yet

__all__ = ["active_profile", "choose_settings", "seed_everything", "__version__"]
__version__ = "0.1.0"
_LAZY = {"active_profile": "course_lib.profiles", "choose_settings": "course_lib.profiles",
         "seed_everything": "course_lib.seeding"}


def __getattr__(name: str) -> Any:
    """``from course_lib import seed_everything`` imports torch only then, so the kernel launcher stays light."""
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")
