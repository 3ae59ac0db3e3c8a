"""The record readers of the csv source, the parts they yield, and how records are numbered by line.

Each takes the UTF-8 data stream that follows the header (see csv_stream) and yields `Part`s: the
good rows as Arrow string columns with the physical line each record starts on, and the rows with
the wrong number of fields.

- csv_blocks.read_blocks (the csv source's reader): pyarrow on blocks of the file, on every core;
  it numbers records with `row_breaks`, `breaks_in` and `bad_rows` from here.
- `read_fast`: pyarrow's streaming reader, single-threaded so that `invalid_row_handler` numbers
  each bad record; the source read with it before read_blocks, and bench/bench_csv_source.py
  still measures it as the baseline. pyarrow's numbers are record ordinals, not lines, so lines
  are computed: record k starts at `first_line + (k - 1) + the line breaks inside records
  1..k-1`. Line breaks inside a good record are counted in its values (a column's data buffer is
  scanned for \\r and \\n first, so a batch without any costs one min() per column); inside a bad
  record, in its text.
- `read_careful`: Python's csv module, record by record: slower (about 0.15M rows/s) but it sees
  where each record starts, so it also skips comment lines there (and only there: a line inside a
  quoted field that starts with the comment character is data).

All treat a blank line, a line of whitespace where several fields are expected, and a row whose
cells are all empty as no row; all stop on an unterminated quote (see csv_stream.SENTINEL).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.basics.errors import RunFailed
from pipeline.sources.csv_dialect import Dialect, unterminated
from pipeline.sources.csv_stream import BLOCK, SENTINEL

CAREFUL_ROWS = 10_000
# The bytes of a block (csv_blocks) or of a parse block (read_fast): 1 MiB parses about as fast
# as 4 MiB per core and keeps the blocks in flight and peak memory small; a longer record grows
# the block, up to max_field_mib. Tests shrink it to cut blocks everywhere.
PARSE_BLOCK = 1 << 20


@dataclass
class BadRow:
    line: int
    fields: list[str]
    text: str


@dataclass
class Part:
    table: pa.Table
    lines: np.ndarray
    bad: list[BadRow] = field(default_factory=list)


def breaks_in(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _is_blank(fields: list[str], ncols: int) -> bool:
    return not fields or (ncols > 1 and len(fields) == 1 and not fields[0].strip())


def row_breaks(batch: pa.RecordBatch) -> np.ndarray | None:
    """Line breaks (\n, \r\n or \r) inside each row's values, or None when there are none (the
    usual case: one min() over each column's bytes says so)."""
    total = None
    for col in batch.columns:
        bufs = col.buffers()
        if bufs[2] is None or len(col) == 0:
            continue
        offsets = np.frombuffer(bufs[1], np.int32, count=len(col) + 1, offset=col.offset * 4)
        data = np.frombuffer(bufs[2], np.uint8)[offsets[0] : offsets[-1]]
        if not data.size or data.min() > 13:
            continue
        at = np.flatnonzero((data == 10) | (data == 13))
        if not at.size:
            continue
        starts = offsets - offsets[0]
        row = np.searchsorted(starts, at, side="right") - 1
        # A \r followed by \n in the same value is one break.
        nxt = np.minimum(at + 1, data.size - 1)
        crlf = (data[at] == 13) & (data[nxt] == 10) & (at + 1 < starts[row + 1])
        count = np.bincount(row[~crlf], minlength=len(col))
        total = count if total is None else total + count
    return total


