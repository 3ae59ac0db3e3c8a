"""The type rules of the language, applied to whole Arrow columns at once.

Values are Arrow arrays (a column) or Arrow scalars (a literal); pyarrow.compute broadcasts one
against the other. The rules, chosen to be predictable rather than clever:

- Where a number is needed, text is read as a decimal number (float64, whatever the values, so
  that chunks agree on the type), surrounding spaces ignored and blank as null.
  If any value in the column is not a number, evaluation fails naming the value: a filter that
  silently dropped rows holding `1,234` would lose data nobody sees. `cast` with its rejects is
  the tool for dirty columns.
- Where a date is needed, text is read as ISO 8601 (`2024-07-01`, `2024-07-01T10:30:00`).
- Where text is needed (concat, upper, ...), numbers, dates and true/false are written as text.
- Values that meet in if() or coalesce() must agree: numbers with numbers (integers widen to
  decimals), text with text, dates with dates (text is read as a date there); null fits anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.dtypes import ROUTE_TYPES, arrow_type_name
from pipeline.expressions.errors import NAMES, ExpressionError

Datum = pa.Array | pa.ChunkedArray | pa.Scalar

_FAILED_VALUE = re.compile(r"Failed to parse (?:string|value): '?(.*?)'?(?: as a scalar|$)", re.S)
_ISO_DATE_PREFIX = r"^\d{4}-\d{2}-\d{2}([T ].*)?$"
_ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
_NUMBER = r"(?i)^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)$"


@dataclass(frozen=True)
class Subject:
    """What a value is called in messages ("column 'amount'", "'upper(town)'"), where it is in
    the expression, and the chunk's index (source lines) to name the row of a bad value."""

    label: str
    pos: int | None
    rows: Any = None


def category(d: Datum) -> str:
    t = d.type
    if pa.types.is_null(t):
        return "null"
    name = arrow_type_name(t)
    return name if name in ROUTE_TYPES else "other"


def normalize(d: Datum) -> Datum:
    """Bring a column to the canonical types (pipeline/basics/dtypes.py); free for those already."""
    t = d.type
    if pa.types.is_dictionary(t):
        return normalize(d.cast(t.value_type))
    if t in (pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.date32(), pa.null()):
        return d
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return d.cast(pa.string())
    if pa.types.is_integer(t):
        try:
            return d.cast(pa.int64())
        except pa.ArrowInvalid:  # uint64 beyond int64
            return d.cast(pa.float64())
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return d.cast(pa.float64(), safe=False)
    if pa.types.is_date(t):
        return d.cast(pa.date32())
    if pa.types.is_timestamp(t) and t.unit != "us":
        return d.cast(pa.timestamp("us", t.tz), safe=False)
    return d


def fail(subject: Subject, message: str) -> ExpressionError:
    return ExpressionError(f"{subject.label} {message}", subject.pos)


def _bad_value(d: Datum, subject: Subject, exc: pa.ArrowException | None, pattern: str | None = None) -> str:
    """The first value (in row order) that failed a conversion, quoted, with its source line.

    Arrow names some failing value, not the first, so look for the first that does not fit
    `pattern`, else the first occurrence of the value Arrow named. Only runs on the error path."""
    if isinstance(d, pa.Scalar):
        return f"'{d.as_py()}'"
    position = None
    if pattern is not None:
        misfits = pc.and_(pc.is_valid(d), pc.invert(pc.match_substring_regex(d, pattern=pattern)))
        position = pc.index(misfits, True).as_py()
    if position is None or position < 0:
        m = _FAILED_VALUE.search(str(exc)) if exc is not None else None
        if not m:
            return "a value"
        position = pc.index(d, m.group(1)).as_py()
        if position < 0:
            return f"'{m.group(1)}'"
    where = f" (line {subject.rows[position]})" if subject.rows is not None else ""
    return f"'{d[position].as_py()}'{where}"


def _blank_to_null(text: Datum) -> Datum:
    trimmed = pc.utf8_trim_whitespace(text)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


