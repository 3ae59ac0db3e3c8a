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


def convert(values: np.ndarray) -> tuple[str, pa.Array, np.ndarray]:
    """(kind, Arrow array, empty mask) of one column of a block.

    `values` is a 1-D object array that this function may change (empty cells become None).
    """
    empty = values == ""
    if not isinstance(empty, np.ndarray):  # numpy gives a scalar for a zero-length comparison
        empty = np.zeros(len(values), dtype=bool)
    vals = values  # the caller's copy, ours to change
    vals[empty] = None
    empty |= np.equal(vals, None)
    types = set(map(type, vals[~empty]))
    if not types:
        return NULL, pa.nulls(len(vals)), empty
    if types == {str}:
        return TEXT, pa.array(vals, pa.string()), empty
    if types <= _NUMBERS:
        arr = pa.array(vals, pa.float64())
        return (INT if _whole(arr) else FLOAT), arr, empty
    if types == {bool}:
        return BOOL, pa.array(vals, pa.bool_()), empty
    if types == {dt.date}:
        return DATE, pa.array(vals, pa.date32()), empty
    if types <= _TEMPORAL:
        stamps = [v if type(v) is not dt.date else dt.datetime(v.year, v.month, v.day) for v in vals]
        return DATETIME, pa.array(stamps, pa.timestamp("us")), empty
    return TEXT, pa.array([render(v) for v in vals], pa.string()), empty


def _whole(arr: pa.Array) -> bool:
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
    if target == TEXT:
        return pa.array([render(v) for v in arr.to_pylist()], pa.string())
    return arr.cast(ARROW[target])  # int -> float, date -> datetime
