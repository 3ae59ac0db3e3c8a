"""pivot's long-to-wide step over the index-name groups of a GroupState (transforms._groups).

Pass 1 reads each partition's groups (in order of first appearance), leaves out those with a null
name and finds where each name first appears, which orders the new columns. Pass 2 turns each
partition's groups into wide rows, one per index with one column per name: pivot splits its
groups by the index alone, so the rows of a partition are complete. They come out in order of
the first appearance of their index, and the partitions are merged on it. Nothing spilled: one
partition, no file. A partition whose wide rows could pass a quarter of the buffer is split again
by a hash of the index before pass 2, so memory stays bounded whatever the input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms._groups import SEQ, SPREAD, GroupState, write_tables
from transforms._partition import Partitions, partition_ids
from transforms._spill import RunReader, merge_on

_SPLIT_SEED = 101  # not a level's seed: the partitions' own split must not repeat itself


def widen(state: GroupState, k: int, name_col: str, agg: str, ctx) -> tuple[list[str], Callable]:
    """Pass 1 over the groups of `state` (k index fields, then the name, the partial results and
    SEQ). Returns the names in order of first appearance, and pass 2: a function of the final
    column names (a list of names) giving the wide rows in tables of any size, with the k index
    fields, one field per name and SEQ."""
    first_seen: dict[str, int] = {}
    found = {"skipped": 0, "type": None, "indexes": 0}

    def named(stream) -> Iterator[pa.Table]:
        for table in stream:
            valid = pc.is_valid(table.column(k))
            dropped = table.num_rows - pc.sum(valid).as_py() if table.num_rows else 0
            if dropped:
                found["skipped"] += dropped
                table = table.filter(valid)
            found["type"] = found["type"] or (pa.float64() if agg == "mean" else table.schema.field(k + 1).type)
            name_codes, uniques = names_of(table, k)
            firsts = np.unique(name_codes, return_index=True)[1]
            seqs = table.column(SEQ).to_numpy()
            for j, name in enumerate(uniques):
                first_seen[name] = min(first_seen.get(name, seqs[firsts[j]]), seqs[firsts[j]])
            if state.spilled and table.num_rows:  # wide rows to come (over-counted if a stream has several tables)
                found["indexes"] += int(_group_codes([table.column(i) for i in range(k)]).max()) + 1
            yield table

    parts: list = []  # in memory: the one table; spilled: (file, index values, bytes a group) per partition
    for p, stream in enumerate(state.partition_results()):
        if not state.spilled:
            parts.append(pa.concat_tables(list(named(stream))))
            continue
        path = state.spill.file(f"named-{p:03d}.arrow")
        found["indexes"] = 0
        rows = write_tables(path, named(stream))
        if rows:
            parts.append((path, found["indexes"], path.stat().st_size // rows))
    if found["skipped"]:
        ctx.log.info("pivot left out %d groups with a null %s", found["skipped"], name_col)
    value_type = found["type"] or pa.null()

    def pass_2(labels: list[str]) -> Iterator[pa.Table]:
        where = {label: j for j, label in enumerate(labels)}
        if not state.spilled:
            for table in parts:
                yield wide(table, k, agg, where, value_type)
            return
        share = max(1, 2 * state.budget // SPREAD)
        pieces = [max(1, math.ceil(indexes * (9 * len(where) + size) / share)) for _, indexes, size in parts]
        runs = []
        # No floor of a thousand rows: a run per piece can mean hundreds of runs.
        block = max(64, state.budget // (9 * len(where) + 64) // (SPREAD * sum(pieces)))
        for (path, _, _), count in zip(parts, pieces):
            if count > 1:
                ctx.log.debug("pivot: %s split in %d pieces by index", path.name, count)
            for table in _pieces(state, path, k, count):
                run = state.spill.file(f"wide-{len(runs):05d}.arrow")
                if write_tables(run, [wide(table, k, agg, where, value_type)], batch_rows=block):
                    runs.append(run)
            path.unlink()
        yield from merge_on(runs, SEQ, block)

    return sorted(first_seen, key=first_seen.get), pass_2


def _pieces(state: GroupState, path, k: int, count: int) -> Iterator[pa.Table]:
    """The named groups of one partition file, whole or split in `count` pieces by the index."""
    reader = RunReader(path)
    try:
        if count == 1 or path.stat().st_size <= state.budget // SPREAD:  # small enough to split in memory
            whole = reader.block(1 << 62)
            if count == 1:
                yield whole
                return
            ids = partition_ids([whole.column(f) for f in range(k)], count, seed=_SPLIT_SEED)
            for q in range(count):
                yield whole.take(pa.array(np.flatnonzero(ids == q)))
            return
        split = Partitions(state.spill, count, f"{path.stem}-piece")
        while (rows := reader.block(65_536)) is not None:
            split.write(rows, partition_ids([rows.column(f) for f in range(k)], count, seed=_SPLIT_SEED))
    finally:
        reader.close()
    for q in range(count):
        if split.files[q]:
            yield pa.concat_tables(list(split.read(q)))
            for piece in split.files[q]:
                piece.unlink()


def names_of(table: pa.Table, k: int) -> tuple[np.ndarray, list[str]]:
    """The name of each group as a code, and the names as text in order of appearance."""
    names = _encoded(pc.cast(table.column(k), pa.string()))
    return names.indices.to_numpy(zero_copy_only=False), [str(n) for n in names.dictionary.to_pylist()]


def _encoded(data) -> pa.DictionaryArray:
    """Arrow's dictionary encoding (codes in order of first appearance, a null its own code): what
    pandas' factorize and groupby(sort=False, dropna=False) do, without Python objects."""
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks() if data.num_chunks else pa.array([], data.type)
    return pc.dictionary_encode(data, null_encoding="encode")


def _group_codes(columns: list) -> np.ndarray:
    """For each row, the number of its distinct combination of `columns`, in order of appearance."""
    codes = None
    for column in columns:
        indices = _encoded(column).indices.to_numpy(zero_copy_only=False).astype(np.int64)
        if codes is None:
            codes = indices
        elif len(indices):
            combined = codes * (int(indices.max()) + 1) + indices
            codes = _encoded(pa.array(combined)).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes


def wide(table: pa.Table, k: int, agg: str, where: dict, value_type) -> pa.Table:
    """One row per index of these index-name groups (in order of appearance), with the index
    columns, one column per name of `where` (at its position) and the first appearance (SEQ)."""
    values = table.column(k + 1)
    if agg == "mean":
        values = pc.divide(pc.cast(values, pa.float64(), safe=False), pc.cast(table.column(k + 2), pa.float64()))
    n = table.num_rows
    codes = _group_codes([table.column(i) for i in range(k)]) if k else np.zeros(n, dtype=np.int64)
    groups = int(codes.max()) + 1 if n else 0
    first_rows = pa.array(np.unique(codes, return_index=True)[1] if n else np.zeros(0, dtype=np.int64), pa.int64())
    columns = {f"k{i}": pc.take(table.column(i), first_rows) for i in range(k)}
    out = [pa.nulls(groups, value_type)] * len(where)
    name_codes, uniques = names_of(table, k)
    for j, name in enumerate(uniques):
        if name in where:
            rows = np.flatnonzero(name_codes == j)
            slot = np.full(groups, -1, dtype=np.int64)
            slot[codes[rows]] = rows
            out[where[name]] = pc.take(values, pa.array(slot, mask=slot < 0))
    columns.update({f"l{j}": column for j, column in enumerate(out)})
    columns[SEQ] = pc.take(table.column(SEQ), first_rows)
    return pa.table(columns)
