"""The documents' published numbers as data, and "document vs. this run" tables built from them.

Each published table is a CSV in ``course_lib/reference_data/`` (listed in its ``index.csv``).
A notebook computes its own numbers into a DataFrame and calls :func:`compare` to set them beside
the document's, then :func:`show_table` to display the result; ``show_table`` also tags the output
so that ``course-lib report`` can collect every notebook's tables into one report.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import pandas as pd

REPORT_KEY = "course_lib"  # metadata key on displayed outputs that the report collects
DOC, OURS = "document", "this run"


def _data_dir():
    return resources.files("course_lib") / "reference_data"


@lru_cache(maxsize=1)
def tables() -> pd.DataFrame:
    """Index of the published tables: table_id, document, notebook, title, source, note."""
    with (_data_dir() / "index.csv").open() as f:
        return pd.read_csv(f, dtype=str, keep_default_na=False)


def table_info(table_id: str) -> dict[str, str]:
    """The index row of one table, as a dict."""
    index = tables()
    row = index[index.table_id == table_id]
    if row.empty:
        raise KeyError(f"no published table {table_id!r}; known: {', '.join(index.table_id)}")
    return row.iloc[0].to_dict()


def load(table_id: str) -> pd.DataFrame:
    """One published table as a DataFrame, exactly as printed in the document."""
    table_info(table_id)  # clear error for unknown ids
    with (_data_dir() / f"{table_id}.csv").open() as f:
        return pd.read_csv(f)


def compare(table_id: str, ours: pd.DataFrame, on: str | Sequence[str],
            metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """The document's table and ours side by side, joined on the key column(s) ``on``.

    Every metric column found in both tables appears twice, as ``(metric, 'document')`` and
    ``(metric, 'this run')`` in a two-level header; rows missing on either side show as empty.
    """
    keys = [on] if isinstance(on, str) else list(on)
    doc = load(table_id)
    for frame, who in ((doc, "document table " + table_id), (ours, "this run's table")):
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            raise KeyError(f"{who} has no column(s) {missing}; it has {list(frame.columns)}")
    shared = [c for c in (metrics or doc.columns) if c in ours.columns and c not in keys]
    if not shared:
        raise ValueError(
            f"no metric column is in both tables: document has {list(doc.columns)}, this run has {list(ours.columns)}"
        )
    left, right = doc[keys + shared].copy(), ours[keys + shared].copy()
    for k in keys:  # join on text so that 7 and 7.0 and "7" meet
        left[k] = left[k].map(_key_text)
        right[k] = right[k].map(_key_text)
    merged = left.merge(right, on=keys, how="outer", suffixes=(f" ({DOC})", f" ({OURS})"), sort=False)
    if all(pd.to_numeric(merged[k], errors="coerce").notna().all() for k in keys):
        merged = merged.sort_values(keys, key=lambda col: pd.to_numeric(col), kind="stable")
    merged = merged.set_index(keys)
    columns = pd.MultiIndex.from_tuples([(m, who) for m in shared for who in (DOC, OURS)])
    return pd.DataFrame({(m, who): merged[f"{m} ({who})"] for m, who in columns}, index=merged.index)


def _key_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A DataFrame as a Markdown table (two-level headers flattened as 'metric: who').

    Underscores in headers become spaces, so a long name such as ``validation_balanced_accuracy_pct``
    can wrap and the table fits the notebook's width.
    """
    flat = df.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = [": ".join(str(p) for p in col if str(p)) for col in flat.columns]
    flat = flat.reset_index()
    flat.columns = [str(c).replace("_", " ") for c in flat.columns]
    return flat.to_markdown(index=False, floatfmt=floatfmt, missingval="")


def show_table(df: pd.DataFrame, title: str, table_id: str | None = None, note: str | None = None) -> None:
    """Display a results table in the notebook and tag it for ``course-lib report``."""
    from IPython.display import Markdown, display
    info = table_info(table_id) if table_id else {}
    source = f"Document {info['document']}, {info['source']}" if info else ""
    text = f"**{title}**" + (f"  \n*{source}*" if source else "") + "\n\n" + to_markdown(df)
    if note:
        text += f"\n\n{note}"
    display(Markdown(text), metadata={REPORT_KEY: {"title": title, "table_id": table_id or "", "markdown": text}})
