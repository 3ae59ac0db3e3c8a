"""The csv source: CSV, TSV and other delimited text files, one file or a glob, read as text.

Every value is text (TEXT, Arrow-backed), never type-guessed: `06103` stays `06103`, `1e5` and
`NA` stay text unless listed in `null_values`. Empty cells are null, whitespace is kept (trimming
is the `trim` rule's job). Each chunk's index is the physical line (1-based, as an editor shows it;
\n, \r\n and \r end a line) on which the record starts, counting the header, skipped, blank and
comment lines and the line breaks inside quoted fields (csv_readers says how it is computed), and
`chunk.attrs["source"]` is the file as the route names it (relative to the route file when the
path is). A chunk never spans two files.

A record with too many or too few fields is rejected with its line ("line 17 has 5 fields, the
header has 4") and reading goes on. A blank line, or a row whose every cell is empty, is no row.
A quote that is never closed, or a byte the encoding cannot decode, stops the run with the file,
line (and byte offset) to look at. A file with a header and no rows yields one empty chunk with
the header's columns; an empty file (no header line) stops the run naming it, or with `header:
false` yields nothing (with a warning). A record longer than pyarrow's parse block is read again
with a larger block, up to max_field_mib (see _parts). Empty header names become
`column_<n>` and repeated ones get `_2`, `_3`, each with a warning; without a header the columns
are `names`, or `column_1`, `column_2`, ... The files a glob matches are read in sorted order and
must have the same columns (in any order: later files are put in the first file's order).
`header_row` is the header's line number; `skip_rows` counts lines skipped before the header
(or before the data with `header: false`); without either, blank and comment lines above the
header are skipped.

Reader: pyarrow, on blocks of the file cut at line breaks and parsed on every core
(csv_blocks; see bench/bench_csv_source.py for its speed against the streaming reader it
replaced and polars), or Python's csv module (exact as well, about 0.15M rows/s) when comment
lines follow the header (a quick scan looks for them when `comment` is set) or with `engine:
python`. Both are tested against the same files (tests/sources/test_csv_blocks.py cuts blocks
everywhere).
"""

# Longer than 400 lines because the CSV source drives two readers (pyarrow's and Python's careful
# one) behind one set of options, line numbers and rejects; the readers themselves live in
# csv_readers.py and csv_stream.py.

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import source
from pipeline.sources.base import Source
from pipeline.sources.csv_dialect import Dialect
from pipeline.sources.csv_head import Head, read_head, unique_names
from pipeline.sources.csv_stream import LineReader, Utf8Stream, any_line_starts_with
from pipeline.sources.pick import FILE_OPTIONS, FileSet, column_difference
from pipeline.sources.remote import Found

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from pipeline.sources.csv_readers import BadRow, Part, RecordTooLong

# The readers (csv_readers: Arrow, numpy) and pandas are imported where rows are read, in _parts,
# _chunked, _frame and _reject: planning a route reads only the header and loads none of them.

_CHAR = {"type": "string", "minLength": 1, "maxLength": 1}
# A record must fit in one of pyarrow's parse blocks, which start at 1 MiB and grow 4 times on
# each record too long for them (reading the file again up to it), up to this: enough for a
# field holding a document or an image in base64, and a bound on memory when a quote is never
# closed and the rest of the file would be one field. pyarrow's block size is a 32-bit integer.
DEFAULT_MAX_FIELD_MIB = 64
MAX_FIELD_MIB_CAP = 1024

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {
            "type": "string",
            "minLength": 1,
            "description": "a file, or a glob (data/*.csv); relative to the route file; or a URL: "
            "https://, sftp://, s3://, ftp://, zip://member::URL (see docs/files.md)",
        },
        **FILE_OPTIONS,
        "delimiter": {
            "type": "string",
            "minLength": 1,
            "description": "one character, or tab, comma, semicolon, pipe, space, \\t; "
            "default comma, tab for .tsv and .tab files",
        },
        "quote": {
            "oneOf": [_CHAR, {"const": False}],
            "default": '"',
            "description": 'the quote character (default "), or false for none',
        },
        "escape": {**_CHAR, "description": "a character that makes the next one literal"},
        "encoding": {
            "type": "string",
            "minLength": 1,
            "default": "utf-8",
            "description": "utf-8 (default), cp1252, latin-1, utf-16, ... (Python names)",
        },
        "header": {"type": "boolean", "default": True, "description": "false: the file has no header; give names"},
        "header_row": {"type": "integer", "minimum": 1, "description": "the line the header is on (1-based)"},
        "names": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1},
            "description": "column names for a file without a header",
        },
        "skip_rows": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "lines to skip before the header (or the data)",
        },
        "comment": {**_CHAR, "description": "lines starting with this character are skipped"},
        "null_values": {
            "type": "array",
            "items": {"type": "string"},
            "description": "values read as null besides the empty cell",
        },
        "file_column": {"type": "string", "minLength": 1, "description": "add a column holding each row's file"},
        "engine": {
            "enum": ["auto", "pyarrow", "python"],
            "default": "auto",
            "description": "auto: pyarrow, or Python's csv module when comment is set",
        },
        "max_field_mib": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_FIELD_MIB_CAP,
            "default": DEFAULT_MAX_FIELD_MIB,
            "description": f"the longest field (strictly, record) sure to be read, in MiB (default "
            f"{DEFAULT_MAX_FIELD_MIB}, at most {MAX_FIELD_MIB_CAP}); one too long "
            f"stops the run, naming its line",
        },
    },
}

_DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def _char(options: dict, key: str, default: str | None) -> str | None:
    value = options.get(key, default)
    if value is False or value is None:
        return None
    if not isinstance(value, str) or len(value) != 1:
        raise OptionError(f"{key} must be one character, not {value!r}", path=(key,))
    return value


def _dialect(options: dict) -> Dialect:
    path = options["path"]
    raw = options.get("delimiter")
    if raw is None:
        delimiter = "\t" if Path(path).suffix.lower() in (".tsv", ".tab") else ","
    else:
        delimiter = _DELIMITERS.get(raw.lower(), raw) if isinstance(raw, str) else raw
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise OptionError(
                f"delimiter must be one character (or tab, comma, semicolon, pipe, space), not {raw!r}",
                path=("delimiter",),
            )
    quote, escape, comment = (
        _char(options, "quote", '"'),
        _char(options, "escape", None),
        _char(options, "comment", None),
    )
    chars = {"delimiter": delimiter, "quote": quote, "escape": escape, "comment": comment}
    for key, ch in chars.items():
        if ch in ("\r", "\n"):
            raise OptionError(f"{key} cannot be a line break", path=(key,))
        for other, och in chars.items():
            if other < key and ch is not None and ch == och:
                raise OptionError(f"{key} and {other} are both {ch!r}; they must differ", path=(key,))
    return Dialect(delimiter, quote, escape, comment, tuple(options.get("null_values") or ()))


def check_options(options: dict, ctx) -> dict:
    """Plan-time check (`route validate`): the same checks as the constructor, no file opened."""
    CsvSource(options, ctx)
    return options


