"""Group-by state for aggregate and pivot: partial aggregates per group, folded as chunks arrive,
spilled to disk by key when they outgrow the rule's buffer.

Each chunk is reduced to partial results with Arrow's hash aggregation (Table.group_by), and
partial results are folded together as they accumulate (sum of sums, min of mins, first of
firsts...), so memory follows the number of groups, not of rows. Each group also keeps the number
of its first row (seq_min): groups come out in the order they first appear.

When the groups held and the partial results waiting to be folded pass an eighth of the buffer
(`buffer_mb`; folding takes several times what it folds), they, and every later chunk's partial
results, are split by a hash of the group key (transforms._partition) into PARTITIONS Arrow files
in the state folder, so one group's partial results all land in one file, in the order of their
chunks. At the end each partition is folded alone (split
again, with another hash, if it is still too big), sorted by seq_min, and the partitions are
merged on seq_min. Arrow folds a group's values in row order, so a group's result is the same
left fold of its chunks' partial results on either path: sums of floats agree to the last bit.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from pipeline.basics.errors import RunFailed
from transforms._frames import to_arrow
from transforms._partition import Partitions, partition_ids
from transforms._spill import SpillDir, merge_on

# How partial results of each Arrow aggregation fold into the next.
_FOLD = {"count_all": "sum", "count": "sum", "sum": "sum", "min": "min", "max": "max", "first": "first", "last": "last"}
_NUMERIC = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
PARTITIONS = 16
_MAX_LEVEL = 3  # partitions of partitions of partitions: 4096 of them, then folded in memory
SEQ = "seq_min"
# Arrow's hash aggregation takes about 3.5 times the bytes it folds (its hash table, the result),
# and the chunks, the rows going out and the allocator's slack come on top, so partial results
# are held up to an eighth of the budget: the rule as a whole stays near `buffer_mb`.
SPREAD = 8


class GroupState:
    """Partial aggregates per group of `keys`, folded as chunks arrive, in at most about `budget`
    bytes: past it they go to disk, split by a hash of the first `split_keys` keys (all by default;
    pivot splits by its index only, so that one output row's groups stay together)."""

    def __init__(
        self,
        keys: list[str],
        parts: list[tuple[str | None, str]],
        rule_name: str,
        ctx,
        budget: int,
        split_keys: int | None = None,
        level: int = 0,
    ):
        self.keys, self.parts, self.rule_name = keys, parts, rule_name
        self.ctx, self.budget, self.level = ctx, budget, level
        self.fields = [f"k{i}" for i in range(len(keys))]
        self.split = self.fields[: len(keys) if split_keys is None else split_keys]
        self.values = sorted({c for c, _ in parts if c is not None})
        self.state: pa.Table | None = None
        self.state_bytes = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = self.pending_bytes = 0
        self.types: dict[str, pa.DataType] = {}
        self.rows = 0
        self.spill: SpillDir | None = None
        self.partitions: Partitions | None = None

    @property
    def spilled(self) -> bool:
        return self.partitions is not None

    def _names(self) -> list[str]:
        """Partial result fields, then the group's first row number (Arrow's hash aggregation does
        not promise any group order, so the order of appearance is kept explicitly)."""
        return [("count_all" if c is None else f"v{self.values.index(c)}_{fn}") for c, fn in self.parts] + [SEQ]

    def add(self, chunk: pd.DataFrame) -> None:
        arrays = {f: to_arrow(chunk[k]) for f, k in zip(self.fields, self.keys)}
        for i, c in enumerate(self.values):
            arrays[f"v{i}"] = to_arrow(chunk[c])
            self.types.setdefault(c, arrays[f"v{i}"].type)
        for f, k in zip(self.fields, self.keys):
            self.types.setdefault(k, arrays[f].type)
        arrays["seq"] = pa.array(np.arange(self.rows, self.rows + len(chunk), dtype=np.int64))
        self.rows += len(chunk)
        table = pa.table(arrays)
        aggs = [([], "count_all") if c is None else (f"v{self.values.index(c)}", fn) for c, fn in self.parts]
        aggs.append(("seq", "min"))
        try:
            partial = table.group_by(self.fields, use_threads=False).aggregate(aggs)
        except pa.ArrowNotImplementedError as exc:
            # This chunk's own types: a column can be numbers in one chunk and text in the next.
            kinds = {c: arrays[f"v{i}"].type for i, c in enumerate(self.values)}
            bad = next(
                (
                    (c, fn)
                    for c, fn in self.parts
                    if fn in ("sum", "mean") and c is not None and not any(t(kinds[c]) for t in _NUMERIC)
                ),
                None,
            )
            if bad is None:
                raise RunFailed(f"{self.rule_name}: cannot aggregate these columns: {exc}") from None
            raise RunFailed(
                f"{self.rule_name}: cannot {bad[1]} column {bad[0]!r}: it holds "
                f"{kinds[bad[0]]}, not numbers; cast it to number first"
            ) from None
        self.take(partial.select(self.fields + self._names()))

    def take(self, partial: pa.Table) -> None:
        """Fold in partial results (the key fields, then _names())."""
        self.pending.append(partial)
        self.pending_rows += partial.num_rows
        self.pending_bytes += partial.nbytes
        if self.spilled:
            if self.pending_bytes >= self.budget // SPREAD:
                self._flush()
            return
        rows = self.state.num_rows if self.state is not None else 0
        if self.pending_rows >= max(100_000, rows) or self.pending_bytes >= self.budget // (2 * SPREAD):
            self._fold()
        if self.split and self.level < _MAX_LEVEL and self.state_bytes + self.pending_bytes > self.budget // SPREAD:
            self._start_spilling()

    def _fold(self) -> None:
        tables = ([self.state] if self.state is not None else []) + self.pending
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0
        if not tables:
            return
        table = pa.concat_tables(tables, promote_options="permissive")
        names = self._names()
        folds = ["sum" if n == "count_all" else _FOLD[n.split("_", 1)[1]] for n in names]
        folded = table.group_by(self.fields, use_threads=False).aggregate(list(zip(names, folds)))
        self.state = folded.select(self.fields + [f"{n}_{f}" for n, f in zip(names, folds)]).rename_columns(
            self.fields + names
        )
        self.state_bytes = self.state.nbytes

    def _start_spilling(self) -> None:
        self.spill = SpillDir(self.ctx, self.rule_name)
        self.partitions = Partitions(self.spill, PARTITIONS, "part")
        if self.state is not None:  # one row per group, ahead of every later partial result
            self.pending.insert(0, self.state)
            self.state, self.state_bytes = None, 0
        if self.level == 0:
            self.ctx.log.info(
                "%s: the groups passed the buffer after %d rows; spilling them to %d partitions in %s",
                self.rule_name,
                self.rows,
                PARTITIONS,
                self.spill.path,
            )
        else:
            self.ctx.log.debug("%s: a partition of the groups spilled again (level %d)", self.rule_name, self.level + 1)
        self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        same = all(t.schema == self.pending[0].schema for t in self.pending)
        for table in [pa.concat_tables(self.pending)] if same else self.pending:
            ids = partition_ids([table.column(f) for f in self.split], PARTITIONS, seed=self.level)
            self.partitions.write(table, ids)
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0

    def partition_results(self) -> Iterator[Iterator[pa.Table]]:
        """The groups, one stream per partition (a single one when nothing spilled), each sorted by
        seq_min; consume each stream before asking for the next."""
        if not self.spilled:
            self._fold()
            if self.state is not None:
                yield iter([self.state.sort_by(SEQ)])
            return
        self._flush()
        for p in range(PARTITIONS):
            sub = GroupState(
                self.keys, self.parts, self.rule_name, self.ctx, self.budget, len(self.split), self.level + 1
            )
            try:
                for table in self.partitions.read(p):
                    sub.take(table)
                yield sub.sorted()
            finally:
                sub.close()
                for path in self.partitions.files[p]:  # read: its disk is free for what comes next
                    path.unlink(missing_ok=True)

    def sorted(self) -> Iterator[pa.Table]:
        """All groups in order of appearance (sorted by seq_min), in tables of any size."""
        if not self.spilled:
            for stream in self.partition_results():
                yield from stream
            return
        runs = []
        for p, stream in enumerate(self.partition_results()):
            path = self.spill.file(f"sorted-{p:03d}.arrow")
            if write_tables(path, stream, batch_rows=1024):
                runs.append(path)
        bytes_per_row = max(1, self.partitions.rows and self.partitions.bytes // self.partitions.rows)
        block = max(64, self.budget // bytes_per_row // (SPREAD * max(1, len(runs))))
        yield from merge_on(runs, SEQ, block)

    def close(self) -> None:
        """Remove the spill files (also when the stream is abandoned)."""
        if self.partitions is not None:
            self.partitions.finish()
        if self.spill is not None:
            self.spill.close()


def write_tables(path, tables, batch_rows: int = 4096) -> int:
    """Write the tables (of one schema) to an Arrow IPC file in batches of at most `batch_rows`
    rows; the rows written."""
    rows, writer, sink = 0, None, None
    try:
        for table in tables:
            if writer is None:
                sink = pa.OSFile(str(path), "wb")
                writer = ipc.new_file(sink, table.schema)
            writer.write_table(table, max_chunksize=batch_rows)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
        if sink is not None:
            sink.close()
    return rows
