"""Which reader reads a workbook's sheets, decided before either touches them.

calamine is fast but builds each sheet as a dense grid, from its first used cell to its last, and
aborts the process (no exception, no message) when that grid does not fit in memory. openpyxl's
streaming reader (excel_stream.py) holds only the cells that have values, one block at a time,
so it is the safe path for a sheet calamine cannot hold. For an .xlsx/.xlsm sheet, the rule is:

- `openpyxl`: always the streaming reader;
- `auto`: the streaming reader when the grid its cells span (excel_extent.scan_sheet) is over
  CALAMINE_MAX_CELLS; the far cell is then named in a warning. Otherwise calamine, a window at a
  time where it can (excel_windows.py); a sheet whose XML is over AUTO_STREAM_BYTES that cannot
  be read that way is streamed (the whole-sheet calamine's memory would grow with it);
- `calamine`: calamine, unless the grid is over CALAMINE_MAX_CELLS: then the run stops with a
  message naming the sheet and the cell, and the engine that can read it.

A plain sheet whose whole grid is over CALAMINE_MAX_CELLS (a million rows of 30 columns, or a
stray far cell) may still be read a window at a time (excel_windows.py), each window's grid checked
before calamine sees it; `oversized` keeps the refusal and the warning for when it cannot be.

.xls, .xlsb and .ods are not XML sheets that can be scanned cheaply: calamine reads them as
before (under `route schedule --isolation thread` such a route runs in a process of its own,
see pipeline/ops/scheduling/isolation.py).
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from pipeline.basics.errors import RunFailed
from pipeline.sources.excel_extent import Extent, scan_sheet
from pipeline.sources.excel_stream import STREAM_SUFFIXES, choose_engine, sheet_members

CALAMINE_MAX_CELLS = 25_000_000  # calamine's grid: 32 bytes a cell, so 800 MB


@dataclass
class EngineChoice:
    """The reader for a source's sheets, and the warnings the choice owes the user."""

    engine: str
    warnings: list[str] = field(default_factory=list)
    extents: dict[str, Extent] = field(default_factory=dict)  # of the sheets scanned, by name
    large: bool = False  # auto, and a sheet's XML is over AUTO_STREAM_BYTES: openpyxl unless windowed
    # sheets whose whole grid calamine cannot hold, but whose windows it may: name -> (the refusal
    # of engine calamine, the warning of auto) if they cannot be read a window at a time
    oversized: dict[str, tuple[str, str]] = field(default_factory=dict)


def choose(path: Path, engine: str, names: list[str], label: str) -> EngineChoice:
    """The engine that reads the sheets `names` of the workbook at `path` (see the docstring)."""
    if engine == "openpyxl" or path.suffix.lower() not in STREAM_SUFFIXES:
        return EngineChoice(engine if engine != "auto" else "calamine")
    try:
        members = sheet_members(path)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, ET.ParseError):
        return EngineChoice("calamine")  # not a workbook calamine can open either: it says why
    # a large sheet is read a window at a time (excel_windows.py) when it can be; else streamed
    large = engine == "auto" and choose_engine(path, names) == "openpyxl"
    choice = EngineChoice(engine if engine != "auto" else "calamine", large=large)
    for name in names:
        if name not in members:
            continue  # a chart sheet: calamine reads it as empty
        try:
            extent = scan_sheet(path, members[name], quick=True)
            if extent.bounded and extent.cells > CALAMINE_MAX_CELLS:  # perhaps: scan every cell
                extent = scan_sheet(path, members[name])
        except (OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise RunFailed(f"{label}: cannot read sheet '{name}': {exc}") from exc
        choice.extents[name] = extent
        if extent.cells <= CALAMINE_MAX_CELLS:
            continue
        refusal = (
            f"{label}: sheet '{name}' {_too_big(extent)} (at most {CALAMINE_MAX_CELLS:,} cells; "
            f"more would abort the run). Use engine: auto or openpyxl, which hold only the "
            f"cells that have values"
        )
        stray = (
            f" If {' or '.join(_reach(extent))} is a stray, set range to leave it out." if not extent.irregular else ""
        )
        warning = (
            f"{label}: sheet '{name}' {_too_big(extent)} (at most {CALAMINE_MAX_CELLS:,} "
            f"cells), so it is read with openpyxl, which holds only the cells that have "
            f"values.{stray}"
        )
        if not extent.irregular:  # its windows may each be small enough (excel_windows.py)
            choice.oversized[name] = (refusal, warning)
            continue
        if engine == "calamine":
            raise RunFailed(refusal)
        choice.engine = "openpyxl"
        choice.warnings.append(warning)
    return choice


def _reach(extent: Extent) -> list[str]:
    return sorted(set(extent.reach.values()))


def _too_big(extent: Extent) -> str:
    """Why a sheet's grid is too big for calamine, naming the cells that make it so."""
    if extent.irregular:
        return (
            'has cells written without a reference (r="A1") or with one that cannot be read, so '
            "their place is unknown before reading them all: calamine's grid could be the whole sheet, "
            "too many cells for the calamine engine"
        )
    declared = f" (dimension {extent.declared})" if extent.declared else ""
    rows = extent.last[0] - extent.first[0] + 1
    cols = extent.last[1] - extent.first[1] + 1
    return (
        f"has a cell as far as {' and '.join(_reach(extent))}{declared}: its cells span {rows:,} rows x "
        f"{cols:,} columns, too many for the calamine engine"
    )
