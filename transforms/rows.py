"""Rules over the rows of the whole stream: dedupe, sort, limit, sample.

They are stream rules: they receive the iterator of chunks and yield chunks of at most
ctx.run.chunk_rows rows, in memory that does not grow with the input. dedupe keeps 16 bytes per
distinct key (transforms._keys); `keep: last` and sort spill to Arrow IPC files under
`<state>/tmp` (transforms._spill) and read them back batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.columnflow import uses
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import rule
from transforms import column_use
from transforms._frames import as_list, bounded, chunk_rows, need_columns
from transforms._keys import SeenKeys, first_positions, key_hashes
from transforms._spill import BUFFER_MB, FrameCodec, RunReader, SpillDir, buffer_bytes, merge_runs, write_run

NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "uniqueItems": True}


def _keys_of(options, chunk: pd.DataFrame, rule_name: str) -> list[str]:
    keys = as_list(options.get("keys"))
    need_columns(chunk, keys, rule_name)
    return keys


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {"keys": NAMES, "keep": {"enum": ["first", "last"]}},
    },
    scope="stream",
    shorthand="keys",
    columns=uses(reads=["keys"]),
)
def dedupe(chunks: Iterator[pd.DataFrame], options, ctx) -> Iterator[pd.DataFrame]:
    """Drop rows whose key (the `keys` columns, or the whole row) appeared before anywhere in the
    stream, keeping the `first` (default) or the `last` occurrence; rows keep their order. Nulls in
    a key compare equal. Memory: 16 bytes per distinct key; `keep: last` also spills the rows to the
    state folder, reads them twice and keeps one bit per row.

    Example:

        - dedupe: {keys: [parcel_id, sale_date], keep: last}
    """
    if options.get("keep", "first") == "last":
        yield from _dedupe_last(chunks, options, ctx)
        return
    seen, dropped, last, yielded = SeenKeys(), 0, None, False
    for chunk in chunks:
        keys = _keys_of(options, chunk, "dedupe")
        h1, h2 = key_hashes(chunk, keys)
        first = first_positions(h1, h2) == np.arange(len(chunk))
        found, _ = seen.lookup(h1, h2)
        keep = first & ~found
        seen.add(h1[keep], h2[keep])
        dropped += int((~keep).sum())
        last = chunk
        if keep.any():
            yielded = True
            yield chunk if keep.all() else _rows(chunk, keep)
    if last is not None and not yielded:
        yield last.iloc[0:0]
    if dropped:
        ctx.log.info("dedupe dropped %d duplicate rows (%d distinct keys)", dropped, len(seen))


def _rows(chunk: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    out = chunk[keep]
    out.attrs = dict(chunk.attrs)
    return out


def _dedupe_last(chunks, options, ctx) -> Iterator[pd.DataFrame]:
    """Spill the rows and their key hashes, walk the hashes backwards keeping each key's first
    sighting (= its last occurrence), then read the rows forwards through those masks."""
    with SpillDir(ctx, "dedupe") as spill:
        codec, sizes, attrs, writer, sink = None, [], [], None, None
        keys_path = spill.file("keys.u64")
        try:
            with open(keys_path, "wb") as hashes:
                for chunk in chunks:
                    keys = _keys_of(options, chunk, "dedupe")
                    if codec is None:
                        codec = FrameCodec(chunk)
                        sink = pa.OSFile(str(spill.file("rows.arrow")), "wb")
                    if len(chunk) == 0:
                        continue
                    table = codec.encode(chunk).combine_chunks()
                    if writer is None:
                        writer = pa.ipc.new_file(sink, table.schema)
                    writer.write_table(table, max_chunksize=len(chunk))  # one batch per chunk
                    h1, h2 = key_hashes(chunk, keys)
                    np.concatenate([h1, h2]).tofile(hashes)
                    sizes.append(len(chunk))
                    attrs.append(dict(chunk.attrs))
        finally:
            if writer is not None:
                writer.close()
            if sink is not None:
                sink.close()
        if codec is None:
            return
        if not sizes:
            yield _empty_like(codec)
            return
        masks, seen = [None] * len(sizes), SeenKeys()
        offsets = np.concatenate([[0], np.cumsum(sizes)]) * 16
        for i in reversed(range(len(sizes))):
            n = sizes[i]
            both = np.fromfile(keys_path, dtype=np.uint64, count=2 * n, offset=int(offsets[i]))
            h1, h2 = both[:n][::-1].copy(), both[n:][::-1].copy()
            first = first_positions(h1, h2) == np.arange(n)
            found, _ = seen.lookup(h1, h2)
            keep = first & ~found
            seen.add(h1[keep], h2[keep])
            masks[i] = np.packbits(keep[::-1])
        ctx.log.info("dedupe dropped %d duplicate rows (%d distinct keys)", sum(sizes) - len(seen), len(seen))
        reader = RunReader(spill.file("rows.arrow"))
        try:
            for i, n in enumerate(sizes):
                keep = np.unpackbits(masks[i], count=n).astype(bool)
                if keep.any():
                    table = pa.Table.from_batches([reader.batch(i)])
                    yield codec.decode(table.filter(pa.array(keep)), attrs[i])
        finally:
            reader.close()


def _empty_like(codec: FrameCodec) -> pd.DataFrame:
    frame = pd.DataFrame({k: pd.Series([], dtype=d) for k, d in enumerate(codec.dtypes)})
    frame.columns = pd.Index(codec.names) if codec.names else frame.columns
    frame.index = pd.Index([], dtype=codec.index_dtype)
    return frame


def _sort_spec(options) -> tuple[list[str], set[str]]:
    by = as_list(options["by"])
    desc = options.get("descending", False)
    descending = set(by) if desc is True else set(as_list(desc) if desc else [])
    unknown = descending - set(by)
    if unknown:
        raise OptionError(f"`descending` names {sorted(unknown)} which are not in `by`", ("descending",))
    return by, descending


def _bind_sort(options, ctx):
    _sort_spec(options)
    return options


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["by"],
        "properties": {
            "by": {"oneOf": [{"type": "string", "minLength": 1}, NAMES]},
            "descending": {"oneOf": [{"type": "boolean"}, NAMES]},
            "nulls": {"enum": ["first", "last"]},
            "buffer_mb": BUFFER_MB,
        },
    },
    scope="stream",
    shorthand="by",
    bind=_bind_sort,
    columns=column_use.sort,
)
def sort(chunks: Iterator[pd.DataFrame], options, ctx) -> Iterator[pd.DataFrame]:
    """Sort the whole stream by the `by` columns (ascending; `descending: true` or a list of the
    columns to sort descending), nulls last unless `nulls: first`; rows with equal keys keep their
    order. Up to `buffer_mb` (default 64) of rows are sorted in memory; beyond that sorted runs are
    spilled to Arrow files in the state folder and merged, so any size sorts in bounded memory.

    Example:

        - sort: {by: [town, sale_date], descending: [sale_date]}
    """
    by, descending = _sort_spec(options)
    budget = buffer_bytes(options)
    rows_out = chunk_rows(ctx)
    codec, buffered, size, total, rows, runs, spill, attrs = None, [], 0, 0, 0, [], None, {}
    try:
        for chunk in chunks:
            if codec is None:
                need_columns(chunk, by, "sort")
                codec = FrameCodec(chunk)
                attrs = dict(chunk.attrs)
                objects = [c for c in by if codec.names.index(c) in codec.pickled]
                if objects:
                    raise RunFailed(
                        f"sort: column {objects[0]!r} holds Python objects of mixed types; "
                        f"cast it to text, number or date before sorting"
                    )
                nulls = "at_start" if options.get("nulls") == "first" else "at_end"
                keys = [(codec.field(c), "descending" if c in descending else "ascending", nulls) for c in by]
            table = codec.encode(chunk)
            buffered.append(table)
            size += table.nbytes
            total += table.nbytes
            rows += table.num_rows
            if size > budget:
                spill = spill or SpillDir(ctx, "sort")
                runs.append(_write_sorted(spill, len(runs), buffered, keys))
                buffered, size = [], 0
        if codec is None:
            return
        if not runs:
            table = pa.concat_tables(buffered).combine_chunks()  # contiguous: sort and take twice as fast
            order = pc.sort_indices(table, sort_keys=keys)
            for start in range(0, max(1, len(order)), rows_out):
                yield codec.decode(table.take(order.slice(start, rows_out)), attrs)
            return
        if buffered:
            runs.append(_write_sorted(spill, len(runs), buffered, keys))
        ctx.log.info("sort spilled %d rows in %d sorted runs to %s", rows, len(runs), spill.path)
        bytes_per_row = max(1, total // max(1, rows))
        block = max(1024, budget // bytes_per_row // (2 * len(runs)))
        for table in merge_runs(runs, keys, block, rows_out):
            yield codec.decode(table, attrs)
    finally:
        if spill is not None:
            spill.close()


def _write_sorted(spill: SpillDir, number: int, tables, keys):
    table = pa.concat_tables(tables).combine_chunks()
    table = table.take(pc.sort_indices(table, sort_keys=keys))
    path = spill.file(f"run-{number:05d}.arrow")
    write_run(path, table, batch_rows=4096)
    return path


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["rows"],
        "properties": {"rows": {"type": "integer", "minimum": 0}},
    },
    scope="stream",
    shorthand="rows",
    columns=uses(),
)
def limit(chunks: Iterator[pd.DataFrame], options, ctx) -> Iterator[pd.DataFrame]:
    """Keep only the first `rows` rows of the stream and stop reading the source there: a quick
    trial of a route on a big file.

    Example:

        - limit: 1000
    """
    remaining = options["rows"]
    for chunk in chunks:
        if remaining <= 0 or len(chunk) >= remaining:
            part = chunk.iloc[: max(0, remaining)]
            part.attrs = dict(chunk.attrs)
            yield part
            return
        remaining -= len(chunk)
        yield chunk


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": ["rows"]}, {"required": ["fraction"]}],
        "properties": {
            "rows": {"type": "integer", "minimum": 0},
            "fraction": {"type": "number", "minimum": 0, "maximum": 1},
            "seed": {"type": "integer"},
        },
    },
    scope="stream",
    columns=uses(),
)
def sample(chunks: Iterator[pd.DataFrame], options, ctx) -> Iterator[pd.DataFrame]:
    """Keep a random sample of the stream: `rows: N` (exactly N rows, or all when fewer, uniform over
    the whole stream, held in memory) or `fraction: 0.1` (each row with that probability, streamed).
    Rows keep their order. The same `seed` (default 0) gives the same sample of the same input.

    Example:

        - sample: {rows: 500, seed: 7}
    """
    rng = np.random.default_rng(options.get("seed", 0))
    if "fraction" in options:
        for chunk in chunks:
            yield _rows(chunk, rng.random(len(chunk)) < options["fraction"])
        return
    want, kept, kept_keys, kept_pos, seen, first = options["rows"], None, None, None, 0, None
    for chunk in chunks:
        first = chunk if first is None else first
        keys = rng.random(len(chunk))
        pos = np.arange(seen, seen + len(chunk))
        seen += len(chunk)
        if kept is not None and len(kept) >= want:
            take = keys < kept_keys.max() if want else np.zeros(len(chunk), bool)
            chunk, keys, pos = chunk[take], keys[take], pos[take]
        pool = chunk if kept is None else pd.concat([kept, chunk])
        pool_keys = keys if kept is None else np.concatenate([kept_keys, keys])
        pool_pos = pos if kept is None else np.concatenate([kept_pos, pos])
        if len(pool) > want:
            best = np.argpartition(pool_keys, want - 1)[:want] if want else np.zeros(0, dtype=np.int64)
            pool, pool_keys, pool_pos = pool.iloc[best], pool_keys[best], pool_pos[best]
        kept, kept_keys, kept_pos = pool, pool_keys, pool_pos
    if kept is None:
        return
    out = kept.iloc[np.argsort(kept_pos, kind="stable")]
    out.attrs = dict(first.attrs)
    yield from bounded([out], chunk_rows(ctx))
