"""Typed Arrow columns from spreadsheet cell values.

A reader hands over one column of a block of rows as Python values (calamine gives str, float,
int, bool, date, datetime, time and timedelta, and '' for an empty cell). Each column of a block
gets a *kind* from the values it holds; when the whole sheet is read the kinds of all blocks are
unified into one canonical dtype, so every chunk of a source has the same dtypes:

    only numbers, all whole (and below 2**53)   -> integer    (Excel stores every number as a float)
    only numbers, some fractional               -> number
    only booleans / only dates                  -> boolean / date
    dates and date-times                        -> datetime
    only text, or anything mixed                -> text; numbers are written without ".0" when
                                                   whole, booleans as true/false, dates in ISO 8601
    no value at all                             -> text, all null
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL, TEXT, INT, FLOAT, BOOL, DATE, DATETIME = "null", "text", "int", "float", "bool", "date", "datetime"

ARROW = {
    TEXT: pa.string(),
    INT: pa.int64(),
    FLOAT: pa.float64(),
    BOOL: pa.bool_(),
    DATE: pa.date32(),
    DATETIME: pa.timestamp("us"),
}

_NUMBERS = {float, int}
_TEMPORAL = {dt.date, dt.datetime}
_EXACT = 2.0**53  # floats above this are not exact integers
_NONE = type(None)


def render(value) -> str | None:
    """A cell value as the text a person would type: 3.0 -> '3', True -> 'true', dates in ISO."""
    if value is None or value == "":
        return None
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return str(int(value)) if value.is_integer() and abs(value) < _EXACT else repr(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is dt.timedelta:  # a duration cell, shown as Excel's [h]:mm:ss
        seconds = int(value.total_seconds())
        sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
        return f"{sign}{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if kind in (dt.date, dt.datetime, dt.time):
        return value.isoformat()
    return str(value)


def convert(values: np.ndarray, cleared: bool = False) -> tuple[str, pa.Array, np.ndarray]:
    """(kind, Arrow array, empty mask) of one column of a block.

    `values` is a 1-D object array that this function may change (empty cells become None);
    `cleared`: the caller has already made every empty cell ('') None. The kind comes from the set
    of the cells' types (one pass in C: no Python call per cell), the values are converted by
    pyarrow in one call for the column's type, and the empty mask is the array's validity. Only a
    mixed column (text) is written cell by cell, as a person would write each value.
    """
    vals = values  # the caller's copy, ours to change
    if not cleared:
        empty = vals == ""
        if isinstance(empty, np.ndarray) and empty.any():  # numpy gives a scalar for a zero-length comparison
            vals[empty] = None
    types = set(map(type, vals))
    types.discard(_NONE)
    if not types:
        return NULL, pa.nulls(len(vals)), np.ones(len(vals), dtype=bool)
    if types == {str}:
        kind, arr = TEXT, pa.array(vals, pa.string())
    elif types <= _NUMBERS:
        try:
            arr = pa.array(vals, pa.float64())
        except pa.ArrowInvalid:  # an integer past 2**53 (.xls/.ods): pyarrow will not round it
            arr = pa.array([None if v is None else float(v) for v in vals], pa.float64())
        kind = INT if whole(arr) else FLOAT
    elif types == {bool}:
        kind, arr = BOOL, pa.array(vals, pa.bool_())
    elif types == {dt.date}:
        kind, arr = DATE, pa.array(vals, pa.date32())
    elif types <= _TEMPORAL:
        kind, arr = DATETIME, _stamps(vals)
    else:
        kind, arr = TEXT, pa.array([render(v) for v in vals], pa.string())
    if not arr.null_count:
        return kind, arr, np.zeros(len(vals), dtype=bool)
    return kind, arr, arr.is_null().to_numpy(zero_copy_only=False)


def _stamps(vals: np.ndarray) -> pa.Array:
    """Dates and date-times (and None) as one timestamp array, dates at midnight: each part is
    converted by pyarrow for its own type, then placed by mask."""
    types = np.fromiter(map(type, vals), dtype=object, count=len(vals))
    dates, stamps = types == dt.date, types == dt.datetime
    micros = np.zeros(len(vals), dtype="datetime64[us]")
    if dates.any():
        micros[dates] = pa.array(vals[dates], pa.date32()).to_numpy(zero_copy_only=False).astype("datetime64[us]")
    if stamps.any():
        micros[stamps] = pa.array(vals[stamps], pa.timestamp("us")).to_numpy(zero_copy_only=False)
    return pa.array(micros, pa.timestamp("us"), mask=~(dates | stamps))


def whole(arr: pa.Array) -> bool:
    """True when every value is an integer that a float holds exactly."""
    if arr.null_count == len(arr):
        return True
    if not pc.all(pc.equal(arr, pc.floor(arr))).as_py():
        return False
    bounds = pc.min_max(pc.abs(arr))
    return bounds["max"].as_py() < _EXACT


def unify(kinds) -> str:
    """The one kind for a column whose blocks have `kinds`."""
    found = set(kinds) - {NULL}
    if not found:
        return TEXT
    if len(found) == 1:
        return found.pop()
    if found <= {INT, FLOAT}:
        return FLOAT
    if found <= {DATE, DATETIME}:
        return DATETIME
    return TEXT


def finish(kind: str, arr: pa.Array, target: str) -> pa.Array:
    """A block's array in the column's unified kind (`target`)."""
    if kind == target or kind == NULL:
        return arr.cast(ARROW[target]) if kind == NULL or target == INT else arr
    if target == TEXT:  # a mixed column (rare): written cell by cell
        values = arr.to_pylist()
        if kind == DATETIME:  # a date-time at midnight was a date cell (readers give dates for those)
            values = [v.date() if v is not None and v.time() == dt.time() else v for v in values]
        return pa.array([render(v) for v in values], pa.string())
    return arr.cast(ARROW[target])  # int -> float, date -> datetime
