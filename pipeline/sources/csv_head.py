"""The lines before a CSV file's data: skipped lines, comments, the header, and column names.

Reading the head with Python's csv module (a few lines) keeps the data readers simple: they get
the stream positioned at the first data line, the number of fields to expect, and that line's
number, which is where their line numbering starts.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

from pipeline.basics.errors import RunFailed
from pipeline.sources.csv_dialect import Dialect, unterminated
from pipeline.sources.csv_stream import SENTINEL, LineReader


@dataclass
class Head:
    """What the head of one file says: column names (None when the file has no header), the
    number of fields a record must have, and the physical line the data starts on."""

    names: list[str] | None
    ncols: int
    first_line: int


def _decoded(lines: LineReader, comment: str | None, skip_noise: bool):
    """Decoded lines for csv.reader; before the first one, blank and comment lines are skipped."""
    started = not skip_noise
    while True:
        raw = lines.readline()
        if raw is None:
            return
        line = raw.decode("utf-8")
        if not started:
            if not line.strip() or (comment and line.startswith(comment)):
                continue
            started = True
        yield line


def _record(lines: LineReader, dialect: Dialect, skip_noise: bool, shown: str) -> tuple[list[str], int] | None:
    """The next record and the line it starts on, or None at the end of the file."""
    start = {"line": 0}
    decoded = _decoded(lines, dialect.comment, skip_noise)

    def counted():
        for line in decoded:
            if not start["line"]:
                start["line"] = lines.lines
            yield line
        if start["line"]:
            yield SENTINEL  # only read when the file ends inside a quoted field

    reader = csv.reader(counted(), **dialect.python())
    try:
        fields = next(reader, None)
    except csv.Error as exc:
        raise RunFailed(f"{shown}: line {lines.lines}: {exc}") from None
    if fields is None:
        return None
    if fields and SENTINEL in fields[-1]:
        raise unterminated(shown, start["line"])
    return fields, start["line"]


def read_head(
    lines: LineReader,
    dialect: Dialect,
    *,
    header: bool,
    header_row: int | None,
    skip_rows: int,
    names: list[str] | None,
    shown: str,
) -> Head | None:
    """Position `lines` at the first data line; None when the file has no header (empty file)."""
    skip = (header_row - 1) if header_row else skip_rows
    for _ in range(skip):
        if lines.readline() is None:
            break
    if header:
        found = _record(lines, dialect, skip_noise=header_row is None, shown=shown)
        if found is None:
            return None
        fields, line = found
        if not fields:
            raise RunFailed(
                f"{shown}: line {line} is blank, so it cannot be the header; set header_row to the header's line"
            )
        return Head(fields, len(fields), lines.lines + 1)
    first_line = lines.lines + 1
    if names:
        return Head(None, len(names), first_line)
    mark = lines.mark()
    found = _record(lines, dialect, skip_noise=True, shown=shown)
    lines.reset(mark)
    if found is None:
        return None
    return Head(None, len(found[0]), first_line)


def unique_names(raw: list[str]) -> tuple[list[str], list[str]]:
    """Header names made usable: an empty name becomes column_<position>, a repeated name gets
    _2, _3, ... Returns the names and a note for each change (logged as a warning)."""
    out: list[str] = []
    notes: list[str] = []
    taken = set(n for n in raw if n.strip())
    seen: set[str] = set()
    for i, name in enumerate(raw, start=1):
        new = name
        if not name.strip():
            new = f"column_{i}"
            k = 2
            while new in taken or new in seen:
                new, k = f"column_{i}_{k}", k + 1
            notes.append(f"column {i} has no name; it is called {new}")
        elif name in seen:
            k = 2
            while f"{name}_{k}" in taken or f"{name}_{k}" in seen:
                k += 1
            new = f"{name}_{k}"
            notes.append(f"column {i} repeats the name {name!r}; it is called {new}")
        seen.add(new)
        out.append(new)
    return out, notes
