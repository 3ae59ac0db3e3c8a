"""Splitting spilled rows by key: a hash of the key columns picks one of N partition files, so
that all the rows of one key can be read back together, apart from the others (aggregate, pivot).

The hash is computed with numpy over the Arrow buffers (a polynomial hash of a string's bytes, the
bits of a number), whole columns at a time and in bounded slices, with no library to load for
it. Keys that Arrow groups together must land in one partition even when a column's type changes
between chunks, so numbers are hashed as float64 (with -0.0 as 0.0 and every NaN alike),
dictionaries by their values, and a null alike in any type. Rows of different keys may share a
partition; that only costs balance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from transforms._spill import RunReader, SpillDir

_M = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constants (golden ratio, splitmix64)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_NULL = np.uint64(0x5EED_0000_0000_5EED)
_M_INV = np.uint64(pow(int(_M), -1, 1 << 64))
_SLICE_BYTES = 1 << 18  # bytes of text hashed at a time: temporary memory stays near 10 MB


def partition_ids(columns, parts: int, seed: int = 0) -> np.ndarray:
    """Which of `parts` partitions each row goes to, by a hash of its values in `columns` (a
    different `seed` splits the same keys differently)."""
    h = None
    with np.errstate(over="ignore"):
        for data in columns:
            hashed = column_hash(data)
            h = hashed if h is None else h * _M + hashed
        if h is None:
            return np.zeros(0, dtype=np.int64)
        return (_mix(h + np.uint64(seed) * _M) % np.uint64(parts)).astype(np.int64)


def column_hash(data) -> np.ndarray:
    """A uint64 hash of every value of an Arrow column that depends on the value only."""
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks() if data.num_chunks else pa.array([], data.type)
    kind = data.type
    if pa.types.is_null(kind):
        return np.full(len(data), _NULL, dtype=np.uint64)
    if pa.types.is_dictionary(kind):
        data, kind = data.cast(kind.value_type), kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.fill_null(pc.cast(data, pa.float64(), safe=False), 0.0).to_numpy() + 0.0  # -0.0 -> 0.0
        hashed = _mix(np.where(np.isnan(values), np.nan, values).view(np.uint64))
    elif pa.types.is_boolean(kind) or pa.types.is_temporal(kind):
        width = 64 if pa.types.is_boolean(kind) else kind.bit_width
        as_int = data.cast(pa.int32() if width == 32 else pa.int64()) if width in (32, 64) else data
        hashed = _mix(pc.fill_null(pc.cast(as_int, pa.int64()), 0).to_numpy().view(np.uint64))
    elif pa.types.is_string(kind) or pa.types.is_binary(kind) or _is_large(kind):
        hashed = _bytes_hash(data)
    else:
        try:
            hashed = _bytes_hash(data.cast(pa.large_string()))
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            return np.full(len(data), _NULL, dtype=np.uint64)  # one partition: right, if unbalanced
    if data.null_count:
        hashed = np.where(np.asarray(pc.is_valid(data).to_numpy(zero_copy_only=False), dtype=bool), hashed, _NULL)
    return hashed


def _is_large(kind) -> bool:
    return pa.types.is_large_string(kind) or pa.types.is_large_binary(kind)


def _bytes_hash(data: pa.Array) -> np.ndarray:
    """A polynomial hash of each value's bytes (and its length), a quarter megabyte of values at a
    time: with P[i] = M**(i+1), a value at bytes s..e of the slice sums (byte + 1) * P over them
    (a difference of one running sum) and is brought to M**1 ... by M**-s (M is odd, so it has an
    inverse modulo 2**64); one pass per byte, no per-byte indexing."""
    n = len(data)
    offsets = np.frombuffer(data.buffers()[1], dtype=np.int64 if _is_large(data.type) else np.int32)
    offsets = offsets[data.offset : data.offset + n + 1].astype(np.int64)
    body = data.buffers()[2]
    raw = np.frombuffer(body, dtype=np.uint8) if body is not None and n else np.zeros(0, dtype=np.uint8)
    lengths = np.diff(offsets)
    out = lengths.astype(np.uint64)
    # Slices of about _SLICE_BYTES (under twice that), and each longer value a slice of its own,
    # hashed alone and always the same way wherever it is.
    longer = np.flatnonzero(lengths > _SLICE_BYTES)
    cuts = np.searchsorted(offsets, np.arange(offsets[0], offsets[-1], _SLICE_BYTES), side="right") - 1
    bounds = sorted({int(c) for c in np.concatenate([cuts, longer, longer + 1]) if c > 0} | {n})
    powers = inverse = None
    start = 0
    with np.errstate(over="ignore"):
        for stop in bounds:
            first, last = int(offsets[start]), int(offsets[stop])
            if stop <= start or last == first:
                start = max(start, stop)
                continue
            if stop - start == 1 and lengths[start] > _SLICE_BYTES:
                digest = hashlib.blake2b(raw[first:last].tobytes(), digest_size=8).digest()
                out[start] += np.uint64(int.from_bytes(digest, "little"))
                start = stop
                continue
            if powers is None:  # as long as the longest slice can be, no longer
                need = min(2 * _SLICE_BYTES, int(offsets[-1] - offsets[0]))
                powers = np.cumprod(np.full(need, _M, dtype=np.uint64))
                inverse = np.cumprod(np.full(need + 1, _M_INV, dtype=np.uint64))
                inverse[1:], inverse[0] = inverse[:-1], np.uint64(1)  # M**-s at s
            terms = (raw[first:last] + np.uint64(1)) * powers[: last - first]
            sums = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(terms, dtype=np.uint64)])
            at = offsets[start : stop + 1] - first
            out[start:stop] += (sums[at[1:]] - sums[at[:-1]]) * inverse[at[:-1]]
            start = stop
    return _mix(out)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves about half the output bits."""
    with np.errstate(over="ignore"):
        h = h.astype(np.uint64, copy=True)
        h ^= h >> np.uint64(30)
        h *= _MIX1
        h ^= h >> np.uint64(27)
        h *= _MIX2
        h ^= h >> np.uint64(31)
    return h