CAST_HINT = "convert the column with `cast` first (its rejects keep such rows)"


def to_number(d: Datum, subject: Subject, hint: str = CAST_HINT) -> Datum:
    """Integers and decimals as they are; text read as numbers; anything else is an error."""
    cat = category(d)
    if cat in ("integer", "number"):
        return d
    if cat == "null":
        return d.cast(pa.int64())
    if cat != "text":
        raise fail(subject, f"is {NAMES[cat]}, not a number")
    # Always a decimal number: the result's type must not depend on the values of one chunk.
    cleaned = _blank_to_null(d)
    try:
        return cleaned.cast(pa.float64())
    except pa.ArrowInvalid as exc:
        if isinstance(d, pa.Scalar):
            raise fail(subject, "is not a number, so it cannot be compared with or used as one") from None
        value = _bad_value(cleaned, subject, exc, _NUMBER)
        raise fail(subject, f"holds {value}, which is not a number; {hint}") from None


def to_text(d: Datum, subject: Subject) -> Datum:
    """Numbers, true/false and dates written as text (dates as ISO 8601)."""
    cat = category(d)
    if cat == "text":
        return normalize(d)
    if cat in ("null", "integer", "number", "boolean", "date"):
        return d.cast(pa.string())
    if cat == "datetime":
        if d.type.tz is not None:
            d = pc.local_timestamp(d)
        return pc.strftime(d.cast(pa.timestamp("s"), safe=False), format="%Y-%m-%dT%H:%M:%S")
    raise fail(subject, f"has type {d.type}, which expressions cannot turn into text")


def to_date(d: Datum, subject: Subject) -> Datum:
    """Dates as they are; a date and time keeps its (local) date; text is read as an ISO date."""
    cat = category(d)
    if cat == "date":
        return d
    if cat == "null":
        return d.cast(pa.date32())
    if cat == "datetime":
        if d.type.tz is not None:
            d = pc.local_timestamp(d)
        return d.cast(pa.date32(), safe=False)
    if cat != "text":
        raise fail(subject, f"is {NAMES[cat]}, not a date")
    cleaned = _blank_to_null(d)
    try:
        return cleaned.cast(pa.date32())
    except pa.ArrowInvalid:
        pass
    # Timestamps written as text: keep the date part, as written (not converted to UTC).
    shaped = pc.match_substring_regex(cleaned, pattern=_ISO_DATE_PREFIX)
    all_shaped = shaped.as_py() if isinstance(shaped, pa.Scalar) else pc.all(shaped).as_py()
    if all_shaped is False:
        value = _bad_value(cleaned, subject, None, _ISO_DATE_PREFIX)
    else:
        sliced = pc.utf8_slice_codeunits(cleaned, 0, 10)
        try:
            return sliced.cast(pa.date32())
        except pa.ArrowInvalid as exc:
            value = _bad_value(sliced, subject, exc)
    if isinstance(d, pa.Scalar):
        raise fail(subject, "is not a date (expected YYYY-MM-DD)")
    raise fail(
        subject,
        f"holds {value}, which is not a date (expected YYYY-MM-DD); "
        f"convert the column with `cast` and its `formats` first",
    ) from None


