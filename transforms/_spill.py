"""Spilling to disk for the stream rules that cannot hold the stream (sort, dedupe keep: last,
aggregate, pivot).

Such a rule writes Arrow IPC files in a temporary folder under the state folder (`<state>/tmp`,
SpillDir), which is removed when the rule finishes or is abandoned; sort, aggregate and pivot hold
about `buffer_mb` (BUFFER_MB, default 64) in memory. Sorted runs are merged back a block at a time:
merge_runs on any sort keys (sort), merge_on on one int64 column of distinct values (the first
appearance of a group), which sorts only the rows it passes on; rebatch cuts what comes out to
the run's chunk size. FrameCodec turns a chunk into an Arrow table and back exactly: Arrow-backed columns go
as they are (no copy), numpy columns through Arrow, and object columns (which Arrow cannot always
type) as pickled values; the index, which is the source line, travels as a column.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from pipeline.basics.dtypes import arrow
from pipeline.basics.errors import RunFailed

LINE = "__line__"
# The `buffer_mb` option of every rule that spills, and its default.
BUFFER_MB = {"type": "number", "exclusiveMinimum": 0}
DEFAULT_BUFFER_MB = 64


def buffer_bytes(options) -> int:
    """The rule's in-memory budget in bytes, from its `buffer_mb` option."""
    return int(float(options.get("buffer_mb", DEFAULT_BUFFER_MB)) * 1024 * 1024)


class FrameCodec:
    """Chunk <-> Arrow table for one stream (columns and dtypes taken from its first chunk)."""

    def __init__(self, like: pd.DataFrame):
        self.names = list(like.columns)
        self.dtypes = list(like.dtypes)
        self.index_dtype = like.index.dtype
        self.index_name = like.index.name
        self.fields = [f"c{k}" for k in range(len(self.names))]
        self.pickled = {k for k, d in enumerate(self.dtypes) if d == object}
        self.schema: pa.Schema | None = None

    def field(self, name) -> str:
        """The Arrow field name of column `name`."""
        return self.fields[self.names.index(name)]

    def encode(self, chunk: pd.DataFrame) -> pa.Table:
        if list(chunk.columns) != self.names:
            raise RunFailed(
                f"the chunks of this stream do not have the same columns: {list(chunk.columns)} after {self.names}"
            )
        arrays = [self._encode(chunk.iloc[:, k], k in self.pickled) for k in range(len(self.names))]
        arrays.append(self._encode(pd.Series(chunk.index), self.index_dtype == object))
        table = pa.Table.from_arrays(arrays, names=[*self.fields, LINE])
        if self.schema is None:
            self.schema = table.schema
        elif table.schema != self.schema:
            try:
                table = table.cast(self.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise RunFailed(
                    f"a column changed type between chunks ({exc}); cast it so that every chunk has the same types"
                ) from None
        return table

    @staticmethod
    def _encode(series: pd.Series, pickled: bool):
        if pickled:
            return pa.array(
                [None if v is None else pickle.dumps(v, protocol=5) for v in series.tolist()], type=pa.binary()
            )
        if isinstance(series.dtype, pd.ArrowDtype):
            data = arrow(series)
            return data if not isinstance(data, pa.ChunkedArray) or data.num_chunks else pa.array([], data.type)
        return pa.array(series, from_pandas=True)

    def decode(self, table: pa.Table, attrs: dict | None = None) -> pd.DataFrame:
        columns = {}
        index = self._decode(table.column(LINE), self.index_dtype, self.index_dtype == object)
        for k, (name, dtype) in enumerate(zip(self.names, self.dtypes)):
            columns[k] = self._decode(table.column(k), dtype, k in self.pickled)
        frame = pd.DataFrame(
            {k: pd.Series(v, index=pd.RangeIndex(table.num_rows), copy=False) for k, v in columns.items()}
        )
        frame.columns = pd.Index(self.names) if self.names else frame.columns
        frame.index = pd.Index(index, name=self.index_name)
        if attrs:
            frame.attrs = dict(attrs)
        return frame

    @staticmethod
    def _decode(data: pa.ChunkedArray, dtype, pickled: bool):
        if pickled:
            return pd.array([None if v is None else pickle.loads(v) for v in data.to_pylist()], dtype=object)
        if isinstance(dtype, pd.ArrowDtype):
            if data.num_chunks == 0:
                data = pa.chunked_array([pa.array([], dtype.pyarrow_dtype)])
            return pd.arrays.ArrowExtensionArray(data)
        values = data.to_pandas()
        return values.astype(dtype, copy=False).array if values.dtype != dtype else values.array


class SpillDir:
    """A temporary folder under `<state>/tmp`, removed on exit (also when the stream is abandoned)."""

    def __init__(self, ctx, prefix: str):
        base = Path(ctx.run.state_dir) / "tmp"
        base.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=base))

    def __enter__(self) -> SpillDir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def file(self, name: str) -> Path:
        return self.path / name


def write_run(path: Path, table: pa.Table, batch_rows: int) -> None:
    """Write `table` as an Arrow IPC file of record batches of at most `batch_rows` rows."""
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, batch_rows))