class Partitions:
    """Tables split row by row into `count` spill files, appended in the order written, so a key's
    rows come back in the order they went in. A table whose types differ from the ones written so
    far (a column all null in one chunk) starts new files; read() casts every batch to the types of
    all of them together."""

    def __init__(self, spill: SpillDir, count: int, name: str):
        self.spill, self.count, self.name = spill, count, name
        self.files: list[list[Path]] = [[] for _ in range(count)]
        self._writers: list = [None] * count
        self._sinks: list = [None] * count
        self.schema: pa.Schema | None = None
        self._schemas: list[pa.Schema] = []
        self.rows = self.bytes = 0

    def write(self, table: pa.Table, ids: np.ndarray) -> None:
        """Append row i of `table` to partition ids[i]."""
        if self.schema is not None and table.schema != self.schema:
            unified = pa.unify_schemas([self.schema, table.schema], promote_options="permissive")
            if unified == self.schema:
                table = table.cast(unified)
            else:
                self.finish()
                table = table.cast(unified)
        if self.schema is None or table.schema != self.schema:
            self.schema = table.schema
            self._schemas.append(table.schema)
        counts = np.bincount(ids, minlength=self.count)
        table = table.take(pa.array(np.argsort(ids, kind="stable")))
        start = 0
        for p in np.flatnonzero(counts):
            self._writer(p).write_table(table.slice(start, int(counts[p])))
            start += int(counts[p])
        self.rows += table.num_rows
        self.bytes += table.nbytes

    def _writer(self, p: int):
        if self._writers[p] is None:
            path = self.spill.file(f"{self.name}-{p:03d}-{len(self.files[p]):03d}.arrow")
            self.files[p].append(path)
            self._sinks[p] = pa.OSFile(str(path), "wb")
            self._writers[p] = ipc.new_file(self._sinks[p], self.schema)
        return self._writers[p]

    def finish(self) -> None:
        """Close the files being written (the next write starts new ones)."""
        for p in range(self.count):
            if self._writers[p] is not None:
                self._writers[p].close()
                self._sinks[p].close()
            self._writers[p] = self._sinks[p] = None

    def read(self, p: int) -> Iterator[pa.Table]:
        """Partition `p`'s rows, a written batch at a time, in the order written."""
        self.finish()
        schema = pa.unify_schemas(self._schemas, promote_options="permissive") if self._schemas else None
        for path in self.files[p]:
            reader = RunReader(path)
            try:
                for i in range(reader.num_batches):
                    table = pa.Table.from_batches([reader.batch(i)])
                    yield table if table.schema == schema else table.cast(schema)
            finally:
                reader.close()