def to_datetime(d: Datum, subject: Subject, tz: str | None = None) -> Datum:
    """A date and time, in time zone `tz` (None: floating). Text is read as ISO 8601."""
    cat = category(d)
    if cat == "null":
        return d.cast(pa.timestamp("us", tz))
    if cat == "datetime":
        if (d.type.tz is None) != (tz is None):
            raise fail(
                subject,
                "cannot be compared or combined with a date and time in another "
                "kind of time zone (one has a time zone, the other has none)",
            )
        return d if d.type.tz == tz else d.cast(pa.timestamp("us", tz))
    if cat == "date":
        naive = d.cast(pa.timestamp("us"))
        return naive if tz is None else pc.assume_timezone(naive, tz)
    if cat != "text":
        raise fail(subject, f"is {NAMES[cat]}, not a date and time")
    cleaned = _blank_to_null(d)
    try:
        naive = cleaned.cast(pa.timestamp("us"))
        return naive if tz is None else pc.assume_timezone(naive, tz)
    except pa.ArrowInvalid:
        pass
    try:  # with a zone offset (…Z, …+02:00): an instant
        aware = cleaned.cast(pa.timestamp("us", "UTC"))
        return aware.cast(pa.timestamp("us")) if tz is None else aware.cast(pa.timestamp("us", tz))
    except pa.ArrowInvalid as exc:
        if isinstance(d, pa.Scalar):
            raise fail(subject, "is not a date and time (expected YYYY-MM-DDTHH:MM:SS)") from None
        value = _bad_value(cleaned, subject, exc, _ISO_DATETIME)
        raise fail(
            subject, f"holds {value}, which is not an ISO date and time (expected YYYY-MM-DDTHH:MM:SS)"
        ) from None


def to_boolean(d: Datum, subject: Subject) -> Datum:
    cat = category(d)
    if cat == "boolean":
        return d
    if cat == "null":
        return d.cast(pa.bool_())
    raise fail(
        subject,
        f"is {NAMES[cat]}, not true/false; conditions need a comparison such as "
        f"`x == 'yes'`, or `cast` the column to boolean",
    )


def comparable(a: Datum, sa: Subject, b: Datum, sb: Subject) -> tuple[Datum, Datum]:
    """Bring two values to types that can be compared (text meets numbers and dates as such)."""
    ca, cb = category(a), category(b)
    numeric = ("integer", "number")
    if ca == cb == "null":  # null == null is null: give the kernels a type to work with
        return a.cast(pa.int64()), b.cast(pa.int64())
    if ca == cb and ca != "datetime" or (ca in numeric and cb in numeric):
        return a, b
    if ca == "null" or cb == "null":
        return (a.cast(b.type), b) if ca == "null" else (a, b.cast(a.type))
    if ca == "text" and cb in numeric:
        return to_number(a, sa, _compare_hint(b)), b
    if cb == "text" and ca in numeric:
        return a, to_number(b, sb, _compare_hint(a))
    if "date" in (ca, cb) and cb in ("date", "text") and ca in ("date", "text"):
        return to_date(a, sa), to_date(b, sb)
    if "datetime" in (ca, cb) and ca in ("datetime", "date", "text") and cb in ("datetime", "date", "text"):
        tz = (a.type if ca == "datetime" else b.type).tz
        return to_datetime(a, sa, tz), to_datetime(b, sb, tz)
    raise ExpressionError(
        f"cannot compare {sa.label} ({NAMES[ca]}) with {sb.label} ({NAMES[cb]})",
        sb.pos if sb.pos is not None else sa.pos,
    )


def _compare_hint(number: Datum) -> str:
    if isinstance(number, pa.Scalar):
        return f"{CAST_HINT}, or compare it with text ('{number.as_py()}')"
    return CAST_HINT


def common(values: list[Datum], subjects: list[Subject], where: str) -> list[Datum]:
    """One type for values that end up in the same column (if(), coalesce())."""
    cats = [category(v) for v in values]
    present = set(cats) - {"null"}
    if not present:
        return values
    if present <= {"integer"}:
        target = pa.int64()
    elif present <= {"integer", "number"}:
        target = pa.float64()
    elif len(present) == 1 and present != {"datetime"}:
        target = normalize(values[cats.index(present.pop())]).type
    elif present <= {"date", "text"}:
        return [to_date(v, s) for v, s in zip(values, subjects)]
    elif present <= {"datetime", "date", "text"}:
        tz = next(v.type.tz for v, c in zip(values, cats) if c == "datetime")
        return [to_datetime(v, s, tz) for v, s in zip(values, subjects)]
    else:
        kinds = " and ".join(sorted({NAMES[c] for c in present}))
        raise ExpressionError(
            f"{where} mixes {kinds}; use to_text() or to_number() so that all its values have one type", subjects[0].pos
        )
    return [v if v.type == target else v.cast(target) for v in values]
