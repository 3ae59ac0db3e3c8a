"""Tables of a `route test` case compared as text: canonical values, expected files, readable diffs.

Both sides become text in one canonical form before they are compared, so an expected CSV file
(where everything is text) can describe typed output: numbers without trailing zeros (`3105`,
`2980.1`), dates and date-times in ISO 8601 (`2024-06-14`, `2024-06-14T08:30:00`), booleans as
`true`/`false`, null as empty. Expected text is read in the type of the actual column, so `3105.00`
in a CSV file matches the number 3105. A table here is columns plus rows of canonical values.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson
import pandas as pd

from pipeline.basics.dtypes import route_type_of
from pipeline.basics.errors import RouteInvalid

MAX_SHOWN = 20  # differences listed per table before "... and N more"
_TRUE, _FALSE = {"true", "t", "yes", "y", "1"}, {"false", "f", "no", "n", "0"}


@dataclass
class Table:
    """Columns, their route types (when known) and rows of canonical text (None = null)."""

    columns: list[str]
    rows: list[tuple]
    types: dict[str, str] = field(default_factory=dict)
    lines: list = field(default_factory=list)  # source line of each actual row, for messages


def canonical(value) -> str | None:
    """The text a value is compared as."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, Decimal):
        return _number(float(value))
    if isinstance(value, dt.datetime):
        return _datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def _number(x: float) -> str | None:
    if math.isnan(x):
        return None
    if math.isfinite(x) and x == int(x) and abs(x) < 2**53:
        return str(int(x))
    return repr(x)


def _datetime(value: dt.datetime) -> str:
    text = value.isoformat()
    if value.microsecond:
        head, _, rest = text.partition(".")
        digits = rest[:6].rstrip("0")
        text = f"{head}.{digits}{rest[6:]}"
    return text.replace("+00:00", "Z") if value.tzinfo is not None else text


def as_type(text: str | None, route_type: str | None) -> str | None:
    """Expected text read as `route_type` and put in canonical form; unreadable text stays as it is."""
    if text is None or route_type in (None, "text"):
        return text
    s = text.strip()
    try:
        if route_type == "integer":
            whole = Decimal(s)  # exact: 2**63 - 1 read through a float would not be
            return str(int(whole)) if whole == whole.to_integral_value() else text
        if route_type == "number":
            return _number(float(s))
        if route_type == "boolean":
            low = s.lower()
            return "true" if low in _TRUE else "false" if low in _FALSE else text
        if route_type == "date":
            return dt.date.fromisoformat(s[:10]).isoformat() if len(s) == 10 else text
        if route_type == "datetime":
            return _datetime(dt.datetime.fromisoformat(s.replace("Z", "+00:00")))
    except (ValueError, ArithmeticError):  # decimal's InvalidOperation is an ArithmeticError
        return text
    return text


def from_frames(frames: list[pd.DataFrame]) -> Table:
    """What a target received, as a canonical Table."""
    frames = [f for f in frames if f is not None]
    if not frames:
        return Table([], [])
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    columns = [str(c) for c in frame.columns]
    types = {str(c): route_type_of(frame[c].dtype) for c in frame.columns}
    data = [[canonical(v) for v in frame[c].astype(object).tolist()] for c in frame.columns]
    rows = list(zip(*data)) if data else [() for _ in range(len(frame))]
    return Table(columns, rows, types, list(frame.index))


