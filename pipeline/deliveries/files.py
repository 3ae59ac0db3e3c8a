"""File deliveries: CSV and JSON Lines, written atomically (GeoJSON in geojson.py, on the same base).

Rows go to a temporary file beside the target and the file is renamed into place only when every
target of the run succeeded (files commit last), so a failed run never leaves a half-written or
empty file where the last good one was. The temporary file is named in the delivery journal, so a
killed run's leftover is removed by the next run. A replace that would empty an existing file or
shrink it by more than `max_shrink` stops unless forced (see guards.py).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.guards import SHRINK_OPTIONS, guard, shrink_fraction, stop_message
from pipeline.basics.plugins import delivery
from pipeline.deliveries.base import FILE, Delivery, DeliveryResult

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# Arrow and polars are imported in the methods that write or count rows: planning a route
# (`route validate`) loads these classes without them.

COMMON = {
    "path": {"type": "string", "minLength": 1, "description": "The file to write; relative to the route file."},
    "encoding": {"type": "string", "default": "utf-8"},
    **SHRINK_OPTIONS,
}


def count_lines(path: Path) -> int:
    """Line breaks in a file (a last line without one counts), read in blocks."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class AtomicFile(Delivery):
    """Writes to a temporary file in the target's folder; close() renames it over the target."""

    commit_order = FILE

    def __init__(self, options: dict, ctx):
        super().__init__(options, ctx)
        self.path: Path = ctx.resolve_path(options["path"])
        self.encoding = options.get("encoding", "utf-8")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise OptionError(f"unknown encoding '{self.encoding}'", ("encoding",)) from None
        self.rows = 0
        self._tmp: Path | None = None
        self._out = None

    def open(self, columns: list[str]) -> None:
        self.columns = columns
        if self.ctx.run.options.dry_run:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise RunFailed(
                f"cannot write in {self.path.parent}: {exc.strerror}; check the folder and its permissions"
            ) from None
        self._tmp = Path(tmp)
        self.ctx.run.journal.hold(self.ctx.target, "tmp", path=str(self._tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the file should read like any other
        self._out = os.fdopen(fd, "wb")
        self._start()

    def write(self, chunk: pd.DataFrame) -> None:
        from pipeline.basics.textformat import iso_timestamps, to_arrow

        if list(chunk.columns) != self.columns:
            raise RunFailed(
                f"the columns changed between chunks ({', '.join(map(str, self.columns))} then "
                f"{', '.join(map(str, chunk.columns))}); a file needs the same columns in every row"
            )
        self.rows += len(chunk)
        if self._out is None or not len(chunk):
            return
        try:
            self._emit(iso_timestamps(to_arrow(chunk)))
        except OSError as exc:
            raise RunFailed(f"writing {self.path} failed: {exc.strerror}") from None

    def close(self) -> DeliveryResult:
        if self.ctx.run.options.dry_run or self._tmp is None:
            return DeliveryResult(
                delivered=0 if self.ctx.run.options.dry_run else self.rows,
                location=str(self.path),
                details={"would_write": self.rows} if self.ctx.run.options.dry_run else {},
            )
        try:
            self.prepare_commit()
            os.replace(self._tmp, self.path)
        except RunFailed:
            self.abort(None)
            raise
        except OSError as exc:  # the executor calls no abort() after a failed close(): clean up here
            self.abort(exc)
            raise RunFailed(f"cannot write {self.path}: {exc.strerror}; nothing was written there") from None
        self.ctx.run.journal.let(self.ctx.target, "tmp", path=str(self._tmp))
        return DeliveryResult(delivered=self.rows, created=self.rows, location=str(self.path))

    def prepare_commit(self) -> None:
        """Everything but the rename: the data on disk, the path usable, the replace guard passed.

        The executor calls it for every local target before any commits, so that a file that cannot
        be replaced stops the run before a table is committed."""
        if self._out is not None:
            try:
                self._out.flush()
                os.fsync(self._out.fileno())
                self._out.close()
            except OSError as exc:
                raise RunFailed(f"writing {self.path} failed: {exc.strerror}; nothing was written there") from None
            self._out = None
        if self.path.is_dir():
            raise RunFailed(f"cannot write {self.path}: a folder has that name; nothing was written there")
        self._guard()

    def abort(self, exc) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()
            self.ctx.run.journal.let(self.ctx.target, "tmp", path=str(self._tmp))

    def _guard(self) -> None:
        """Stop before replacing a file that holds rows with far fewer (see guards.py)."""
        if not self.path.is_file():
            return
        fraction = shrink_fraction(self.options.get("max_shrink"))
        # Cheap first: the file's line count bounds its rows; count exactly only when that is close.
        bound = count_lines(self.path) - self._header_lines()
        if bound <= 0 or self.rows >= bound * (1 - fraction):
            return
        current = self._count_rows()
        head = f"{self.ctx.run.route_file.name}:{self.ctx.line}: target '{self.ctx.target}': {self.path}"
        problem = guard(head, current, self.rows, self.options, self.ctx.run, "file")
        if problem:
            raise RunFailed(stop_message(head, problem))

    def _header_lines(self) -> int:
        return 0

    def _count_rows(self) -> int:
        return count_lines(self.path)

    def _start(self) -> None:
        pass

    def _emit(self, table: pa.Table) -> None:
        self._out.write(self._encode(table))

    def _encode(self, table: pa.Table) -> bytes:
        raise NotImplementedError

    @property
    def _utf8(self) -> bool:
        return self.encoding.replace("_", "-").lower() in ("utf-8", "utf8")

    def _recode(self, data: bytes) -> bytes:
        return data if self._utf8 else data.decode("utf-8").encode(self.encoding, errors="strict")


@delivery(
    {
        "type": "object",
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            **COMMON,
            "delimiter": {"type": "string", "minLength": 1, "maxLength": 1, "default": ","},
            "header": {"type": "boolean", "default": True},
            "bom": {
                "type": "boolean",
                "default": False,
                "description": "Start with a UTF-8 byte order mark (for Excel).",
            },
        },
    }
)
class CsvDelivery(AtomicFile):
    """Write the rows to a CSV file (header line, quoted where needed, ISO dates), atomically.

    Example:

        deliver:
          csv: {path: out/payroll.csv, delimiter: ",", bom: false}
    """

    def _start(self) -> None:
        self._header = self.options.get("header", True)
        if self.options.get("bom"):
            self._out.write("\ufeff".encode(self.encoding))
        if self._header:
            import pyarrow as pa
            import pyarrow.csv as pacsv

            buf = io.BytesIO()
            names = pa.schema([(str(c), pa.string()) for c in self.columns])
            pacsv.write_csv(
                names.empty_table(), buf, pacsv.WriteOptions(include_header=True, delimiter=self._delimiter)
            )
            self._out.write(self._recode(buf.getvalue()))

    @property
    def _delimiter(self) -> str:
        return self.options.get("delimiter", ",")

    def _header_lines(self) -> int:
        return 1 if self.options.get("header", True) else 0

    def _count_rows(self) -> int:
        """Rows of the existing file, quoted line breaks and all (a streaming read, bounded memory)."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        header = self._header_lines()
        try:  # one column, as text: counting is all this read is for
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    encoding=self.encoding, skip_rows=header, autogenerate_column_names=True
                ),
                parse_options=pacsv.ParseOptions(delimiter=self._delimiter, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(include_columns=["f0"], column_types={"f0": pa.string()}),
            )
            return sum(batch.num_rows for batch in reader)
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError):
            return max(0, count_lines(self.path) - self._header_lines())

    def _encode(self, table: pa.Table) -> bytes:
        import pyarrow.csv as pacsv

        buf = io.BytesIO()
        pacsv.write_csv(
            table, buf, pacsv.WriteOptions(include_header=False, delimiter=self._delimiter, quoting_style="needed")
        )
        try:
            return self._recode(buf.getvalue())
        except UnicodeEncodeError as exc:
            raise RunFailed(
                f"a value cannot be written in {self.encoding}: {exc.object[exc.start : exc.end]!r}; "
                f"use encoding: utf-8"
            ) from None


@delivery(
    {
        "type": "object",
        "required": ["path"],
        "additionalProperties": False,
        "properties": {**COMMON},
    }
)
class JsonlDelivery(AtomicFile):
    """Write the rows to a JSON Lines file (one object a line, nulls as null), atomically.

    Example:

        deliver:
          jsonl: {path: out/payroll.jsonl}
    """

    def _emit(self, table: pa.Table) -> None:
        import polars as pl

        if self._utf8:  # straight into the file: no second copy of the chunk's JSON in memory
            pl.from_arrow(table, rechunk=False).write_ndjson(self._out)
        else:
            super()._emit(table)

    def _encode(self, table: pa.Table) -> bytes:
        import polars as pl

        buf = io.BytesIO()
        pl.from_arrow(table, rechunk=False).write_ndjson(buf)
        return self._recode(buf.getvalue())
