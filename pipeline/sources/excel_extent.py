"""How far a sheet's cells reach, found from its XML before any reader loads it.

calamine builds a sheet as one dense grid from its first used cell to its last, 32 bytes a cell:
a 4.9 KB workbook with one value in XFD1048576, the last cell of a sheet, asked it for 512 GiB,
and the process aborted with no message (taking a thread-isolated scheduler with it). Before
calamine reads an .xlsx/.xlsm sheet, `scan_sheet` streams the sheet's XML once (through
excel_xml.clean_pieces, so comments cost nothing and long tokens are noted) and finds the corners
of the grid calamine would build. The grid is computed from the cells' own references, as
calamine does; the `<dimension ref=...>` a sheet declares is read and shown, never trusted.

The scan has to be cheap next to calamine (about 0.3 s for 250 MB of XML, where calamine takes
6 s), so it works on whole buffers with numpy: every '<' whose local name is `c` is a cell, its
`r="XFD1048576"` is decoded in vectorised arithmetic, and an empty `<c .../>` or `<c ...></c>` (a
formatted empty cell, which calamine skips) does not count. It errs only towards a larger grid:
a formula cell without a cached value counts, and a cell whose reference is written in any other
way than `<c r="A1"` (or missing) could be anywhere (`Extent.irregular`); the caller then takes
the streaming reader, which reads every cell exactly.

Most sheets need less: `quick` scans decode only the first buffer of cells and check the others
with one regular-expression pass (cells written `<c r="B7"` inside one of QUICK_BOXES, each a
grid calamine can always hold, the first that holds the first buffer's cells), while the XML is inflated in a thread of
its own (ISA-L when installed, excel_zip.py). The engine choice scans again, exactly, only when
the quick answer is not enough (excel_engine.choose).
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pipeline.sources.excel_xml import MAX_TOKEN, TokenTooLong, clean_pieces, prefetched, raw_chunks
from pipeline.sources.excel_zip import member_chunks

SHEET_ROWS, SHEET_COLUMNS = 1_048_576, 16_384
_DIMENSION = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?dimension\s+ref=[\"']([A-Za-z0-9:$]+)[\"']")
# A quick scan checks, rather than decodes, the cells of columns A to X and rows 1 to 999,999:
# a grid within that box holds at most 23,999,976 cells, fewer than calamine is allowed.
# A quick scan checks, rather than decodes, the cells inside a box of rows 1 to R and columns A to
# C, where R x C is under calamine's 25,000,000 cells: (R, C, a pattern that finds any cell outside
# the box). The negative lookahead comes first: twice as fast as a lookahead for the delimiter.
QUICK_BOXES = [
    (999_999, 24, re.compile(rb'<c(?! r="[A-X][1-9][0-9]{0,5}")[\s/>]')),  # A-X
    (199_999, 104, re.compile(rb'<c(?! r="(?:[A-Z]|[A-C][A-Z])(?:[1-9][0-9]{0,4}|1[0-9]{5})")[\s/>]')),  # A-CZ
    (29_999, 702, re.compile(rb'<c(?! r="[A-Z]{1,2}(?:[1-9][0-9]{0,3}|[12][0-9]{4})")[\s/>]')),  # A-ZZ
]
_TAG_WINDOW = 40  # most cells' tags end within this many bytes of their name
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 10, 13, 32]] = True
_DELIM = _SPACE.copy()
_DELIM[[ord("/"), ord(">")]] = True
_NOT_NAME = _DELIM.copy()  # bytes that end a tag's name
_NOT_NAME[[ord("<"), ord("="), ord('"'), ord("'")]] = True


@dataclass
class Extent:
    """The grid a sheet's cells span, 0-based and inclusive, and what else the scan saw."""

    first: tuple[int, int] | None = None  # (row, column) of the grid's top-left corner
    last: tuple[int, int] | None = None  # (row, column) of its bottom-right corner
    reach: dict[str, str] = field(default_factory=dict)  # "row"/"column": the cell that reaches furthest
    declared: str | None = None  # the sheet's <dimension ref=...>, as written
    irregular: bool = False  # cells whose place the scan could not read
    merged: bool = False  # the sheet has merged ranges (<mergeCell>)
    bounded: bool = False  # quick scan: some cells were only checked to lie in `box`
    box: tuple[int, int] = (0, 0)  # (rows, columns) of the QUICK_BOXES box they were checked in
    closed: int = 0  # cells written with a closing tag (</c>): those that can hold a value
    xml_bytes: int = 0  # uncompressed size of the sheet's XML
    comment_bytes: int = 0  # of which comments
    long_tokens: list[TokenTooLong] = field(default_factory=list)

    @property
    def columns(self) -> int:
        """Columns of the grid calamine would build (after a quick scan, at most that many)."""
        if self.irregular:
            return SHEET_COLUMNS
        if self.bounded:
            return max((self.last or (0, 0))[1] + 1, self.box[1])
        return 0 if self.first is None else self.last[1] - self.first[1] + 1

    @property
    def cells(self) -> int:
        """Cells in the grid calamine would build (every cell of a sheet when irregular); after a
        quick scan, at most that many (the grid is then taken to reach the corner of `box`)."""
        if self.irregular:
            return SHEET_ROWS * SHEET_COLUMNS
        if self.bounded:
            rows, cols = self.box
            last = self.last or (0, 0)
            return max(last[0] + 1, rows) * max(last[1] + 1, cols)
        if self.first is None:
            return 0
        return (self.last[0] - self.first[0] + 1) * (self.last[1] - self.first[1] + 1)


