"""Placeholders for a missing value (`n/a`, `-`, `#N/A`, ...) in the sample, for `route init`.

A source reads every value as text, so a column of amounts with a few `n/a` in it stays text, or
its cast rejects those rows. `route init` looks for the usual placeholders and writes them into the
route, marked for review: `null_values` in a CSV source (read as empty in every column), or a
`replace` to null for an Excel sheet's text columns (the excel source has no null_values).
Matching is exact, as both are: a value is a placeholder when it is one of MARKERS as written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.dtypes import arrow, route_type_of

# What spreadsheets, statistics packages and hand-kept files write for "no value", as written.
MARKERS = (
    "n/a",
    "N/A",
    "n.a.",
    "N.A.",
    "NA",
    "na",
    "#N/A",
    "#NA",
    "-",
    "--",
    ".",
    "?",
    "null",
    "NULL",
    "Null",
    "none",
    "None",
    "NONE",
    "nil",
    "NaN",
    "nan",
    "(null)",
    "(blank)",
    "missing",
)


@dataclass
class Marker:
    """One placeholder found: how often, and the first line it is on in each column."""

    value: str
    count: int = 0
    lines: dict[str, int] = field(default_factory=dict)  # column -> first line

    def where(self, limit: int = 3) -> str:
        """`amount (line 3), town (line 9)`: where a reader can go and see it."""
        shown = [f"{column} (line {line})" for column, line in list(self.lines.items())[:limit]]
        more = len(self.lines) - limit
        return ", ".join(shown) + (f" and {more} more columns" if more > 0 else "")


def find_markers(frame: pd.DataFrame) -> list[Marker]:
    """The placeholders in the text columns of `frame` (whose index is the source line), in the
    order of MARKERS."""
    found: dict[str, Marker] = {}
    wanted = pa.array(MARKERS, pa.string())
    for name in frame.columns:
        column = frame[name]
        if route_type_of(column.dtype) != "text" or not len(column):
            continue
        values = arrow(column).cast(pa.string())
        hits = pc.fill_null(pc.is_in(values, value_set=wanted), False).to_numpy(zero_copy_only=False)
        if not hits.any():
            continue
        for position in hits.nonzero()[0]:
            value = values[int(position)].as_py()
            marker = found.setdefault(value, Marker(value))
            marker.count += 1
            marker.lines.setdefault(str(name), int(column.index[position]))
    return [found[m] for m in MARKERS if m in found]


def describe(markers: list[Marker]) -> str:
    """`'n/a' in amount (line 3); '-' in amount (line 6)`."""
    return "; ".join(f"{m.value!r} in {m.where()}" for m in markers)
