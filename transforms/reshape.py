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
from transforms._groups import GroupState
from transforms._spill import BUFFER_MB, buffer_bytes, rebatch
from transforms._widen import widen

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
    labels, tables = widen(state, len(index), name_col, agg, ctx)
    clash = next((label for label in labels if label in index), None)
    if clash is not None:
        raise RunFailed(f"pivot: the name {clash!r} is also an `index` column; rename one of them first")
    labels = fixed or labels
    done = 0
    for table in rebatch(tables(labels), chunk_rows(ctx)):
        columns = {name: table.column(i) for i, name in enumerate(index)}
        columns.update({label: table.column(len(index) + j) for j, label in enumerate(labels)})
        yield _frame(columns, table.num_rows, done)
        done += table.num_rows
