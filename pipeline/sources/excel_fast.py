"""Which fast reader reads a plain .xlsx sheet: whole (excel_arrow.py) or a window at a time
(excel_windows.py), for the excel source.

A sheet with more XML than a window, or whose whole grid calamine could not hold, is read a window
at a time (memory bounded by the window); a smaller one whole, with fastexcel's reader of the
workbook opened once for all of them. Either may decline a sheet (None): the source then reads
every sheet another way, and the spools of the sheets already read are let go of.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pipeline.sources import excel_arrow, excel_windows
from pipeline.sources.excel_extent import Extent
from pipeline.sources.excel_sheet import Sheet
from pipeline.sources.excel_sheet_xml import WINDOW_BYTES, closed_above
from pipeline.sources.excel_spool import BlockSpool


class FastSheets:
    """Reads the plain sheets of one workbook, one `read` a sheet."""

    def __init__(self, path: Path, options: dict, run, cleanup: contextlib.ExitStack):
        self.path, self.options, self.chunk_rows = path, options, run.chunk_rows
        self.folder = Path(run.state_dir) / "tmp"  # the window workbook and the spools
        self.journal = run.journal  # holds their files, for the next run to remove after a kill
        self.cleanup = cleanup  # removes the spools when the source closes
        self.book = None  # fastexcel's reader of the whole workbook, opened for the first small sheet
        self.spools: list[BlockSpool] = []

    def read(self, name: str, member: str, extent: Extent, oversized: bool) -> Sheet | None:
        """The sheet as typed blocks; None to decline it. `oversized`: its whole grid is too big."""
        header_row = self.options.get("header_row")
        if extent.xml_bytes > WINDOW_BYTES or oversized:
            spool = BlockSpool(self.folder, self.journal)
            self.spools.append(spool)
            self.cleanup.callback(spool.remove)
            return excel_windows.read_sheet(
                self.path, name, member, header_row, extent, self.chunk_rows, spool, oversized
            )
        self.book = self.book or excel_arrow.open_book(self.path)
        if self.book is None:
            return None
        above = 0  # the cells above a header_row below the sheet's first cell, to check the rest
        if header_row and header_row - 1 != extent.first[0]:
            above = closed_above(self.path, member, header_row)
        return excel_arrow.read_sheet(self.book, name, header_row, extent, self.chunk_rows, above)

    def discard(self) -> None:
        """Let go of what the sheets read so far hold: another reader reads them all."""
        for spool in self.spools:
            spool.remove()
