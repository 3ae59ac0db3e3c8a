"""Dates and datetimes for the cast rule: formats, ISO 8601, time zones, and back to text.

pyarrow's strptime is fast but lenient in two ways we cannot accept: it rolls a day that does not
exist over into the next month (02/31/2020 becomes March 2) and its %Y takes a two-digit year as
year 24. So each format is also compiled to a regex that finds the day as written; the few parsed
values whose day came out as 1 to 3 are compared with it, and years before 1000 count as not
matching (so "%m/%d/%Y" then "%m/%d/%y" reads 1/5/24 as 2024). Only the directives we can check are
accepted, at plan time. ISO 8601 goes through Arrow's cast, with a strict regex in front of it so
that the values it accepts do not depend on the rest of the chunk.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from transforms._formats import Format

US = pa.timestamp("us")
UTC = pa.timestamp("us", "UTC")
_ISO = (
    r"^[1-9]\d{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ](?:[01]\d|2[0-3])(?::[0-5]\d(?::[0-5]\d(?:\.\d+)?)?)?(?:Z|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)?)?$"
)
_OFFSET = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_AWARE = r"^.{10}[T ].*" + _OFFSET


def _null(t: pa.DataType) -> pa.Scalar:
    return pa.scalar(None, t)


def _any(mask) -> bool:
    return bool(pc.any(mask).as_py()) if len(mask) else False


def _coalesce(a, b):
    return b if a is None else a if b is None else pc.coalesce(a, b)


def _or(a, b):
    return b if a is None else a if b is None else pc.or_(a, b)


def _check_format(fmt: Format, text: pa.Array, parsed: pa.Array):
    """Null out what strptime accepted but should not: short %Y years and rolled-over days."""
    if fmt.has_year4:
        parsed = pc.if_else(pc.fill_null(pc.less(pc.year(parsed), 1000), False), _null(parsed.type), parsed)
    if fmt.day_regex is None:
        return parsed, None
    wall = parsed
    if fmt.has_offset:  # the day as written is the local one, before the offset moved it to UTC
        if not fmt.text.rstrip().endswith("%z"):
            return parsed, None  # an offset in mid-format: too rare to be worth a second parser
        wall = pc.strptime(
            pc.replace_substring_regex(text, r"\s*(?:Z|[+-]\d{2}:?\d{2})$", ""),
            format=fmt.text.rstrip()[:-2],
            unit="us",
            error_is_null=True,
        )
    day = pc.day(wall)
    candidates = pc.fill_null(pc.less_equal(day, 3), False)
    if not _any(candidates):
        return parsed, None
    found = pc.extract_regex(pc.filter(text, candidates), fmt.day_regex)
    written = pc.cast(pc.struct_field(found, [0]), pa.int64())
    rolled = pc.fill_null(pc.not_equal(written, pc.filter(day, candidates)), False)
    invalid = pc.replace_with_mask(candidates, candidates, rolled)
    return pc.if_else(invalid, _null(parsed.type), parsed), invalid


def _cast_iso(text: pa.Array, target: pa.DataType):
    """Cast regex-checked ISO text; impossible days become null (and are reported as such)."""
    try:
        return pc.cast(text, target), None
    except pa.ArrowInvalid:
        pass
    text = pc.replace_substring_regex(text, r"(\.\d{6})\d+", r"\1")  # finer than microseconds
    date = pc.utf8_slice_codeunits(text, 0, 10)
    rolled = pc.strptime(date, format="%Y-%m-%d", unit="s", error_is_null=True)
    written = pc.cast(pc.utf8_slice_codeunits(text, 8, 10), pa.int64())
    invalid = pc.fill_null(pc.not_equal(pc.day(rolled), written), False)
    return pc.cast(pc.if_else(invalid, _null(pa.string()), text), target), invalid


def _iso(text: pa.Array, keep_offsets: bool):
    """(naive, aware-in-UTC, invalid-day mask) for the ISO 8601 values of `text`."""
    shape = pc.fill_null(pc.match_substring_regex(text, _ISO), False)
    aware = pc.and_(shape, pc.fill_null(pc.match_substring_regex(text, _AWARE), False))
    if not _any(aware):
        naive, invalid = _cast_iso(pc.if_else(shape, text, _null(pa.string())), US)
        return naive, None, invalid
    plain = pc.if_else(pc.and_(shape, pc.invert(aware)), text, _null(pa.string()))
    with_offset = pc.if_else(aware, text, _null(pa.string()))
    if not keep_offsets:  # a date: the date as written, whatever the offset
        naive, invalid = _cast_iso(pc.coalesce(plain, pc.replace_substring_regex(with_offset, _OFFSET, "")), US)
        return naive, None, invalid
    naive, invalid = _cast_iso(plain, US)
    instant, invalid2 = _cast_iso(with_offset, UTC)
    return naive, instant, _or(invalid, invalid2)


def parse(text: pa.Array, spec, want: str):
    """Text to date32 or timestamp[us(, tz)]; returns (result, lazy list of (mask, reason))."""
    naive = aware = invalid = None
    todo = pc.is_valid(text)
    for i, fmt in enumerate(spec.formats):
        if not _any(todo):
            break
        sub = text if i == 0 else pc.if_else(todo, text, _null(pa.string()))
        parsed = pc.strptime(sub, format=fmt.text, unit="us", error_is_null=True)
        parsed, bad = _check_format(fmt, sub, parsed)
        if fmt.has_offset:
            aware = _coalesce(aware, pc.cast(parsed, UTC))
        else:
            naive = _coalesce(naive, parsed)
        invalid = _or(invalid, bad)
        todo = pc.and_(todo, pc.is_null(parsed))
    if _any(todo):
        rest = text if not spec.formats else pc.if_else(todo, text, _null(pa.string()))
        iso_naive = None
        if not spec.formats:  # the usual all-ISO column: one cast, the regex only if it fails
            try:
                iso_naive = pc.cast(rest, pa.date32() if want == "date" else US)
                iso_naive = pc.cast(iso_naive, US) if want == "date" else iso_naive
                iso_naive = pc.if_else(pc.fill_null(pc.less(pc.year(iso_naive), 1000), False), _null(US), iso_naive)
            except pa.ArrowInvalid:
                iso_naive = None
        if iso_naive is None:
            iso_naive, iso_aware, bad = _iso(rest, keep_offsets=want == "datetime")
            aware, invalid = _coalesce(aware, iso_aware), _or(invalid, bad)
        naive = _coalesce(naive, iso_naive)
    if naive is None:
        naive = pa.nulls(len(text), US)
    specials = []
    if want == "date":
        result = pc.cast(naive, pa.date32())
    elif spec.timezone is None:
        result = naive
        if aware is not None:
            specials.append(
                (
                    pc.is_valid(aware),
                    "has a UTC offset but the column has no timezone; set one "
                    "(e.g. timezone: UTC) to accept times with offsets",
                )
            )
    else:
        result, more = localize(naive, spec.timezone, spec.ambiguous)
        specials += more
        if aware is not None:
            result = pc.coalesce(result, pc.cast(aware, pa.timestamp("us", spec.timezone)))
    if invalid is not None:
        specials.append((invalid, "is not a valid date: that month has no such day"))
    return result, lambda: specials


def localize(naive: pa.Array, tz: str, ambiguous: str):
    """Local wall-clock times in `tz` as instants; times in a DST gap become null, with reasons."""
    target = pa.timestamp("us", tz)
    if ambiguous != "reject":
        try:  # the usual chunk has no time in a DST gap: one kernel
            return pc.assume_timezone(naive, timezone=tz, ambiguous=ambiguous, nonexistent="raise"), []
        except pa.ArrowInvalid:
            pass
    earliest = pc.assume_timezone(naive, timezone=tz, ambiguous="earliest", nonexistent="earliest")
    gap = pc.fill_null(pc.not_equal(pc.local_timestamp(earliest), naive), False)
    result, specials = earliest, []
    if ambiguous != "earliest":
        latest = pc.assume_timezone(naive, timezone=tz, ambiguous="latest", nonexistent="earliest")
        if ambiguous == "latest":
            result = latest
        else:
            twice = pc.and_(pc.fill_null(pc.not_equal(earliest, latest), False), pc.invert(gap))
            result = pc.if_else(twice, _null(target), result)
            specials.append(
                (
                    twice,
                    f"happens twice in {tz} (clocks go back at the daylight-saving change); "
                    f"set ambiguous: earliest or latest to choose",
                )
            )
    if _any(gap):
        result = pc.if_else(gap, _null(target), result)
        specials.append((gap, f"does not exist in {tz} (clocks skip that hour at the daylight-saving change)"))
    return pc.cast(result, target), specials


def retime(data: pa.Array, spec):
    """A date or datetime column to the date or datetime the cast asks for."""
    if spec.type == "date":
        if pa.types.is_timestamp(data.type) and data.type.tz:
            data = pc.local_timestamp(data)
        return pc.cast(data, pa.date32()), lambda: []
    if pa.types.is_date(data.type):
        data = pc.cast(data, US)
    if data.type.tz and spec.timezone:  # the same instants, shown in another zone
        return pc.cast(data, pa.timestamp("us", spec.timezone)), lambda: []
    if data.type.tz:  # to floating: the wall-clock time in the column's zone
        return pc.local_timestamp(data), lambda: []
    if spec.timezone:
        result, specials = localize(data, spec.timezone, spec.ambiguous)
        return result, lambda: specials
    return data, lambda: []


def to_text(data: pa.Array) -> pa.Array:
    """ISO 8601 text: 2024-01-15, 2024-01-15T10:30:00, 2024-01-15T10:30:00.5-05:00."""
    text = pc.cast(data, pa.string())
    if pa.types.is_date(data.type):
        return text
    text = pc.replace_substring_regex(text, r"^(\S+) (\d\d:\d\d:\d\d)(?:\.0+|(\.\d*[1-9])0*)", r"\1T\2\3")
    if data.type.tz:
        text = pc.replace_substring_regex(text, r"([+-]\d\d)(\d\d)$", r"\1:\2")
    return text
