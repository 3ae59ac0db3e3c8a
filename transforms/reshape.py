"""Reshaping rules: aggregate (group by), unpivot (wide to long), pivot (long to wide).

aggregate and pivot read the whole stream but hold only partial results per group
(transforms._groups), spilled to disk by key past `buffer_mb`, so memory is bounded whatever the
number of groups. Groups come out in the order they first appear, nulls forming a group of their
own. Output rows have no source line: their index counts them from 1.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import rule
from transforms import column_use
from transforms._frames import arrow_series, as_list, bounded, chunk_rows, mask_of, need_columns, text_of, to_arrow
from transforms._groups import SEQ, GroupState, write_tables
from transforms._spill import BUFFER_MB, buffer_bytes, merge_runs, rebatch

NAME = {"type": "string", "minLength": 1}
NAMES = {"type": "array", "items": NAME, "uniqueItems": True}
FUNCTIONS = ("count", "sum", "mean", "min", "max", "first", "last")


def _parse_compute(compute: dict) -> list[tuple[str, str, str | None]]:
    out = []
    for name, spec in compute.items():
        if spec == "count":
            out.append((name, "count", None))
        else:
            ((fn, column),) = spec.items()
            out.append((name, fn, column))
    return out


_AGGREGATE = {
    "oneOf": [
        {"const": "count"},
        {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {fn: NAME for fn in FUNCTIONS},
        },
    ]
}


def _bind_aggregate(options, ctx):
    by = as_list(options.get("by"))
    clash = [n for n in options["compute"] if n in by]
    if clash:
        raise OptionError(f"{clash[0]!r} is both a `by` column and a computed column", ("compute", clash[0]))
    return {**options, "by": by, "compute": _parse_compute(options["compute"])}


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["compute"],
        "properties": {
            "by": {"oneOf": [NAME, NAMES]},
            "compute": {"type": "object", "minProperties": 1, "additionalProperties": _AGGREGATE},
            "buffer_mb": BUFFER_MB,
        },
    },
    scope="stream",
    bind=_bind_aggregate,
    columns=column_use.aggregate,
)
def aggregate(chunks: Iterator[pd.DataFrame], options, ctx) -> Iterator[pd.DataFrame]:
    """Group the whole stream by the `by` columns (none: one row for everything) and compute, per
    group, `count` (rows), or {count|sum|mean|min|max|first|last: column}; counts and sums skip
    nulls, first and last are the first and last non-null values, and a sum or mean of no values is
    null. Up to `buffer_mb` (default 64) of groups are held in memory; beyond that they are spilled
    by key to Arrow files in the state folder and each part aggregated alone, so any number of
    groups fits in bounded memory.

    Example:

        - aggregate:
            by: [town, list_year]
            compute:
              sales: count
              total: {sum: sale_amount}
              average: {mean: sale_amount}
              latest: {max: date_recorded}
    """
    by, compute = options["by"], options["compute"]
    parts: list[tuple[str | None, str]] = []
    for _, fn, column in compute:
        wanted = (
            [(None, "count_all")]
            if column is None
            else [(column, "sum"), (column, "count")]
            if fn == "mean"
            else [(column, fn)]
        )
        parts += [p for p in wanted if p not in parts]
    state, seen = GroupState(by, parts, "aggregate", ctx, buffer_bytes(options)), False
    try:
        for chunk in chunks:
            need_columns(chunk, by + [c for _, _, c in compute if c], "aggregate")
            state.add(chunk)
            seen = True
        if not seen:
            return
        done = 0
        for table in rebatch(state.sorted(), chunk_rows(ctx)):
            columns = _aggregated(table, by, compute, parts)
            yield _frame(columns, table.num_rows, done)
            done += table.num_rows
    finally:
        state.close()


def _aggregated(table: pa.Table, by: list[str], compute, parts) -> dict:
    """The output columns of some groups from their key fields and partial results."""
    columns = {k: table.column(i) for i, k in enumerate(by)}

    def part(c, f):
        return table.column(parts.index((c, f)) + len(by))

    for name, fn, column in compute:
        if column is None:
            columns[name] = part(None, "count_all")
        elif fn == "mean":
            # safe=False: an int64 sum beyond 2**53 becomes the nearest float, as a mean may
            columns[name] = pc.divide(
                pc.cast(part(column, "sum"), pa.float64(), safe=False), pc.cast(part(column, "count"), pa.float64())
            )
        else:
            columns[name] = part(column, fn)
    return columns


def _frame(columns: dict, rows: int, done: int = 0) -> pd.DataFrame:
    """Output rows `done` + 1 ... `done` + `rows`, numbered from 1 over the whole output."""
    index = pd.RangeIndex(done + 1, done + rows + 1)
    out = pd.DataFrame({n: arrow_series(v, index, n) for n, v in columns.items()}, index=index)
    out.index = pd.Index(np.arange(done + 1, done + rows + 1, dtype=np.int64))
    return out


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["columns"],
        "properties": {
            "columns": {"type": "array", "items": NAME, "minItems": 1, "uniqueItems": True},
            "name": NAME,
            "value": NAME,
            "skip_nulls": {"type": "boolean"},
        },
    },
    scope="stream",
    shorthand="columns",
    columns=column_use.unpivot,
)
def unpivot(chunks: Iterator[pd.DataFrame], options, ctx) -> Iterator[pd.DataFrame]:
    """Turn `columns` into rows (wide to long): each row becomes one row per listed column, with
    the column's name in `name` (default "name") and its value in `value` (default "value"); the
    other columns are repeated and the source line stays the row's index. The values keep their
    type when the columns share one, and become text otherwise. `skip_nulls: true` leaves out
    null values.

    Example:

        - unpivot: {columns: ["2021", "2022", "2023"], name: year, value: amount}
    """
    wide = options["columns"]
    name_col, value_col = options.get("name", "name"), options.get("value", "value")
    limit = chunk_rows(ctx)
    for chunk in chunks:
        need_columns(chunk, wide, "unpivot")
        keep = [c for c in chunk.columns if c not in wide]
        clash = [c for c in (name_col, value_col) if c in keep]
        if clash:
            raise RunFailed(f"unpivot: the rows already have a column {clash[0]!r}; choose another `name` or `value`")
        yield from bounded([_unpivot(chunk, wide, keep, name_col, value_col, options)], limit)


def _unpivot(chunk, wide, keep, name_col, value_col, options) -> pd.DataFrame:
    n, k = len(chunk), len(wide)
    data = [to_arrow(chunk[c]) for c in wide]
    if len({d.type for d in data}) > 1:
        data = [text_of(chunk[c]) for c in wide]
    values = pa.chunked_array(
        [d for d in data for d in (d.chunks if isinstance(d, pa.ChunkedArray) else [d])], type=data[0].type
    )
    # row-major: row r's values are rows r*k .. r*k+k-1 of the output
    order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()
    rows = np.repeat(np.arange(n), k)
    names = pa.array(np.tile(np.array(wide, dtype=object), n), type=pa.string())
    taken = pc.take(values, pa.array(order, type=pa.int64()))
    if options.get("skip_nulls"):
        present = np.asarray(pc.is_valid(taken).to_numpy(zero_copy_only=False), dtype=bool)
        rows, names, taken = rows[present], names.filter(pa.array(present)), taken.filter(pa.array(present))
    out = chunk[keep].iloc[rows].copy(deep=False)
    out[name_col] = arrow_series(names, out.index, name_col)
    out[value_col] = arrow_series(taken, out.index, value_col)
    out.attrs = dict(chunk.attrs)
    return out


def _bind_pivot(options, ctx):
    index = as_list(options.get("index"))
    if options["name"] in index or options["value"] in index:
        raise OptionError("`index` must not contain the `name` or `value` column", ("index",))
    names = [str(n) for n in options.get("names", [])]
    clash = [n for n in names if n in index]
    if clash:
        raise OptionError(f"{clash[0]!r} is both in `names` and in `index`", ("names",))
    return {**options, "index": index, "agg": options.get("agg", "first"), "names": names}


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["index", "name", "value"],
        "properties": {
            "index": {"oneOf": [NAME, NAMES]},
            "name": NAME,
            "value": NAME,
            "names": {
                "type": "array",
                "items": {"type": ["string", "number", "boolean"]},
                "minItems": 1,
                "uniqueItems": True,
            },
            "agg": {"enum": list(FUNCTIONS)},
            "buffer_mb": BUFFER_MB,
        },
    },
    scope="stream",
    bind=_bind_pivot,
    columns=column_use.pivot,
)
def pivot(chunks: Iterator[pd.DataFrame], options, ctx) -> Iterator[pd.DataFrame]:
    """Turn rows into columns (long to wide): one row per distinct `index`, one column per distinct
    value of the `name` column (as text, in order of appearance), holding the `value` column. When
    an index and name occur more than once, `agg` combines their values (default first; also
    last, sum, mean, min, max, count). Rows with a null name are left out. `names` fixes the new
    columns (in that order, whatever the data holds; rows with another name are rejected), which a
    target with a fixed set of columns needs. Up to `buffer_mb` (default 64) of index-name pairs
    are held in memory; beyond that they are spilled by index to Arrow files in the state folder.

    Example:

        - pivot: {index: [town], name: year, value: total, agg: sum, names: ["2022", "2023"]}
    """
    index, name_col, value_col, agg = options["index"], options["name"], options["value"], options["agg"]
    parts = [(value_col, "sum"), (value_col, "count")] if agg == "mean" else [(value_col, agg)]
    state = GroupState(index + [name_col], parts, "pivot", ctx, buffer_bytes(options), split_keys=len(index))
    fixed, seen = options["names"], False
    try:
        for chunk in chunks:
            need_columns(chunk, index + [name_col, value_col], "pivot")
            if fixed:
                text = text_of(chunk[name_col])
                bad = mask_of(pc.and_kleene(pc.is_valid(text), pc.invert(pc.is_in(text, value_set=pa.array(fixed)))))
                if bad.any():
                    ctx.reject(chunk[bad], f"{name_col} is not one of the pivot's names", column=name_col)
                    chunk = chunk[~bad]
            state.add(chunk)
            seen = True
        if seen:
            yield from _pivot_rows(state, index, name_col, agg, fixed, ctx)
    finally:
        state.close()


def _pivot_rows(state: GroupState, index, name_col, agg, fixed, ctx) -> Iterator[pd.DataFrame]:
    """Pass 1 folds each partition of the index-name groups, leaves out those with a null name and
    finds where each name first appears, which orders the new columns; pass 2 turns each
    partition's groups into wide rows, and the partitions are merged on the first appearance of
    their index. In memory it is one partition and no file."""
    k = len(index)
    folded, first_seen, skipped, value_type = [], {}, 0, None
    for p, stream in enumerate(state.partition_results()):
        table = pa.concat_tables(list(stream))
        named = pc.is_valid(table.column(k))
        dropped = table.num_rows - pc.sum(named).as_py() if table.num_rows else 0
        if dropped:
            skipped += dropped
            table = table.filter(named)
        value_type = value_type or (pa.float64() if agg == "mean" else table.schema.field(k + 1).type)
        name_codes, uniques = _names_of(table, k)
        firsts = np.unique(name_codes, return_index=True)[1]
        seqs = table.column(SEQ).to_numpy()
        for j, name in enumerate(uniques):
            first_seen[name] = min(first_seen.get(name, seqs[firsts[j]]), seqs[firsts[j]])
        if not state.spilled:
            folded.append(table)
        elif table.num_rows and write_tables(state.spill.file(f"named-{p:03d}.arrow"), [table]):
            folded.append(state.spill.file(f"named-{p:03d}.arrow"))
    if skipped:
        ctx.log.info("pivot left out %d groups with a null %s", skipped, name_col)
    labels = sorted(first_seen, key=first_seen.get)
    clash = next((label for label in labels if label in index), None)
    if clash is not None:
        raise RunFailed(f"pivot: the name {clash!r} is also an `index` column; rename one of them first")
    labels = fixed or labels
    where = {label: j for j, label in enumerate(labels)}
    if not state.spilled:
        wide = (_wide(t, k, agg, where, value_type) for t in folded)
    else:
        runs, size, rows = [], 0, 0
        for p, path in enumerate(folded):
            with pa.OSFile(str(path), "rb") as f:
                table = _wide(pa.ipc.open_file(f).read_all(), k, agg, where, value_type)
            path.unlink()
            runs.append(state.spill.file(f"wide-{p:03d}.arrow"))
            rows += write_tables(runs[-1], [table])
            size += table.nbytes
        block = max(1024, state.budget // max(1, size // max(1, rows)) // (4 * max(1, len(runs))))
        wide = merge_runs(runs, [(SEQ, "ascending", "at_end")], block, chunk_rows(ctx))
    done = 0
    for table in rebatch(wide, chunk_rows(ctx)):
        columns = {name: table.column(i) for i, name in enumerate(index)}
        columns.update({label: table.column(k + j) for j, label in enumerate(labels)})
        yield _frame(columns, table.num_rows, done)
        done += table.num_rows


def _names_of(table: pa.Table, k: int) -> tuple[np.ndarray, list[str]]:
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


def _wide(table: pa.Table, k: int, agg: str, where: dict, value_type) -> pa.Table:
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
    wide = [pa.nulls(groups, value_type)] * len(where)
    name_codes, uniques = _names_of(table, k)
    for j, name in enumerate(uniques):
        if name in where:
            rows = np.flatnonzero(name_codes == j)
            slot = np.full(groups, -1, dtype=np.int64)
            slot[codes[rows]] = rows
            wide[where[name]] = pc.take(values, pa.array(slot, mask=slot < 0))
    columns.update({f"l{j}": column for j, column in enumerate(wide)})
    columns[SEQ] = pc.take(table.column(SEQ), first_rows)
    return pa.table(columns)