def read_expected(path: Path) -> Table:
    """An expected CSV or JSONL file as a Table of raw text (not yet in canonical form)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RouteInvalid(f"{path}: cannot read the file: {exc.strerror}") from None
    if path.suffix == ".jsonl":
        return _read_jsonl(path, raw)
    text = raw.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None) or []
    rows = []
    for n, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise RouteInvalid(f"{path}:{n}: this row has {len(row)} values but the header has {len(header)}")
        rows.append(tuple(v if v != "" else None for v in row))
    return Table(header, rows)


def _read_jsonl(path: Path, raw: bytes) -> Table:
    objects = []
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise RouteInvalid(f"{path}:{n}: not JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise RouteInvalid(f"{path}:{n}: each line must be a JSON object")
        objects.append(obj)
    columns = list(dict.fromkeys(k for obj in objects for k in obj))
    rows = [tuple(canonical(obj.get(c)) for c in columns) for obj in objects]
    return Table(columns, rows)


def align(expected: Table, actual: Table, csv_like: bool) -> Table:
    """`expected` in canonical form, each value read as the type of the actual column."""
    rows = []
    for row in expected.rows:
        out = tuple(as_type(v, actual.types.get(c)) for c, v in zip(expected.columns, row))
        rows.append(tuple(None if csv_like and v == "" else v for v in out))
    return Table(expected.columns, rows)


def compare(expected: Table, actual: Table, *, ordered: bool = True, csv_like: bool = True) -> list[str]:
    """The differences between two tables, as lines a person reads; empty when they agree."""
    out: list[str] = []
    if csv_like:  # an empty CSV cell cannot say whether it was null or empty text
        actual = Table(
            actual.columns, [tuple(None if v == "" else v for v in r) for r in actual.rows], actual.types, actual.lines
        )
    if expected.columns != actual.columns:
        missing = [c for c in expected.columns if c not in actual.columns]
        extra = [c for c in actual.columns if c not in expected.columns]
        if missing or extra:
            out.append(
                "columns: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {', '.join(missing)}" if missing else "",
                        f"unexpected {', '.join(extra)}" if extra else "",
                    )
                    if part
                )
            )
        else:
            out.append(
                f"columns in another order: expected {', '.join(expected.columns)}; got {', '.join(actual.columns)}"
            )
    shared = [c for c in expected.columns if c in actual.columns]
    exp_rows = _project(expected, shared)
    act_rows = _project(actual, shared)
    act_lines = list(actual.lines) or [None] * len(act_rows)
    if not ordered:
        exp_order = sorted(range(len(exp_rows)), key=lambda i: _sort_key(exp_rows[i]))
        act_order = sorted(range(len(act_rows)), key=lambda i: _sort_key(act_rows[i]))
        exp_rows = [exp_rows[i] for i in exp_order]
        act_rows, act_lines = [act_rows[i] for i in act_order], [act_lines[i] for i in act_order]
    if len(exp_rows) != len(act_rows):
        out.append(f"rows: expected {len(exp_rows)}, got {len(act_rows)}")
    out += _row_diff(shared, exp_rows, act_rows, act_lines, ordered)
    return out


def _project(table: Table, columns: list[str]) -> list[tuple]:
    index = [table.columns.index(c) for c in columns]
    return [tuple(row[i] for i in index) for row in table.rows]


def _sort_key(row: tuple) -> tuple:
    return tuple((v is not None, v or "") for v in row)


def _row_diff(columns, expected, actual, lines, ordered: bool) -> list[str]:
    """Rows aligned like a text diff; rows replaced one for one are shown cell by cell."""
    shown: list[str] = []
    matcher = difflib.SequenceMatcher(a=expected, b=actual, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for k in range(i2 - i1):
                cells = [
                    f"{c}: expected {_show(e)}, got {_show(a)}"
                    for c, e, a in zip(columns, expected[i1 + k], actual[j1 + k])
                    if e != a
                ]
                shown.append(f"{_name(j1 + k, lines[j1 + k], columns, actual[j1 + k], ordered)}: " + "; ".join(cells))
            continue
        # in any order, positions mean nothing: rows are named by their values (and source line)
        for i in range(i1, i2):
            shown.append(f"missing row{f' {i + 1}' if ordered else ''}: {_record(columns, expected[i])}")
        for j in range(j1, j2):
            shown.append(
                f"unexpected row{f' {j + 1}' if ordered else ''}{_at(lines[j])}: {_record(columns, actual[j])}"
            )
    if len(shown) > MAX_SHOWN:
        shown = shown[:MAX_SHOWN] + [f"... and {len(shown) - MAX_SHOWN} more differences"]
    return shown


def _name(j: int, line, columns: list[str], row: tuple, ordered: bool) -> str:
    if ordered:
        return f"row {j + 1}{_at(line)}"
    return f"row{_at(line)}" if line is not None else f"row with {columns[0]}={_show(row[0])}" if columns else "row"


def _at(line) -> str:
    return f" (source line {line})" if line is not None else ""


def _show(value: str | None) -> str:
    return "null" if value is None else repr(value)


def _record(columns: list[str], row: tuple) -> str:
    return ", ".join(f"{c}={_show(v)}" for c, v in zip(columns, row))


def write_expected(path: Path, table: Table) -> None:
    """Write `table` as the expected file `path` (CSV, or JSON Lines with typed values)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        lines = [
            orjson.dumps({c: _typed(v, table.types.get(c)) for c, v in zip(table.columns, row)}) for row in table.rows
        ]
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        return
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows([["" if v is None else v for v in row] for row in table.rows])
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")


def _typed(value: str | None, route_type: str | None):
    if value is None:
        return None
    if route_type == "integer":
        return int(value)
    if route_type == "number":
        number = float(value)
        return int(number) if value.lstrip("-").isdigit() else number
    if route_type == "boolean":
        return value == "true"
    return value
