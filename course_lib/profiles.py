"""Scale profiles: `smoke` (CI), `class` (default, a laptop CPU) and `paper` (the document's settings).

The profile is read from the environment variable ``COURSE_PROFILE`` here and nowhere else.
Each notebook keeps its own settings per profile beside its code, as instances of one dataclass,
and calls :func:`choose_settings`, which prints what the chosen profile changed from the document.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, TypeVar

import pandas as pd

PROFILES: tuple[str, ...] = ("smoke", "class", "paper")
DEFAULT_PROFILE = "class"
ENV_VAR = "COURSE_PROFILE"

T = TypeVar("T")


def active_profile() -> str:
    """The profile in force: ``$COURSE_PROFILE`` if set, else ``class``."""
    value = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT_PROFILE
    if value not in PROFILES:
        raise ValueError(
            f"{ENV_VAR}={value!r} is not a profile; expected one of {', '.join(PROFILES)}"
        )
    return value


def profile_changes(document: Any, chosen: Any) -> pd.DataFrame:
    """Table of the fields where ``chosen`` differs from the document's settings (both dataclasses)."""
    if not (dataclasses.is_dataclass(document) and dataclasses.is_dataclass(chosen)):
        raise TypeError("profile_changes expects two dataclass instances")
    if type(document) is not type(chosen):
        raise TypeError(
            f"settings of different types: {type(document).__name__} vs {type(chosen).__name__}"
        )
    rows = [
        {"setting": f.name, "document": getattr(document, f.name), "this run": getattr(chosen, f.name)}
        for f in dataclasses.fields(document)
        if getattr(document, f.name) != getattr(chosen, f.name)
    ]
    return pd.DataFrame(rows, columns=["setting", "document", "this run"], dtype=object)  # 64 stays 64, not 64.0


def choose_settings(per_profile: Mapping[str, T], profile: str | None = None, quiet: bool = False) -> T:
    """Pick this profile's settings and print what differs from the ``paper`` (document) settings."""
    missing = [p for p in PROFILES if p not in per_profile]
    if missing:
        raise KeyError(f"settings are missing for profile(s) {missing}; expected keys {list(PROFILES)}")
    profile = profile or active_profile()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    chosen = per_profile[profile]
    if not quiet:
        changes = profile_changes(per_profile["paper"], chosen)
        print(f"Profile: {profile}")
        if changes.empty:
            print("Settings are the document's own.")
        else:
            print(f"Changed from the document's settings ({len(changes)}):")
            print(changes.to_string(index=False))
    return chosen