def scan_sheet(path: Path, member: str, quick: bool = False) -> Extent:
    """Scan the sheet stored as `member` of the workbook at `path` (see the module docstring)."""
    out = Extent()
    with zipfile.ZipFile(path) as z:
        out.xml_bytes = z.getinfo(member).file_size
    return scan_chunks(member_chunks(path, member), out, quick)


def scan_stream(stream, out: Extent, quick: bool = False) -> Extent:
    """Scan a sheet's XML from a binary file into `out` (see scan_chunks)."""
    return scan_chunks(raw_chunks(stream), out, quick)


def scan_chunks(chunks: Iterator[bytes], out: Extent, quick: bool = False) -> Extent:
    """Scan a sheet's XML, given as pieces of bytes, into `out`.

    `quick`: after the first buffer that holds cells (scanned exactly: out.first is its first
    cell), a buffer whose cells all have a plain reference inside a box of QUICK_BOXES is only
    checked with C-speed passes, not decoded; out.bounded then says the grid is known only to fit
    the box (out.box).
    """
    pieces = clean_pieces(chunks, on_long=out.long_tokens.append)
    with contextlib.closing(prefetched(pieces) if quick else pieces) as pieces:  # stops the thread
        kept = _scan_pieces(pieces, out, quick)
    out.comment_bytes = max(out.xml_bytes - kept, 0)
    if any(t.kind == "DOCTYPE" for t in out.long_tokens):
        out.irregular = True  # entities could put cells anywhere
    return out


def _scan_pieces(pieces, out: Extent, quick: bool) -> int:
    """scan_stream's loop over the cleaned pieces of the XML; the bytes of XML kept."""
    kept = 0
    carry = b""
    looking = True  # for the <dimension>, which comes before <sheetData>
    box = None  # of QUICK_BOXES, once the first cells are scanned; False: none holds them
    for piece in pieces:
        kept += len(piece)
        buf = carry + piece
        if looking:
            found = _DIMENSION.search(buf)
            out.declared = found.group(1).decode("ascii") if found else None
            looking = not found and b"sheetData" not in buf
        cut = buf.rfind(b">") + 1  # every tag before the cut is whole
        out.merged = out.merged or buf.find(b"mergeCell", 0, cut) >= 0
        out.closed += buf.count(b"</c>", 0, cut)
        if quick and out.first is not None and box is None:
            box = _box_for(out)
        if box and _in_box(buf, cut, box[2]):
            out.bounded, out.box = True, box[:2]
        else:
            _scan_buffer(buf[:cut], out)
        lt = buf.rfind(b"<", cut)
        carry = buf[lt:] if lt >= 0 else b""  # the start of a tag (the text before it holds no cell)
        if len(carry) > 2 * MAX_TOKEN:  # a tag that never ends: we cannot tell what it holds
            out.irregular = True
            carry = b""
    if carry.strip():
        _scan_buffer(carry + b">", out)
    return kept


def _box_for(out: Extent):
    """The first of QUICK_BOXES that holds the cells scanned so far; False when none does."""
    for box in QUICK_BOXES:
        if out.last[0] < box[0] and out.last[1] < box[1]:
            return box
    return False


def _in_box(buf: bytes, cut: int, outside: re.Pattern) -> bool:
    """Whether every cell of buf[:cut] is written <c r="A1" with its place inside the box."""
    # a prefixed cell (<x:c) is decoded; ':' alone is found at memchr speed, ':c' is not
    return (buf.find(b":", 0, cut) < 0 or buf.find(b":c", 0, cut) < 0) and outside.search(buf, 0, cut) is None


