"""Socrata's number text: how the portal writes every number it stores or returns (§3)."""

from __future__ import annotations

import re
from decimal import Decimal

from pipeline.portal.errors import Maltyped

INTEGER = re.compile(r"-?[0-9]+")
PLAIN = re.compile(r"-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?+")  # possessive: never backtracks
ANY_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def plain_decimal(d: Decimal) -> str:
    """Socrata's number text: plain notation (scale kept) unless the exponent is beyond 20."""
    if d.is_zero():
        d = d.copy_abs()
    exponent = d.as_tuple().exponent
    if abs(exponent) > 20:
        return str(d)
    return format(d, "f")


def number_text(value, field: str = "", expected: str = "number") -> str:
    """Canonical decimal text of an int, float or numeric string."""
    t = type(value)
    if t is str:
        if PLAIN.fullmatch(value):
            return value
        if ANY_NUMBER.fullmatch(value):
            return plain_decimal(Decimal(value))
    elif t is int:
        return str(value)
    elif t is float:
        text = repr(value)
        if "e" in text:
            return plain_decimal(Decimal(text))
        if text in ("inf", "-inf", "nan"):
            raise Maltyped(field, expected, value)
        return text
    raise Maltyped(field, expected, value)
