"""The cast rule: give columns their types, rejecting the values that do not convert.

Types are never guessed (DESIGN.md), so a cast is where text becomes numbers, booleans, dates and
datetimes. Every conversion is a handful of pyarrow.compute kernels over the whole column; a value
that does not convert comes out null, and "non-null in, null out" is exactly the set of rows to
reject, each with a reason that quotes the value. Options are checked when the route is planned:
types, formats (only the strptime directives we can verify), time zone names. The conversion
itself is in _casting.py, imported with the first chunk.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.basics.errors import OptionError, suggest
from pipeline.basics.plugins import rule
from transforms import column_use
from transforms._formats import Format

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

DEFAULT_TRUE = ("true", "yes", "y", "t", "1")
DEFAULT_FALSE = ("false", "no", "n", "f", "0")
# Which options make sense for which target type; anything else is an OptionError at plan time.
APPLIES = {
    "text": set(),
    "integer": {"thousands", "currency", "decimal"},
    "number": {"thousands", "currency", "decimal"},
    "boolean": {"true_values", "false_values"},
    "date": {"formats"},
    "datetime": {"formats", "timezone", "ambiguous"},
}

# The route types (pipeline.basics.dtypes.ROUTE_TYPES, in its order; a test keeps them equal),
# spelt here so that binding a cast, which `route validate` does, needs no pandas.
ROUTE_TYPES = tuple(APPLIES)
_TYPE = {"enum": list(ROUTE_TYPES)}
_CHAR = {"type": "string", "minLength": 1, "maxLength": 1}
_WORDS = {"type": "array", "minItems": 1, "items": {"type": ["string", "integer", "boolean"]}}
OPTIONS_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    # if/then rather than oneOf, so that a misspelt type gets "did you mean" from the enum.
    "additionalProperties": {
        "if": {"type": "string"},
        "then": _TYPE,
        "else": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": _TYPE,
                "formats": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                    ]
                },
                "timezone": {"type": "string", "minLength": 1},
                "ambiguous": {"enum": ["earliest", "latest", "reject"]},
                "true_values": _WORDS,
                "false_values": _WORDS,
                "thousands": _CHAR,
                "decimal": _CHAR,
                "currency": {"type": "string", "minLength": 1},
            },
        },
    },
}


@dataclass(frozen=True)
class ColumnCast:
    """One column's cast, checked and prepared at plan time."""

    column: str
    type: str
    formats: tuple[Format, ...] = ()
    timezone: str | None = None
    ambiguous: str = "earliest"
    true_values: tuple[str, ...] = DEFAULT_TRUE
    false_values: tuple[str, ...] = DEFAULT_FALSE
    thousands: str | None = None
    decimal: str = "."
    currency: str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        from pipeline.basics import dtypes

        return (
            dtypes.datetime_dtype(self.timezone).pyarrow_dtype
            if self.type == "datetime"
            else dtypes.BY_NAME[self.type].pyarrow_dtype
        )


@dataclass(frozen=True)
class CastPlan:
    casts: tuple[ColumnCast, ...] = field(default_factory=tuple)


def bind(options, ctx=None) -> CastPlan:
    """Check every column's cast and prepare its formats; OptionError names the option's path."""
    if isinstance(options, CastPlan):
        return options
    if not isinstance(options, dict) or not options:
        raise OptionError("expected a mapping of columns to types, e.g. {employee_id: integer, pay_date: date}")
    return CastPlan(tuple(_bind_column(str(column), spec) for column, spec in options.items()))


