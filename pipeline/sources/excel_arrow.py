"""The excel source's fast path: a plain .xlsx/.xlsm sheet read by fastexcel straight into Arrow.

python-calamine hands over every cell as a Python object, and typing those objects cost as much as
reading them (bench/bench_excel.py). fastexcel runs the same calamine parser but builds Arrow
columns in Rust, so the source types whole columns with vectorised Arrow operations instead: a
number column is `integer` when every value is whole (and below 2**53), a date-time column is
`date` when every value is at midnight, and so on, exactly as pipeline/sources/excel_cells.py
types the cells one by one.

The fast path takes a sheet only when it gives the very rows the cell-by-cell reader
(excel_sheet.SheetReader) gives, and declines (returns None) whenever it cannot be sure:

- options: no `range`, no `skip_rows`, a header (header_row not 0);
- the sheet, as scanned before it is read (excel_extent.Extent): cells with plain references, no
  merged ranges;
- fastexcel, in its strict mode over the whole sheet, refuses a column that mixes types (mixed
  columns become text, written cell by cell, which only the slow path does), except for text it
  reads as empty ("n/a", "NA", "null"...) or as NaN ("nan"): a float column holding NaN is
  declined, and so is a sheet whose cells from the header on are not all given (below);
- a time-only or duration column, or an integer one (.xls/.ods, not read here);
- a header cell that is empty, repeated, padded, or a number or date whose text fastexcel and
  Python would write differently;
- fewer values than the scan counted cells written `<c ...>...</c>` from the header on (`above`:
  those before a given header row): a cell above the header (its row written out of order),
  cells calamine reads as empty, text fastexcel reads as empty.

Memory: fastexcel, like python-calamine, holds the whole sheet while it is read (calamine's cells,
then one Arrow batch, about 1 KB a row of 13 columns); chunks are cut from that batch. A sheet
larger than a window is read by excel_windows.py instead, a window at a time.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.sources import excel_cells as cells
from pipeline.sources.excel_extent import Extent
from pipeline.sources.excel_sheet import MAX_BLOCK_CELLS, Sheet

_MS_A_DAY = 86_400_000
_EXCEL_DAY_ONE = -2_208_988_800_000  # 1900-01-01 in ms since 1970: below it a cell is a time of day
_NUMERIC = re.compile(r"(?=.*\d)[\d\s.:+eE-]+")  # a number or date, written as text
_INTEGER = re.compile(r"-?(?:0|[1-9]\d{0,14})")
_SUFFIXED = re.compile(r"(.+)_\d+")
_UNNAMED = re.compile(r"__UNNAMED__\d+")


def eligible(options: dict, extent: Extent | None) -> bool:
    """Whether the options and the scanned sheet allow the fast path at all."""
    return (
        "range" not in options
        and not options.get("skip_rows")
        and options.get("header_row") != 0
        and extent is not None
        and extent.first is not None
        and not extent.irregular
        and not extent.merged
    )


def open_book(path):
    """A fastexcel reader of the workbook, or None (fastexcel missing, or the file unreadable)."""
    try:
        import fastexcel
    except ImportError:
        return None
    logging.getLogger("fastexcel").setLevel(logging.ERROR)  # it warns of every all-empty column
    try:
        return fastexcel.read_excel(str(path))
    except Exception:  # noqa: BLE001 - any failure: the slow path reads it and says what is wrong
        return None


def read_sheet(
    book, name: str, header_row: int | None, extent: Extent, chunk_rows: int, above: int | None = 0
) -> Sheet | None:
    """The sheet `name` as typed blocks, as SheetReader.read gives it; None to decline.

    `above`: the cells the sheet closes (`</c>`) before its header row, when header_row puts the
    header below the sheet's first cell (excel_sheet_xml.closed_above); None when unknown."""
    # fastexcel's header_row is a row of the sheet, 0 excepted: the first row of calamine's grid.
    # Without a header_row, the header is the scan's first cell's row. Either way the cells
    # fastexcel gives must be every cell the sheet writes from the header on: strict fastexcel
    # still reads "n/a", "NA", "null" and the like among numbers or dates as empty, and only this
    # count sees it.
    header = header_row - 1 if header_row else extent.first[0]
    if header == 0 and extent.first[0] != 0:
        return None
    if header == extent.first[0]:
        above = 0
    if above is None:
        return None
    batch = load(book, name, header)
    names = header_names(batch.schema.names) if batch is not None else None
    if names is None or not batch.num_rows:
        return None
    if given(batch) != extent.closed - above:
        return None  # a cell above the header, or cells calamine (or fastexcel) reads as empty
    typed = typed_columns(batch)
    if typed is None:
        return None
    out = Sheet(name, names=names, kinds={n: kind for n, (kind, _) in zip(names, typed)})
    out.renames = {n: n for n in names}
    out.blocks = [(index, block) for _, index, block in cut(names, typed, batch.num_rows, header + 1, chunk_rows)]
    if not out.blocks:
        return None  # no data row: the slow path gives the typed empty frame
    out.rows = sum(len(index) for index, _ in out.blocks)
    return out


