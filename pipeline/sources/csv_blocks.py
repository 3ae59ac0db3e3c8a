"""The csv source's fast reader: pyarrow parsing blocks of the file on every core, lines exact.

Why not pyarrow's own readers: its streaming reader parses on one core (about 1.4M rows/s here),
and its multi-threaded read_csv reads a whole file into memory and cannot number bad records
(`InvalidRow.number` is None with threads). So this reader cuts the data (csv_stream.DataStream)
into blocks at line breaks, parses each block whole with a single-threaded `read_csv` in a thread
pool (pyarrow releases the GIL, so blocks parse at once on all cores), and yields them in order.
Each block numbers its own records, bad ones included, so every line is exact with no fallback.

A cut at a line break is a record boundary unless the break is inside a quoted field (or follows
an escape). To know, each block is parsed followed by a sentinel record (csv_stream.SENTINEL): if
the block's last record is the sentinel, the cut was a boundary. If not, the block's last record
is the one the cut fell into: it is held back, and the next block starts on its line (its byte
offset found from the line breaks); the blocks parsed after it, on a wrong start, are cut and
parsed again. Once that has happened, cuts are first moved before any quote left open (quote
parity), so a file full of multi-line fields is cut again once, not at every block. A record
that fills its whole block grows the block, 4 times each time, up to `max_record` bytes; past it
RecordTooLong names its line. At the end of the data (which DataStream ends with the real
sentinel), a last record that is not the sentinel opened a quote that never closed.

Lines: record k of a block starts on `first + (k - 1) + the line breaks inside records 1..k-1`
(csv_readers counts those in good rows' values and bad rows' text), counted on the worker thread
from the block's first line; the sentinel's line is where the next block starts.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipeline.sources.csv_dialect import Dialect, unterminated
from pipeline.sources.csv_readers import (
    Part,
    RecordTooLong,
    bad_rows,
    breaks_in,
    drop_empty_rows,
    row_breaks,
    string_csv_options,
)
from pipeline.sources.csv_stream import SENTINEL, UTF8_BOM

# Parsing threads: one a core (a few at most: the thread that reads and cuts the blocks and
# gathers the chunks must keep up with them). Blocks are csv_readers.PARSE_BLOCK bytes (csv.py passes it).
WORKERS = max(1, min(4, os.cpu_count() or 1))
# Blocks in flight: the threads parse on while the rows of the chunk before are transformed and
# delivered (8 blocks of 1 MiB, about 50,000 rows of 150 bytes, one chunk).
AHEAD = 8


@dataclass
class _Block:
    raw: memoryview  # the block's bytes, starting on a record, ending after a line break
    final: bool  # the last block: it ends with the real sentinel record
    want: int  # the block size it was cut to (grown for a long record)


def _last_break_end(buf: bytes, start: int, end: int) -> int:
    """The offset just past the last line break ending in buf[start:end], or -1. A \\r is taken
    only when the byte after it is known (a \\r\\n is never split between two blocks)."""
    nl = buf.rfind(b"\n", start, end)
    cr = buf.rfind(b"\r", max(start, nl + 1), min(end, len(buf) - 1))
    if cr >= 0:
        return cr + 2 if buf[cr + 1] == 10 else cr + 1
    return nl + 1 if nl >= 0 else -1


def _break_offset(raw: bytes, count: int) -> int:
    """The offset just past the `count`-th line break of `raw` (0 when count is 0)."""
    if count <= 0:
        return 0
    arr = np.frombuffer(raw, np.uint8)
    lf = arr == 10
    cr = arr == 13
    cr[:-1] &= ~lf[1:]  # a \r followed by \n ends its line at the \n
    return int(np.flatnonzero(lf | cr)[count - 1]) + 1


_TOO_LONG = _Block(b"", True, 0)  # in the flight queue: the record after the blocks before it is too long


def _outside(buf: bytes, cut: int, quote: int) -> int:
    """The last line break up to `cut` that an even number of quotes precede (one outside quoted
    fields when quotes open and close fields, as they do in most files), or `cut` when none is:
    the sentinel checks the cut anyway, this only makes a wrong one rare."""
    at = np.flatnonzero(np.frombuffer(buf, np.uint8, count=cut) == quote)
    end = cut
    while end > 0:
        before = int(np.searchsorted(at, end))
        if before % 2 == 0:
            return end
        end = _last_break_end(buf, 0, int(at[before - 1]))  # before the quote left open
    return cut


class _Cutter:
    """The data, cut into blocks that end after a line break."""

    def __init__(self, stream, block_size: int, max_record: int, dialect: Dialect):
        self.stream = stream
        self.block_size, self.max_record = block_size, max_record
        self.buf = b""
        self.eof = False
        self.want = block_size
        # Once a cut has fallen inside a quoted field, cuts look at the quotes first (see _outside)
        quote = dialect.quote.encode() if dialect.quote and not dialect.escape else b""
        self.quote = quote[0] if len(quote) == 1 else None
        self.count_quotes = False

    def _fill(self, size: int) -> None:
        """Read whole pieces of the stream (no copy) until `size` bytes are in, or the end."""
        pieces = [self.buf]
        have = len(self.buf)
        while have < size and not self.eof:
            piece = self.stream.read(-1)
            if not piece:
                self.eof = True
                break
            pieces.append(piece)
            have += len(piece)
        if len(pieces) > 1:
            self.buf = b"".join(pieces)

    def push_back(self, data: bytes, want: int) -> None:
        """Put `data` back in front of what is left to cut; cut the next block to `want` bytes
        (0: the usual block size)."""
        self.buf, self.want = b"".join((data, self.buf)), want or self.block_size

    def next(self) -> _Block | None:
        """The next block: the complete lines of the next `want` to 2 * `want` bytes (more for a
        long line); None at the end.
        RecordTooLong when a record runs past max_record bytes without a line break."""
        want = self.want
        self._fill(want + 1)
        if not self.buf:
            return None
        # up to 2 * want: a whole read in steady state (no copy), bounded after a push_back
        cut, final = _last_break_end(self.buf, 0, min(len(self.buf), 2 * want)), False
        while cut <= 0:  # no line break yet: read on, up to max_record
            if len(self.buf) > self.max_record:
                raise RecordTooLong(0, 0)
            if self.eof:
                cut = len(self.buf)
                break
            self._fill(min(2 * len(self.buf), self.max_record + 1))  # doubling: linear in the record
            cut = _last_break_end(self.buf, 0, len(self.buf))
        if self.count_quotes and self.quote is not None and cut > 0 and want == self.block_size:
            cut = _outside(self.buf, cut, self.quote)  # not for a block grown: it must grow
        if cut == len(self.buf):  # the data may end here: then this is the last block
            self._fill(cut + 1)
            final = self.eof and cut == len(self.buf)
        # the block is a view of the buffer (no copy); what follows it is short, the end of a line
        raw, self.buf = memoryview(self.buf)[:cut], self.buf[cut:]
        block = _Block(raw, final, want)
        self.want = self.block_size
        return block


def _parse(data: bytes, names: list[str], dialect: Dialect) -> tuple[pa.Table, list[tuple[int, str]]]:
    """One block parsed whole on this thread: its good rows, and its bad records' (ordinal, text)."""
    bad: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        bad.append((row.number, row.text))
        return "skip"

    parse, convert = string_csv_options(names, dialect, on_invalid)
    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(use_threads=False, block_size=len(data) + 1, column_names=names),
        parse_options=parse,
        convert_options=convert,
    )
    return table, bad