def drop_empty_rows(table: pa.Table, lines: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """Rows whose every cell is null carry nothing (blank lines, `,,,` padding): drop them."""
    if table.num_columns == 0 or table.num_rows == 0 or table.column(0).null_count == 0:
        return table, lines
    keep = pc.is_valid(table.column(0))
    for col in table.columns[1:]:
        keep = pc.or_(keep, pc.is_valid(col))
    if pc.all(keep).as_py():
        return table, lines
    return table.filter(keep), lines[keep.to_numpy(zero_copy_only=False)]


def bad_rows(lines, texts, dialect: Dialect, ncols: int) -> list[BadRow]:
    rows = []
    for line, text in zip(lines, texts):
        fields = dialect.fields(text)
        if not _is_blank(fields, ncols):
            rows.append(BadRow(int(line), fields, text))
    return rows


class RecordTooLong(Exception):
    """pyarrow met a record longer than its parse block. `done` records were read (and their parts
    yielded) before it; `line` is where it starts. The caller may read again with a larger block,
    skipping the `done` records it already has."""

    def __init__(self, done: int, line: int):
        super().__init__(f"record {done + 1} on line {line} is longer than the parse block")
        self.done, self.line = done, line


def _straddles(exc: Exception) -> bool:
    return isinstance(exc, pa.ArrowInvalid) and "straddl" in str(exc)


def read_fast(
    stream, ncols: int, first_line: int, dialect: Dialect, shown: str, block_size: int = PARSE_BLOCK, skip: int = 0
) -> Iterator[Part]:
    """Parts from pyarrow's streaming CSV reader (see the module docstring for the line numbers).

    A record must fit in one parse block of `block_size` bytes: a longer one raises RecordTooLong.
    The first `skip` records are read but not yielded (they were, by an attempt with a smaller block)."""
    names = [f"f{i}" for i in range(ncols)]
    bad: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        bad.append((row.number, row.text))
        return "skip"

    at = [0, 0]  # records (good and bad) numbered so far, line breaks inside them
    first_line -= 1  # for the blank line _Lead puts first
    try:
        reader = _open_fast(_Lead(stream), names, dialect, block_size, on_invalid)
        yield from _parts(reader, bad, ncols, first_line, dialect, shown, skip, at)
    except pa.ArrowInvalid as exc:
        if not _straddles(exc):
            raise
        done, breaks = at
        # The long record follows the last one placed, and any bad ones still waiting.
        waiting = [b for b in bad if b[0] > done]
        line = first_line + breaks + done + sum(1 + breaks_in(t) for _, t in waiting)
        raise RecordTooLong(done, line) from None  # the waiting bad ones were not yielded yet


class _Lead(io.RawIOBase):
    """`stream` after a blank line. pyarrow skips a UTF-8 byte order mark at the start of what it
    reads, but here that start is the first record, and a U+FEFF there is data (Python's csv module
    keeps it): behind a blank line, which is no row, it stays data."""

    def __init__(self, stream):
        self._stream, self._first = stream, True

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._first or size == 0:
            return self._stream.read(size)
        self._first = False
        return b"\n" + (self._stream.read(size - 1) if size != 1 else b"")


def string_csv_options(names: list[str], dialect: Dialect, on_invalid) -> tuple:
    """pyarrow's parse and convert options for reading every column as text, as both readers do."""
    parse = pacsv.ParseOptions(
        delimiter=dialect.delimiter,
        quote_char=dialect.quote or False,
        double_quote=True,
        escape_char=dialect.escape or False,
        newlines_in_values=True,
        ignore_empty_lines=False,
        invalid_row_handler=on_invalid,
    )
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        null_values=["", *dialect.null_values],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        check_utf8=False,
    )
    return parse, convert


def _open_fast(stream, names: list[str], dialect: Dialect, block_size: int, on_invalid):
    parse, convert = string_csv_options(names, dialect, on_invalid)
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=block_size, column_names=names),
        parse_options=parse,
        convert_options=convert,
    )


def _parts(
    reader, bad: list, ncols: int, first_line: int, dialect: Dialect, shown: str, skip: int, at: list[int]
) -> Iterator[Part]:
    """The batches of `reader` as Parts with their lines; `at` is [records done, breaks in them],
    kept up to date for RecordTooLong."""
    done, breaks = at
    last_line = first_line
    ended = False
    for batch in reader:
        n = batch.num_rows
        if n == 0:
            continue
        pending = np.array([b[0] for b in bad], dtype=np.int64)
        k = np.arange(n, dtype=np.int64)
        # The k-th good record's ordinal: skip the bad ordinals that come before it.
        gaps = pending - (done + 1) - np.arange(len(pending))
        ordinals = done + 1 + k + np.searchsorted(gaps, k, side="right")
        m = int(np.searchsorted(pending, ordinals[-1]))
        good_breaks = row_breaks(batch)
        bad_texts = [b[1] for b in bad[:m]]
        if m == 0 and good_breaks is None:
            lines = first_line - 1 + breaks + ordinals
            bad_lines = np.empty(0, np.int64)
            breaks_here = 0
        else:
            if good_breaks is None:
                good_breaks = np.zeros(n, np.int64)
            all_ord = np.concatenate([ordinals, pending[:m]])
            all_breaks = np.concatenate([good_breaks, [breaks_in(t) for t in bad_texts]]).astype(np.int64)
            order = np.argsort(all_ord, kind="stable")
            before = np.cumsum(all_breaks[order]) - all_breaks[order]
            all_lines = np.empty_like(all_ord)
            all_lines[order] = first_line - 1 + breaks + all_ord[order] + before
            lines, bad_lines = all_lines[:n], all_lines[n:]
            breaks_here = int(all_breaks.sum())
        done, breaks = int(ordinals[-1]), breaks + breaks_here
        at[:] = done, breaks
        del bad[:m]  # placed: forget them, so memory does not grow with the file
        last_line = int(lines[-1])
        table = pa.Table.from_batches([batch])
        if batch.column(0)[n - 1].as_py() == SENTINEL:
            ended = True
            table, lines, ordinals = table.slice(0, n - 1), lines[: n - 1], ordinals[: n - 1]
        if skip >= done:  # all read before: only the counting above was needed
            continue
        if skip:
            keep = ordinals > skip
            table, lines = table.filter(pa.array(keep)), lines[keep]
            bad_lines, bad_texts = (
                bad_lines[pending[:m] > skip],
                [t for o, t in zip(pending[:m], bad_texts) if o > skip],
            )
        table, lines = drop_empty_rows(table, lines)
        yield Part(table, lines, bad_rows(bad_lines, bad_texts, dialect, ncols))
    if not ended:
        # The sentinel was read into an open quoted field: the last record (good or bad) holds it.
        if bad:
            own = np.array([breaks_in(b[1]) for b in bad], dtype=np.int64)
            last_line = int(first_line - 1 + breaks + bad[-1][0] + own[:-1].sum())
        raise unterminated(shown, last_line)


