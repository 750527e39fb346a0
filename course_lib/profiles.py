"""Scale profiles: `smoke` (CI), `class` (default, a laptop CPU) and `paper` (the document's settings).

The profile is read from the environment variable ``COURSE_PROFILE`` here and nowhere else.
Each notebook keeps its own settings per profile beside its code, as instances of one dataclass
whose fields say where their values come from: ``doc("003, section 4.2")`` for a setting the
document gives (the ``paper`` profile then holds the document's value), ``ours("why")`` for one it
does not state. :func:`choose_settings` prints every setting with this run's value, the document's
value and that source.
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
SOURCE_KEY = "course_lib.source"  # dataclass field metadata: where a setting's value comes from
NOT_STATED = "not stated"

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a setting comes from: the document (``where`` = document and section) or our choice (``where`` = why)."""

    document: bool
    where: str

    def __str__(self) -> str:
        return f"document {self.where}" if self.document else f"our choice: {self.where}"


def doc(where: str) -> Any:
    """A settings field whose value the document gives; ``where`` names it, e.g. ``"001, Table 2"``."""
    if not where.strip():
        raise ValueError("doc() needs the document and section the value comes from, e.g. '001, Table 2'")
    return dataclasses.field(metadata={SOURCE_KEY: Source(True, where.strip())})


def ours(why: str) -> Any:
    """A settings field the document does not state: our choice, and ``why`` we chose it."""
    if not why.strip():
        raise ValueError("ours() needs the reason for the choice, e.g. 'not stated; fits a laptop CPU'")
    return dataclasses.field(metadata={SOURCE_KEY: Source(False, why.strip())})


def source_of(field: dataclasses.Field) -> Source | None:
    """The provenance recorded on a settings field by :func:`doc` or :func:`ours` (None if it has none)."""
    return field.metadata.get(SOURCE_KEY)


def active_profile() -> str:
    """The profile in force: ``$COURSE_PROFILE`` if set, else ``class``."""
    value = os.environ.get(ENV_VAR, "").strip().lower() or DEFAULT_PROFILE
    if value not in PROFILES:
        raise ValueError(
            f"{ENV_VAR}={value!r} is not a profile; expected one of {', '.join(PROFILES)}"
        )
    return value


def _check_pair(document: Any, chosen: Any) -> None:
    if not (dataclasses.is_dataclass(document) and dataclasses.is_dataclass(chosen)):
        raise TypeError("expected two dataclass instances")
    if type(document) is not type(chosen):
        raise TypeError(
            f"settings of different types: {type(document).__name__} vs {type(chosen).__name__}"
        )


def settings_table(paper: Any, chosen: Any) -> pd.DataFrame:
    """Every setting: this run's value, the document's (the ``paper`` value where the document gives one), the source."""
    _check_pair(paper, chosen)
    rows = []
    for f in dataclasses.fields(paper):
        source = source_of(f)
        documented = source is not None and source.document
        rows.append({"setting": f.name, "this run": getattr(chosen, f.name),
                     "document": getattr(paper, f.name) if documented else NOT_STATED,
                     "source": str(source) if source else "(no source recorded)"})
    return pd.DataFrame(rows, columns=["setting", "this run", "document", "source"], dtype=object)


def profile_changes(document: Any, chosen: Any) -> pd.DataFrame:
    """Table of the fields where ``chosen`` differs from the ``paper`` settings (both dataclasses)."""
    _check_pair(document, chosen)
    rows = [
        {"setting": f.name, "document": getattr(document, f.name), "this run": getattr(chosen, f.name)}
        for f in dataclasses.fields(document)
        if getattr(document, f.name) != getattr(chosen, f.name)
    ]
    return pd.DataFrame(rows, columns=["setting", "document", "this run"], dtype=object)  # 64 stays 64, not 64.0


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    return str(value)


def format_settings(table: pd.DataFrame) -> str:
    """The settings table as aligned text, the source last so a long reason never splits the columns."""
    cells = [[_text(v) for v in row] for row in table[["setting", "this run", "document"]].itertuples(index=False)]
    header = ["setting", "this run", "document"]
    widths = [max(len(r[i]) for r in cells + [header]) for i in range(3)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  source"
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + s for r, s in zip(cells, table["source"])]
    return "\n".join([line, *body])


def choose_settings(per_profile: Mapping[str, T], profile: str | None = None, quiet: bool = False) -> T:
    """Pick this profile's settings and print each with the document's value and where it comes from."""
    missing = [p for p in PROFILES if p not in per_profile]
    if missing:
        raise KeyError(f"settings are missing for profile(s) {missing}; expected keys {list(PROFILES)}")
    profile = profile or active_profile()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    chosen = per_profile[profile]
    if not quiet:
        changed = len(profile_changes(per_profile["paper"], chosen))
        print(f"Profile: {profile} ({changed} of {len(dataclasses.fields(chosen))} settings differ from the "
              "paper profile)" if changed else f"Profile: {profile} (the paper profile's settings)")
        from course_lib.runtime import describe
        print(describe())
        print(format_settings(settings_table(per_profile["paper"], chosen)))
    return chosen
