"""A sheet's XML as it is inflated, cut into windows of whole rows (for excel_windows.py).

The part before the rows (`<worksheet ...><sheetData>`, with `<dimension>` left out: calamine may
size its grid by it, and a window's is not the sheet's) is kept to start each window; the rows
follow about `size` bytes at a time, each window cut after a `</row>`. A window that holds XML
where `</row>` could be text (a comment, a CDATA section, a processing instruction) declines the
sheet instead. Only the XML up to what is asked is inflated, in a thread of its own (ISA-L where
installed, excel_zip.py).
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.sources.excel_xml import prefetched
from pipeline.sources.excel_zip import member_chunks

WINDOW_BYTES = 2 << 20  # of sheet XML a window: 1 to 4 MB measured fastest; each MB is 12 MB of cells
_MAX_HEAD = 64 << 20  # the sheet's XML before its rows (<cols>, <sheetViews>...), at most

_NAME = rb"(?:[A-Za-z_][\w.-]*:)?"
_SHEET_DATA = re.compile(rb"<(" + _NAME + rb")sheetData\b[^>]*?(/?)>")
_ROOT = re.compile(rb"<(" + _NAME + rb")worksheet\b")
_DIMENSION = re.compile(rb"<" + _NAME + rb"dimension\b[^>]*>")


class Declined(Exception):
    """The sheet cannot be read a window at a time with the same result: read it another way."""


class SheetXml:
    """One sheet's XML as it is inflated: the part before its rows, then its rows a window at a time."""

    def __init__(self, path: Path, member: str, size: int):
        self.path, self.member, self.size = path, member, size
        self.head = self.written = self.tail = self.prefix = b""

    def windows(self) -> Iterator[bytes]:
        """The sheet's rows, about `size` bytes at a time, each window ending after a row."""
        pieces = prefetched(member_chunks(self.path, self.member, 1 << 20))
        parts: list[bytes] = []
        held = 0
        close = None
        try:
            for piece in pieces:
                parts.append(piece)
                held += len(piece)
                if close is None:
                    buf = b"".join(parts)
                    if not self._start(buf):
                        if held > _MAX_HEAD:
                            raise Declined
                        parts = [buf]
                        continue
                    parts = [buf[len(self.head) :]]
                    held = len(parts[0])
                    close = b"</" + self.prefix + b"row>"
                if held < self.size:
                    continue
                buf = b"".join(parts)
                cut = buf.rfind(close)
                if cut < 0:
                    parts = [buf]  # one row larger than a window: read on to its end
                    continue
                cut += len(close)
                yield _plain(buf[:cut])
                parts = [buf[cut:]]
                held = len(parts[0])
        finally:
            pieces.close()
        if close is None:
            raise Declined  # no <sheetData> with rows
        buf = b"".join(parts)
        end = buf.find(b"</" + self.prefix + b"sheetData>")
        if end < 0:
            raise Declined
        yield _plain(buf[:end])

    def _start(self, buf: bytes) -> bool:
        """Find where the rows begin in `buf`, the sheet's first bytes; False if not yet there."""
        m = _SHEET_DATA.search(buf)
        if m is None:
            return False
        if m.group(2):
            raise Declined  # <sheetData/>: no rows
        root = _ROOT.search(buf, 0, m.start())
        if root is None:
            raise Declined
        self.prefix = m.group(1)
        self.head = buf[: m.end()]
        self.tail = b"</" + self.prefix + b"sheetData></" + root.group(1) + b"worksheet>"
        # calamine may size its grid by the declared dimension; a window's is not the sheet's
        self.written = _DIMENSION.sub(b"", self.head)
        return True

    def closed(self, xml: bytes, start: int = 0, end: int | None = None) -> int:
        """The cells `xml[start:end]` writes with a closing tag: those that can hold a value."""
        return xml.count(b"</" + self.prefix + b"c>", start, len(xml) if end is None else end)

    def first_row(self, rows: bytes) -> int | None:
        """The row number (from 1) of the first cell in `rows`; None when it holds none with a reference."""
        m = re.search(rb"<" + re.escape(self.prefix) + rb'c\b[^>]*?\br="[A-Z]{1,3}(\d+)"', rows)
        return int(m.group(1)) if m else None

    def row(self, rows: bytes, number: int) -> tuple[int, bytes | None]:
        """Where row `number` (from 1) starts in `rows`, found by its first cell, and its XML;
        (0, None) if it is not there."""
        p = re.escape(self.prefix)
        m = re.search(rb"<" + p + rb'c\b[^>]*?\br="[A-Z]{1,3}' + str(number).encode() + rb'"', rows)
        if m is None:
            return 0, None
        start = max(
            rows.rfind(b"<" + self.prefix + b"row ", 0, m.start()),
            rows.rfind(b"<" + self.prefix + b"row>", 0, m.start()),
        )
        end = rows.find(b"</" + self.prefix + b"row>", m.end())
        if start < 0 or end < 0:
            return 0, None
        return start, rows[start : end + len(self.prefix) + 6]


def closed_above(path: Path, member: str, number: int) -> int | None:
    """The cells (`</c>`) the sheet's XML closes before its row `number` (from 1), found by its first
    cell; None when it is not found (or the XML is not plain). Only the XML up to it is inflated."""
    xml = SheetXml(path, member, WINDOW_BYTES)
    before = 0
    try:
        with contextlib.closing(xml.windows()) as pieces:
            for rows in pieces:
                start, found = xml.row(rows, number)
                if found is not None:
                    return before + xml.closed(rows, 0, start)
                before += xml.closed(rows)
    except (Declined, OSError, KeyError, zipfile.BadZipFile):
        return None
    return None


def _plain(rows: bytes) -> bytes:
    """`rows`, unless they hold XML where `</row>` could be text (a comment, a CDATA section, a
    processing instruction): then the sheet is declined. `!` and `?` are rare in a sheet's XML and
    found at memchr's speed; `<` is everywhere, so `<!` alone would be slow to look for."""
    for mark in (b"!", b"?"):
        if mark in rows and b"<" + mark in rows:
            raise Declined
    return rows
