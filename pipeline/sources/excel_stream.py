"""Streaming an .xlsx/.xlsm sheet with openpyxl's read-only mode, for the excel source's `engine`.

calamine loads a whole sheet before it gives a row, so its memory grows with the sheet. This
module reads a sheet's XML as it is decompressed, in as many passes as the excel source needs, and
holds no more than one block of rows at a time:

- `survey` (xml.etree iterparse, no cell values converted): the sheet's extent (first and last
  cell that holds a value) and its merged ranges (`<mergeCell ref="A1:G1"/>`, which read-only
  openpyxl does not expose), with each row's elements dropped once seen;
- `StreamSheet.iter_rows()` (openpyxl's own sheet parser, cached formula values, dates by number
  format): the rows in the form calamine gives them, so excel_sheet.SheetReader reads both alike.
  Values are made the same as calamine's: whole numbers as floats, date-times at midnight as
  dates, error cells and empty strings as ''.

`choose_engine` is the `auto` rule: calamine unless a chosen sheet's XML (its uncompressed size in
the zip) is above AUTO_STREAM_BYTES.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

from pipeline.sources.excel_xml import GuardedXml

AUTO_STREAM_BYTES = 100 * 1024 * 1024  # above this uncompressed sheet XML, auto streams with openpyxl
STREAM_SUFFIXES = (".xlsx", ".xlsm")

_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


class RowOutOfOrder(Exception):
    """A row written after a later one, which a stream cannot number (excel_guard.guarded says so)."""

    def __init__(self, row: int, after: int):
        super().__init__(f"row {row} after row {after}")
        self.row, self.after = row, after


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _cell_ref(ref: str) -> tuple[int, int]:
    """'B12' -> (11, 1), 0-based (row, column)."""
    i = 0
    while i < len(ref) and ref[i].isalpha():
        i += 1
    col = 0
    for ch in ref[:i].upper():
        col = col * 26 + ord(ch) - 64
    return int(ref[i:]) - 1, col - 1


def sheet_members(path: Path) -> dict[str, str]:
    """Worksheet name -> its XML member in the zip, in workbook order (chart sheets left out)."""
    with zipfile.ZipFile(path) as z:
        book = ET.fromstring(z.read("xl/workbook.xml"))
        rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    targets = {}
    for rel in rels:
        if rel.get("Type", "").endswith("/worksheet"):
            target = rel.get("Target", "")
            targets[rel.get("Id")] = part_name(target)
    return {
        s.get("name"): targets[s.get(_REL)] for s in book.iter() if _local(s.tag) == "sheet" and s.get(_REL) in targets
    }


def part_name(target: str) -> str:
    """The zip member a relationship of the workbook names: its target, from xl/ unless absolute."""
    return target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))


def sheet_names(path: Path) -> list[str]:
    """Every sheet's name (worksheets and chart sheets), in workbook order: the list a sheet's
    position counts in, as calamine counts it."""
    with zipfile.ZipFile(path) as z:
        book = ET.fromstring(z.read("xl/workbook.xml"))
    return [s.get("name") for s in book.iter() if _local(s.tag) == "sheet" and s.get("name") is not None]


def choose_engine(path: Path, names: list[str], threshold: int = AUTO_STREAM_BYTES) -> str:
    """`auto`: 'openpyxl' when one of the sheets `names` has more than `threshold` bytes of XML."""
    if path.suffix.lower() not in STREAM_SUFFIXES:
        return "calamine"
    try:
        members = sheet_members(path)
        with zipfile.ZipFile(path) as z:
            size = max((z.getinfo(members[n]).file_size for n in names if n in members), default=0)
    except (OSError, KeyError, zipfile.BadZipFile, ET.ParseError):
        return "calamine"  # calamine then reports what is wrong with the file
    return "openpyxl" if size > threshold else "calamine"


def survey(source) -> tuple[tuple[int, int] | None, tuple[int, int] | None, list, list[int]]:
    """(start, end, merged ranges, used columns) of a sheet's XML stream, 0-based as calamine
    gives them. The used columns are those with a value, and those a merged range covers within
    the sheet's extent: a stray far cell makes the extent wide, never the rows we build."""
    r_lo = c_lo = r_hi = c_hi = None
    merges = []
    used: set[int] = set()
    row_no = 0
    parent = None
    for event, elem in ET.iterparse(source, events=("start", "end")):
        name = _local(elem.tag)
        if event == "start":
            if name == "sheetData":
                parent = elem
            continue
        if name == "row":
            row_no = int(elem.get("r")) - 1 if elem.get("r") else row_no + 1
            col_no = -1
            for c in elem:
                ref = c.get("r")
                col_no = _cell_ref(ref)[1] if ref else col_no + 1
                if c.get("t") == "e" or not _has_value(c):
                    continue
                r_lo = row_no if r_lo is None else r_lo
                r_hi = row_no
                c_lo = col_no if c_lo is None else min(c_lo, col_no)
                c_hi = col_no if c_hi is None else max(c_hi, col_no)
                used.add(col_no)
            elem.clear()
            if parent is not None:
                parent.clear()  # nothing of a row stays once it is counted
        elif name == "mergeCell" and elem.get("ref"):
            first, _, last = elem.get("ref").partition(":")
            merges.append((_cell_ref(first), _cell_ref(last or first)))
    if r_lo is None:
        return None, None, merges, []
    for (_, m0), (_, m1) in merges:
        used.update(range(max(m0, c_lo), min(m1, c_hi) + 1))
    return (r_lo, c_lo), (r_hi, c_hi), merges, sorted(used)


