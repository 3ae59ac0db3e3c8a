"""Reading one worksheet for the excel source: the header, the data rows, merged cells.

A SheetReader walks a sheet's rows: it finds the header (the given Excel row, the first row of
the range, or the first non-empty row), skips what comes before the data, copies each merged
range's top-left value into the range's other cells, drops rows whose cells are all empty, and
types each block of rows column by column (pipeline/sources/excel_cells.py). `read` keeps the
blocks (calamine has the sheet in memory anyway); `survey` then `stream` read a sheet twice, the
first time for the column kinds only, so a streamed sheet never sits in memory
(pipeline/sources/excel_stream.py).

The sheet is calamine's or excel_stream.StreamSheet: iter_rows() yields every row from the
sheet's row 1, and each row's cells from the first column that holds data (sheet.start[1]);
rows and columns here are 0-based.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import pyarrow as pa

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.sources import excel_cells as cells

# A block of rows holds at most this many cells (a wide sheet reads fewer rows at a time), and a
# sheet read with a window of more cells than MAX_READ_CELLS is refused: a stray far cell must
# neither fill memory nor keep a run going for hours.
MAX_BLOCK_CELLS = 4_000_000
MAX_READ_CELLS = 200_000_000

SUB_ROWS = 8192  # rows of Python values typed at once (a chunk is typed in parts of this many rows)

_RANGE = re.compile(r"^([A-Z]{1,3})([1-9][0-9]*)?(?::([A-Z]{1,3})([1-9][0-9]*)?)?$")


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def column_index(letters: str) -> int:
    """A -> 0, AA -> 26."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


@dataclass
class Window:
    """The cells to read, 0-based and inclusive; None = to the end of the sheet's data."""

    row_lo: int = 0
    row_hi: int | None = None
    col_lo: int = 0
    col_hi: int | None = None
    given: bool = False


def parse_range(text: str) -> Window:
    m = _RANGE.match(text.strip().upper())
    if not m:
        raise OptionError(f"range '{text}' is not a cell range such as A3:H500 (or A3:H, or B:F)", ("range",))
    c1, r1, c2, r2 = m.groups()
    w = Window(
        int(r1) - 1 if r1 else 0, int(r2) - 1 if r2 else None, column_index(c1), column_index(c2) if c2 else None, True
    )
    if c2 is None:  # "A3" alone: from that cell to the end
        w.col_hi = None
    if (w.row_hi is not None and w.row_hi < w.row_lo) or (w.col_hi is not None and w.col_hi < w.col_lo):
        raise OptionError(f"range '{text}' ends before it starts", ("range",))
    return w


@dataclass
class Sheet:
    """What was read from one sheet: column names, each column's kind over the sheet, and either
    the typed blocks of rows (calamine) or a way to read them again (a streamed sheet)."""

    name: str
    names: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # NULL: no value in the whole sheet
    rows: int = 0
    blocks: list[tuple[np.ndarray, dict[str, tuple[str, pa.Array]]]] = field(default_factory=list)
    again: Callable[[], Iterator] | None = None
    renames: dict[str, str | None] = field(default_factory=dict)


def sheet_kind(kinds) -> str:
    """The kind of a column over the blocks that gave `kinds`; NULL when none held a value."""
    kinds = set(kinds)
    return cells.unify(kinds) if kinds - {cells.NULL} else cells.NULL


def join_parts(parts: list) -> tuple[np.ndarray, dict] | None:
    """The typed parts of one chunk as one block: each column in the kind its parts unify to."""
    if len(parts) <= 1:
        return parts[0] if parts else None
    index = np.concatenate([idx for idx, _ in parts])
    block = {}
    for name in parts[0][1]:
        kinds = [blk[name][0] for _, blk in parts]
        target = sheet_kind(kinds)
        arrays = []
        for kind, arr in (blk[name] for _, blk in parts):
            if kind == target:
                arrays.append(arr)
            elif kind == cells.NULL:  # an INT part is held as floats until the chunk is made
                arrays.append(pa.nulls(len(arr), pa.float64() if target == cells.INT else cells.ARROW[target]))
            else:
                arrays.append(cells.finish(kind, arr, target))
        block[name] = (target, pa.concat_arrays(arrays) if target != cells.NULL else pa.nulls(len(index)))
    return index, block


