"""The types `route init` suggests for a sample's text columns, each with what was seen.

Types are only *suggested*: each text column's sample is matched against a few shapes (whole
numbers, decimals, dates, ...), and a suggestion is kept only if the real `cast` rule converts at
least MOSTLY of the sampled values with it. What was seen is kept as a note for the route file's
comments, with a value that does not fit and its line, so the publisher reviews each type (and
each type declined) instead of trusting a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.context import RunContext, StepContext
from pipeline.basics.dtypes import arrow, route_type_of
from pipeline.basics.errors import RouteError

# Shapes of text values, in order of preference; a shape is suggested when every sampled value has
# it, or else at least MOSTLY of them (the rest would be rejected, and the note says so). Fractions,
# compared exactly: 4 values of 5 are 80 %, which floats (1 - 0.8 = 0.19999...) made less.
MOSTLY = Fraction(4, 5)
# Below MOSTLY, a column most of whose values have a shape is worth a word: why it stays text.
CONSIDERED = Fraction(1, 2)
_LEADING_ZERO = r"^\s*[+-]?0\d"
_NUMBER = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
_SHAPES = [
    ("integer", r"^\s*[+-]?\d+\s*$"),
    ("number", rf"^\s*{_NUMBER}\s*$"),
    ("thousands", rf"^\s*([+-]?\d{{1,3}}(,\d{{3}})+(\.\d+)?|{_NUMBER})\s*$"),
    ("money", rf"^\s*([+-]?\$\s?(\d{{1,3}}(,\d{{3}})+|\d+)(\.\d+)?|{_NUMBER})\s*$"),
    ("boolean", r"(?i)^\s*(true|false|yes|no|t|f|y|n)\s*$"),
    ("date", r"^\d{4}-\d{2}-\d{2}$"),
    ("datetime", r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"),
    ("datetime+offset", r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"),
    ("date/", r"^\d{1,2}/\d{1,2}/\d{4}$"),
    ("datetime/", r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}(:\d{2})?( ?[AaPp][Mm])?$"),
]
_CASTS = {
    "integer": "integer",
    "number": "number",
    "thousands": {"type": "number", "thousands": ","},
    "money": {"type": "number", "currency": "$", "thousands": ","},
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
    # values with a UTC offset are instants: a zoned datetime keeps them (and reads the others as UTC)
    "datetime+offset": {"type": "datetime", "timezone": "UTC"},
}
_WORDS = {"integer": "whole numbers", "boolean": "true/false words", "datetime": "date-times"}
_PERCENT = f"{int(MOSTLY * 100)}%"


@dataclass
class Suggestion:
    """A column's suggested cast (None: leave it as it is) and what the sample showed.

    `bad` is a sampled value the suggested (or declined) type does not fit, and `bad_line` its line:
    what the publisher looks at to decide."""

    column: str
    cast: str | dict | None
    note: str
    example: str = ""
    type: str = "text"  # the column's type as read (typed sources), or as suggested
    bad: str | None = None
    bad_line: int | None = None
    declined: str | None = None  # the type the sample looked like, when it stays text all the same
    rejected: int = 0  # sampled values the suggested cast would reject


def at_line(value: str | None, line: int | None) -> str:
    """`'x' on line 4`."""
    return f"{_short(value)} on line {line}" if line is not None else _short(value)


def suggest(frame: pd.DataFrame) -> list[Suggestion]:
    """One suggestion per column of the sample (whose index is the source line)."""
    return [_suggest_column(str(c), frame[c]) for c in frame.columns]


def _suggest_column(name: str, column: pd.Series) -> Suggestion:
    typed = route_type_of(column.dtype)
    values = arrow(column)
    present = pc.drop_null(values)
    n, empty = len(present), len(values) - len(present)
    example = _example(present)
    tail = f"; {empty} empty" if empty else ""
    if typed != "text":
        return Suggestion(name, None, f"{typed} in the workbook{tail}", example, typed)
    if n == 0:
        return Suggestion(name, None, "stays text: every sampled value is empty", "", "text")
    present = present.cast(pa.string())
    seen = f"{n} sampled values like {example}{tail}"
    fits = {shape: pc.sum(pc.match_substring_regex(present, pattern)).as_py() or 0 for shape, pattern in _SHAPES}
    full = [s for s, count in fits.items() if count == n]
    # the first shape every value has, else the one most values have (the cast will say which do not)
    shape = full[0] if full else max(fits, key=lambda s: fits[s])
    if not full and Fraction(fits[shape], n) < MOSTLY:
        if Fraction(fits[shape], n) < CONSIDERED:
            return Suggestion(name, None, f"text: e.g. {example}{tail}", example)
        word = _WORDS.get(_kind(shape), _kind(shape) + "s")
        bad, line = _first_unlike(values, column.index, dict(_SHAPES)[shape])
        return Suggestion(
            name,
            None,
            f"stays text: {fits[shape]} of {n} sampled values look like {word}, fewer than {_PERCENT}; "
            f"{at_line(bad, line)} does not{tail}",
            example,
            bad=bad,
            bad_line=line,
            declined=_kind(shape),
        )
    if shape == "integer" and pc.any(pc.match_substring_regex(present, _LEADING_ZERO)).as_py():
        return Suggestion(name, None, f"stays text: leading zeros ({example}) are part of the value", example)
    if shape in ("date/", "datetime/"):
        options = []
        for fmt in ("%m/%d/%Y", "%d/%m/%Y"):
            formats = [fmt] if shape == "date/" else _time_formats(present, fmt)
            options.append({"type": shape[:-1], "formats": formats})
        return _best(name, column, options, f"{shape[:-1]}: {seen}{_day_order(present)}", example)
    cast = _CASTS[shape]
    return _best(name, column, [cast], f"{_kind(shape)}: {seen}", example)


def _kind(shape: str) -> str:
    cast = _CASTS.get(shape)
    if cast is None:  # date/ and datetime/
        return shape[:-1]
    return cast if isinstance(cast, str) else cast["type"]


def _first_unlike(values: pa.Array, index: pd.Index, pattern: str) -> tuple[str | None, int | None]:
    """The first present value that does not have the shape, and its line."""
    unlike = pc.and_(pc.is_valid(values), pc.invert(pc.match_substring_regex(values.cast(pa.string()), pattern)))
    positions = pc.indices_nonzero(pc.fill_null(unlike, False))
    if not len(positions):
        return None, None
    position = positions[0].as_py()
    return str(values[position].as_py()), int(index[position])


def _example(values: pa.Array) -> str:
    if not len(values):
        return ""
    return _short(str(values[0].as_py()))


def _short(text: str | None) -> str:
    if text is None:
        return "?"
    return repr(text[:40] + ("..." if len(text) > 40 else ""))


def _day_order(values: pa.Array) -> str:
    """A warning when no sampled date says whether it is month/day or day/month."""
    parts = pc.extract_regex(values, r"^(?P<a>\d{1,2})/(?P<b>\d{1,2})/")
    over = [pc.any(pc.greater(pc.cast(pc.struct_field(parts, [i]), pa.int32()), 12)).as_py() for i in (0, 1)]
    return "" if any(over) else " (REVIEW: month/day or day/month? no day above 12 in the sample)"


def _time_formats(values: pa.Array, date_format: str) -> list[str]:
    formats = []
    for seconds in (False, True):
        for ampm in (False, True):
            time = ("%I" if ampm else "%H") + ":%M" + (":%S" if seconds else "") + (" %p" if ampm else "")
            pattern = r"\d{1,2}:\d{2}" + (r":\d{2}" if seconds else "") + (r" ?[AaPp][Mm]" if ampm else "") + "$"
            if pc.any(pc.match_substring_regex(values, r" " + pattern)).as_py():
                formats.append(f"{date_format} {time}")
    return formats


def _best(name: str, column: pd.Series, casts: list, note: str, example: str) -> Suggestion:
    """The cast (of `casts`) that the real cast rule converts most sampled values with; none when
    it converts fewer than MOSTLY of them."""
    tried = [(_rejected(name, column, cast), cast) for cast in casts]
    sink, cast = min(tried, key=lambda t: t[0].count if t[0].count >= 0 else float("inf"))
    kind = cast if isinstance(cast, str) else cast["type"]
    total = int(column.notna().sum())
    bad = at_line(sink.first, sink.first_line)
    if sink.count < 0:
        return Suggestion(name, None, f"stays text: looks like {kind}, but the cast fails on it", example)
    if Fraction(total - sink.count, total) < MOSTLY:
        return Suggestion(
            name,
            None,
            f"stays text: looks like {kind}, but the cast would reject {sink.count} of {total} sampled values "
            f"(it must convert {_PERCENT}), e.g. {bad}",
            example,
            bad=sink.first,
            bad_line=sink.first_line,
            declined=kind,
            rejected=sink.count,
        )
    if sink.count:
        note += f" (REVIEW: {sink.count} would be rejected, e.g. {bad})"
    return Suggestion(name, cast, note, example, kind, sink.first, sink.first_line, rejected=sink.count)


class _Rejects:
    """Stands in for the rejects file: counts, and keeps the first value rejected and its line."""

    def __init__(self):
        self.count = 0
        self.first: str | None = None
        self.first_line: int | None = None

    def write(self, rows, *, column=None, value=None, **_):
        if self.first is None and len(rows):
            values = value if isinstance(value, pd.Series) else rows[column] if column in rows else None
            self.first = str(values.iloc[0]) if values is not None and len(values) else None
            self.first_line = int(rows.index[0])
        self.count += len(rows)
        return len(rows)


def _rejected(name: str, column: pd.Series, cast) -> _Rejects:
    """What the real cast rule rejects of the sampled values with `cast` (count -1: it fails)."""
    from transforms.types import bind
    from transforms.types import cast as cast_rule

    sink = _Rejects()
    run = RunContext(
        route_name="init", route_file=Path("init.yaml").resolve(), state_dir=Path(".route"), run_id="init", rejects=sink
    )
    ctx = StepContext(run=run, stage="source_transforms", step="cast")
    try:
        cast_rule(pd.DataFrame({name: column}), bind({name: cast}), ctx)
    except RouteError:
        sink.count = -1
    return sink