def _bind_column(column: str, spec) -> ColumnCast:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        raise OptionError(f"expected a type ({', '.join(ROUTE_TYPES)}) or a mapping with 'type'", path=(column,))
    kind = spec.get("type")
    if kind not in ROUTE_TYPES:
        raise OptionError(
            f"unknown type {kind!r}{suggest(str(kind), ROUTE_TYPES)} (types: {', '.join(ROUTE_TYPES)})",
            path=(column, "type") if "type" in spec else (column,),
        )
    for key in spec:
        if key != "type" and key not in APPLIES[kind]:
            users = [t for t, keys in APPLIES.items() if key in keys]
            where = f"applies to {' and '.join(users)} columns only" if users else "is not a cast option"
            raise OptionError(f"'{key}' {where}", path=(column, key))
    kw: dict = {"column": column, "type": kind}
    tz = spec.get("timezone")
    if tz is not None:
        kw["timezone"] = _check_timezone(tz, (column, "timezone"))
    if "ambiguous" in spec:
        if spec["ambiguous"] not in ("earliest", "latest", "reject"):
            raise OptionError(
                f"ambiguous must be earliest, latest or reject, not {spec['ambiguous']!r}", path=(column, "ambiguous")
            )
        kw["ambiguous"] = spec["ambiguous"]
    formats = spec.get("formats", [])
    formats = [formats] if isinstance(formats, str) else formats
    parsed = []
    for i, text in enumerate(formats):
        path = (column, "formats", i)
        try:
            fmt = Format.parse(text)
        except ValueError as exc:
            raise OptionError(str(exc), path=path) from None
        if fmt.has_offset and kind == "date":
            raise OptionError(f"format '{text}' reads a UTC offset (%z), which a date has no use for", path=path)
        if fmt.has_offset and tz is None:
            raise OptionError(
                f"format '{text}' reads a UTC offset (%z): give the column a timezone "
                f"(e.g. timezone: UTC) to say how to show those times",
                path=path,
            )
        parsed.append(fmt)
    kw["formats"] = tuple(parsed)
    for key in ("true_values", "false_values"):
        if key in spec:
            kw[key] = tuple(_word(w, (column, key, i)) for i, w in enumerate(spec[key]))
    both = set(kw.get("true_values", ())) & set(kw.get("false_values", ()))
    if both:
        raise OptionError(f"{sorted(both)[0]!r} is in both true_values and false_values", path=(column,))
    for key in ("thousands", "decimal", "currency"):
        value = spec.get(key)
        if value is not None:
            if not isinstance(value, str) or not value or value[0].isdigit() or value[0] in "+-":
                raise OptionError(
                    f"'{key}' must be a character (or a currency symbol), not {value!r}", path=(column, key)
                )
            kw[key] = value
    if kw.get("thousands") is not None and kw.get("thousands") == kw.get("decimal", "."):
        raise OptionError(
            f"thousands and decimal are both '{kw['thousands']}'; set decimal too "
            f'(e.g. thousands: ".", decimal: ",")',
            path=(column, "thousands"),
        )
    return ColumnCast(**kw)


def _word(value, path) -> str:
    if isinstance(value, bool):
        raise OptionError(
            f"{str(value).lower()} here is a YAML boolean (YAML reads yes/no/on/off/true/false "
            f'as booleans); write the word in quotes, e.g. "yes"',
            path=path,
        )
    return str(value).strip().lower()


def _check_timezone(name, path) -> str:
    if not isinstance(name, str):
        raise OptionError(f"expected a time zone name such as America/New_York, got {name!r}", path=path)
    if re.fullmatch(r"[+-](0\d|1[0-4]):[0-5]\d", name):
        return name  # a fixed UTC offset
    import pyarrow as pa  # only a route with a time zone pays for Arrow to check that Arrow knows it
    import pyarrow.compute as pc

    try:
        zoneinfo.ZoneInfo(name)
        pc.assume_timezone(pa.array([0], pa.timestamp("us")), timezone=name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, pa.ArrowInvalid):
        raise OptionError(
            f"unknown time zone '{name}'{suggest(name, zoneinfo.available_timezones())} "
            f"(use an IANA name such as America/New_York, or UTC)",
            path=path,
        ) from None
    return name


@rule(OPTIONS_SCHEMA, bind=bind, columns=column_use.keys_are_columns)
def cast(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Give columns their types; a value that does not convert is rejected, never nulled.

    Types: text, integer, number, boolean, date, datetime. Surrounding spaces are ignored and a
    blank value is null. Integers accept whole values written as decimals ("12.0") and reject
    fractions; `thousands`, `decimal` and `currency` read "$1,234.50" style numbers. Booleans read
    true/false, yes/no, y/n, t/f, 1/0 in any case, or your own `true_values` and `false_values`.
    Dates and datetimes always read ISO 8601, after the `formats` given (strptime directives %Y %y
    %m %d %e %b %B %a %A %H %I %M %S %p %z %D %T %R %F; a %y year 69-99 is 19xx, 00-68 is 20xx);
    a day that does not exist (Feb 30) is rejected. A datetime without `timezone` is floating
    (wall-clock) and rejects values with a UTC offset; with `timezone`, values without an offset
    are local time in that zone (times skipped by a DST change are rejected; repeated ones take
    `ambiguous`: earliest by default, latest, or reject), values with one keep their instant, and
    the column is shown in that zone. Typed columns convert too: numbers to integers when whole,
    anything to text (dates and datetimes as ISO 8601), datetimes to dates (the local date).

    ```yaml
    - cast:
        employee_id: integer
        active: boolean
        gross: {type: number, thousands: ",", currency: "$"}
        pay_date: {type: date, formats: ["%m/%d/%Y"]}
        clock_in: {type: datetime, formats: ["%m/%d/%Y %I:%M %p"], timezone: America/New_York}
    ```
    """
    from transforms._casting import cast_chunk  # the Arrow work, loaded with the first chunk

    return cast_chunk(chunk, bind(options, ctx), ctx)
