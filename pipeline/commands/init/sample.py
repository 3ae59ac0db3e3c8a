"""What `route init` learns from the first rows of a file: its source options, columns and types.

The file is read by the real source (csv or excel), so the columns are named exactly as a route
will see them. Types are only *suggested*: each text column's sample is matched against a few
shapes (whole numbers, decimals, dates, ...), and a suggestion is kept only if the real `cast`
rule converts every sampled value with it. What was seen is kept as a note for the route file's
comments, so the publisher reviews each type instead of trusting a guess.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.context import RunContext, RunOptions, StepContext
from pipeline.basics.dtypes import arrow, route_type_of
from pipeline.basics.errors import RouteError, RouteInvalid

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
_DELIMITER_WORDS = {";": "semicolon", "\t": "tab", "|": "pipe"}

# Shapes of text values, in order of preference; a shape is suggested when every sampled value has
# it, or else MOSTLY of them (the rest would be rejected, and the note says so).
MOSTLY = 0.8
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


@dataclass
class Suggestion:
    """A column's suggested cast (None: leave it as it is) and what the sample showed."""

    column: str
    cast: str | dict | None
    note: str
    example: str = ""
    type: str = "text"  # the column's type as read (typed sources), or as suggested


@dataclass
class Sample:
    kind: str  # csv or excel
    options: dict  # the source options to write
    frame: pd.DataFrame
    notes: dict = field(default_factory=dict)  # option -> why it was set

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]


def read_sample(path: Path, route_file: Path, rows: int, sheet: str | None = None) -> Sample:
    """The first `rows` rows of `path`, read by the source a route would use."""
    if not path.is_file():
        raise RouteInvalid(f"error: --from {path}: no such file")
    rel = _relative(path, route_file.parent)
    notes: dict = {}
    if path.suffix.lower() in EXCEL_SUFFIXES:
        from pipeline.sources.excel import ExcelSource as Source

        kind, options = "excel", {"path": rel}
        sheets = _sheet_names(path)
        options["sheet"] = (int(sheet) if sheet.isdigit() else sheet) if sheet else (sheets[0] if sheets else 1)
        if len(sheets) > 1:
            notes["sheet"] = f"the workbook's sheets: {', '.join(sheets)}"
    else:
        from pipeline.sources.csv import CsvSource as Source

        kind, options = "csv", {"path": rel}
        options.update(_csv_dialect(path, notes))
    run = RunContext(
        route_name="init",
        route_file=route_file.resolve(),
        state_dir=route_file.parent / ".route",
        run_id="init",
        options=RunOptions(dry_run=True, preview=True, limit=rows),
    )
    ctx = StepContext(run=run, stage="source", step=kind)
    frames, seen = [], 0
    try:
        source = Source(options, ctx)
        for chunk in source.chunks():
            frames.append(chunk.iloc[: rows - seen])
            seen += len(frames[-1])
            if seen >= rows:
                break
        getattr(source, "close", lambda: None)()
    except RouteError as exc:
        raise RouteInvalid(f"error: --from {path}: {exc}") from None
    if not frames:
        raise RouteInvalid(f"error: --from {path}: the file is empty (no header, no rows)")
    return Sample(kind, options, pd.concat(frames) if len(frames) > 1 else frames[0], notes)


def _sheet_names(path: Path) -> list[str]:
    try:
        import python_calamine

        return list(python_calamine.CalamineWorkbook.from_path(str(path)).sheet_names)
    except Exception:  # an unreadable workbook is reported by the excel source itself
        return []


def _relative(path: Path, folder: Path) -> str:
    rel = os.path.relpath(path.resolve(), folder.resolve())
    return Path(rel).as_posix() if not rel.startswith("../../..") else str(path.resolve())


def _csv_dialect(path: Path, notes: dict) -> dict:
    """Delimiter and encoding when they are not the defaults (comma, UTF-8), from the first bytes."""
    with path.open("rb") as f:
        head = f.read(1 << 20)
    options: dict = {}
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            options["encoding"] = "cp1252"
            notes["encoding"] = f"not UTF-8 (byte {exc.start}); cp1252 is a guess: check accented letters"
        text = head.decode("cp1252", errors="replace")
    first = text.splitlines()[0] if text else ""
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    default = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    if counts[best] > counts[default] and best != default:
        options["delimiter"] = _DELIMITER_WORDS.get(best, best)
        notes["delimiter"] = f"the header line has {counts[best]} of them"
    return options


def suggest(frame: pd.DataFrame) -> list[Suggestion]:
    """One suggestion per column of the sample."""
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
    share = {}
    for shape, pattern in _SHAPES:
        share[shape] = pc.sum(pc.match_substring_regex(present, pattern)).as_py() / n
    full = [s for s, f in share.items() if f == 1.0]
    # the first shape every value has, else the one most values have (the cast will say which do not)
    shape = full[0] if full else max(share, key=lambda s: share[s])
    if not full and share[shape] < MOSTLY:
        return Suggestion(name, None, f"text: e.g. {example}{tail}", example)
    if shape == "integer" and pc.any(pc.match_substring_regex(present, _LEADING_ZERO)).as_py():
        return Suggestion(name, None, f"stays text: leading zeros ({example}) are part of the value", example)
    if shape in ("date/", "datetime/"):
        options = []
        for fmt in ("%m/%d/%Y", "%d/%m/%Y"):
            formats = [fmt] if shape == "date/" else _time_formats(present, fmt)
            options.append({"type": shape[:-1], "formats": formats})
        return _best(name, column, options, f"{shape[:-1]}: {seen}{_day_order(present)}", example)
    cast = _CASTS[shape]
    return _best(name, column, [cast], f"{cast if isinstance(cast, str) else cast['type']}: {seen}", example)


def _example(values: pa.Array) -> str:
    if not len(values):
        return ""
    text = str(values[0].as_py())
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
    """The cast (of `casts`) that the real cast rule converts most sampled values with."""
    tried = [(*_rejected(name, column, cast), cast) for cast in casts]
    rejected, first_bad, cast = min(tried, key=lambda t: t[0] if t[0] >= 0 else float("inf"))
    kind = cast if isinstance(cast, str) else cast["type"]
    total = int(column.notna().sum())
    if rejected < 0 or rejected > total * (1 - MOSTLY):
        return Suggestion(
            name,
            None,
            f"stays text: looks like {kind}, but the cast would reject "
            f"{'some' if rejected < 0 else rejected} of {total} sampled values",
            example,
        )
    if rejected:
        note += f" (REVIEW: {rejected} would be rejected, e.g. {first_bad!r})"
    return Suggestion(name, cast, note, example, kind)


class _Rejects:
    """Stands in for the rejects file: counts, and keeps the first value rejected."""

    def __init__(self):
        self.first = None

    def write(self, rows, *, column=None, value=None, **_):
        if self.first is None:
            values = value if isinstance(value, pd.Series) else rows[column] if column in rows else None
            self.first = str(values.iloc[0]) if values is not None and len(values) else None
        return len(rows)


def _rejected(name: str, column: pd.Series, cast) -> tuple[int, str | None]:
    """How many sampled values the real cast rule rejects with `cast` (-1: it fails), and the first."""
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
        return -1, None
    return ctx.rejected, sink.first
