"""DataSync's timestamp settings as `cast` steps: Joda formats turned into strptime formats.

DataSync parses a column with floatingTimestampFormat when it is a floating timestamp ("Date &
Time") in the dataset and with fixedTimestampFormat when it is a fixed one ("Date & Time (with
timezone)"); a column's `overrides` entry replaces both with its own timestampFormat and timezone.
"ISO8601" needs no cast: route's cast and the socrata delivery read ISO 8601 always. Which columns
are timestamps comes from the dataset when it can be read, else from the data: a column whose
sampled values all convert with the formats.
"""

from __future__ import annotations

import zoneinfo

import pandas as pd

# Joda pattern letters -> strptime directives, by the length of the run of letters
_JODA = {
    "y": lambda n: "%y" if n == 2 else "%Y",
    "Y": lambda n: "%y" if n == 2 else "%Y",
    "u": lambda n: "%y" if n == 2 else "%Y",
    "M": lambda n: "%m" if n <= 2 else "%b" if n == 3 else "%B",
    "d": lambda n: "%d" if n <= 2 else None,
    "H": lambda n: "%H" if n <= 2 else None,
    "h": lambda n: "%I" if n <= 2 else None,
    "m": lambda n: "%M" if n <= 2 else None,
    "s": lambda n: "%S" if n <= 2 else None,
    "a": lambda n: "%p",
    "E": lambda n: "%a" if n <= 3 else "%A",
    "Z": lambda n: "%z" if n <= 2 else None,
}
ISO = "iso8601"


def strptime_format(joda: str) -> str | None:
    """`MM/dd/yyyy hh:mm a` -> `%m/%d/%Y %I:%M %p`; None when a part has no strptime equivalent
    (fractions of a second SSS, day of year D, week fields, zone names z, ...)."""
    out, i = [], 0
    while i < len(joda):
        ch = joda[i]
        if ch == "'":  # a quoted literal; '' is a quote
            end = joda.find("'", i + 1)
            if end == i + 1:
                out.append("'")
                i += 2
                continue
            if end < 0:
                return None
            out.append(joda[i + 1 : end].replace("%", "%%"))
            i = end + 1
            continue
        if ch.isalpha():
            n = 1
            while i + n < len(joda) and joda[i + n] == ch:
                n += 1
            directive = _JODA.get(ch, lambda _n: None)(n)
            if directive is None:
                return None
            out.append(directive)
            i += n
            continue
        out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out)


def convert_formats(formats: list[str]) -> tuple[list[str], list[str]]:
    """(strptime formats, Joda formats that have none); ISO8601 needs none and is left out."""
    done, left = [], []
    for joda in formats:
        if joda.strip().lower() == ISO:
            continue
        fmt = strptime_format(joda)
        if fmt is None:
            left.append(joda)
        elif fmt not in done:
            done.append(fmt)
    return done, left


def valid_zone(name: str | None) -> bool:
    if not name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def timestamp_casts(control: dict, columns: list[str], dataset, sample: pd.DataFrame | None, notes) -> dict:
    """column -> (cast spec, comment) for the columns DataSync would parse with a format."""
    from pipeline.commands.datasync.files import formats

    overrides = control.get("overrides") or {}
    kinds = {}
    if dataset is not None:
        types = {c.field: c.type for c in dataset.columns}
        for column in columns:
            kind = {"calendar_date": "floating", "date": "fixed"}.get(types.get(column, ""))
            if kind:
                kinds[column] = kind
    floating, fixed = formats(control.get("floatingTimestampFormat")), formats(control.get("fixedTimestampFormat"))
    zone = control.get("timezone")
    casts, skipped = {}, set()
    for column in columns:
        override = overrides.get(column) or {}
        own = formats(override.get("timestampFormat"))
        kind = kinds.get(column)
        if dataset is None:
            kind = "sniffed"
            joda = own or floating + [f for f in fixed if f not in floating]
        else:
            joda = own or (floating if kind == "floating" else fixed if kind == "fixed" else [])
        if not joda:
            continue
        strp, left = convert_formats(joda)
        for fmt in left:
            if fmt not in skipped:
                skipped.add(fmt)
                notes.missing(
                    f"timestamp format {fmt!r}: it has no strptime equivalent (fractions of a second, zone names)"
                )
        if not strp:
            continue
        spec = {"type": "datetime", "formats": strp}
        tz = override.get("timezone")
        if tz and not valid_zone(tz):
            notes.missing(
                f"overrides.{column}.timezone {tz!r}: not an IANA time zone name (use e.g. America/Los_Angeles)"
            )
            tz = None
        if tz or any("%z" in f for f in strp):
            spec["timezone"] = tz or (zone if valid_zone(zone) else "UTC")
        if kind == "sniffed":
            if sample is None or column not in sample or not _converts(sample[column], column, spec):
                continue
            if _converts(sample[column], column, {"type": "datetime"}):
                continue  # ISO 8601 already: the delivery reads it as it is
            why = "REVIEW: its sampled values are dates in these formats (the dataset was not read)"
        else:
            why = f"a {kind} timestamp in the dataset"
        source = (
            f"overrides.{column}.timestampFormat"
            if own
            else {"floating": "floatingTimestampFormat", "fixed": "fixedTimestampFormat"}.get(kind, "timestamp formats")
        )
        casts[column] = (spec, f"{source}; {why}")
    return casts


def _converts(values: pd.Series, column: str, spec: dict) -> bool:
    """Every sampled value converts with `spec` (and there is at least one)."""
    from transforms._casting import convert
    from transforms.types import bind

    if not values.notna().any():
        return False
    try:
        result, failed, _ = convert(values, bind({column: spec}).casts[0])
    except Exception:  # a column the cast cannot take at all is simply not a timestamp
        return False
    return failed is None and result.null_count < len(result)