@source(OPTIONS_SCHEMA, bind=check_options)
class CsvSource(Source):
    """Read CSV, TSV and other delimited text files: one file, or every file a glob matches.

    Every value is read as text, exactly as written: `06103` stays `06103`, `1e5` and `NA` stay
    text (list `NA` in null_values to make it null). Empty cells are null; spaces are kept (use
    the trim rule). Quoted fields may hold delimiters, quotes and line breaks. A row with too many
    or too few fields goes to the rejects file with its line number, and reading goes on. Blank
    lines and rows whose every cell is empty are skipped. Empty header names become column_<n>,
    repeated ones get _2, _3 (with a warning). The files of a glob are read in sorted order and
    must have the same columns.

    ```yaml
    source:
      csv:
        path: data/sales-*.csv      # relative to the route file
        delimiter: ";"              # default: comma (tab for .tsv and .tab files)
        encoding: cp1252            # default utf-8; a byte order mark is skipped
        null_values: ["NA", "N/A"]
        file_column: source_file    # a column holding each row's file
    # or a remote glob, its newest file, moved away once delivered (docs/files.md):
    #   path: sftp://files.example.org/out/sales-*.csv
    #   auth: {username: etl, password: "${SFTP_PASSWORD}"}
    #   pick: newest
    #   after_read: {move_to: done}
    ```
    """

    plan_columns = "local"  # columns() answers from the header of the first file

    def __init__(self, options: dict, ctx):
        self.options, self.ctx = options, ctx
        self.dialect = _dialect(options)
        self.encoding = options.get("encoding", "utf-8")
        try:
            info = codecs.lookup(self.encoding)
        except LookupError:
            raise OptionError(
                f"unknown encoding {self.encoding!r}; use a Python codec name such as utf-8, cp1252, latin-1 or utf-16",
                path=("encoding",),
            ) from None
        if not getattr(info, "_is_text_encoding", True):
            raise OptionError(f"{self.encoding!r} is not a text encoding", path=("encoding",))
        self.header = options.get("header", True)
        self.names = options.get("names")
        self.header_row = options.get("header_row")
        self.skip_rows = options.get("skip_rows", 0)
        if self.names and self.header:
            raise OptionError(
                "names is for a file without a header: add header: false "
                "(to rename the header's columns, use the rename rule)",
                path=("names",),
            )
        if self.header_row is not None and not self.header:
            raise OptionError("header_row needs a header; with header: false use skip_rows", path=("header_row",))
        if self.header_row is not None and "skip_rows" in options:
            raise OptionError(
                "give header_row (the header's line) or skip_rows (lines before the header), not both",
                path=("skip_rows",),
            )
        self.engine = options.get("engine", "auto")
        if self.engine == "pyarrow" and self.dialect.comment:
            raise OptionError("comment needs engine: python (or auto)", path=("engine",))
        d = self.dialect
        # pyarrow takes only ASCII delimiter, quote and escape characters; Python's csv any.
        self.ascii = all(c is None or c.isascii() for c in (d.delimiter, d.quote, d.escape))
        if self.engine == "pyarrow" and not self.ascii:
            raise OptionError(
                "engine: pyarrow reads only ASCII delimiter, quote and escape characters; use engine: auto",
                path=("engine",),
            )
        self.max_field = int(options.get("max_field_mib", DEFAULT_MAX_FIELD_MIB)) << 20
        self.file_column = options.get("file_column")
        if self.file_column and self.names and self.file_column in self.names:
            raise OptionError(
                f"file_column {self.file_column!r} is also in names; choose another name", path=("file_column",)
            )
        self.fileset = FileSet(options, ctx, "csv source", glob_hint="*.csv")

    # -- files -------------------------------------------------------------------------------

    def files(self) -> list[Found]:
        """The files to read, in order (picked: see pipeline/sources/pick.py), each with the name
        messages use (as the route writes it, or its URL without password)."""
        return self.fileset.files()

    @property
    def details(self) -> dict:
        """The files read (and the one picked), for the run report."""
        return self.fileset.details

    def on_delivered(self) -> None:
        self.fileset.after_read()

    def _open(self, found: Found) -> tuple[Utf8Stream, LineReader, Head | None]:
        shown = found.shown
        try:
            stream = Utf8Stream(None, self.encoding, shown, opener=found.open)
        except OSError as exc:
            raise RunFailed(f"csv source: cannot read {shown}: {exc.strerror or exc}") from None
        try:
            lines = LineReader(stream, shown)
            head = read_head(
                lines,
                self.dialect,
                header=self.header,
                header_row=self.header_row,
                skip_rows=self.skip_rows,
                names=self.names,
                shown=shown,
            )
        except BaseException:
            stream.close()
            raise
        return stream, lines, head

    def _names(self, head: Head, shown: str) -> list[str]:
        if self.names:
            names = list(self.names)
        elif head.names is None:
            names = [f"column_{i}" for i in range(1, head.ncols + 1)]
        else:
            names, notes = unique_names(head.names)
            for note in notes:
                self.ctx.log.warning("%s: %s", shown, note)
            if len(names) == 1:
                guess = next((d for d in (";", "\t", "|", ",") if d in names[0]), None)
                if guess and guess != self.dialect.delimiter:
                    self.ctx.log.warning(
                        "%s: the header is one column, %r; if the file is separated by %r, set delimiter: %s",
                        shown,
                        names[0],
                        guess,
                        "tab" if guess == "\t" else repr(guess),
                    )
        if self.file_column and self.file_column in names:
            raise RunFailed(
                f"{shown}: file_column {self.file_column!r} is also a column of the file; choose another name"
            )
        return names

    # -- the contract ------------------------------------------------------------------------

    def columns(self) -> list[str] | None:
        """The first file's column names (plus file_column), reading only its first lines; not
        known before the run for a remote file (no connection while a route is only planned)."""
        if self.fileset.location.remote and not self.fileset.listed:
            return None
        found = self.files()[0]
        shown = found.shown
        stream, _, head = self._open(found)
        stream.close()
        if head is None:
            return None
        return self._names(head, shown) + ([self.file_column] if self.file_column else [])

    def progress(self) -> tuple[int, int | None, str] | None:
        """Bytes read of the files' bytes, for the progress bar (None until reading starts)."""
        state = getattr(self, "_progress", None)
        if state is None:
            return None
        before, total, stream = state
        return before + (stream.bytes_read if stream is not None else 0), total, "bytes"

    def chunks(self) -> Iterator[pd.DataFrame]:
        first: tuple[list[str], str] | None = None
        files = self.files()
        sizes = [f.size for f in files]
        total = None if any(s is None for s in sizes) else sum(sizes)
        before = 0
        for found in files:
            shown = found.shown
            stream, lines, head = self._open(found)
            self._progress = (before, total, stream)
            before += found.size or 0
            try:
                if head is None and self.header:
                    raise RunFailed(
                        f"{shown} is empty: it has no header line (and no rows); a csv source "
                        f"file starts with its header"
                    )
                if head is None:
                    self.ctx.log.warning("%s is empty: no rows", shown)
                    continue
                names = self._names(head, shown)
                order = None
                if first is None:
                    first = (names, shown)
                elif names != first[0]:
                    order = self._align(names, first, shown)
                yield from self._chunked(self._parts(found, head, lines), names, order, shown)
            finally:
                stream.close()

    def _parts(self, found: Found, head: Head, lines: LineReader) -> Iterator[Part]:
        """The reader's parts: pyarrow's, a block of the file per thread (csv_blocks), or Python's
        csv module (csv_readers.read_careful). A record longer than max_field_mib stops the run
        with its line."""
        from pipeline.sources import csv_readers
        from pipeline.sources.csv_blocks import read_blocks
        from pipeline.sources.csv_readers import RecordTooLong, read_careful

        shown = found.shown
        trailer = self.dialect.trailer(head.ncols)
        careful = self._careful(found)
        self.ctx.log.debug("%s: reading with %s", shown, "Python's csv module" if careful else "pyarrow")
        data = lines.rest(trailer)
        try:
            if careful:
                yield from read_careful(
                    data, head.ncols, head.first_line, self.dialect, shown, max_record=self.max_field
                )
            else:
                block = min(csv_readers.PARSE_BLOCK, self.max_field)
                yield from read_blocks(
                    data, head.ncols, head.first_line, self.dialect, shown, block_size=block, max_record=self.max_field
                )
        except RecordTooLong as exc:
            raise self._too_long(shown, exc) from None

    def _too_long(self, shown: str, exc: RecordTooLong) -> RunFailed:
        mib = self.max_field >> 20
        return RunFailed(
            f"{shown}: line {exc.line}: the record starting here is longer than {mib} MiB, "
            f"the limit for a field; if a field really is that long, raise max_field_mib "
            f"(a csv source option); otherwise look for a quote opened on that line and "
            f"never closed"
        )

    def _careful(self, found: Found) -> bool:
        """Python's csv module when asked, or when comment lines follow the header: pyarrow cannot
        skip those. A quick scan finds out; a preview or a limited run skips the scan."""
        if self.engine != "auto" or not self.ascii or self.dialect.comment is None:
            return self.engine == "python" or not self.ascii
        options = self.ctx.run.options
        if options.preview or options.limit:
            return True
        stream, lines, head = self._open(found)
        try:
            return head is not None and any_line_starts_with(lines.rest(b""), self.dialect.comment)
        finally:
            stream.close()

    def _align(self, names: list[str], first: tuple[list[str], str], shown: str) -> list[int]:
        want, first_shown = first
        if sorted(names) != sorted(want):
            said = column_difference(want, names)
            raise RunFailed(
                f"{shown}: its columns differ from {first_shown}'s ({said}); every file "
                f"that {self.options['path']} matches must have the same columns"
            )
        return [names.index(n) for n in want]

    def _chunked(
        self, parts: Iterator[Part], names: list[str], order: list[int] | None, shown: str
    ) -> Iterator[pd.DataFrame]:
        """Re-cut the readers' parts into chunks of exactly chunk_rows rows (the last may be short).

        Rejected rows are sent in batches (before the chunk that follows them), since each
        ctx.reject call has a fixed cost. A chunk's frame is built on a thread (joining its
        parts' Arrow buffers releases the GIL) while the next chunk is gathered; rejects and
        chunks still go out in the order they come."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np
        import pyarrow as pa

        size = max(1, int(self.ctx.run.chunk_rows))
        tables: list[pa.Table] = []
        line_parts: list[np.ndarray] = []
        bad: list[BadRow] = []
        held = 0
        emitted = False
        pending: deque = deque()  # ("reject", rows) and ("frame", future), in their order
        pool = ThreadPoolExecutor(1, thread_name_prefix="route-csv-frames")

        def settle(keep: int) -> Iterator[pd.DataFrame]:
            """Send the rejects and yield the frames waiting, until `keep` frames are left."""
            while pending and sum(kind == "frame" for kind, _ in pending) > keep:
                kind, item = pending.popleft()
                if kind == "reject":
                    self._reject(item, names, shown)
                else:
                    yield item.result()

        def frame(table, lines) -> None:
            pending.append(("frame", pool.submit(self._frame, table, lines, names, order, shown)))

        try:
            for part in parts:
                bad += part.bad
                if len(bad) >= size:
                    pending.append(("reject", bad))
                    bad = []
                if part.table.num_rows:
                    tables.append(part.table)
                    line_parts.append(part.lines)
                    held += part.table.num_rows
                while held >= size:
                    if bad:
                        pending.append(("reject", bad))
                        bad = []
                    table = pa.concat_tables(tables)
                    lines = np.concatenate(line_parts)
                    frame(table.slice(0, size), lines[:size])
                    emitted = True
                    tables, line_parts = [table.slice(size)], [lines[size:]]
                    held -= size
                    yield from settle(1)
            if bad:
                pending.append(("reject", bad))
            if held or not emitted:
                table = pa.concat_tables(tables) if tables else None
                lines = np.concatenate(line_parts) if line_parts else np.empty(0, np.int64)
                frame(table, lines)
            yield from settle(0)
            while pending:  # rejects after the last chunk
                self._reject(pending.popleft()[1], names, shown)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _frame(
        self, table: pa.Table | None, lines: np.ndarray, names: list[str], order: list[int] | None, shown: str
    ) -> pd.DataFrame:
        import pandas as pd
        import pyarrow as pa

        from pipeline.basics.dtypes import frame_from_arrow

        if table is None:
            table = pa.table({f"f{i}": pa.array([], pa.string()) for i in range(len(names))})
        table = table.combine_chunks().rename_columns(names)
        if order is not None:
            table = table.select(order)
        if self.file_column:
            table = table.append_column(self.file_column, pa.repeat(pa.scalar(shown), table.num_rows))
        frame = frame_from_arrow(table, index=pd.Index(lines, dtype="int64"))
        frame.attrs["source"] = shown
        return frame

    def _reject(self, bad: list[BadRow], names: list[str], shown: str) -> None:
        import pandas as pd

        from pipeline.basics.dtypes import TEXT

        width = max(len(r.fields) for r in bad)
        columns = names[:width] + [f"column_{i}" for i in range(len(names) + 1, width + 1)]
        index = pd.Index([r.line for r in bad], dtype="int64")
        rows = pd.DataFrame(
            [[v or None for v in r.fields] + [None] * (width - len(r.fields)) for r in bad],
            index=index,
            columns=columns,
            dtype=TEXT,
        )
        rows.attrs["source"] = shown
        expected = (
            f"the header has {len(names)}"
            if self.header
            else f"names lists {len(names)}"
            if self.names
            else f"the first row has {len(names)}"
        )
        reasons = pd.Series([f"line {r.line} has {len(r.fields)} fields, {expected}" for r in bad], index=index)
        texts = pd.Series([r.text for r in bad], index=index)
        self.ctx.reject(rows, reasons, value=texts)
