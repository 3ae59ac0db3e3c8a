"""How the cast rule converts a chunk: a handful of pyarrow.compute kernels over each column, and
the reasons for the values that do not convert. Imported by the rule with its first chunk, so that
planning a route (types.py's bind) needs no pandas or Arrow."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics import dtypes
from pipeline.basics.errors import RunFailed
from transforms import _temporal as temporal
from transforms._formats import default_reason
from transforms.columns import require

if TYPE_CHECKING:
    from transforms.types import CastPlan, ColumnCast


def cast_chunk(chunk: pd.DataFrame, plan: CastPlan, ctx) -> pd.DataFrame:
    """The cast rule on one chunk (see transforms.types.cast)."""
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
    "date": default_reason,
    "datetime": default_reason,
}


def _arrow(source: pd.Series) -> pa.Array:
    """A column as one Arrow array of a canonical type (string, int64, float64, ...)."""
    try:
        data = dtypes.arrow(source)
    except (pa.ArrowException, TypeError, ValueError):  # object columns of mixed Python values
        data = pa.array(source.map(lambda v: None if pd.isna(v) else str(v)), pa.string())
    data = dtypes.contiguous(data)
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
