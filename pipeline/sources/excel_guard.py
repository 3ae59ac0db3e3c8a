"""What the openpyxl engine checks before it parses, and how a refused token reaches the user.

openpyxl parses two kinds of workbook part incrementally, where one huge token costs quadratic
time (see excel_xml.py): the sheets, which our StreamSheet hands it through excel_xml.GuardedXml,
and the shared strings table, which it opens itself. `check_shared_strings` reads that table
once through the guard (comments counted too, as openpyxl will see them) before openpyxl does.
`guarded` turns a TokenTooLong from a sheet into a RunFailed naming the file, the sheet, the cell
the token follows, and what to do.
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

from pipeline.basics.errors import RunFailed
from pipeline.sources.excel_stream import RowOutOfOrder, sheet_members
from pipeline.sources.excel_xml import TokenTooLong, clean_pieces, raw_chunks

SHARED_STRINGS = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\s[^>]{0,200}?\br=[\"']([A-Z]{1,3}[0-9]{1,7})[\"']")
_ADVICE = "no spreadsheet program writes one; use engine: calamine, which reads it in linear time"


def check_shared_strings(path: Path, label: str) -> None:
    """Refuse a shared strings table that openpyxl could not parse in bounded time."""
    try:
        with zipfile.ZipFile(path) as z:
            types = ET.fromstring(z.read("[Content_Types].xml"))
            parts = [o.get("PartName", "").lstrip("/") for o in types if o.get("ContentType") == SHARED_STRINGS]
            for part in parts:
                if part in z.namelist():
                    with z.open(part) as stream:
                        for _ in clean_pieces(raw_chunks(stream), drop_comments=False):
                            pass
    except TokenTooLong as exc:
        raise RunFailed(
            f"{label}: its shared strings ({part}) hold {exc}: the openpyxl engine would take "
            f"hours to parse it; {_ADVICE}"
        ) from None
    except (OSError, KeyError, zipfile.BadZipFile, ET.ParseError):
        return  # openpyxl then says what is wrong with the file


@contextlib.contextmanager
def guarded(path: Path, label: str, sheet: str) -> Iterator[None]:
    """Report a token the sheet's guarded stream refused, with the cell it comes after, or a row
    it cannot number, as one message naming the workbook and the sheet."""
    try:
        yield
    except TokenTooLong as exc:
        where = cell_before(path, sheet, exc.offset)
        after = f", after cell {where}" if where else ""
        raise RunFailed(f"{label}: sheet '{sheet}' holds {exc}{after}; {_ADVICE}") from None
    except RowOutOfOrder as exc:
        raise RunFailed(
            f"{label}: sheet '{sheet}' writes its row {exc.row} after row {exc.after}: the openpyxl engine "
            f"reads rows in the order they are written, so it cannot number these rows. Use engine: "
            f"calamine, which places every cell by its reference (and holds the whole sheet in memory), "
            f"or save the workbook again from a spreadsheet program"
        ) from None


def cell_before(path: Path, sheet: str, offset: int) -> str | None:
    """The last cell reference that starts before byte `offset` of the sheet's XML."""
    try:
        member = sheet_members(path)[sheet]
        found, seen, tail = None, 0, b""
        with zipfile.ZipFile(path) as z, z.open(member) as stream:
            for chunk in raw_chunks(stream):
                buf = tail + chunk
                start = seen - len(tail)
                for m in _CELL.finditer(buf):
                    if start + m.start() < offset:
                        found = m.group(1).decode("ascii")
                seen += len(chunk)
                if seen >= offset:
                    break
                tail = buf[-256:]
        return found
    except (OSError, KeyError, zipfile.BadZipFile, ET.ParseError):
        return None
