"""One chunk of the route's output to one Arrow table of wire values, rejecting what cannot go.

Rows with a value that does not convert, or without a row identifier where one is needed, are
sent to the rejects file with the column, the value and the reason, and left out of the table:
nothing the portal would refuse is ever sent. The chunk's index (the source line) travels beside
the table so every later message can name the lines concerned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.dtypes import arrow
from pipeline.socrata import wire
from pipeline.socrata.columns import ID, Mapping

DELETED = ":deleted"


@dataclass
class WireChunk:
    table: pa.Table
    lines: np.ndarray
    keys: pa.Array | None
    rejected: int = 0


def source_lines(chunk: pd.DataFrame) -> np.ndarray:
    index = chunk.index
    if pd.api.types.is_integer_dtype(index.dtype):
        return np.asarray(index, dtype=np.int64)
    return np.arange(1, len(chunk) + 1, dtype=np.int64)


def to_wire(
    chunk: pd.DataFrame, mapping: Mapping, *, mode: str, form: str, timezone: str | None, ctx, needs_key: bool
) -> WireChunk:
    """Wire values of `chunk` for the mapped columns; bad rows are rejected through `ctx`."""
    n = len(chunk)
    bad = np.zeros(n, dtype=bool)
    names, arrays = [], []
    key_values = None
    rejected = 0
    for t in mapping.targets:
        conv = wire.convert(arrow(chunk[t.column]), t.type, form=form, timezone=timezone)
        if conv.bad is not None:
            mask = np.asarray(conv.bad.to_numpy(zero_copy_only=False), dtype=bool) & ~bad
            if mask.any():
                reason = f"{conv.reason} (for {t.label})"
                rejected += ctx.reject(chunk[mask], reason, column=t.column)
                bad |= mask
        values = conv.values
        if mapping.key is not None and t.field == mapping.key.field:
            if t.type in wire.NUMBERS:
                values = wire.number_key(values)  # one spelling per key, whatever the chunk holds
            key_values = values
        names.append(t.field)
        arrays.append(values)
    if needs_key and key_values is not None:
        missing = np.asarray(pc.is_null(key_values).to_numpy(zero_copy_only=False), dtype=bool) & ~bad
        if missing.any():
            what = mapping.key.label
            rejected += ctx.reject(chunk[missing], f"no value for the row identifier {what}", column=mapping.key.column)
            bad |= missing
    keep = ~bad
    lines = source_lines(chunk)
    if mode == "delete":
        names, arrays = [mapping.key.field, DELETED], [key_values, pa.array(np.ones(n, dtype=bool))]
    table = pa.Table.from_arrays(arrays, names=names) if names else pa.table({})
    if bad.any():
        mask = pa.array(keep)
        table = table.filter(mask)
        lines = lines[keep]
        if key_values is not None:
            key_values = key_values.filter(mask)
    keyed = mapping.key is not None and mapping.key.field != ID
    return WireChunk(table, lines, key_values if (keyed or mapping.key) else None, rejected)
