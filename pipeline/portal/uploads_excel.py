"""Excel uploads (.xls and .xlsx, DSMAPI `xls()`/`xlsx()`): the first sheet as rows of text cells.

Read with python-calamine (the `excel` extra); without it, the source fails saying so. The
workbook is read whole (an upload is at most the portal's body limit). Numbers that are whole are
written without `.0`, dates as ISO text, booleans as true/false, empty cells as "".
"""

from __future__ import annotations

import io
from datetime import date, datetime, time

EXCEL_TYPES = (
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)


def is_excel(content_type: str, filename: str = "") -> bool:
    return content_type in EXCEL_TYPES or filename.lower().endswith((".xls", ".xlsx"))


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


MAX_INFLATED = 1 << 30  # an .xlsx whose parts declare more than this, or 50 times its size, is refused


def _check_inflation(data: bytes) -> None:
    """An .xlsx is a zip: refuse one whose parts would inflate far beyond the upload (a zip bomb)."""
    if not data.startswith(b"PK"):
        return
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ValueError(f"the upload is not a readable Excel workbook: {exc}") from None
    if inflated > min(MAX_INFLATED, max(64 << 20, 50 * len(data))):
        raise ValueError(f"the workbook would inflate to {inflated} bytes, too many for the local portal")


def excel_rows(data: bytes):
    """Rows (lists of text) of the workbook's first sheet; ValueError when it cannot be read."""
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:
        raise ValueError("reading Excel uploads needs python-calamine (pip install 'route-etl[excel]')") from None
    _check_inflation(data)
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        rows = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except Exception as exc:  # calamine raises its own error types for broken workbooks
        raise ValueError(f"the upload is not a readable Excel workbook: {exc}") from None
    return ([_text(v) for v in row] for row in rows)
