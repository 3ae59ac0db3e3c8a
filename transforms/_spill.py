"""Spilling chunks to disk for the stream rules that cannot hold the stream (sort, dedupe keep: last).

Chunks are written as Arrow IPC files in a temporary folder under the state folder (`<state>/tmp`),
which is removed when the rule finishes or is abandoned. FrameCodec turns a chunk into an Arrow
table and back exactly: Arrow-backed columns go as they are (no copy), numpy columns through
Arrow, and object columns (which Arrow cannot always type) as pickled values; the index, which is
the source line, travels as a column.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from pipeline.basics.dtypes import arrow
from pipeline.basics.errors import RunFailed

LINE = "__line__"


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
