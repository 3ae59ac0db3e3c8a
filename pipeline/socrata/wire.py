"""Canonical columns to Socrata's wire formats (§3 of the API reference), one column at a time.

Each conversion is vectorised over an Arrow array and returns the wire values plus a mask of the
values that do not convert, with the reason, so the delivery can reject those rows before anything
is sent (one bad value must never cost a 400 for a whole batch). Two wire forms exist: "json" for
SODA bodies and "csv" for revision uploads; they differ only where JSON needs an object (location,
url). Nulls stay null: on an upsert a null clears the cell, which is what a null in the route means.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.dtypes import contiguous
from pipeline.socrata import geo
from pipeline.socrata.conversion import Conversion, with_bad
from pipeline.socrata.views import GEOMETRY, TYPE_WORDS

NUMBERS = ("number", "money", "double")
# Which route types can go to which Socrata types (text is parsed value by value).
ACCEPTS = {
    "text": set(TYPE_WORDS),
    "integer": {"text", "checkbox", *NUMBERS},
    "number": {"text", *NUMBERS},
    "boolean": {"text", "checkbox"},
    "date": {"text", "calendar_date", "date"},
    "datetime": {"text", "calendar_date", "date"},
}
HINTS = {
    "checkbox": "cast it to boolean",
    "calendar_date": "cast it to date or datetime",
    "date": "cast it to datetime (with a timezone) or date",
    "text": "cast it to text",
    "location": "give it as text: (latitude, longitude)",
    "url": "give it as text",
}
NUMBER_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
LOCAL_RE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$"
OFFSET_RE = r"(Z|[+-]\d{2}:?\d{2})$"
FLOAT_WINDOW = (1e-4, 1e9)  # where polars and Arrow write a float that is not whole alike
TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]


def accepts(route_type: str, socrata_type: str) -> bool:
    return socrata_type in ACCEPTS.get(route_type, ())


def hint(socrata_type: str) -> str:
    if socrata_type in NUMBERS:
        return "cast it to number"
    if socrata_type in GEOMETRY:
        return "give it as WKT or GeoJSON text (the point rule builds it from longitude/latitude)"
    return HINTS.get(socrata_type, "cast it first")


def convert(
    values: pa.Array | pa.ChunkedArray, socrata_type: str, *, form: str = "json", timezone: str | None = None
) -> Conversion:
    """The wire values of one column for a dataset column of `socrata_type`."""
    arr = contiguous(values)
    t = arr.type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        arr = arr.cast(pa.string())
    elif pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
    if pa.types.is_floating(arr.type):
        nan = pc.is_nan(arr)
        if pc.any(nan).as_py():  # (if_else costs 40 ms per 50k rows even when nothing changes)
            arr = pc.if_else(nan, pa.scalar(None, arr.type), arr)
    if pa.types.is_decimal(arr.type):
        arr = arr.cast(pa.string())
    if socrata_type == "text" or socrata_type in ("photo", "blob"):
        return Conversion(_text(arr))
    if socrata_type in NUMBERS:
        return _number(arr, form)
    if socrata_type == "checkbox":
        return _checkbox(arr)
    if socrata_type == "calendar_date":
        return _floating(arr, timezone)
    if socrata_type == "date":
        return _fixed(arr, timezone)
    if socrata_type in GEOMETRY:
        return geo.geometry(arr, socrata_type)
    if socrata_type == "location":
        return geo.location(arr, form)
    if socrata_type == "url":
        return geo.url(arr, form)
    raise ValueError(f"unsupported Socrata type {socrata_type}")


def _text(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_string(t):
        return arr
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false")
    if pa.types.is_date(t):
        return arr.cast(pa.string())
    if pa.types.is_timestamp(t):
        return pc.replace_substring_regex(_iso(arr), r"\.000(Z|[+-]\d{4})?$", r"\1")
    return arr.cast(pa.string())


def _iso(arr: pa.Array) -> pa.Array:
    """ISO 8601 text with milliseconds, `2024-01-05T09:30:00.123` (+ `Z` or offset when zoned).

    Arrow's cast to string is ~30x faster than strftime; it only needs the T put in: at byte 10
    when every year has four digits (4x faster than a search for the space), else by searching."""
    ms = pc.cast(arr, pa.timestamp("ms", tz=arr.type.tz), safe=False)
    text = ms.cast(pa.string())
    if _four_digit_years(ms.cast(pa.int64()), MS_PER_DAY):
        return pc.binary_replace_slice(text, 10, 11, "T")
    return pc.replace_substring(text, " ", "T", max_replacements=1)


MS_PER_DAY = 86_400_000
# Days from 1970-01-01 to 1001-01-01 and to 9998-12-31: a day a year inside 1000-9999, so a
# timestamp shown in any time zone still has a four-digit year.
FOUR_DIGIT_DAYS = (-353_920, 2_932_531)


def _four_digit_years(values: pa.Array, per_day: int) -> bool:
    """Whether every value (days, or `per_day` units a day, since 1970) falls in a four-digit year,
    so that its text puts the date in bytes 0-9."""
    bounds = pc.min_max(values)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None:  # all null
        return True
    return FOUR_DIGIT_DAYS[0] * per_day <= low and high <= FOUR_DIGIT_DAYS[1] * per_day


def _midnight(days: pa.Array) -> pa.Array:
    """Dates as floating timestamps at midnight, `2024-01-05T00:00:00`."""
    text = days.cast(pa.string())
    if _four_digit_years(days.cast(pa.int32()), 1):
        return pc.binary_replace_slice(text, 10, 10, "T00:00:00")  # 2x faster than joining
    return pc.binary_join_element_wise(text, "T00:00:00", "")


def _float_form(arr: pa.Array, form: str) -> pa.Array:
    """Floats as each value reads: whole values as integers (7, never 7.0), others as the shortest
    text of the float (2.5, 0.1). A column whose values are all whole goes as JSON integers; any
    other goes as numeric text, which Socrata takes for number, money and double columns. So a value
    reads back the same whatever else its chunk holds and whichever mode sent it, and a port job
    copies "7" as "7". (Numeric text costs the local portal no more than JSON floats: measured.)"""
    arr = arr.cast(pa.float64())
    magnitude = pc.abs(arr)
    whole = pc.fill_null(pc.and_(pc.equal(pc.floor(arr), arr), pc.less(magnitude, 2.0**53)), True)
    if pc.all(whole).as_py():
        ints = arr.cast(pa.int64())
        return ints if form == "json" else ints.cast(pa.string())
    # Polars writes floats 2.5x faster than Arrow's cast and, for values that are not whole between
    # 1e-4 and 1e9, the very same text (the shortest that reads back, ties to even: checked against
    # Arrow on every magnitude in tests/socrata/test_socrata_wire.py). Whole values and the others
    # (Arrow writes an exponent below 1e-6 and from 1e10, polars at other bounds) go as before.
    text = pl.from_arrow(arr).cast(pl.String).to_arrow().cast(pa.string())
    window = pc.and_(pc.greater_equal(magnitude, FLOAT_WINDOW[0]), pc.less(magnitude, FLOAT_WINDOW[1]))
    redo = pc.fill_null(pc.and_(pc.is_valid(arr), pc.or_(whole, pc.invert(window))), False)
    if not pc.any(redo).as_py():
        return text
    values, whole = arr.filter(redo), whole.filter(redo)
    ints = pc.if_else(whole, values, pa.scalar(None, pa.float64())).cast(pa.int64()).cast(pa.string())
    return pc.replace_with_mask(text, redo, pc.if_else(whole, ints, values.cast(pa.string())))


def _number(arr: pa.Array, form: str = "json") -> Conversion:
    t = arr.type
    if pa.types.is_integer(t):
        return Conversion(arr.cast(pa.int64()))
    if pa.types.is_floating(t):
        # JSON numbers: the cheapest form for the portal to read (numeric text must be parsed).
        bad = pc.fill_null(pc.is_inf(arr), False)
        if pc.any(bad).as_py():
            arr = pc.if_else(bad, pa.scalar(None, t), arr)
            return Conversion(_float_form(arr, form), bad, "an infinite number cannot be published")
        return Conversion(_float_form(arr, form))
    if pa.types.is_string(t):
        ok = pc.match_substring_regex(arr, NUMBER_RE)
        bad = pc.invert(pc.fill_null(ok, True))
        # Sent as the text itself: Socrata takes numeric strings, and keeps their precision (7.90).
        clean = pc.utf8_trim_whitespace(arr)
        return with_bad(clean, bad, "not a number (digits, an optional . and exponent; no thousands separators)")
    raise TypeError(t)


def number_key(values: pa.Array) -> pa.Array:
    """Row-identifier numbers given as text in one spelling per number: "10.0" and "10.00" go as
    "10", "7.50" as "7.5". Other columns keep the text as given (its precision is the publisher's),
    but a key must not: the portal may tell 10 and 10.0 apart, which would add a row instead of
    updating one (and a dry run, which compares numbers, would have said "update")."""
    if not pa.types.is_string(values.type):  # integers (floats arrive as text or integers)
        return values
    text = pc.replace_substring_regex(values, r"^([+-]?\d+)\.0*$", r"\1")
    return pc.replace_substring_regex(text, r"^([+-]?\d*\.\d*[1-9])0+$", r"\1")


def _checkbox(arr: pa.Array) -> Conversion:
    t = arr.type
    if pa.types.is_boolean(t):
        return Conversion(arr)
    if pa.types.is_integer(t):
        bad = pc.and_(pc.is_valid(arr), pc.invert(pc.is_in(arr, pa.array([0, 1], t))))
        out = pc.equal(arr, pa.scalar(1, t))
        return with_bad(out, bad, "a checkbox takes 0 or 1 (or true/false)")
    words = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    yes = pc.is_in(words, pa.array(TRUE_WORDS))
    no = pc.is_in(words, pa.array(FALSE_WORDS))
    bad = pc.and_(pc.is_valid(arr), pc.invert(pc.or_(yes, no)))
    out = pc.if_else(pc.is_null(arr), pa.scalar(None, pa.bool_()), yes)
    return with_bad(out, bad, "a checkbox takes true or false (also yes/no, 1/0)")


def _floating(arr: pa.Array, timezone: str | None) -> Conversion:
    t = arr.type
    if pa.types.is_date(t):
        return Conversion(_midnight(arr))
    if pa.types.is_timestamp(t):
        if t.tz:
            # A zoned instant as wall-clock time: in `timezone` when given, else in its own zone.
            arr = pc.local_timestamp(arr.cast(pa.timestamp(t.unit, tz=timezone)) if timezone else arr)
        return Conversion(_iso(arr))
    text, bad = _local_text(arr)
    return with_bad(
        text, bad, "not a date or date-time in ISO form (2024-01-31 or 2024-01-31T09:30:00), without a time zone offset"
    )


def _fixed(arr: pa.Array, timezone: str | None) -> Conversion:
    t = arr.type
    zone = timezone or "UTC"
    if pa.types.is_date(t):
        arr = arr.cast(pa.timestamp("s"))
        t = arr.type
    if pa.types.is_timestamp(t):
        return Conversion(_utc_text(arr, zone))
    trimmed = pc.utf8_trim_whitespace(arr)
    has_offset = pc.fill_null(pc.match_substring_regex(trimmed, OFFSET_RE), False)
    local = pc.replace_substring_regex(trimmed, OFFSET_RE, "")
    text, bad = _local_text(local)
    # Values with an offset go as they are; values without one are in `timezone` (default UTC).
    stamps = pc.strptime(
        pc.utf8_slice_codeunits(pc.if_else(bad, pa.scalar(None, pa.string()), text), 0, 19),
        "%Y-%m-%dT%H:%M:%S",
        "s",
        error_is_null=True,
    )
    converted = _utc_text(stamps, zone)
    offset_text = pc.replace_substring(trimmed, " ", "T", max_replacements=1)
    out = pc.if_else(has_offset, offset_text, converted)
    return with_bad(out, bad, "not a date-time in ISO form (2024-01-31T09:30:00, optionally with Z or +01:00)")


def _utc_text(arr: pa.Array, zone: str) -> pa.Array:
    if arr.type.tz is None:
        arr = pc.assume_timezone(arr, zone, ambiguous="earliest", nonexistent="latest")
    return _iso(arr.cast(pa.timestamp(arr.type.unit, tz="UTC")))


def _local_text(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """ISO local date/date-time text normalised to `YYYY-MM-DDTHH:MM:SS[.fff]`, and a bad mask."""
    trimmed = pc.utf8_trim_whitespace(arr)
    shaped = pc.fill_null(pc.match_substring_regex(trimmed, LOCAL_RE), True)
    text = pc.replace_substring(trimmed, " ", "T", max_replacements=1)
    length = pc.utf8_length(text)
    text = pc.if_else(pc.equal(length, 10), pc.binary_join_element_wise(text, "T00:00:00", ""), text)
    text = pc.if_else(pc.equal(length, 16), pc.binary_join_element_wise(text, ":00", ""), text)
    # A real calendar date: parsing and printing again gives the same text (2024-02-30 does not).
    head = pc.utf8_slice_codeunits(pc.if_else(shaped, text, pa.scalar(None, pa.string())), 0, 19)
    again = pc.strftime(pc.strptime(head, "%Y-%m-%dT%H:%M:%S", "s", error_is_null=True), "%Y-%m-%dT%H:%M:%S")
    real = pc.fill_null(pc.equal(again, head), False)
    bad = pc.and_(pc.is_valid(arr), pc.invert(real))
    return text, bad
