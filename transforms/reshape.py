"""Reshaping rules: aggregate (group by), unpivot (wide to long), pivot (long to wide).

aggregate and pivot read the whole stream but hold only one row per group: each chunk is reduced
to partial results with Arrow's hash aggregation (Table.group_by), and partial results are folded
together as they accumulate (sum of sums, min of mins, first of firsts...), so memory follows the
number of groups, not of rows. Groups come out in the order they first appear, nulls forming a
group of their own. Output rows have no source line: their index counts them from 1.
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

NAME = {"type": "string", "minLength": 1}
NAMES = {"type": "array", "items": NAME, "uniqueItems": True}
FUNCTIONS = ("count", "sum", "mean", "min", "max", "first", "last")
# How partial results of each Arrow aggregation fold into the next.
_FOLD = {"count_all": "sum", "count": "sum", "sum": "sum", "min": "min", "max": "max", "first": "first", "last": "last"}
_NUMERIC = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)


class GroupState:
    """Partial aggregates per group, folded as chunks arrive; memory grows with groups only."""

    def __init__(self, keys: list[str], parts: list[tuple[str | None, str]], rule_name: str):
        self.keys, self.parts, self.rule_name = keys, parts, rule_name
        self.fields = [f"k{i}" for i in range(len(keys))]
        self.values = sorted({c for c, _ in parts if c is not None})
        self.state: pa.Table | None = None
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.types: dict[str, pa.DataType] = {}
        self.rows = 0

    def _names(self) -> list[str]:
        """Partial result fields, then the group's first row number (Arrow's hash aggregation does
        not promise any group order, so the order of appearance is kept explicitly)."""
        return [("count_all" if c is None else f"v{self.values.index(c)}_{fn}") for c, fn in self.parts] + ["seq_min"]

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
        except pa.ArrowNotImplementedError:
            bad = next(
                (c, fn)
                for c, fn in self.parts
                if fn in ("sum", "mean") and c is not None and not any(t(self.types[c]) for t in _NUMERIC)
            )
            raise RunFailed(
                f"{self.rule_name}: cannot {bad[1]} column {bad[0]!r}: it holds "
                f"{self.types[bad[0]]}, not numbers; cast it to number first"
            ) from None
        self.pending.append(partial.select(self.fields + self._names()))
        self.pending_rows += partial.num_rows
        if self.pending_rows >= max(100_000, self.state.num_rows if self.state is not None else 0):
            self._fold()

    def _fold(self) -> None:
        tables = ([self.state] if self.state is not None else []) + self.pending
        self.pending, self.pending_rows = [], 0
        if not tables:
            return
        table = pa.concat_tables(tables, promote_options="permissive")
        names = self._names()
        folds = ["sum" if n == "count_all" else _FOLD[n.split("_", 1)[1]] for n in names]
        folded = table.group_by(self.fields, use_threads=False).aggregate(list(zip(names, folds)))
        self.state = folded.select(self.fields + [f"{n}_{f}" for n, f in zip(names, folds)]).rename_columns(
            self.fields + names
        )

    def result(self) -> pa.Table | None:
        """One row per group in order of appearance: the key fields, then one field per partial
        aggregate, in `parts` order."""
        self._fold()
        if self.state is None:
            return None
        return self.state.sort_by("seq_min").drop_columns(["seq_min"])


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
    null. Memory follows the number of groups, not rows.

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
    state, seen = GroupState(by, parts, "aggregate"), False
    for chunk in chunks:
        need_columns(chunk, by + [c for _, _, c in compute if c], "aggregate")
        state.add(chunk)
        seen = True
    if not seen:
        return
    table = state.result()
    columns = {k: table.column(f) for k, f in zip(by, state.fields)}
    for name, fn, column in compute:

        def part(c, f):
            return table.column(parts.index((c, f)) + len(by))

        if column is None:
            columns[name] = part(None, "count_all")
        elif fn == "mean":
            # safe=False: an int64 sum beyond 2**53 becomes the nearest float, as a mean may
            columns[name] = pc.divide(
                pc.cast(part(column, "sum"), pa.float64(), safe=False), pc.cast(part(column, "count"), pa.float64())
            )
        else:
            columns[name] = part(column, fn)
    yield from bounded([_frame(columns, table.num_rows)], chunk_rows(ctx))


def _frame(columns: dict, rows: int) -> pd.DataFrame:
    index = pd.RangeIndex(1, rows + 1)
    out = pd.DataFrame({n: arrow_series(v, index, n) for n, v in columns.items()}, index=index)
    out.index = pd.Index(np.arange(1, rows + 1, dtype=np.int64))
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
    target with a fixed set of columns needs. Memory follows the number of index-name pairs.

    Example:

        - pivot: {index: [town], name: year, value: total, agg: sum, names: ["2022", "2023"]}
    """
    index, name_col, value_col, agg = options["index"], options["name"], options["value"], options["agg"]
    parts = [(value_col, "sum"), (value_col, "count")] if agg == "mean" else [(value_col, agg)]
    state, seen = GroupState(index + [name_col], parts, "pivot"), False
    fixed = options["names"]
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
    if not seen:
        return
    table = state.result()
    named = pc.is_valid(table.column(len(index)))
    skipped = table.num_rows - pc.sum(named).as_py() if table.num_rows else 0
    if skipped:
        ctx.log.info("pivot left out %d groups with a null %s", skipped, name_col)
        table = table.filter(named)
    values = table.column(len(index) + 1)
    if agg == "mean":
        values = pc.divide(
            pc.cast(values, pa.float64(), safe=False), pc.cast(table.column(len(index) + 2), pa.float64())
        )
    n = table.num_rows
    if index:
        keys = pd.DataFrame(
            {f"k{i}": arrow_series(table.column(i), pd.RangeIndex(n), f"k{i}") for i in range(len(index))}
        )
        codes = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
    else:
        codes = np.zeros(n, dtype=np.int64)
    groups = int(codes.max()) + 1 if n else 0
    first_rows = np.unique(codes, return_index=True)[1] if n else np.zeros(0, dtype=np.int64)
    columns = {k: pc.take(table.column(i), pa.array(first_rows, type=pa.int64())) for i, k in enumerate(index)}
    names = pc.cast(table.column(len(index)), pa.string())
    name_codes, uniques = pd.factorize(
        pd.Series(pd.arrays.ArrowExtensionArray(names)) if n else pd.Series([], dtype=object)
    )
    labels = [str(u) for u in uniques]
    for label in fixed:
        if label not in labels:
            labels.append(label)
            columns[label] = pa.nulls(groups, values.type)
    for j, label in enumerate(labels[: len(uniques)]):
        if label in columns:
            raise RunFailed(f"pivot: the name {label!r} is also an `index` column; rename one of them first")
        where = np.flatnonzero(name_codes == j)
        slot = np.full(groups, -1, dtype=np.int64)
        slot[codes[where]] = where
        columns[label] = pc.take(values, pa.array(slot, mask=slot < 0))
    if fixed:
        columns = {**{k: columns[k] for k in index}, **{k: columns[k] for k in fixed}}
    yield from bounded([_frame(columns, groups)], chunk_rows(ctx))
