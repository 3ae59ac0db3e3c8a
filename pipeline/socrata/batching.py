"""Re-batch converted chunks into requests of exactly `batch_rows` rows (the last may be shorter).

Chunks arrive in the route's size (25,000 rows by default); requests go in the delivery's size
(10,000). Slicing Arrow tables is zero-copy, so re-batching costs nothing but bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from pipeline.socrata.convert import WireChunk
from pipeline.socrata.soda import Batch


class Rebatcher:
    def __init__(self, batch_rows: int):
        self.size = batch_rows
        self.parts: list[tuple[WireChunk, str]] = []
        self.rows = 0
        self.seq = 0

    def add(self, wc: WireChunk, source: str) -> None:
        if wc.table.num_rows:
            self.parts.append((wc, source))
            self.rows += wc.table.num_rows

    def batches(self, final: bool = False) -> Iterator[Batch]:
        """Full batches now available (and the remainder when `final`)."""
        while self.rows >= self.size or (final and self.rows):
            take, rows = [], 0
            while self.parts and rows < self.size:
                wc, source = self.parts[0]
                need = self.size - rows
                if wc.table.num_rows <= need:
                    take.append((wc, source))
                    self.parts.pop(0)
                    rows += wc.table.num_rows
                else:
                    take.append((_slice(wc, 0, need), source))
                    self.parts[0] = (_slice(wc, need, None), source)
                    rows += need
            self.rows -= rows
            self.seq += 1
            yield _join(self.seq, take)


def _slice(wc: WireChunk, start: int, stop: int | None) -> WireChunk:
    length = None if stop is None else stop - start
    keys = None if wc.keys is None else wc.keys.slice(start, length)
    table = wc.table.slice(start, length) if length is not None else wc.table.slice(start)
    lines = wc.lines[start:stop]
    return WireChunk(table, lines, keys)


def _join(seq: int, take: list[tuple[WireChunk, str]]) -> Batch:
    if len(take) == 1:
        wc, source = take[0]
        return Batch(seq, wc.table, wc.lines, source, wc.keys)
    table = pa.concat_tables([wc.table for wc, _ in take], promote_options="permissive")
    lines = np.concatenate([wc.lines for wc, _ in take])
    keys = None
    if all(wc.keys is not None for wc, _ in take):
        keys = pa.concat_arrays([wc.keys for wc, _ in take])
    return Batch(seq, table, lines, take[0][1], keys)
