"""Lookup tables: map a code through a table (`lookup`) or add a table's columns (`join`).

The table is given inline (`values: {code: name}` or `rows: [{...}]`), as a CSV file (`csv: path`,
every cell text) or as a SQL query (`sql: {url, query}`), and is read once, when the route is
planned (`bind`): a missing file, a failing query, a missing key column or a key that appears twice
is reported before any row is read. Keys are compared as text, so the number 12 matches the text
"12" (and "012" does not). Matching a chunk is one hash lookup over the column (pc.index_in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.basics.columnflow import uses
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import rule
from transforms import column_use
from transforms._frames import arrow_series, mask_of, need_columns, text_of, to_arrow, with_columns

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

# pandas, Arrow and numpy are imported by the functions that touch a chunk, so that binding these
# rules (`route validate`) loads none of them.

NAME = {"type": "string", "minLength": 1}
TABLE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "values": {"type": "object", "minProperties": 1},
        "rows": {"type": "array", "items": {"type": "object"}, "minItems": 1},
        "csv": {"type": "string", "minLength": 1},
        "delimiter": {"type": "string", "minLength": 1, "maxLength": 1},
        "encoding": {"type": "string", "minLength": 1},
        "sql": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url", "query"],
            "properties": {"url": NAME, "query": NAME},
        },
    },
    "oneOf": [{"required": ["values"]}, {"required": ["rows"]}, {"required": ["csv"]}, {"required": ["sql"]}],
}


@dataclass
class Table:
    """A lookup table read at plan time: its key column as text, and every column as Arrow data."""

    keys: pa.Array
    columns: dict[str, pa.Array]


def _read_table(spec: dict, ctx) -> pa.Table:
    import pandas as pd
    import pyarrow as pa

    if "values" in spec:
        try:
            values = pa.array(list(spec["values"].values()))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise OptionError(
                "the values mix types (text and numbers); quote them all to make them text", ("table", "values")
            ) from None
        return pa.table({"key": pa.array([str(k) for k in spec["values"]]), "value": values})
    if "rows" in spec:
        try:
            return pa.Table.from_pylist(spec["rows"])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise OptionError(f"the rows do not form a table: {exc}", ("table", "rows")) from None
    if "csv" in spec:
        path = ctx.resolve_path(spec["csv"])
        try:
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                sep=spec.get("delimiter", ","),
                encoding=spec.get("encoding", "utf-8-sig"),
            )
        except FileNotFoundError:
            raise OptionError(f"lookup table file not found: {path}", ("table", "csv")) from None
        except (UnicodeDecodeError, LookupError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise OptionError(f"cannot read lookup table {path}: {exc}", ("table", "csv")) from None
        return pa.table({c: pa.array(frame[c], type=pa.string(), from_pandas=True) for c in frame.columns})
    return _read_sql(spec["sql"], ctx)


def _read_sql(spec: dict, ctx) -> pa.Table:
    import pyarrow as pa

    try:
        import sqlalchemy
    except ImportError:
        raise OptionError(
            "a SQL lookup table needs SQLAlchemy: pip install 'route-etl[sql]'", ("table", "sql")
        ) from None

    url = spec["url"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        url = "sqlite:///" + str(ctx.resolve_path(url[len("sqlite:///") :]))
    try:
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect() as conn:
                result = conn.execute(sqlalchemy.text(spec["query"]))
                names = list(result.keys())
                rows = result.fetchall()
        finally:
            engine.dispose()
    except Exception as exc:  # any driver error is the user's to fix: show it, without secrets
        message = str(exc).split("\n(Background")[0]
        raise OptionError(f"lookup query failed: {ctx.run.mask(message)}", ("table", "sql")) from None
    columns = list(zip(*rows)) if rows else [[] for _ in names]
    try:
        return pa.table({n: pa.array(list(v)) for n, v in zip(names, columns)})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise OptionError(f"the query's columns cannot be read: {exc}", ("table", "sql")) from None


def load_table(options: dict, ctx, key: str, ignore_case: bool = False) -> Table:
    """Read the `table` option and index it by its `key` column (as text); errors are OptionErrors."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _read_table(options["table"], ctx)
    if key not in table.column_names:
        raise OptionError(
            f"the lookup table has no column {key!r}; its columns are: {', '.join(table.column_names)}", ("key",)
        )
    keys = pc.cast(table.column(key), pa.string()).combine_chunks()
    if ignore_case:
        keys = pc.utf8_lower(keys)
    counts = pc.value_counts(keys.drop_null())
    twice = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(twice):
        raise OptionError(
            f"the lookup table has key {twice[0].as_py()!r} more than once; each key must appear once", ("table",)
        )
    return Table(keys, {n: table.column(n).combine_chunks() for n in table.column_names})


def _match(chunk: pd.DataFrame, column: str, table: Table, ignore_case: bool):
    """Position of each row's key in the table (null when unmatched) and the unmatched-key mask."""
    import pyarrow.compute as pc

    keys = text_of(chunk[column])
    if ignore_case:
        keys = pc.utf8_lower(keys)
    position = pc.index_in(keys, value_set=table.keys)
    unmatched = mask_of(pc.and_kleene(pc.is_null(position), pc.is_valid(keys)))
    return position, unmatched