def _record_lines(table: pa.Table, bad: list[tuple[int, str]], first: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The line each good row and each bad record starts on (records numbered from 1 on `first`),
    and the line the record after them starts on."""
    n = table.num_rows
    good_breaks = None
    if n:
        parts = [row_breaks(b) for b in table.to_batches()]
        if any(p is not None for p in parts):
            good_breaks = np.concatenate(
                [p if p is not None else np.zeros(b.num_rows, np.int64) for p, b in zip(parts, table.to_batches())]
            )
    if not bad and good_breaks is None:  # one line a record: lines by offset
        return first + np.arange(n, dtype=np.int64), np.empty(0, np.int64), first + n
    bad_ord = np.array([b[0] for b in bad], dtype=np.int64)
    records = n + len(bad)
    is_bad = np.zeros(records + 1, bool)
    is_bad[bad_ord] = True
    good_ord = np.flatnonzero(~is_bad[1:]) + 1
    breaks = np.zeros(records + 1, np.int64)
    if good_breaks is not None:
        breaks[good_ord] = good_breaks
    breaks[bad_ord] = [breaks_in(b[1]) for b in bad]
    before = np.cumsum(breaks) - breaks  # breaks inside the records before each one
    line = first - 1 + np.arange(records + 1, dtype=np.int64) + before
    return line[good_ord], line[bad_ord], int(first + records + breaks.sum())


def read_blocks(
    stream,
    ncols: int,
    first_line: int,
    dialect: Dialect,
    shown: str,
    block_size: int,
    max_record: int,
    workers: int | None = None,
) -> Iterator[Part]:
    """Parts of the data in `stream` (a csv_stream.DataStream), parsed a block at a time on
    `workers` threads, in order (see the module docstring)."""
    workers = workers or WORKERS
    names = [f"f{i}" for i in range(ncols)]
    trailer = dialect.trailer(ncols)
    cutter = _Cutter(stream, max(1, block_size), max_record, dialect)
    line = first_line  # the line the next block to place starts on
    pool = ThreadPoolExecutor(workers, thread_name_prefix="route-csv")
    flight: deque[tuple[_Block, Future]] = deque()

    def submit() -> bool:
        try:
            block = cutter.next()
        except RecordTooLong:  # raised in turn, when the blocks before it are placed
            flight.append((_TOO_LONG, None))
            return False
        if block is None:
            return False
        flight.append((block, pool.submit(_parse_block, block, trailer, names, dialect)))
        return True

    try:
        more = True
        while True:
            while more and len(flight) < max(workers + 1, AHEAD):
                more = submit() and not flight[-1][0].final
            if not flight:
                return
            block, future = flight.popleft()
            if block is _TOO_LONG:
                raise RecordTooLong(0, line)
            parsed: _Parsed = future.result()
            if parsed.part is not None:
                parsed.part.lines += line
                for row in parsed.part.bad:
                    row.line += line
                yield parsed.part
            if parsed.ends:
                if block.final:
                    return
                line += parsed.next  # the sentinel's line: the one after the block
                continue
            # The last record holds the sentinel: the data ended inside it (a quote never closed),
            # or the cut did. The records before it were kept; cut again from its start.
            last = line + parsed.next
            if block.final:
                raise unterminated(shown, last)
            offset = _break_offset(block.raw, parsed.next)
            if offset == 0 and block.want >= max_record:
                raise RecordTooLong(0, last)
            later = b"".join(b.raw for b, _ in flight)
            for _, f in flight:
                if f is not None:
                    f.cancel()
            flight.clear()
            cutter.push_back(
                b"".join((block.raw[offset:], later)), min(4 * block.want, max_record) if offset == 0 else 0
            )
            line, more = last, True
            cutter.count_quotes = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Parsed:
    """A block parsed, its lines counted from its first line (0): its rows (before the last
    record when that is not the sentinel), whether it ends with the sentinel, and the line of
    its last record (the sentinel's, or the one the cut fell into)."""

    part: Part | None
    ends: bool
    next: int


def _parse_block(block: _Block, trailer: bytes, names: list[str], dialect: Dialect) -> _Parsed:
    """Parse and number one block (on a worker thread: pyarrow and numpy release the GIL)."""
    # pyarrow skips a byte order mark that starts its input; at a block's start it is data:
    # behind a blank line (no row) it stays data.
    lead = block.raw[:3] == UTF8_BOM
    data = b"".join((b"\n" if lead else b"", block.raw, b"" if block.final else trailer))
    table, bad = _parse(data, names, dialect)
    n = table.num_rows
    last_good = n > 0 and (not bad or bad[-1][0] < n + len(bad))  # the last record is good
    ends = last_good and table.column(0)[n - 1].as_py() == SENTINEL
    # The last record, the sentinel or the one that swallowed it, is no row: number the others
    # (not counting the line breaks of a record that may hold the rest of the block).
    table, bad = (table.slice(0, n - 1), bad) if last_good else (table, bad[:-1])
    good_lines, bad_lines, last = _record_lines(table, bad, -int(lead))
    table, good_lines = drop_empty_rows(table, good_lines)
    rows = bad_rows(bad_lines, [b[1] for b in bad], dialect, len(names))
    part = Part(table, good_lines, rows) if table.num_rows or rows else None
    return _Parsed(part, ends, last)