def _columns(rows: list[list[str]], names: list[str], nulls: pa.Array) -> pa.Table:
    cols = list(zip(*rows)) if rows else [() for _ in names]
    arrays = []
    for values in cols:
        arr = pa.array(values, pa.string())
        arrays.append(pc.if_else(pc.is_in(arr, value_set=nulls), pa.scalar(None, pa.string()), arr))
    return pa.Table.from_arrays(arrays, names=names)


def read_careful(
    stream, ncols: int, first_line: int, dialect: Dialect, shown: str, max_record: int = 1 << 62
) -> Iterator[Part]:
    """Parts from Python's csv module, one record at a time (exact, and comment-aware).

    A record longer than `max_record` characters raises RecordTooLong: lines are read at most
    that long, so a file that is one endless line or quote never sits whole in memory."""
    if csv.field_size_limit() < sys.maxsize >> 1:
        csv.field_size_limit(sys.maxsize >> 1)  # pyarrow has no field size limit either
    names = [f"f{i}" for i in range(ncols)]
    nulls = pa.array(["", *dialect.null_values], pa.string())
    text = io.TextIOWrapper(io.BufferedReader(stream, BLOCK), encoding="utf-8", newline="")
    comment = dialect.comment
    at = {"consumed": 0, "start": 0, "raw": [], "fresh": True, "size": 0, "records": 0}

    def too_long() -> RecordTooLong:
        return RecordTooLong(at["records"], first_line - 1 + (at["start"] if not at["fresh"] else at["consumed"]))

    def physical_lines():
        while True:
            line = text.readline(max_record + 1)
            if not line:
                return
            at["consumed"] += 1
            if len(line) > max_record:
                raise too_long()
            if at["fresh"]:
                if comment and line.startswith(comment):
                    continue
                at["start"], at["raw"], at["fresh"], at["size"] = at["consumed"], [], False, 0
                at["records"] += 1
            at["size"] += len(line)
            if at["size"] > max_record:
                raise too_long()
            at["raw"].append(line)
            yield line

    reader = csv.reader(physical_lines(), **dialect.python())
    goods: list[list[str]] = []
    good_lines: list[int] = []
    bads: list[BadRow] = []
    ended = False
    last_line = first_line
    while True:
        at["fresh"] = True
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise RunFailed(f"{shown}: line {first_line - 1 + at['consumed']}: {exc}") from None
        line = last_line = first_line - 1 + at["start"]
        if len(fields) == ncols:
            if fields == [SENTINEL] * ncols:
                ended = True
                break
            goods.append(fields)
            good_lines.append(line)
        elif not _is_blank(fields, ncols):
            raw = "".join(at["raw"])
            bads.append(BadRow(line, fields, raw[: len(raw.rstrip("\r\n"))]))
        if len(goods) >= CAREFUL_ROWS or len(bads) >= CAREFUL_ROWS:
            table, lines = drop_empty_rows(_columns(goods, names, nulls), np.array(good_lines, np.int64))
            yield Part(table, lines, bads)
            goods, good_lines, bads = [], [], []
    if not ended:
        raise unterminated(shown, last_line)
    if goods or bads:
        table, lines = drop_empty_rows(_columns(goods, names, nulls), np.array(good_lines, np.int64))
        yield Part(table, lines, bads)
