"""The cast rule: give columns their types, rejecting the values that do not convert.

Types are never guessed (DESIGN.md), so a cast is where text becomes numbers, booleans, dates and
datetimes. Every conversion is a handful of pyarrow.compute kernels over the whole column; a value
that does not convert comes out null, and "non-null in, null out" is exactly the set of rows to
reject, each with a reason that quotes the value. Options are checked when the route is planned:
types, formats (only the strptime directives we can verify), time zone names.
"""

# Longer than 400 lines because the cast rule handles every route type, with formats, time zones and
# rejects, in one vectorised pass.

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics import dtypes
from pipeline.basics.errors import OptionError, RunFailed, suggest
from pipeline.basics.plugins import rule
from transforms import _temporal as temporal
from transforms import column_use
from transforms.columns import require

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

_TYPE = {"enum": list(dtypes.ROUTE_TYPES)}
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
    formats: tuple[temporal.Format, ...] = ()
    timezone: str | None = None
    ambiguous: str = "earliest"
    true_values: tuple[str, ...] = DEFAULT_TRUE
    false_values: tuple[str, ...] = DEFAULT_FALSE
    thousands: str | None = None
    decimal: str = "."
    currency: str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
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
        raise OptionError(f"expected a type ({', '.join(dtypes.ROUTE_TYPES)}) or a mapping with 'type'", path=(column,))
    kind = spec.get("type")
    if kind not in dtypes.ROUTE_TYPES:
        raise OptionError(
            f"unknown type {kind!r}{suggest(str(kind), dtypes.ROUTE_TYPES)} (types: {', '.join(dtypes.ROUTE_TYPES)})",
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
            fmt = temporal.Format.parse(text)
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
    plan = bind(options, ctx)
    require(chunk, [c.column for c in plan.casts], "cast")
    out = chunk.copy(deep=False)
    rejected = np.zeros(len(chunk), dtype=bool)
    for spec in plan.casts:
        source = chunk[spec.column]
        result, failed, explain = convert(source, spec)
        out[spec.column] = dtypes.series(result, source)
        if failed is None:
            continue
        new = failed & ~rejected
        if new.any():
            reasons = pc.filter(explain(), pa.array(new[failed])).to_pylist()
            rows = chunk.loc[new]
            ctx.reject(rows, reason=pd.Series(reasons, index=rows.index), column=spec.column, value=source[new])
        rejected |= failed
    if rejected.any():
        out = out.loc[~rejected]
        out.attrs = dict(chunk.attrs)
    return out


def convert(source: pd.Series, spec: ColumnCast):
    """(converted Arrow array, numpy mask of failed rows or None, fn giving their reasons)."""
    data = _arrow(source)
    kind = dtypes.route_type_of(pd.ArrowDtype(data.type)) if not pa.types.is_null(data.type) else "null"
    target = spec.arrow_type
    if kind == "null":
        return pa.nulls(len(data), target), None, None
    if spec.type == "text":
        return temporal.to_text(data) if kind in ("date", "datetime") else pc.cast(data, pa.string()), None, None
    given = data  # the values that count: a blank text is null, not a failure
    if kind in ("date", "datetime") and spec.type in ("date", "datetime"):
        result, special = temporal.retime(data, spec)
    elif kind == "text" and (quick := _plain_cast(data, spec)) is not None:
        return quick, None, None  # every value was a plain number: nothing to trim, nothing failed
    elif kind == "text" or (kind == "integer" and spec.type in ("date", "datetime") and spec.formats):
        given = _clean(pc.cast(data, pa.string()) if kind != "text" else data)
        result, special = PARSERS[spec.type](given, spec)
    elif kind in ("integer", "number", "boolean") and spec.type in ("integer", "number", "boolean"):
        result, special = _numeric(data, kind, spec)
    else:
        hint = '; to read integers like 20240115 as dates give formats: ["%Y%m%d"]' if kind == "integer" else ""
        raise RunFailed(f"cast: column '{spec.column}' is {kind} and cannot be cast to {spec.type}{hint}")
    failed_arrow = pc.and_(pc.is_valid(given), pc.is_null(result))
    failed = np.asarray(failed_arrow.to_numpy(zero_copy_only=False), dtype=bool)
    if not failed.any():
        return result, None, None

    def explain() -> pa.Array:
        mask = pa.array(failed)
        values = pc.filter(data, mask)
        values = temporal.to_text(values) if kind in ("date", "datetime") else pc.cast(values, pa.string())
        reasons = pc.binary_join_element_wise("'", values, "' " + _DEFAULT_REASON[spec.type](spec), "")
        for special_mask, text in reversed(special()):
            sub = pc.fill_null(pc.filter(special_mask, mask), False)
            reasons = pc.if_else(sub, pc.binary_join_element_wise("'", values, "' " + text, ""), reasons)
        return reasons

    return result, failed, explain


_DEFAULT_REASON = {
    "integer": lambda s: "is not an integer",
    "number": lambda s: "is not a number",
    "boolean": lambda s: f"is not a boolean (true: {', '.join(s.true_values)}; false: {', '.join(s.false_values)})",
    "date": temporal.default_reason,
    "datetime": temporal.default_reason,
}


def _arrow(source: pd.Series) -> pa.Array:
    """A column as one Arrow array of a canonical type (string, int64, float64, ...)."""
    try:
        data = dtypes.arrow(source)
    except (pa.ArrowException, TypeError, ValueError):  # object columns of mixed Python values
        data = pa.array(source.map(lambda v: None if pd.isna(v) else str(v)), pa.string())
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    t = data.type
    if pa.types.is_dictionary(t):
        data = data.dictionary_decode()
        t = data.type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pc.cast(data, pa.string())
    if pa.types.is_integer(t) and t != pa.int64():
        return pc.cast(data, pa.int64())
    if (pa.types.is_floating(t) or pa.types.is_decimal(t)) and t != pa.float64():
        return pc.cast(data, pa.float64())
    if pa.types.is_date64(t):
        return pc.cast(data, pa.date32())
    if pa.types.is_timestamp(t) and t.unit != "us":
        return pc.cast(data, pa.timestamp("us", t.tz), safe=False)
    return data


def _plain_cast(text: pa.Array, spec: ColumnCast) -> pa.Array | None:
    """Text that Arrow's own parser takes whole (no blank, no space, no symbol): the cast, in one
    pass; None when any value needs the careful path (trimming, blanks, nan, symbols, failures)."""
    if spec.type not in ("integer", "number") or spec.currency or spec.thousands or spec.decimal != ".":
        return None
    try:
        result = pc.cast(text, spec.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if spec.type == "number" and not pc.all(pc.fill_null(pc.is_finite(result), True)).as_py():
        return None  # "nan" or "inf": not numbers here
    return result


def _clean(text: pa.Array) -> pa.Array:
    """Surrounding whitespace ignored; a blank value is null, as an empty cell is."""
    text = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _match(text, pattern: str) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(text, pattern), False)


def _q(text: str) -> str:
    return r"\Q" + text + r"\E"


_INTEGER = r"^[+-]?\d+(?:\.0*)?$"
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_INT64_MAX = "9223372036854775807"


def _normalise(text: pa.Array, spec: ColumnCast) -> pa.Array:
    """Currency symbols, thousands separators and a decimal comma, as a plain number text."""
    null = pa.scalar(None, pa.string())
    if spec.currency:
        # A symbol before the number (after its sign) or after it: "-$5", "$-5", "5 €".
        cur = _q(spec.currency)
        text = pc.replace_substring_regex(
            text, r"^([+-]?)\s*" + cur + r"\s*|\s*" + cur + "$", r"\1", max_replacements=1
        )
    if spec.thousands:
        grouped = r"^[+-]?\d{1,3}(?:" + _q(spec.thousands) + r"\d{3})+(?:" + _q(spec.decimal) + r"\d*)?$"
        has = pc.fill_null(pc.match_substring(text, spec.thousands), False)
        text = pc.if_else(pc.and_(has, pc.invert(_match(text, grouped))), null, text)
        text = pc.replace_substring(text, spec.thousands, "")
    if spec.decimal != ".":
        text = pc.if_else(pc.fill_null(pc.match_substring(text, "."), False), null, text)
        text = pc.replace_substring(text, spec.decimal, ".")
    return text


def _parse_integer(text: pa.Array, spec: ColumnCast):
    if spec.currency or spec.thousands or spec.decimal != ".":
        text = _normalise(text, spec)
    try:  # plain digits, the usual case: Arrow's parser accepts exactly those
        return pc.cast(text, pa.int64()), lambda: []
    except pa.ArrowInvalid:
        pass
    candidate = pc.if_else(_match(text, _INTEGER), text, pa.scalar(None, pa.string()))
    try:
        result = pc.cast(candidate, pa.int64())
    except pa.ArrowInvalid:  # a "+", a ".0" or a value beyond int64: normalise and retry
        candidate = pc.replace_substring_regex(candidate, r"^\+|\.0*$", "")
        digits = pc.replace_substring_regex(candidate, r"^-?0*", "")
        length = pc.utf8_length(digits)
        big = pc.or_(pc.greater(length, 19), pc.and_(pc.equal(length, 19), pc.greater(digits, _INT64_MAX)))
        result = pc.cast(pc.if_else(pc.fill_null(big, False), pa.scalar(None, pa.string()), candidate), pa.int64())
    return result, lambda: [
        (_match(text, _INTEGER), "is out of the integer range"),
        (_match(text, r"^[+-]?\d*\.\d+$"), "is not a whole number"),
    ]


def _parse_number(text: pa.Array, spec: ColumnCast):
    if spec.currency or spec.thousands or spec.decimal != ".":
        text = _normalise(text, spec)
    try:  # Arrow's parser accepts exactly our number syntax plus nan and inf, nulled below
        result = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        result = pc.cast(pc.if_else(_match(text, _NUMBER), text, pa.scalar(None, pa.string())), pa.float64())
    finite = pc.fill_null(pc.is_finite(result), True)
    if not pc.all(finite).as_py():
        result = pc.if_else(finite, result, pa.scalar(None, pa.float64()))
    # A value that failed yet has the syntax of a number can only be beyond float64's range.
    return result, lambda: [(_match(text, _NUMBER), "is too large for a number")]


def _parse_boolean(text: pa.Array, spec: ColumnCast):
    low = pc.utf8_lower(text)
    yes = pc.is_in(low, value_set=pa.array(spec.true_values, pa.string()))
    no = pc.is_in(low, value_set=pa.array(spec.false_values, pa.string()))
    result = pc.if_else(yes, True, pc.if_else(no, False, pa.scalar(None, pa.bool_())))
    return result, lambda: []


def _numeric(data: pa.Array, kind: str, spec: ColumnCast):
    """Integer, number and boolean columns between each other: exact values only."""
    target = spec.arrow_type
    if (kind, spec.type) == ("integer", "number"):  # exact up to 2**53 only: larger integers are rejected
        exact = pc.and_(pc.greater_equal(data, -(2**53)), pc.less_equal(data, 2**53))
        kept = pc.if_else(exact, data, pa.scalar(None, pa.int64()))
        return pc.cast(kept, target), lambda: [
            (pc.invert(exact), "is too large to be held exactly as a number (beyond 2^53); keep it an integer")
        ]
    widening = kind == "boolean" and spec.type != "boolean"
    if spec.type == kind or widening:
        return pc.cast(data, target), lambda: []
    if spec.type == "integer":  # from number: whole values within int64 only
        inside = pc.less(pc.abs(data), 2.0**63)
        ok = pc.fill_null(pc.and_(pc.equal(pc.floor(data), data), inside), False)
        kept = pc.if_else(ok, data, pa.scalar(None, pa.float64()))
        return pc.cast(kept, pa.int64(), safe=False), lambda: [
            (pc.and_(pc.is_finite(data), pc.invert(inside)), "is out of the integer range"),
            (pc.is_finite(data), "is not a whole number"),
        ]
    # to boolean: 1 and 0 only
    one, zero = pc.equal(data, 1), pc.equal(data, 0)
    result = pc.if_else(one, True, pc.if_else(zero, False, pa.scalar(None, pa.bool_())))
    return result, lambda: [(pc.is_valid(data), "is not a boolean (only 1 and 0 are)")]


def _parse_date(text: pa.Array, spec: ColumnCast):
    return temporal.parse(text, spec, want="date")


def _parse_datetime(text: pa.Array, spec: ColumnCast):
    return temporal.parse(text, spec, want="datetime")


PARSERS = {
    "integer": _parse_integer,
    "number": _parse_number,
    "boolean": _parse_boolean,
    "date": _parse_date,
    "datetime": _parse_datetime,
}