def _scan_buffer(buf: bytes, out: Extent) -> None:
    """Widen out's grid by the cells of `buf`, which ends at a tag's end."""
    if not buf:
        return
    n = len(buf)
    a = np.frombuffer(buf + b"\0" * (_TAG_WINDOW + 24), dtype=np.uint8)
    cell = _find_pair(buf, 0x633C)  # '<c', little-endian
    cell = cell[_DELIM[a[cell + 2]]]
    name_end = cell + 2
    if b":c" in buf:  # a prefixed cell, <x:c: the ':c' must end the name of a tag
        colon = np.flatnonzero(a[:n] == 58)
        colon = colon[(a[colon + 1] == 99) & _DELIM[a[colon + 2]]]
        lt = np.flatnonzero(a[:n] == 60)
        owner = lt[np.maximum(np.searchsorted(lt, colon) - 1, 0)]
        breaks = np.cumsum(_NOT_NAME[a[:n]])
        inside = (owner < colon) & (breaks[colon] == breaks[owner])
        cell = np.concatenate([cell, owner[inside]])
        name_end = np.concatenate([name_end, colon[inside] + 2])
    if not len(cell):
        return
    # where each cell's tag ends: within a few bytes, else (rarely) looked up among all '>'
    near = sliding_window_view(a, _TAG_WINDOW)[name_end] == 62
    tag_end = name_end + np.argmax(near, axis=1)
    far = ~near.any(axis=1)
    if far.any():
        gt = np.flatnonzero(a[:n] == 62)
        tag_end[far] = gt[np.minimum(np.searchsorted(gt, name_end[far]), len(gt) - 1)]
    # a self-closing <c .../> (a formatted empty cell) holds no value, nor does <c ...></c>
    counts = (a[tag_end - 1] != ord("/")) & ~((a[tag_end + 1] == 60) & (a[tag_end + 2] == ord("/")))
    quote = a[name_end + 3]
    plain = (
        _SPACE[a[name_end]]
        & (a[name_end + 1] == ord("r"))
        & (a[name_end + 2] == ord("="))
        & ((quote == 34) | (quote == 39))
    )
    if (counts & ~plain).any():  # its first attribute is not r="REF": we cannot tell where it is
        out.irregular = True
    take = counts & plain
    if not take.any():
        return
    rows, cols, ok = _decode(a, name_end[take] + 4, quote[take])
    if not ok.all():
        out.irregular = True
        rows, cols = rows[ok], cols[ok]
        if not len(rows):
            return
    _widen(out, rows, cols)


def _find_pair(buf: bytes, pair: int) -> np.ndarray:
    """Positions of a two-byte sequence (`pair` read little-endian), compared two bytes at a time."""
    n = len(buf)
    even = np.flatnonzero(np.frombuffer(buf, "<u2", n // 2) == pair) * 2
    odd = np.flatnonzero(np.frombuffer(buf, "<u2", (n - 1) // 2, 1) == pair) * 2 + 1
    return np.sort(np.concatenate([even, odd]))


def _decode(a: np.ndarray, start: np.ndarray, quote: np.ndarray):
    """(rows, columns, valid) of the references starting at `start`, 0-based."""
    w = sliding_window_view(a, 12)[start].astype(np.int32)
    letter = (w >= 65) & (w <= 90)
    digit = (w >= 48) & (w <= 57)
    k = np.arange(12)
    n_letters = np.argmin(letter, axis=1)
    after = ~digit & (k >= n_letters[:, None])
    stop = np.argmax(after, axis=1)
    n_digits = stop - n_letters
    idx = np.arange(len(start))
    ok = (n_letters >= 1) & (n_letters <= 3) & (n_digits >= 1) & (n_digits <= 7) & (w[idx, stop] == quote)
    v = w[:, :3] - 64
    cols = (
        np.where(
            n_letters == 1,
            v[:, 0],
            np.where(n_letters == 2, v[:, 0] * 26 + v[:, 1], v[:, 0] * 676 + v[:, 1] * 26 + v[:, 2]),
        )
        - 1
    )
    rows = np.zeros(len(start), dtype=np.int32)
    for j in range(7):
        pos = np.minimum(n_letters + j, 11)
        rows = np.where(j < n_digits, rows * 10 + (w[idx, pos] - 48), rows)
    rows -= 1
    ok &= (rows >= 0) & (rows < SHEET_ROWS) & (cols >= 0) & (cols < SHEET_COLUMNS)
    return rows, cols, ok


def _widen(out: Extent, rows: np.ndarray, cols: np.ndarray) -> None:
    r_hi, c_hi = int(rows.max()), int(cols.max())
    if out.first is None:
        out.first, out.last = (int(rows.min()), int(cols.min())), (r_hi, c_hi)
    else:
        out.first = (min(out.first[0], int(rows.min())), min(out.first[1], int(cols.min())))
        out.last = (max(out.last[0], r_hi), max(out.last[1], c_hi))
    if out.last[0] == r_hi:
        i = int(np.argmax(rows))
        out.reach["row"] = cell_name(int(rows[i]), int(cols[i]))
    if out.last[1] == c_hi:
        i = int(np.argmax(cols))
        out.reach["column"] = cell_name(int(rows[i]), int(cols[i]))


def cell_name(row: int, col: int) -> str:
    """(0, 0) -> 'A1'."""
    letters, col = "", col + 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"
