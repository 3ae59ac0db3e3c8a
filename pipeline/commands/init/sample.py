"""What `route init` reads of a file: its source options, its first rows, and what is odd in them.

The file is read by the real source (csv or excel), so the columns are named exactly as a route
will see them, and the rows the source leaves out (a line with too many fields) are kept with
their lines and reasons: the publisher is told, since a run will reject them too. Placeholders
for a missing value (`n/a`, `-`) are looked for (markers.py); types are suggested from what
remains (suggestions.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.basics.context import RunContext, RunOptions, StepContext
from pipeline.basics.errors import RouteError, RouteInvalid
from pipeline.commands.init.markers import Marker, describe, find_markers

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
_DELIMITER_WORDS = {";": "semicolon", "\t": "tab", "|": "pipe"}

SHOWN_LEFT_OUT = 5  # rows left out of the sample that are named one by one


@dataclass
class LeftOut:
    """Rows the source rejected while reading the sample (a run rejects them too)."""

    lines: list[int] = field(default_factory=list)
    shown: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first few

    @property
    def count(self) -> int:
        return len(self.lines)

    def write(self, rows, *, reason, **_) -> int:
        """The rejects sink's call (see pipeline.basics.rejects.RejectSink.write)."""
        reasons = reason if isinstance(reason, pd.Series) else pd.Series(reason, index=rows.index)
        for line, why in zip(rows.index, reasons):
            if len(self.shown) < SHOWN_LEFT_OUT:
                self.shown.append((int(line), str(why)))
        self.lines.extend(int(line) for line in rows.index)
        return len(rows)

    def before(self, last: int) -> None:
        """Forget the rows after line `last`: the sample stopped there."""
        self.lines = [line for line in self.lines if line <= last]
        self.shown = [(line, why) for line, why in self.shown if line <= last]


@dataclass
class Sample:
    """The first rows of a file as the route's source reads them, and what reading them showed."""

    kind: str  # csv or excel
    options: dict  # the source options to write
    frame: pd.DataFrame
    notes: dict = field(default_factory=dict)  # option -> why it was set
    left_out: LeftOut = field(default_factory=LeftOut)
    markers: list[Marker] = field(default_factory=list)  # placeholders for "no value" found

    @property
    def rows(self) -> int:
        """The rows the sample covers: those read and those the source left out."""
        return len(self.frame) + self.left_out.count

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]


def read_sample(path: Path, route_file: Path, rows: int, sheet: str | None = None) -> Sample:
    """The first `rows` rows of `path`, read by the source a route would use.

    Placeholders for a missing value are looked for; in a CSV file they become `null_values` and
    the sample is read again with them, so that types are suggested from the values that remain."""
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
    frame, left_out = _read(Source, kind, options, path, route_file, rows)
    markers = find_markers(frame)
    if markers and kind == "csv":
        options["null_values"] = [m.value for m in markers]
        notes["null_values"] = f"REVIEW: read as empty in every column; seen: {describe(markers)}"
        frame, left_out = _read(Source, kind, options, path, route_file, rows)
    elif markers:
        frame = _without(frame, markers, route_file)
    return Sample(kind, options, frame, notes, left_out, markers)


def _without(frame: pd.DataFrame, markers: list[Marker], route_file: Path) -> pd.DataFrame:
    """The sample as the `replace` step written for a workbook leaves it: placeholders made null."""
    from transforms.values import replace

    options: dict[str, dict] = {}
    for marker in markers:
        for column in marker.lines:
            options.setdefault(column, {})[marker.value] = None
    run = RunContext(route_name="init", route_file=route_file.resolve(), state_dir=Path(".route"), run_id="init")
    return replace(frame, options, StepContext(run=run, stage="source_transforms", step="replace"))


def _read(Source, kind: str, options: dict, path: Path, route_file: Path, rows: int) -> tuple[pd.DataFrame, LeftOut]:
    """The first `rows` rows the source yields, and the rows it left out before the last of them."""
    left_out = LeftOut()
    run = RunContext(
        route_name="init",
        route_file=route_file.resolve(),
        state_dir=route_file.parent / ".route",
        run_id="init",
        options=RunOptions(dry_run=True, preview=True, limit=rows),
        rejects=left_out,
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
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    if seen >= rows and len(frame):  # rows rejected past the sample's last row are not in it
        left_out.before(int(frame.index[-1]))
    return frame, left_out


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
