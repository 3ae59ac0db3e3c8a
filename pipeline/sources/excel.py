"""The excel source: rows of one worksheet (or several, stacked) of an .xlsx/.xlsm/.xlsb/.xls/.ods.

Cells are read with calamine, which bench/bench_excel.py measured at about 8x the speed of
openpyxl's read-only mode and which gives what the route needs: cached values of formulas, dates
as dates, text as text and the merged ranges of .xlsx/.xls sheets. A plain .xlsx sheet is read by
fastexcel (calamine into Arrow, typed per column: pipeline/sources/excel_arrow.py), any other
sheet by python-calamine cell by cell; both give the same rows. calamine holds a whole sheet in
memory while it is read (about 1 KB per row of 13 columns), so a plain sheet with more than
excel_sheet_xml.WINDOW_BYTES of XML is read a window of rows at a time (pipeline/sources/
excel_windows.py): memory is then bounded by the window, not the sheet.

`engine` chooses the reader: `calamine`; `openpyxl`, which streams an .xlsx/.xlsm sheet with
openpyxl's read-only mode in bounded memory (one chunk at a time; slower, as the sheet is read
twice: once to settle the column types, once for the rows; see pipeline/sources/excel_stream.py);
or `auto` (the default): calamine, unless a chosen sheet's cells span a grid calamine cannot hold
(a stray value in XFD1048576; see pipeline/sources/excel_engine.py), or its XML is larger than
100 MB and it cannot be read a window at a time. All give the same rows, values, row numbers and
types.

Rules, as a user sees them:

- `sheet`: a name (text) or a position counted from 1 (a number); default the first sheet.
  `sheets: [a, b]` (or `"*"` for every worksheet) stacks sheets, with the sheet name in the
  column `sheet_column` (default `sheet`, placed first); columns are matched by header name.
- `header_row`: the Excel row number of the header (default: the first row of `range`, or the
  first non-empty row); `0` means no header, and columns are named by their letters (A, B, ...).
  `skip_rows`: rows under the header that are not data (a units line). `range: A3:H500` limits
  the cells read (`A3:H` reads to the last row).
- A cell of a merged range has the value of its top-left cell. A formula gives its cached value:
  a workbook saved by a program that does not calculate (openpyxl) has none, and those cells are
  empty. Error cells (#N/A, #DIV/0!) are empty.
- Rows whose cells are all empty are skipped. A column with no header and no value is dropped;
  a header cell left empty names its column by letter; repeated names get _2, _3.
- Types per column over the whole sheet: see pipeline/sources/excel_cells.py (whole numbers ->
  integer, dates -> date, mixed -> text). Time-only cells and durations are text.
- The index of every chunk is the Excel row number; chunk.attrs["source"] is `file[sheet]`.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pandas as pd
import pyarrow as pa

from pipeline.basics.dtypes import frame_from_arrow
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import source
from pipeline.sources import excel_arrow, excel_engine
from pipeline.sources import excel_cells as cells
from pipeline.sources.base import Source
from pipeline.sources.excel_fast import FastSheets
from pipeline.sources.excel_guard import check_shared_strings, guarded
from pipeline.sources.excel_sheet import Sheet, SheetReader, Window, parse_range
from pipeline.sources.excel_stream import STREAM_SUFFIXES, StreamSheet, sheet_members, sheet_names
from pipeline.sources.pick import FILE_OPTIONS, FileSet

SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {
            "type": "string",
            "minLength": 1,
            "description": "the workbook (.xlsx, .xlsm, .xlsb, .xls, .ods); relative to the route file; "
            "or a glob with pick; or a URL (https://, sftp://, s3://, ftp://; see docs/files.md), "
            "downloaded into the state folder before it is read",
        },
        **FILE_OPTIONS,
        "sheet": {
            "oneOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 1}],
            "description": "a sheet name, or its position counted from 1 (default: the first sheet)",
        },
        "sheets": {
            "oneOf": [
                {"const": "*"},
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {"oneOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 1}]},
                },
            ],
            "description": 'sheets to stack, by name or position, or "*" for every worksheet',
        },
        "sheet_column": {
            "type": "string",
            "minLength": 1,
            "description": "with sheets: the column that holds each row's sheet name (default sheet)",
        },
        "header_row": {
            "type": "integer",
            "minimum": 0,
            "description": "the Excel row number of the header (default: the first non-empty "
            "row); 0: no header, columns are named A, B, ...",
        },
        "skip_rows": {
            "type": "integer",
            "minimum": 0,
            "description": "rows under the header that are not data (a units line)",
        },
        "range": {"type": "string", "description": "the cells to read: A3:H500, A3:H (to the last row) or B:F"},
        "engine": {
            "enum": ["auto", "calamine", "openpyxl"],
            "description": "the reader: calamine (fast; a large .xlsx sheet is read a window of rows "
            "at a time, others whole; refuses a sheet whose cells span over 25,000,000 cells that "
            "cannot be read in windows), openpyxl (.xlsx/.xlsm only: streams the sheet in bounded "
            "memory, slower) or auto (default: calamine unless a sheet that cannot be read in "
            "windows spans over 25,000,000 cells or has over 100 MB of XML, then openpyxl)",
        },
    },
}


@source(OPTIONS_SCHEMA)
class ExcelSource(Source):
    """Rows of a worksheet, typed from the cells.

    ```yaml
    source:
      excel:
        path: data/permits.xlsx
        sheet: Permits          # or 2 (the second sheet); or sheets: [2023, 2024]
        header_row: 3           # Excel's row number
        range: A3:H500          # optional
        engine: auto            # or calamine, or openpyxl (streams a huge .xlsx in bounded memory)
    ```
    """

    plan_columns = "slow"  # columns() reads the workbook: for `route validate`, not before each run

    def __init__(self, options: dict, ctx):
        self.options = options
        self.ctx = ctx
        self.fileset = FileSet(options, ctx, "excel source", many=False)
        location = self.fileset.location
        self.label = location.shown_url if location.remote else str(options["path"])
        # the workbook's path on this machine: a download's once a remote workbook is loaded
        self.path = Path(location.inner) if location.remote else ctx.resolve_path(options["path"])
        if self.path.suffix.lower() not in SUFFIXES:
            raise OptionError(
                f"'{self.label}' is not a workbook ({', '.join(SUFFIXES)}); use the csv source for text files",
                ("path",),
            )
        self.engine = options.get("engine", "auto")
        if self.engine == "openpyxl" and self.path.suffix.lower() not in STREAM_SUFFIXES:
            raise OptionError(
                f"engine openpyxl reads .xlsx and .xlsm workbooks only, not "
                f"'{self.label}': use engine calamine (or auto)",
                ("engine",),
            )
        try:
            if self.engine == "openpyxl":
                import openpyxl  # noqa: F401
            else:
                import python_calamine  # noqa: F401 - the excel extra
        except ImportError as exc:
            raise OptionError(f"reading workbooks needs {exc.name}: pip install 'route-etl[excel]'") from None
        if "sheet" in options and "sheets" in options:
            raise OptionError("give either sheet or sheets, not both", ("sheets",))
        self.window = parse_range(options["range"]) if "range" in options else Window()
        self.sheet_column = options.get("sheet_column", "sheet") if "sheets" in options else None
        self._sheets: list[Sheet] | None = None
        self._names: list[str] | None = None
        self._book = None  # the open openpyxl workbook of a streamed read
        self._extents: dict = {}  # sheet name -> excel_extent.Extent, of the sheets scanned
        self._large = False  # a sheet too large for whole-sheet calamine: streamed unless windowed
        self._oversized: dict = {}  # sheet name -> (refusal, warning): its whole grid is too big
        self._download = contextlib.ExitStack()  # removes a remote workbook's download

    def columns(self) -> list[str] | None:
        """The columns, from the workbook; None for a remote one not read yet (it is not
        downloaded just to check a route)."""
        if self.fileset.location.remote and self._names is None:
            return None
        self._load()
        return list(self._names)

    def close(self) -> None:
        """Called by the executor when it stops reading: let go of the sheet's data (and file)."""
        self._sheets = []
        if self._book is not None:
            self._book.close()
            self._book = None
        self._download.close()

    @property
    def details(self) -> dict:
        """The workbook read (and the one picked), for the run report."""
        return self.fileset.details

    def on_delivered(self) -> None:
        self.fileset.after_read()

    def chunks(self) -> Iterator[pd.DataFrame]:
        self._load()
        names = self._names
        kinds = {
            n: cells.unify(s.kinds[n] for s in self._sheets if n in s.kinds) for n in names if n != self.sheet_column
        }
        if not any(sheet.rows for sheet in self._sheets):  # no data row: the columns, typed, no rows
            self._sheets = []
            arrays = [pa.array([], cells.ARROW[kinds.get(n, cells.TEXT)]) for n in names]
            frame = frame_from_arrow(pa.Table.from_arrays(arrays, names=names), index=pd.Index([], dtype="int64"))
            frame.attrs["source"] = str(self.label)
            yield frame
        while self._sheets:
            sheet = self._sheets.pop(0)
            label = f"{self.label}[{sheet.name}]"
            for index, block in self._blocks(sheet):
                n = len(index)
                arrays = []
                for name in names:
                    if name == self.sheet_column:
                        arrays.append(pa.array([sheet.name] * n, pa.string()))
                    elif name in block:
                        arrays.append(cells.finish(*block[name], kinds[name]))
                    else:
                        arrays.append(pa.nulls(n, cells.ARROW[kinds[name]]))
                frame = frame_from_arrow(pa.Table.from_arrays(arrays, names=names), index=pd.Index(index + 1))
                frame.attrs["source"] = label
                yield frame
        self.close()

    @staticmethod
    def _blocks(sheet: Sheet) -> Iterator:
        """A sheet's blocks: read again when streamed, else let go of each once it is given."""
        if sheet.again is not None:
            yield from sheet.again()
        while sheet.blocks:
            yield sheet.blocks.pop(0)

    # -- reading ---------------------------------------------------------------------------------

    def _load(self) -> None:
        if self._sheets is not None:
            return
        if not self.fileset.location.remote and not self.fileset.globbed and not self.path.exists():
            raise RunFailed(f"{self.label}: no such file ({self.path})")
        found = self.fileset.files()[0]
        self.label = found.shown
        self.path = self._download.enter_context(found.local_copy())
        if self._engine() == "openpyxl":
            self._sheets = self._load_stream()
        else:
            self._sheets = self._load_calamine()
        names: list[str] = [self.sheet_column] if self.sheet_column else []
        for sheet in self._sheets:
            if self.sheet_column in sheet.names:
                raise RunFailed(
                    f"sheet '{sheet.name}' of {self.label} has a column named "
                    f"'{self.sheet_column}': set sheet_column to another name"
                )
            names += [n for n in sheet.names if n not in names]
        self._names = names

    def _engine(self) -> str:
        """calamine or openpyxl, by excel_engine.choose; warns when a far cell decided it."""
        try:
            # positions count chart sheets too, as calamine counts them: the sheets scanned are
            # the sheets read
            names = self._choose(sheet_names(self.path), list(sheet_members(self.path)))
        except (OSError, KeyError, ValueError, RunFailed, zipfile.BadZipFile, ET.ParseError):
            names = []  # not a readable .xlsx: the reader says what is wrong
        choice = excel_engine.choose(self.path, self.engine, names, str(self.label))
        for warning in choice.warnings:
            self.ctx.log.warning("%s", warning)
        self._extents = choice.extents
        self._large = choice.large
        self._oversized = choice.oversized
        return choice.engine

    def _reader(self, sheet) -> SheetReader:
        return SheetReader(
            sheet,
            self.window,
            self.options.get("header_row"),
            self.options.get("skip_rows", 0),
            self.ctx.run.chunk_rows,
            str(self.label),
        )

    def _load_stream(self) -> list[Sheet]:
        import openpyxl

        label = str(self.label)
        check_shared_strings(self.path, label)
        try:
            self._book = book = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises several types for unreadable files
            raise RunFailed(f"{label}: cannot read the workbook: {exc}") from exc
        worksheets = [ws.title for ws in book.worksheets]
        sheets = []
        for name in self._choose(book.sheetnames, worksheets):
            if name not in worksheets:
                raise RunFailed(f"{label}: sheet '{name}' is a chart sheet, with no cells to read")
            with guarded(self.path, label, name):
                stream_sheet = StreamSheet(book, name)
                surveyed = self._reader(stream_sheet).survey()
            surveyed.again = functools.partial(self._restream, stream_sheet, surveyed)
            sheets.append(surveyed)
        return sheets

    def _restream(self, stream_sheet: StreamSheet, surveyed: Sheet) -> Iterator:
        with guarded(self.path, str(self.label), stream_sheet.name):
            yield from self._reader(stream_sheet).stream(surveyed)

    def _load_fast(self) -> list[Sheet] | None:
        """The sheets read by excel_arrow (plain .xlsx sheets, straight into Arrow; one larger than
        a window a window at a time, excel_windows.py); None when any of them is not such a sheet
        (python-calamine then reads them all, cell by cell, or openpyxl streams them)."""
        if not self._extents or not any(excel_arrow.eligible(self.options, e) for e in self._extents.values()):
            return None
        try:
            members = sheet_members(self.path)
            names = self._choose(sheet_names(self.path), list(members))
        except (RunFailed, OSError, KeyError, ValueError, zipfile.BadZipFile, ET.ParseError):
            return None  # python-calamine reads the workbook again and says what is wrong
        fast = FastSheets(self.path, self.options, self.ctx.run, self._download)
        sheets = []
        for name in names:
            extent = self._extents.get(name)
            eligible = excel_arrow.eligible(self.options, extent)
            sheet = fast.read(name, members[name], extent, name in self._oversized) if eligible else None
            if sheet is None:
                fast.discard()
                return None
            sheets.append(sheet)
        return sheets

    def _load_calamine(self) -> list[Sheet]:
        fast = self._load_fast()
        if fast is not None:
            return fast
        if self._oversized:  # calamine cannot hold the whole grid
            if self.engine == "calamine":
                raise RunFailed(next(iter(self._oversized.values()))[0])
            for _, warning in self._oversized.values():
                self.ctx.log.warning("%s", warning)
            return self._load_stream()
        if self._large:  # too large for calamine's whole-sheet grid
            return self._load_stream()
        import python_calamine

        try:
            book = python_calamine.CalamineWorkbook.from_path(str(self.path))
        except Exception as exc:  # calamine raises several types for unreadable files
            raise RunFailed(f"{self.label}: cannot read the workbook: {exc}") from exc
        with book:
            kinds = {m.name: str(m.typ) for m in book.sheets_metadata}
            available = list(book.sheet_names)
            worksheets = [n for n in available if kinds.get(n, "WorkSheet").endswith("WorkSheet")]
            return [self._reader(book.get_sheet_by_name(name)).read() for name in self._choose(available, worksheets)]

    def _choose(self, available: list[str], worksheets: list[str]) -> list[str]:
        """The sheet names to read, in order; a sheet that does not exist names those that do."""
        if self.options.get("sheets") == "*":
            return list(worksheets)
        wanted = self.options.get("sheets") or [self.options.get("sheet", 1)]
        return [self._find(w, available) for w in wanted]

    def _find(self, wanted, available: list[str]) -> str:
        listing = ", ".join(f"'{n}'" for n in available)
        if isinstance(wanted, int):
            if wanted <= len(available):
                return available[wanted - 1]
            hint = (
                f"; to choose the sheet named '{wanted}', write it in quotes: sheet: \"{wanted}\""
                if str(wanted) in available
                else ""
            )
            raise RunFailed(
                f"{self.label} has {len(available)} sheet(s), so there is no sheet "
                f"number {wanted}; the sheets are {listing}{hint}"
            )
        if wanted in available:
            return wanted
        close = difflib.get_close_matches(wanted, available, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise RunFailed(f"{self.label} has no sheet named '{wanted}'{hint}; the sheets are {listing}")