def _bind_lookup(options, ctx):
    import pyarrow as pa

    key, value = options.get("key", "key"), options.get("value", "value")
    table = load_table(options, ctx, key, options.get("ignore_case", False))
    if value not in table.columns:
        raise OptionError(
            f"the lookup table has no column {value!r}; its columns are: {', '.join(table.columns)}", ("value",)
        )
    unmatched = options.get("unmatched", "reject")
    if unmatched == "default" and "default" not in options:
        raise OptionError("`unmatched: default` needs a `default` value", ("default",))
    default = None
    if unmatched == "default":
        try:
            default = pa.scalar(options["default"]).cast(table.columns[value].type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            raise OptionError(
                f"`default` {options['default']!r} is not of the table's value type ({table.columns[value].type})",
                ("default",),
            ) from None
    return {**options, "table": table, "value": value, "unmatched": unmatched, "default_value": default}


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["column", "table"],
        "properties": {
            "column": NAME,
            "table": TABLE,
            "key": NAME,
            "value": NAME,
            "into": NAME,
            "unmatched": {"enum": ["reject", "keep", "default"]},
            "default": {},
            "ignore_case": {"type": "boolean"},
        },
    },
    bind=_bind_lookup,
    columns=uses(reads=["column"], adds=["into"]),
)
def lookup(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Map the values of `column` through a table: the row whose `key` column (default "key")
    equals the value gives its `value` column (default "value") `into` a new or the same column.
    A value missing from the table is rejected (`unmatched: reject`, the default), kept as it is
    (`keep`: `into` is null, or unchanged when `into` is `column`) or given `default`. Null values
    stay null.

    Example:

        - lookup:
            column: town_code
            table: {csv: lookups/towns.csv}
            key: code
            value: town_name
            into: town
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column, table = options["column"], options["table"]
    into = options.get("into", column)
    need_columns(chunk, [column], "lookup")
    position, unmatched = _match(chunk, column, table, options.get("ignore_case", False))
    if options["unmatched"] == "reject" and unmatched.any():
        ctx.reject(chunk[unmatched], "not in the lookup table", column=column)
        keep = ~unmatched
        chunk, position = chunk[keep], pc.filter(position, pa.array(keep))
        unmatched = unmatched[keep]
    values = pc.take(table.columns[options["value"]], position)
    if options["unmatched"] == "default" and unmatched.any():
        values = pc.if_else(pa.array(unmatched), options["default_value"], values)
    elif options["unmatched"] == "keep" and into == column:
        # Unmatched values stay; the column keeps one type whatever the chunk holds: the table's
        # value type when the column already has it, text otherwise.
        original = to_arrow(chunk[column])
        if original.type != values.type:
            values, original = pc.cast(values, pa.string()), text_of(chunk[column])
        values = pc.if_else(pa.array(unmatched), original, values)
    return with_columns(chunk, {into: arrow_series(values, chunk.index, into)})


def _bind_join(options, ctx):
    key = options.get("key", options["column"])
    table = load_table(options, ctx, key, options.get("ignore_case", False))
    columns = options.get("columns") or [c for c in table.columns if c != key]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise OptionError(
            f"the lookup table has no column {missing[0]!r}; its columns are: {', '.join(table.columns)}", ("columns",)
        )
    if not columns:
        raise OptionError("the table has no columns besides its key to add", ("table",))
    return {**options, "table": table, "columns": columns, "unmatched": options.get("unmatched", "keep")}


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["column", "table"],
        "properties": {
            "column": NAME,
            "table": TABLE,
            "key": NAME,
            "columns": {"type": "array", "items": NAME, "minItems": 1, "uniqueItems": True},
            "prefix": {"type": "string"},
            "unmatched": {"enum": ["reject", "keep"]},
            "ignore_case": {"type": "boolean"},
        },
    },
    bind=_bind_join,
    columns=column_use.join,
)
def join(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Add columns from a table whose `key` column (default: the same name as `column`) matches
    `column`: a left join against a table read once. Rows with no match keep nulls in the new
    columns (`unmatched: keep`, the default) or are rejected (`unmatched: reject`). `columns` picks
    the table's columns to add (default all but the key); `prefix` renames them.

    Example:

        - join:
            column: tract
            table: {sql: {url: "postgresql://${DB_USER}@db/census", query: "SELECT tract, population FROM acs"}}
            columns: [population]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    on, table = options["column"], options["table"]
    need_columns(chunk, [on], "join")
    names = {options.get("prefix", "") + c: c for c in options["columns"]}
    clash = [n for n in names if n in chunk.columns]
    if clash:
        raise RunFailed(f"join: the rows already have column {clash[0]!r}; add a `prefix` or leave it out of `columns`")
    position, unmatched = _match(chunk, on, table, options.get("ignore_case", False))
    if options["unmatched"] == "reject":
        bad = unmatched | chunk[on].isna().to_numpy()
        if bad.any():
            ctx.reject(chunk[bad], "no matching row in the join table", column=on)
            chunk, position = chunk[~bad], pc.filter(position, pa.array(~bad))
    added = {
        name: arrow_series(pc.take(table.columns[source], position), chunk.index, name)
        for name, source in names.items()
    }
    return with_columns(chunk, added)
