"""The sql source's `partition: {column, parts}`: one read split into ranges of a column.

The source first asks the database for the smallest and largest value of the column (within its
`where` and incremental mark), then reads `parts` ranges of equal width, each as a query of its
own: `low <= column < high`, the last one `low <= column <= max`; rows whose column is null are
read by one more part (`column IS NULL`), so no row is lost. A local run reads the parts one after
the other; `route execute --cluster` reads them on several workers at once
(pipeline/ops/cluster/). The column is a number, a date or a time stamp; ranges of equal width
read parts of equal size when the values are spread evenly (an id, a date), not otherwise.

Each part numbers its rows from 1 and names itself in `chunk.attrs["source"]` ("... part 2 of 5
(id 250 to 500)"), so that a rejected row names the same part and row in both kinds of run.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

from pipeline.basics.errors import RunFailed

MAX_PARTS = 10_000

PARTITION_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["column", "parts"],
    "properties": {
        "column": {
            "type": "string",
            "minLength": 1,
            "description": "a number, date or time stamp column whose range is split (nulls are read as one more part)",
        },
        "parts": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_PARTS,
            "description": "how many ranges of equal width to read, each as a query of its own",
        },
    },
    "description": "read the rows in ranges of a column, one query each (in parallel with "
    "route execute --cluster, see docs/cluster-execute.md)",
}


@dataclass
class SqlPart:
    """One range of the partition column: low <= column < high (<= high for the last), or its nulls."""

    index: int  # 1-based
    count: int  # how many parts in all, the null part included
    column: str
    low: Any = None
    high: Any = None
    last: bool = False
    null: bool = False

    def describe(self, label: str) -> str:
        what = f"{self.column} is null" if self.null else f"{self.column} {_shown(self.low)} to {_shown(self.high)}"
        return f"{label} part {self.index} of {self.count} ({what})"

    @property
    def label(self) -> str:
        return self.describe("sql source")


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)


def split(column: str, low: Any, high: Any, parts: int, label: str) -> list[SqlPart]:
    """The ranges of `column` from `low` to `high` (both read), `parts` of them (fewer when the
    values leave no room), then the null part. No value (an empty table): only the null part."""
    bounds = [] if low is None or high is None else _bounds(column, low, high, parts, label)
    ranges = list(zip(bounds, bounds[1:])) or ([(low, high)] if low is not None and high is not None else [])
    count = len(ranges) + 1
    out = [SqlPart(i + 1, count, column, lo, hi, last=(i == len(ranges) - 1)) for i, (lo, hi) in enumerate(ranges)]
    out.append(SqlPart(count, count, column, null=True))
    return out


def _bounds(column: str, low: Any, high: Any, parts: int, label: str) -> list[Any]:
    """parts + 1 ascending boundaries from low to high, repeated ones left out."""
    if isinstance(low, bool) or isinstance(high, bool):
        raise _not_rangeable(column, low, label)
    if isinstance(low, int) and isinstance(high, int):
        raw = [low + (high - low) * k // parts for k in range(parts + 1)]
    elif isinstance(low, (int, float, decimal.Decimal)) and isinstance(high, (int, float, decimal.Decimal)):
        if isinstance(low, decimal.Decimal) or isinstance(high, decimal.Decimal):
            lo, hi = decimal.Decimal(low), decimal.Decimal(high)
        else:
            lo, hi = float(low), float(high)
        raw = [lo + (hi - lo) * k / parts for k in range(parts)] + [hi]
    elif isinstance(low, dt.datetime) and isinstance(high, dt.datetime):
        raw = [low + (high - low) * k / parts for k in range(parts)] + [high]
    elif isinstance(low, dt.date) and isinstance(high, dt.date):
        a, b = low.toordinal(), high.toordinal()
        raw = [dt.date.fromordinal(a + (b - a) * k // parts) for k in range(parts + 1)]
    else:
        raise _not_rangeable(column, low, label)
    raw[0], raw[-1] = low, high
    out = [raw[0]]
    for value in raw[1:]:
        if value > out[-1]:
            out.append(value)
    return out if len(out) > 1 else [low, high]


def _not_rangeable(column: str, value: Any, label: str) -> RunFailed:
    return RunFailed(
        f"partition column '{column}' of {label} holds {type(value).__name__} values such as {value!r}; "
        "partition by a number, date or time stamp column (an id, a date)"
    )


def minmax_table(stmt, column):
    """SELECT min, max of `column` (a table's Column) within the where clause of `stmt`."""
    from sqlalchemy import func, select

    query = select(func.min(column), func.max(column)).select_from(column.table)
    if stmt.whereclause is not None:
        query = query.where(stmt.whereclause)
    return query


def part_of_table(stmt, column, part: SqlPart):
    """`stmt` limited to the rows of `part`."""
    from sqlalchemy import bindparam

    if part.null:
        return stmt.where(column.is_(None))
    low = bindparam("route_part_low", part.low, type_=column.type)
    high = bindparam("route_part_high", part.high, type_=column.type)
    return stmt.where(column >= low).where(column <= high if part.last else column < high)


def query_sql(sql: str, quoted: str, part: SqlPart | None) -> tuple[str, dict]:
    """A query's SQL limited to `part` (or, with None, its min and max), and the parameters it adds."""
    if part is None:
        return f"SELECT MIN(route_p.{quoted}), MAX(route_p.{quoted}) FROM ({sql}) route_p", {}
    if part.null:
        return f"SELECT * FROM ({sql}) route_p WHERE route_p.{quoted} IS NULL", {}
    op = "<=" if part.last else "<"
    return (
        f"SELECT * FROM ({sql}) route_p WHERE route_p.{quoted} >= :route_part_low AND route_p.{quoted} {op} :route_part_high",
        {"route_part_low": part.low, "route_part_high": part.high},
    )