class RunReader:
    """Reads an IPC file batch by batch into ordinary memory (no memory map, so what has been
    read and dropped is really freed and peak RSS stays bounded)."""

    def __init__(self, path: Path):
        self._file = pa.OSFile(str(path), "rb")
        self._reader = ipc.open_file(self._file)
        self.schema = self._reader.schema
        self.next_batch = 0

    @property
    def num_batches(self) -> int:
        return self._reader.num_record_batches

    def batch(self, i: int) -> pa.RecordBatch:
        return self._reader.get_batch(i)

    def block(self, rows: int) -> pa.Table | None:
        """The next batches, at least `rows` rows of them (fewer at the end); None when done."""
        batches, got = [], 0
        while got < rows and self.next_batch < self.num_batches:
            b = self._reader.get_batch(self.next_batch)
            self.next_batch += 1
            batches.append(b)
            got += b.num_rows
        return pa.Table.from_batches(batches, schema=self.schema) if batches else None

    def close(self) -> None:
        self._file.close()


def slices(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    for start in range(0, table.num_rows, max(1, rows)):
        yield table.slice(start, rows)


def rebatch(tables: Iterator[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The same rows in tables of exactly `rows` rows (the last one fewer), whatever sizes come in;
    rows that are no rows at all come out as one empty table."""
    held, count, yielded = [], 0, False
    for table in tables:
        held.append(table)
        count += table.num_rows
        if count < rows:
            continue
        whole, start = pa.concat_tables(held), 0
        while count - start >= rows:
            yield whole.slice(start, rows)
            start += rows
        # Arrow keeps empty slices of every chunk before the cut, and with them whole earlier
        # buffers: the rest goes on as batches that all hold rows.
        rest = [b for b in whole.slice(start).to_batches() if b.num_rows]
        held, count, yielded = [pa.Table.from_batches(rest, whole.schema)], count - start, True
    if held and (count or not yielded):
        yield pa.concat_tables(held)


def merge_runs(paths, keys, block: int, rows_out: int) -> Iterator[pa.Table]:
    """k-way merge of sorted runs, a block of each run at a time. Every row carries its run number
    and position, which break ties (so the merge is stable) and make every key distinct: all rows
    up to the smallest "last loaded row" of a run that still has rows on disk are in final order."""
    readers = [RunReader(p) for p in paths]
    done = [False] * len(readers)
    last_pos = np.full(len(readers), -1, dtype=np.int64)
    pending: pa.Table | None = None
    order_keys = keys + [("__run", "ascending", "at_end"), ("__pos", "ascending", "at_end")]
    try:

        def load(r: int) -> pa.Table | None:
            t = readers[r].block(block)
            if t is None:
                done[r] = True
                return None
            start = last_pos[r] + 1
            last_pos[r] = start + t.num_rows - 1
            if readers[r].next_batch >= readers[r].num_batches:
                done[r] = True
            return t.append_column("__run", pa.array(np.full(t.num_rows, r, dtype=np.int32))).append_column(
                "__pos", pa.array(np.arange(start, start + t.num_rows, dtype=np.int64))
            )

        loaded = [t for t in (load(r) for r in range(len(readers))) if t is not None]
        pending = pa.concat_tables(loaded) if loaded else None
        del loaded  # (and fresh below) not kept across a yield: combine_chunks copied them
        while pending is not None and pending.num_rows:
            pending = pending.combine_chunks()
            order = pc.sort_indices(pending, sort_keys=order_keys)
            run_ids = pc.take(pending.column("__run"), order).to_numpy()
            live = ~np.array(done)
            if live.any():
                bound = live[run_ids] & (pc.take(pending.column("__pos"), order).to_numpy() == last_pos[run_ids])
                cut = int(np.argmax(bound)) + 1 if bound.any() else pending.num_rows
            else:
                cut = pending.num_rows
            # Two takes, not slices of one: a small slice passed on would keep the whole block alive.
            head = pending.take(order.slice(0, cut)).drop_columns(["__run", "__pos"])
            pending = pending.take(order.slice(cut))
            yield from slices(head, rows_out)
            # A run is read on before it runs out, so that the next cut moves on by about half a
            # block of every run, not by the few rows up to the next run's end.
            left = np.bincount(run_ids[cut:], minlength=len(readers))
            fresh = [load(r) for r in range(len(readers)) if not done[r] and left[r] < max(1, block // 2)]
            fresh = [t for t in fresh if t is not None]
            if fresh:
                pending = pa.concat_tables([pending, *fresh])
            del fresh
    finally:
        for reader in readers:
            reader.close()


def merge_on(paths, column: str, block: int) -> Iterator[pa.Table]:
    """k-way merge of runs sorted on one int64 column without nulls (aggregate's and pivot's first
    appearance), a block of each run at a time. Every round cuts at the smallest last value loaded
    of the runs that have rows left on disk: each run's rows up to it are a prefix, and only these
    are sorted and passed on (as a new table, holding no block alive)."""
    readers = [RunReader(p) for p in paths]
    held: list[pa.Table | None] = [None] * len(readers)
    values: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(readers)
    try:
        while True:
            for r, reader in enumerate(readers):
                if len(values[r]) < max(1, block // 2) and reader.next_batch < reader.num_batches:
                    more = reader.block(block)
                    held[r] = more if held[r] is None else pa.concat_tables([held[r], more]).combine_chunks()
                    values[r] = held[r].column(column).to_numpy()
            left = [r for r in range(len(readers)) if len(values[r])]
            if not left:
                return
            on_disk = [values[r][-1] for r in left if readers[r].next_batch < readers[r].num_batches]
            cut = min(on_disk) if on_disk else None
            parts = []
            for r in left:
                n = len(values[r]) if cut is None else int(np.searchsorted(values[r], cut, "right"))
                if n:
                    parts.append(held[r].slice(0, n))
                    held[r], values[r] = held[r].slice(n), values[r][n:]
            table = pa.concat_tables(parts)
            del parts
            yield table.take(pc.sort_indices(table, sort_keys=[(column, "ascending")]))
    finally:
        for reader in readers:
            reader.close()