def _has_value(cell) -> bool:
    for child in cell:
        tag = _local(child.tag)
        if tag == "v" and child.text:
            return True
        if tag == "is" and "".join(child.itertext()):
            return True
    return False


class StreamSheet:
    """One worksheet of a read-only openpyxl workbook, shaped like a calamine sheet.

    Its rows hold only the `used_columns` (excel_sheet.SheetReader maps them back to their
    letters), so a value in XFD1048576 adds one column to each row, not 16,000. The sheet's XML
    is read through excel_xml.GuardedXml: comments dropped, every other token bounded.
    """

    def __init__(self, book, name: str):
        self.book = book
        self.ws = book[name]
        self.name = name
        with GuardedXml(self.ws._get_source()) as src:
            self.start, self.end, self.merged_cell_ranges, self.used_columns = survey(src)

    def iter_rows(self) -> Iterator[list]:
        """Every row from the sheet's row 1 to its last, holding the cells of used_columns."""
        from openpyxl.worksheet._reader import WorkSheetParser

        if self.start is None:
            return
        last = self.end[0]
        where = {c: i for i, c in enumerate(self.used_columns)}
        width = len(where)
        empty = [""] * width  # never changed by the reader, so shared by every empty row
        book = self.book
        with GuardedXml(self.ws._get_source()) as src:
            parser = WorkSheetParser(
                src,
                self.ws._shared_strings,
                data_only=True,
                epoch=book.epoch,
                date_formats=book._date_formats,
                timedelta_formats=book._timedelta_formats,
            )
            r = 0
            for idx, cells in parser.parse():
                idx -= 1
                if idx < r:  # calamine places it by its number; a stream has given that place away
                    raise RowOutOfOrder(idx + 1, r)
                if idx > last:
                    break
                while r < idx:
                    yield empty
                    r += 1
                row = [""] * width
                for cell in cells:
                    value = cell["value"]
                    col = where.get(cell["column"] - 1)
                    if value is None or cell["data_type"] == "e" or col is None:
                        continue
                    kind = type(value)
                    if kind is int:
                        value = float(value)
                    elif kind is dt.datetime and not (value.hour or value.minute or value.second or value.microsecond):
                        value = value.date()
                    row[col] = value
                yield row
                r += 1
