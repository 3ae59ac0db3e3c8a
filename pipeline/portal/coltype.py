"""The base of every column type, and the helpers the converters share (see wire.py)."""

from __future__ import annotations

import functools
import re

from pipeline.portal.behaviour import CSV_EMPTY_IS_NULL
from pipeline.portal.errors import Maltyped
from pipeline.portal.numbers import number_text

NoneType = type(None)
STR = {str, NoneType}
INT64 = (-(2**63), 2**63 - 1)


def memo(values: list, fn) -> list:
    """fn applied to each value; computed once per distinct value when values repeat a lot."""
    distinct = set(values)
    if len(distinct) * 2 > len(values):
        return [fn(v) for v in values]
    table = {v: fn(v) for v in distinct}
    return list(map(table.__getitem__, values))


def all_match(values: list, pattern: str) -> bool:
    """Whether every non-null string matches `pattern` in full: one regular-expression pass over the
    strings joined by line breaks, half the time of handing them to Arrow (`pattern` must not match
    a line break; a value holding one fails)."""
    present = [v for v in values if v is not None] if None in values else values
    if not present:
        return True
    joined = "\n".join(present)
    if joined.count("\n") != len(present) - 1:
        return False
    return _lines_of(pattern).fullmatch(joined) is not None


@functools.cache
def _lines_of(pattern: str) -> re.Pattern:
    return re.compile(f"(?:{pattern})(?:\n(?:{pattern}))*+")


def first_bad(values, ok_types):
    return next(v for v in values if type(v) not in ok_types)


class ColumnType:
    """One dataTypeName. Subclasses override the converters that differ from text."""

    kind = "text"  # how SoQL treats it: text, number, double, bool, float_ts, fixed_ts, json
    soql = "text"

    def __init__(self, name: str):
        self.name = name

    def store(self, values: list, field: str) -> list:
        """JSON values from a request -> values to store. Raises Maltyped."""
        if set(map(type, values)) <= STR:
            return values
        out = []
        for v in values:
            t = type(v)
            if t is str or v is None:
                out.append(v)
            elif t is int or t is float:
                out.append(number_text(v, field, self.name))
            else:
                raise Maltyped(field, self.soql, v)
        return out

    def key(self, values: list, field: str) -> list:
        """Values of a row-identifier column: canonical, so equal keys are equal in SQLite."""
        return self.store(values, field)

    def wire(self, values: list) -> list:
        """Stored values -> JSON values for a read."""
        return values

    def from_text(self, values: list, field: str) -> list:
        """CSV cells -> JSON values (then `store`). An empty cell is null (behaviour.CSV_EMPTY_IS_NULL)."""
        return [v or None for v in values] if CSV_EMPTY_IS_NULL else values

    def cell(self, values: list) -> list:
        """Stored values -> CSV cells."""
        return ["" if v is None else str(v) for v in self.wire(values)]

    def literal(self, text: str):
        """A SoQL text literal compared with this column -> the stored form to compare with."""
        return text