class SheetReader:
    """Reads one sheet into a Sheet of typed blocks of at most `chunk_rows` rows."""

    def __init__(self, sheet, window: Window, header_row: int | None, skip_rows: int, chunk_rows: int, label: str):
        self.sheet = sheet
        self.window = window
        self.header_row = header_row
        self.skip_rows = skip_rows
        self.chunk_rows = chunk_rows
        self.label = label
        self.merges: list[tuple[int, int, int, int]] = []
        self.topleft: dict[tuple[int, int], object] = {}

    def read(self) -> Sheet:
        """The whole sheet, its typed blocks kept in memory."""
        out = Sheet(self.sheet.name)
        out.blocks = list(self.iter_blocks(out))
        return self._finish(out, [blk for _, blk in out.blocks])

    def survey(self) -> Sheet:
        """Names and kinds of a sheet whose rows are read again later (`stream`): no rows kept."""
        out = Sheet(self.sheet.name)
        seen: dict[str, set] = {}
        for index, block in self.iter_blocks(out):
            out.rows += len(index)
            for name, (kind, _) in block.items():
                seen.setdefault(name, set()).add(kind)
        return self._finish(out, [{n: (sheet_kind(seen.get(n, ())), None) for n in out.names}])

    def stream(self, surveyed: Sheet) -> Iterator[tuple[np.ndarray, dict]]:
        """The typed blocks again, under the names that `survey` settled."""
        for index, block in self.iter_blocks(Sheet(self.sheet.name)):
            yield index, {surveyed.renames[n]: v for n, v in block.items() if surveyed.renames[n]}

    def iter_blocks(self, out: Sheet) -> Iterator[tuple[np.ndarray, dict]]:
        """Typed blocks of at most chunk_rows rows; sets out.names from the header on the way."""
        sheet, w = self.sheet, self.window
        if sheet.start is None:  # an empty sheet
            return
        (row0, col0), (row_end, col_end) = sheet.start, sheet.end
        columns = getattr(sheet, "used_columns", None) or range(col0, col_end + 1)
        self.lo, self.hi = max(w.col_lo, col0), col_end if w.col_hi is None else min(w.col_hi, col_end)
        last = row_end if w.row_hi is None else min(w.row_hi, row_end)
        if self.hi < self.lo:
            return
        # the columns read, their places in a row of the sheet, and their places here
        self.cols = [c for c in columns if self.lo <= c <= self.hi]
        if not self.cols:
            return
        self.place = {c: i for i, c in enumerate(columns)}  # also outside the window: merges
        self.first_at = self.place[self.cols[0]]
        self.merges = [
            (r0, c0, r1, c1)
            for (r0, c0), (r1, c1) in (sheet.merged_cell_ranges or [])
            if c1 >= self.lo and c0 <= self.hi
        ]
        first = max(w.row_lo, row0)
        if self.header_row is None and w.given and w.row_lo >= row0:
            header = w.row_lo
        elif self.header_row is None:
            header = self._first_filled(first)
        else:
            header = self.header_row - 1 if self.header_row else None
        if header is not None and header > last:
            raise RunFailed(
                f"{self.label}: header_row {header + 1} is below the last row ({last + 1}) of sheet '{sheet.name}'"
            )
        start = max((header + 1 if header is not None else first) + self.skip_rows, w.row_lo)
        cells = (last - min(start, last) + 1) * len(self.cols)
        if cells > MAX_READ_CELLS:
            corner = f"{column_letters(self.cols[-1])}{last + 1}"
            raise RunFailed(
                f"{self.label}: sheet '{sheet.name}' spans {last - start + 1:,} rows x {len(self.cols):,} "
                f"columns up to cell {corner}, {cells:,} cells to read (at most {MAX_READ_CELLS:,}); "
                f"set range to the cells that hold the data (e.g. range: A1:H5000)"
            )
        step = max(1, min(self.chunk_rows, MAX_BLOCK_CELLS // len(columns)))
        rows = sheet.iter_rows()
        for r in range(min(start, last + 1)):  # the rows above the data
            row = next(rows, None)
            if row is None:
                break
            self._remember(r, [row])
            if r == header:
                out.names = self._header(row, r)
        if header is None:
            out.names = [column_letters(c) for c in self.cols]
        r = start
        while r <= last:
            # a chunk's rows are typed SUB_ROWS at a time, so only that many rows of Python
            # values are alive at once; the typed parts are joined into the chunk
            want, got, parts = min(step, last - r + 1), 0, []
            while got < want:
                block = list(islice(rows, min(SUB_ROWS, want - got)))
                if not block:
                    break
                parts.append(self._take_block(out, block, r + got))
                got += len(block)
            taken = join_parts([part for part in parts if part is not None])
            if taken is not None:
                yield taken
            if got < want:
                break
            r += got

    def _first_filled(self, first: int) -> int:
        a, b = self.first_at, self.first_at + len(self.cols)
        for r, row in enumerate(self.sheet.iter_rows()):
            if r >= first and any(v != "" for v in row[a:b]):
                return r
        return first

    def _remember(self, r_first: int, block: list) -> None:
        """Keep the top-left value of every merged range that starts in these rows."""
        r_last = r_first + len(block) - 1
        for r0, c0, _, _ in self.merges:
            if r_first <= r0 <= r_last and (r0, c0) not in self.topleft:
                row = block[r0 - r_first]
                place = self.place.get(c0)
                if place is not None and place < len(row):
                    self.topleft[(r0, c0)] = row[place]

    def _merged_columns(self, c0: int, c1: int) -> range:
        """Places (in self.cols) of the columns read that the merged range c0..c1 covers."""
        return range(bisect.bisect_left(self.cols, c0), bisect.bisect_right(self.cols, c1))

    def _header(self, row, r: int) -> list[str]:
        values = list(row[self.first_at : self.first_at + len(self.cols)])
        for r0, c0, r1, c1 in self.merges:
            if r0 <= r <= r1:
                for i in self._merged_columns(c0, c1):
                    values[i] = self.topleft.get((r0, c0), "")
        names, seen = [], set()
        for offset, value in enumerate(values):
            name = (cells.render(value) or "").strip() or f"\0{column_letters(self.cols[offset])}"
            base, n = name, 1
            while name in seen:
                n += 1
                name = f"{base}_{n}"
            seen.add(name)
            names.append(name)
        return names  # "\0F": a column without a header, renamed (or dropped) once its data is known

    def _take_block(self, out: Sheet, block: list, r_first: int):
        self._remember(r_first, block)
        r_last = r_first + len(block) - 1
        grid = np.empty((len(block), len(block[0])), dtype=object)
        grid[:] = block  # rows are lists of one length: numpy copies them in C
        grid = grid[:, self.first_at : self.first_at + len(self.cols)]
        grid[grid == ""] = None  # empty cells, for every column at once
        arrays = [grid[:, i].copy() for i in range(len(self.cols))]
        for r0, c0, r1, c1 in self.merges:
            if r1 < r_first or r0 > r_last:
                continue
            value = self.topleft.get((r0, c0), "")
            value = None if isinstance(value, str) and value == "" else value
            a, b = max(r0, r_first) - r_first, min(r1, r_last) - r_first + 1
            for i in self._merged_columns(c0, c1):
                arrays[i][a:b] = value
        converted = [cells.convert(values, cleared=True) for values in arrays]
        filled = ~np.logical_and.reduce([empty for _, _, empty in converted])
        if not filled.any():
            return None
        keep = pa.array(filled)
        index = np.arange(r_first, r_last + 1, dtype=np.int64)[filled]
        return index, {name: (kind, arr.filter(keep)) for name, (kind, arr, _) in zip(out.names, converted)}

    @staticmethod
    def _finish(out: Sheet, blocks: list[dict]) -> Sheet:
        """Columns without a header: dropped when empty everywhere, else named by their letter.

        Sets out.renames (header name -> final name, None when dropped) and out.kinds, and renames
        the columns of `blocks` in place.
        """
        names, renames = [], {}
        for name in out.names:
            renames[name] = name
            if not name.startswith("\0"):
                names.append(name)
                continue
            letter = name[1:]
            while letter in out.names or letter in names:
                letter += "_"
            if any(blk[name][0] != cells.NULL for blk in blocks):
                names.append(letter)
                renames[name] = letter
                for blk in blocks:
                    blk[letter] = blk.pop(name)
            else:
                renames[name] = None
                for blk in blocks:
                    blk.pop(name)
        out.names = names
        out.renames = renames
        out.kinds = {n: sheet_kind(blk[n][0] for blk in blocks) for n in names}
        if out.blocks:
            out.rows = sum(len(index) for index, _ in out.blocks)
        return out
