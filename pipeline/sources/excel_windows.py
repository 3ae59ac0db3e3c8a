"""The excel source's fast path for a sheet larger than a window: calamine reads it a window at a time.

fastexcel (calamine) builds a whole sheet before it gives a row, about 1 KB a row of 13 columns:
a 1M-row sheet needed 900 MB. But a sheet's rows stand on their own in its XML, so a run of rows
is a sheet of its own. This module inflates the sheet's XML once, cuts it after a `</row>` every
WINDOW_BYTES, and writes each window as a sheet of a workbook of its own under <state>/tmp (stored,
not compressed: writing it costs little more than copying), beside the original's shared strings,
styles (so dates stay dates) and date system (1904 stays 1904). Every window after the first starts
with a copy of the header row, numbered just above the window's first row, so every window gives
the same columns at their own row numbers. fastexcel then opens that workbook once (the shared
strings are read once) and loads its sheets one after the other: each is typed as excel_arrow
types a whole sheet, cut into blocks on the same grid as a whole-sheet read, and kept in a
BlockSpool. A column's kind is its kind over the whole sheet, so no row is given before the last
window is read; the blocks are then read back one at a time. Memory: one window's cells, the shared
strings, and the spool's SPOOL_MEMORY. Disk: about the sheet's XML, until the sheet is read.

A window gives exactly what the whole sheet would give, or the sheet is declined (read_sheet
returns None and the caller reads it another way): besides excel_arrow's own reasons (a column
mixing types within a window, a header fastexcel names otherwise), when a window's header does not
give the first window's column names; when the cells given fall short of the cells the sheet
closes (`</c>`, counted by the extent scan, as excel_arrow checks a whole sheet: a cell above the
header or its copy, a row out of order, a cell calamine reads as empty); when a window starts at or
above the previous window's last row; when the sheet holds a comment, a CDATA section or a
processing instruction (where `</row>` could be text); when the header row is not in the first
window; or when the disk has not room for the window workbook.

A sheet whose whole grid is more than calamine can hold (excel_engine.CALAMINE_MAX_CELLS: a
million rows of 30 columns) is read so too, with `guard`: each window's grid is measured from its
cells' references before calamine sees it, and one too big declines the sheet.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from pipeline.sources import excel_arrow
from pipeline.sources.excel_engine import CALAMINE_MAX_CELLS
from pipeline.sources.excel_extent import Extent
from pipeline.sources.excel_sheet import Sheet, join_parts, sheet_kind
from pipeline.sources.excel_sheet_xml import WINDOW_BYTES, Declined, SheetXml
from pipeline.sources.excel_spool import BlockSpool
from pipeline.sources.excel_stream import part_name

DISK_MARGIN = 256 << 20  # left free on the state folder's disk by the window workbook

_ROW_NUMBER = re.compile(rb'(\br=")([A-Z]{0,3})\d+(")')
_CELL_ROW = re.compile(rb'\br="[A-Z]{1,3}(\d{1,7})"')  # a cell's row number, from its reference
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_RELS = "xl/_rels/workbook.xml.rels"
_COPIED = {"sharedStrings": "sharedStrings.xml", "styles": "styles.xml"}  # relation: its part, under xl/


@dataclass
class _Window:
    """What the first pass learnt of one window, for the second to check."""

    top: int  # the 0-based row of its header (the first window's) or header copy
    first: int  # the row number (from 1) of its first cell; 0 for the first window
    closed: int = 0  # the first window: the cells it closes (</c>) from its header on
    above: int = 0  # the first window: the cells it closes above its header row


def read_sheet(
    path: Path,
    name: str,
    member: str,
    header_row: int | None,
    extent: Extent,
    chunk_rows: int,
    spool: BlockSpool,
    guard: bool = False,
) -> Sheet | None:
    """The sheet `name` (the zip's `member`) as typed blocks in `spool`, as SheetReader.read
    gives it; None to decline.

    `guard`: the sheet's whole grid is more than calamine can hold, so each window's grid is
    measured from its cells' references before calamine reads it (a window of it would otherwise
    abort the process as the whole sheet would)."""
    header = header_row - 1 if header_row else extent.first[0]
    if header == 0 and extent.first[0] != 0:
        return None
    book = None
    try:
        book = WindowBook(path, member, spool.folder, extent.xml_bytes, spool.journal)
        windows = book.write(header, extent if guard else None)
        return _read(book.path, windows, name, header, extent, chunk_rows, spool)
    except Declined:
        return None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, ET.ParseError):
        return None  # the slow path reads the workbook again and says what is wrong
    finally:
        if book is not None:
            book.remove()


def _read(
    book: Path, windows: list[_Window], name: str, header: int, extent: Extent, chunk_rows: int, spool: BlockSpool
) -> Sheet | None:
    """The second pass: fastexcel reads the windows of the workbook at `book`, one after another."""
    reader = excel_arrow.open_book(book)  # (fastexcel's warnings of empty columns silenced)
    if reader is None:
        raise Declined  # fastexcel is not installed, or refused the workbook
    names = given = None
    last = -1  # the 0-based row of the previous window's last row (a header copy may take it)
    later = 0  # cells given by the windows after the first, header copies left out
    kinds: dict[str, list[str]] = {}
    pending, pending_number = [], None  # the parts of a block that windows share, until it is whole
    for k, window in enumerate(windows):
        if k and window.first - 1 <= last:
            raise Declined  # rows out of order
        batch = excel_arrow.load(reader, k, window.top)
        if batch is None:
            raise Declined
        if k == 0:
            given = batch.schema.names
            names = excel_arrow.header_names(given)
            if names is None:
                raise Declined
            if excel_arrow.given(batch) != window.closed:
                raise Declined  # a cell above the header, or cells calamine (or fastexcel) reads as empty
        elif batch.schema.names != given:
            raise Declined
        else:
            later += excel_arrow.given(batch) - batch.num_columns
        typed = excel_arrow.typed_columns(batch)
        if typed is None:
            raise Declined
        for number, index, block in excel_arrow.cut(
            names, typed, batch.num_rows, window.top + 1, chunk_rows, header + 1
        ):
            if number != pending_number and pending:
                spool.add(*join_parts(pending))
                pending = []
            pending.append((index, block))
            pending_number = number
        for n, (kind, _) in zip(names, typed):
            kinds.setdefault(n, []).append(kind)
        last = window.top + batch.num_rows
        del batch, typed
    if later != extent.closed - windows[0].closed - windows[0].above:
        raise Declined  # a cell above a header copy (a row out of order), or one calamine reads as empty
    if pending:
        spool.add(*join_parts(pending))
    if names is None or not spool.rows:
        return None  # no data row: the slow path gives the typed empty frame
    out = Sheet(name, names=names, kinds={n: sheet_kind(kinds[n]) for n in names}, rows=spool.rows)
    out.renames = {n: n for n in names}
    out.again = spool.blocks
    return out


class WindowBook:
    """The workbook of a sheet's windows, one sheet each, written under <state>/tmp."""

    def __init__(self, path: Path, member: str, folder: Path, xml_bytes: int, journal):
        self.source, self.member, self.journal = path, member, journal
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path) as z:
            self.copied = _copied_parts(z)  # where each goes in the window workbook: its part in z
            copied = sum(z.getinfo(part).file_size for part in self.copied.values())
        if shutil.disk_usage(folder).free < xml_bytes + copied + DISK_MARGIN:  # the windows and those
            raise Declined  # no room: streaming needs none
        fd, name = tempfile.mkstemp(prefix="excel-windows-", suffix=".xlsx", dir=folder)
        os.close(fd)
        self.path = Path(name)
        journal.hold(None, "tmp", path=name)  # removed by the next run if this one is killed

    def write(self, header: int, guard: Extent | None = None) -> list[_Window]:
        """Write the windows (the header of the sheet at 0-based row `header`); what each holds.
        With `guard` (the sheet's extent), a window whose grid calamine could not hold declines."""
        xml = SheetXml(self.source, self.member, WINDOW_BYTES)
        windows: list[_Window] = []
        header_copy = None
        with zipfile.ZipFile(self.source) as z, zipfile.ZipFile(self.path, "w", zipfile.ZIP_STORED) as out:
            for target, member in self.copied.items():
                with z.open(member) as src, out.open(target, "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            with contextlib.closing(xml.windows()) as pieces:
                for k, rows in enumerate(pieces):
                    if k == 0:
                        start, header_copy = xml.row(rows, header + 1)
                        if header_copy is None:
                            raise Declined  # the header row is not in the first window
                        window = _Window(header, 0, xml.closed(rows, start), xml.closed(rows, 0, start))
                        body = [rows]
                    else:
                        first = xml.first_row(rows)
                        if first is None:
                            if xml.closed(rows):
                                raise Declined  # cells without a reference
                            continue  # empty rows only
                        copy = _ROW_NUMBER.sub(rb"\g<1>\g<2>%d\g<3>" % (first - 1), header_copy)
                        window, body = _Window(first - 2, first), [copy, rows]
                    if guard is not None:
                        _check_grid(rows, k and first - 1, guard)
                    with out.open(f"xl/worksheets/w{len(windows)}.xml", "w", force_zip64=True) as w:
                        for piece in (xml.written, *body, xml.tail):
                            w.write(piece)
                    windows.append(window)
            _write_book(z, out, len(windows))
        return windows

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.journal.let(None, "tmp", path=str(self.path))


def _check_grid(rows: bytes, copy_row: int, extent: Extent) -> None:
    """Decline a window whose grid (from its header or header copy at row `copy_row`, 0 for the
    sheet's own, to its furthest cell, over the sheet's columns) calamine could not hold."""
    found = _CELL_ROW.findall(rows)
    if not found:
        return
    numbers = np.array(found).astype(np.int64)
    top = min(int(numbers.min()), copy_row or extent.first[0] + 1)
    if (int(numbers.max()) - top + 1) * extent.columns > CALAMINE_MAX_CELLS:
        raise Declined


def _write_book(z: zipfile.ZipFile, out: zipfile.ZipFile, count: int) -> None:
    """The window workbook's own parts: its sheets w0, w1, ... in the source's date system."""
    pr = next((e for e in ET.fromstring(z.read("xl/workbook.xml")).iter() if e.tag.endswith("workbookPr")), None)
    date1904 = pr is not None and pr.get("date1904", "").lower() in ("1", "true")
    names = set(out.namelist())  # the parts copied
    sheets = "".join(f'<sheet name="w{i}" sheetId="{i + 1}" r:id="w{i}"/>' for i in range(count))
    rels = "".join(
        f'<Relationship Id="w{i}" Type="{_REL}/worksheet" Target="worksheets/w{i}.xml"/>' for i in range(count)
    )
    for kind, target in _COPIED.items():
        if f"xl/{target}" in names:
            rels += f'<Relationship Id="{kind}" Type="{_REL}/{kind}" Target="{target}"/>'
    out.writestr(
        "[Content_Types].xml",
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>',
    )
    out.writestr(
        "_rels/.rels",
        f'<Relationships xmlns="{_PACKAGE_RELS}"><Relationship Id="book" '
        f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    )
    out.writestr(
        "xl/workbook.xml",
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><workbookPr date1904="{int(date1904)}"/>'
        f"<sheets>{sheets}</sheets></workbook>",
    )
    out.writestr(_RELS, f'<Relationships xmlns="{_PACKAGE_RELS}">{rels}</Relationships>')


def _copied_parts(z: zipfile.ZipFile) -> dict[str, str]:
    """The shared strings and the styles of the workbook `z` that are there: their place in the
    window workbook -> their part in `z`, as the workbook's relationships name them."""
    try:
        rels = ET.fromstring(z.read(_RELS))
    except KeyError:
        return {}
    names, found = set(z.namelist()), {}
    for kind, target in _COPIED.items():
        member = next((part_name(r.get("Target", "")) for r in rels if r.get("Type", "").endswith("/" + kind)), None)
        if member in names:
            found[f"xl/{target}"] = member
    return found
