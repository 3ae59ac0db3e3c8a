"""The sql source: a table or a query of any SQLAlchemy database, streamed in chunks.

Rows come through a server-side cursor (`stream_results`, `yield_per`: PostgreSQL declares a
cursor, PyMySQL reads unbuffered), one chunk of `ctx.run.chunk_rows` rows at a time, so memory
does not grow with the table. Column types come from the database (pipeline/sources/sql_types.py).
The index of each chunk is a running row number from 1; chunk.attrs["source"] names the URL
(without password) and the table.

Incremental reads (`incremental: {column, start}`) select rows whose column is greater than the
mark committed by the last successful run (on the first run, at least `start`; `--full` ignores
the mark once). Rows that share the mark's exact value and arrive after it was taken are not
read: use a column that only grows (an id, a modification time stamped by the database). The
new mark is only recorded as pending when the last row has been read (a run cut short by --limit
records none); the executor calls `on_delivered()` once every target has confirmed delivery, and
only then is it committed (see pipeline/basics/marks.py).

`partition: {column, parts}` reads the rows as ranges of a column, one query each, and its nulls
as one more (pipeline/sources/sql_partition.py): one after the other here, on several Dask workers
at once with `route execute --cluster`. Each part numbers its rows from 1 and names itself in
chunk.attrs["source"].
"""

# Longer than 400 lines because a table or a query, its incremental mark and its partitions meet in
# one read; cursors, types and partition ranges live in sql_cursor.py, sql_types.py and
# sql_partition.py.

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipeline.basics.dtypes import frame_from_arrow
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.marks import marks_for
from pipeline.basics.plugins import source
from pipeline.basics.sqlurls import connect_error, make_engine, mask_text, mask_url, parse_url, reason, sqlite_file
from pipeline.sources import sql_types as st
from pipeline.sources.base import Source
from pipeline.sources.sql_cursor import driver_errors, open_cursor
from pipeline.sources.sql_partition import PARTITION_SCHEMA, SqlPart, minmax_table, part_of_table, query_sql, split

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "description": "a SQLAlchemy URL: postgresql://user:${DB_PASSWORD}@host/db, "
            "mysql://..., sqlite:///data/local.db",
        },
        "table": {"type": "string", "minLength": 1, "description": "the table to read (or schema.table)"},
        "schema": {"type": "string", "minLength": 1, "description": "the table's schema"},
        "columns": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "the columns to read, in this order (default: all)",
        },
        "where": {"type": "string", "minLength": 1, "description": "an SQL condition on the table's rows"},
        "query": {
            "type": "string",
            "minLength": 1,
            "description": "an SQL query instead of a table; :name marks a parameter",
        },
        "params": {"type": "object", "description": "values of the query's :name parameters"},
        "incremental": {
            "type": "object",
            "additionalProperties": False,
            "required": ["column"],
            "properties": {
                "column": {
                    "type": "string",
                    "minLength": 1,
                    "description": "read only rows whose column is past the last delivered value",
                },
                "start": {"description": "on the first run (and with --full), rows from this value on"},
            },
            "description": "read only the rows added or changed since the last successful run",
        },
        "partition": PARTITION_SCHEMA,
    },
}

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def typed_start(value: Any, kind: str | None = None) -> Any:
    """`incremental.start` as the value to bind: ISO text becomes a date or datetime, digits a number."""
    if not isinstance(value, str):
        if kind == st.DATE and isinstance(value, dt.datetime):
            return value.date()
        if kind in (st.DATETIME, st.DATETIME_TZ) and type(value) is dt.date:
            return dt.datetime(value.year, value.month, value.day)
        return value
    text = value.strip()
    if kind == st.TEXT:
        return text
    if _ISO_DATE.match(text):
        day = dt.date.fromisoformat(text)
        return dt.datetime(day.year, day.month, day.day) if kind in (st.DATETIME, st.DATETIME_TZ) else day
    if _ISO_STAMP.match(text):
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return stamp.date() if kind == st.DATE else stamp
    if _NUMBER.match(text) and kind in (None, st.UNKNOWN, st.INTEGER, st.NUMBER):
        return float(text) if "." in text else int(text)
    return text