def load(book, name: str, header: int) -> pa.RecordBatch | None:
    """fastexcel's batch of the sheet under the header at (0-based) row `header`, every column
    of one type (strict: a column that mixes types is refused); None when it refuses."""
    import fastexcel

    try:
        sheet = book.load_sheet(name, header_row=header, schema_sample_rows=None, dtype_coercion="strict")
        return sheet.to_arrow()  # (its schema, not available_columns(), which types the sheet again)
    except fastexcel.FastExcelError:
        return None  # a mixed column, most often


def given(batch: pa.RecordBatch) -> int:
    """The cells that hold something in the header and the rows of `batch`."""
    return batch.num_columns + sum(len(arr) - arr.null_count for arr in batch.columns)


def typed_columns(batch: pa.RecordBatch) -> list[tuple[str, pa.Array]] | None:
    """(kind, array) of each column of `batch`; None when one cannot be typed here."""
    typed = []
    for arr in batch.columns:
        got = _typed(arr)
        if got is None:
            return None
        typed.append(got)
    return typed


def cut(names: list[str], typed: list, count: int, first: int, chunk_rows: int, origin: int | None = None) -> list:
    """The typed columns of `count` rows as blocks cut as SheetReader cuts them: `step` rows of the
    sheet a block, counted from the sheet row `origin` (default `first`), the empty rows left out.
    `first` is the sheet's (0-based) row of the first of the `count` rows. Gives (block number,
    index, block) for each block that keeps a row; a window of a sheet (excel_windows) may give
    the two ends of blocks it shares with its neighbours."""
    filled = np.zeros(count, dtype=bool)
    for kind, arr in typed:
        if kind != cells.NULL:
            filled |= arr.is_valid().to_numpy(zero_copy_only=False)
    step = max(1, min(chunk_rows, MAX_BLOCK_CELLS // len(names)))
    origin = first if origin is None else origin
    blocks = []
    lo = 0
    while lo < count:
        number = (first + lo - origin) // step
        hi = min(count, origin + (number + 1) * step - first)
        keep = filled[lo:hi]
        if keep.any():
            mask = pa.array(keep)
            index = np.flatnonzero(keep).astype(np.int64) + (first + lo)
            block = {}
            for n, (kind, arr) in zip(names, typed):
                part = arr.slice(lo, len(keep))
                block[n] = (kind, pa.nulls(len(index)) if kind == cells.NULL else part.filter(mask))
            blocks.append((number, index, block))
        lo = hi
    return blocks


def header_names(given: list[str]) -> list[str] | None:
    """The header's names, if SheetReader would give the same ones; else None."""
    names = []
    for name in given:
        if _UNNAMED.fullmatch(name) or not name or name != name.strip():
            return None  # an empty header cell (fastexcel names it), or padding SheetReader strips
        if _NUMERIC.fullmatch(name) and not _INTEGER.fullmatch(name):
            return None  # a fraction, an exponent or a date, which Python may write otherwise
        names.append(name)
    given = set(names)
    if len(given) < len(names):
        return None
    for name in names:
        m = _SUFFIXED.fullmatch(name)
        if m and m.group(1) in given:
            return None  # fastexcel's "a_1" for a repeated "a" (SheetReader writes "a_2")
    return names


def _typed(arr: pa.Array) -> tuple[str, pa.Array] | None:
    """(kind, array) of one column, as excel_cells would type its cells; None to decline."""
    kind = arr.type
    if arr.null_count == len(arr):
        return cells.NULL, arr
    if pa.types.is_float64(kind):
        arr = arr.cast(pa.float64())
        if pc.any(pc.is_nan(arr)).as_py():
            return None  # no cell holds NaN: strict fastexcel reads the text "nan" as one
        return (cells.INT if cells.whole(arr) else cells.FLOAT), arr
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        arr = arr.cast(pa.string())
        empty = pc.equal(arr, "")
        if pc.any(empty).as_py():
            arr = pc.if_else(empty, pa.scalar(None, pa.string()), arr)
            if arr.null_count == len(arr):
                return cells.NULL, arr
        return cells.TEXT, arr
    if pa.types.is_boolean(kind):
        return cells.BOOL, arr.cast(pa.bool_())
    if pa.types.is_date(kind):
        return cells.DATE, arr.cast(pa.date32())
    if pa.types.is_timestamp(kind):
        stamps = arr.cast(pa.timestamp("ms"))
        millis = pc.drop_null(stamps).cast(pa.int64()).to_numpy()
        if millis.min() < _EXCEL_DAY_ONE:
            return None  # a time of day, which is text
        stamps = stamps.cast(pa.timestamp("us"))
        if (millis % _MS_A_DAY == 0).all():  # python-calamine gives a date for a cell at midnight
            return cells.DATE, stamps.cast(pa.date32())
        return cells.DATETIME, stamps
    return None  # int (.xls/.ods), duration, or a type added later