@source(OPTIONS_SCHEMA)
class SqlSource(Source):
    """Rows of a database table or query.

    ```yaml
    source:
      sql:
        url: postgresql://reader:${DB_PASSWORD}@db.example.org/finance
        table: payments             # or query: "SELECT ... WHERE agency = :agency"
        schema: public              #    with params: {agency: DOT}
        columns: [id, paid_on, amount, updated_at]
        where: "amount > 0"
        incremental: {column: updated_at, start: "2024-01-01"}
        partition: {column: id, parts: 4}   # read in 4 ranges of id (and its nulls), one query
                                            # each: in parallel with route execute --cluster
    ```
    """

    plan_columns = "network"  # columns() asks the database for a table's columns (not with --offline)

    def __init__(self, options: dict, ctx):
        self.options = options
        self.ctx = ctx
        table, query = options.get("table"), options.get("query")
        if bool(table) == bool(query):
            raise OptionError(
                "give either a table or a query" if not table else "give a table or a query, not both",
                ("query",) if query else (),
            )
        for key in ("schema", "columns", "where"):
            if query and key in options:
                raise OptionError(f"'{key}' goes with table; with a query, write it in the SQL", (key,))
        if table and "params" in options:
            raise OptionError("params are bound into a query; with a table, write the condition in where", ("params",))
        self.url = options["url"]
        self.engine = make_engine(self.url, ctx.route_dir, poolclass=NullPool)  # one connection, closed after
        self.sqlite_path = sqlite_file(self.engine.url)
        self.schema = options.get("schema")
        self.table = table
        if table and not self.schema and "." in table:
            self.schema, self.table = table.split(".", 1)
        inc = options.get("incremental")
        self.inc_column = inc["column"] if inc else None
        # An incremental read that finds nothing new delivers nothing: the executor leaves every
        # target as it is rather than replacing an output with no rows.
        self.incremental = inc is not None
        if inc and options.get("columns") and self.inc_column not in options["columns"]:
            raise OptionError(
                f"add '{self.inc_column}' to columns: the incremental column is read to know where the next run starts",
                ("columns",),
            )
        where = f"{self.schema}.{self.table}" if self.schema else self.table
        self.incremental_key = f"sql:{where or 'query'}.{self.inc_column}" if inc else None
        self.partition = options.get("partition")
        self.partitioned = bool(self.partition)  # read as ranges of a column: sql_partition.py
        self.label = f"{mask_url(self.url)} {where or 'query'}"
        self._seen = None
        self._read = 0  # rows yielded so far, for progress()
        self._gen = None
        # Decimals are read as floats (the route's number type) by the driver itself, which is far
        # faster, unless the mark may be a decimal: a query's incremental column, or a NUMERIC one.
        self._exact_mark = bool(inc and query)

    def columns(self) -> list[str] | None:
        """The `columns` option, or the table's columns as the database lists them; None for a query."""
        if self.options.get("columns"):
            return list(self.options["columns"])
        if not self.table:
            return None
        self._check_sqlite_file()
        try:
            found = sa.inspect(self.engine).get_columns(self.table, schema=self.schema)
        except sa.exc.NoSuchTableError:
            raise RunFailed(self.ctx.run.mask(f"sql source: no table {self.table!r} in {mask_url(self.url)}")) from None
        except Exception as exc:  # noqa: BLE001 - drivers raise many kinds; the message says which
            raise self._fail("cannot read the table's columns", exc) from None
        return [c["name"] for c in found]

    def progress(self) -> tuple[int, int | None, str] | None:
        """Rows read of the rows the table (with its where and mark) holds, counted once before the
        read; None for a query, which would have to run twice to be counted."""
        total = getattr(self, "_total", None)
        return None if total is None else (getattr(self, "_read", 0), total, "rows")

    def _count(self, conn, stmt, params) -> int | None:
        from sqlalchemy import exc as sa_exc
        from sqlalchemy import func, select

        try:
            return int(conn.execute(select(func.count()).select_from(stmt.subquery()), params).scalar() or 0)
        except sa_exc.DBAPIError:
            conn.rollback()  # a count is not worth failing a read for
            return None

    def incremental_mark(self) -> Any:
        """The greatest value of the incremental column read so far (None if none, or not incremental)."""
        return self._seen

    def _fail(self, what: str, exc: BaseException) -> RunFailed:
        return RunFailed(self.ctx.run.mask(mask_text(f"{what} ({self.label}): {reason(exc)}", self.url)))

    def on_delivered(self) -> None:
        """Called by the executor once every target confirmed delivery: commit the new mark."""
        marks_for(self.ctx.run).commit()

    def close(self) -> None:
        """Called by the executor when it stops reading (also early, at --limit): free the connection."""
        if self._gen is not None:
            self._gen.close()
            self._gen = None

    def chunks(self) -> Iterator[pd.DataFrame]:
        self._gen = self._chunks()
        return self._gen

    def _check_sqlite_file(self) -> None:
        if self.sqlite_path is not None and not self.sqlite_path.exists():  # SQLite would create it, empty
            as_written = sqlite_file(parse_url(self.url))
            raise RunFailed(
                f"there is no SQLite database {self.sqlite_path}"
                + (
                    ""
                    if as_written.is_absolute()
                    else " (relative paths in a sqlite:/// URL are relative to the route file)"
                )
            )

    def _last_mark(self) -> Any:
        run = self.ctx.run
        if self.inc_column and not run.options.full:
            return marks_for(run).get(run.route_name, self.incremental_key)
        return None

    def _chunks(self) -> Iterator[pd.DataFrame]:
        run = self.ctx.run
        last = self._last_mark()
        if self.partitioned:
            for part in self.partitions(last):
                yield from self._read_part(last, part)
        else:
            yield from self._read_part(last, None)
        if (
            self.inc_column
            and self._seen is not None
            and not (run.options.dry_run or run.options.preview or run.options.test)
        ):
            try:
                marks_for(run).pending(run.route_name, self.incremental_key, self._seen)
            except TypeError as exc:
                raise RunFailed(
                    f"incremental column '{self.inc_column}' of {self.label}: {exc}; use a "
                    "number, date, time stamp or text column"
                ) from None

    def partition_chunks(self, part: SqlPart) -> Iterator[pd.DataFrame]:
        """The rows of one part (of `partitions()`), as a Dask worker reads them for --cluster."""
        self._gen = self._read_part(self._last_mark(), part)
        return self._gen

    def _connect(self):
        from sqlalchemy import exc as sa_exc

        self._check_sqlite_file()
        try:
            return self.engine.connect()
        except sa_exc.DBAPIError as exc:
            raise connect_error(exc, self.url) from None

    def partitions(self, last: Any = None) -> list[SqlPart]:
        """The ranges of the partition column to read (its min and max asked first), then its nulls."""
        column, parts = self.partition["column"], int(self.partition["parts"])
        conn = self._connect()
        try:
            if self.table:
                stmt, params, _ = self._table_statement(conn, last, self.options.get("incremental"))
                query = minmax_table(stmt, self._table_obj.c[column])
                self._total = self._count(conn, stmt, params)
            else:
                sql, params = self._query(last)
                query = sa.text(query_sql(sql, self._quoted(column), None)[0])
            low, high = conn.execute(query, params).one()
        except driver_errors(conn) as exc:
            raise self._fail(f"cannot read the range of the partition column '{column}'", exc) from None
        finally:
            conn.close()
        low, high = typed_start(low), typed_start(high)  # ISO text (SQLite keeps dates as text) as dates
        return split(column, low, high, parts, self.label)

    def _quoted(self, column: str) -> str:
        return self.engine.dialect.identifier_preparer.quote(column)

    def _read_part(self, last: Any, part: SqlPart | None) -> Iterator[pd.DataFrame]:
        run = self.ctx.run
        conn = self._connect()
        finished, cursor = False, None
        try:
            stmt, params, kinds = self._statement(conn, last, part)
            if part is None:
                self._total = self._count(conn, stmt, params) if self.table else None
            if not self._exact_mark:
                st.decimals_as_floats(conn)
            errors = driver_errors(conn)
            try:
                cursor = open_cursor(conn, stmt, params, max(1, int(run.chunk_rows)))
                names = cursor.names
                if self.inc_column and self.inc_column not in names:
                    raise RunFailed(
                        f"the query of {self.label} returns no column '{self.inc_column}', the "
                        f"incremental column; it returns {', '.join(names)}"
                    )
                if kinds is None:
                    kinds = [st.kind_of_description(self.engine.dialect.name, c) for c in cursor.codes or []]
                kinds = kinds or [st.UNKNOWN] * len(names)
                label = part.describe(self.label) if part is not None else self.label
                for frame in self._frames(cursor.batches(), names, kinds, label):
                    self._read += len(frame)
                    yield frame
                finished = True
            except errors as exc:
                raise self._fail("reading failed", exc) from None
        finally:
            if not finished and cursor is not None:
                try:
                    cursor.stop()  # stopped early (--limit, a failure downstream): let go of the cursor
                except Exception:  # noqa: BLE001 - the connection is closed next anyway
                    pass
            conn.close()

    def _frames(self, partitions, names: list[str], kinds: list[str], label: str) -> Iterator[pd.DataFrame]:
        row = 1
        inc = names.index(self.inc_column) if self.inc_column in names else None
        for part in partitions:
            columns = list(zip(*part))
            arrays = []
            for i, values in enumerate(columns):
                values = list(values)
                if kinds[i] == st.UNKNOWN:
                    kinds[i] = st.infer(values)
                try:
                    raw = st.raw_array(values, kinds[i])
                except ValueError as exc:
                    raise RunFailed(
                        f"column '{names[i]}' of {self.label} is {kinds[i]} but holds {exc}; "
                        f"convert it in a query (CAST({names[i]} AS ...))"
                    ) from None
                if i == inc:
                    self._see(raw)
                arrays.append(st.canonical(raw, kinds[i]))
            frame = frame_from_arrow(
                pa.Table.from_arrays(arrays, names=names), index=pd.RangeIndex(row, row + len(part))
            )
            frame.attrs["source"] = label
            row += len(part)
            yield frame
        if row == 1:  # no rows: one empty chunk still tells the targets the columns and types
            frame = frame_from_arrow(
                pa.Table.from_arrays([pa.array([], st.ARROW[k]) for k in kinds], names=names), index=pd.RangeIndex(1, 1)
            )
            frame.attrs["source"] = label
            yield frame

    def _see(self, raw: pa.Array) -> None:
        top = pc.max(raw).as_py()
        if top is not None and (self._seen is None or top > self._seen):
            self._seen = top

    def _statement(self, conn, last, part: SqlPart | None = None):
        """(statement, params, kinds or None) of what to read (of one part, when given)."""
        from sqlalchemy import text

        if self.options.get("query"):
            sql, params = self._query(last)
            if part is not None:
                sql, more = query_sql(sql, self._quoted(part.column), part)
                params.update(more)
            return text(sql), params, None
        stmt, params, kinds = self._table_statement(conn, last, self.options.get("incremental"))
        if part is not None:
            stmt = part_of_table(stmt, self._table_obj.c[part.column], part)
        return stmt, params, kinds

    def _query(self, last) -> tuple[str, dict]:
        """The query's SQL and parameters, past the incremental mark."""
        inc = self.options.get("incremental")
        sql = self.options["query"].strip().rstrip(";").strip()
        params = dict(self.options.get("params") or {})
        if inc:
            op, bound = (">", last) if last is not None else (">=", typed_start(inc.get("start")))
            if bound is not None:
                sql = f"SELECT * FROM ({sql}) route_q WHERE route_q.{self._quoted(self.inc_column)} {op} :route_mark"
                params["route_mark"] = bound
        return sql, params

    def _table_statement(self, conn, last, inc):
        import difflib

        from sqlalchemy import MetaData, Table, bindparam, inspect, select, text
        from sqlalchemy import exc as sa_exc

        try:
            table = Table(self.table, MetaData(), schema=self.schema, autoload_with=conn)
        except sa_exc.NoSuchTableError:
            try:
                known = inspect(conn).get_table_names(schema=self.schema)
            except sa_exc.DBAPIError:
                known = []
            close = difflib.get_close_matches(self.table, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            listing = ", ".join(sorted(known)[:20]) or "none"
            raise RunFailed(
                f"there is no table '{self.table}' in {self.label.rsplit(' ', 1)[0]}"
                f"{' schema ' + self.schema if self.schema else ''}{hint}; tables there: {listing}"
            ) from None
        except sa_exc.DBAPIError as exc:
            raise self._fail("cannot read the table's columns", exc) from None
        self._table_obj = table
        names = self.options.get("columns") or [c.name for c in table.columns]
        also = [self.inc_column] if self.inc_column else []
        also += [self.partition["column"]] if self.partition else []
        for name in names + also:
            if name not in table.c:
                close = difflib.get_close_matches(name, list(table.c.keys()), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise RunFailed(
                    f"table '{self.table}' has no column '{name}'{hint}; its columns are {', '.join(table.c.keys())}"
                )
        stmt = select(*[table.c[n] for n in names])
        if self.options.get("where"):
            stmt = stmt.where(text(f"({self.options['where']})"))
        if inc:
            col = table.c[self.inc_column]
            kind = st.kind_of_type(col.type)
            self._exact_mark = kind == st.NUMBER
            if last is not None:
                stmt = stmt.where(col > bindparam("route_mark", typed_start(last, kind), type_=col.type))
            elif inc.get("start") is not None:
                stmt = stmt.where(col >= bindparam("route_mark", typed_start(inc["start"], kind), type_=col.type))
        return stmt, {}, [st.kind_of_type(table.c[n].type) for n in names]
