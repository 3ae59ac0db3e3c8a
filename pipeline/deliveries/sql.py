"""The sql delivery: rows into a table of any SQLAlchemy database, all or nothing.

Every mode runs in one transaction on one connection, committed by close() and rolled back by
abort(), so a failed run, or one killed outright, leaves the table as it was and nothing
half-delivered is reported:

- append: INSERT the rows.
- replace: the table ends up holding exactly the route's rows. PostgreSQL and SQLite delete the
  old rows and load the new ones in one transaction: readers see the old rows until the commit,
  and the table keeps its definition, indexes, grants and dependent views. MySQL/MariaDB commit
  DDL implicitly, so they load a new table beside the old one (`<table>__route_new`, created LIKE
  it) and swap the two with one atomic RENAME TABLE; abort() drops the new table, and open()
  drops one a killed run left behind (saying so in the log).
  A replace that would empty the table or shrink it by more than `max_shrink` (pipeline/deliveries/
  guards.py) stops at close(), rolled back, unless the run has --force or the target allow_empty.
- upsert on `key`: the database's own upsert (ON CONFLICT ... DO UPDATE for PostgreSQL and SQLite,
  ON DUPLICATE KEY UPDATE for MySQL/MariaDB); the table needs a primary key or unique index on
  exactly the key columns. Within a chunk, the last row of a key wins.
- delete: DELETE the rows whose key matches a route row (other columns are ignored).
- sync on `key`: the table ends up holding exactly the route's rows, as with replace, but only
  the rows that are new or changed are written (through the upsert's own statement) and the rows
  whose key the route no longer has are deleted (pipeline/deliveries/sql_sync.py). The deletions
  count against `max_shrink`, as a replace's shrinking does.

Targets of one run writing tables of one SQLite file share one connection and one transaction
(pipeline/deliveries/sql_links.py): their tables change together or not at all.
A missing table is created from the route's column types (pipeline/deliveries/sql_tables.py);
MySQL/MariaDB commit the CREATE at once, so a failed run drops the table it created.
PostgreSQL rows go through COPY; other databases get executemany of `batch_rows` rows.
With --dry-run the delivery connects and checks the table and columns, writes nothing, and
reports what it would have done, and whether the replace guard would stop it (a sync stages and
compares as a run would, and says what it would create, update and delete).
"""

# Longer than 400 lines because five modes on three dialects, each all or nothing, with its guard
# and dry run; the writers and table helpers live in sql_writers.py, sql_tables.py,
# sql_links.py and sql_sync.py.

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from pipeline.basics.errors import DeliveryFailed, OptionError, RouteError
from pipeline.basics.guards import SHRINK_OPTIONS, guard, shrink_fraction, shrink_problem, stop_message
from pipeline.basics.plugins import delivery
from pipeline.basics.sqlurls import connect_error, make_engine, mask_text, mask_url, reason, sqlite_file
from pipeline.deliveries import sql_tables as tables
from pipeline.deliveries.base import DATABASE, DeliveryResult
from pipeline.deliveries.sql_links import link_for
from pipeline.deliveries.sql_sync import Sync, sync_guard, sync_problem
from pipeline.deliveries.sql_writers import PARAMSTYLES, Writer

if TYPE_CHECKING:
    import pandas as pd

# SQLAlchemy loads when the delivery makes its engine, pandas and Arrow when its helpers touch a chunk
# (sql_tables, sql_writers, sql_sync import them where used): planning a route loads none of them.

MODES = ("append", "replace", "upsert", "delete", "sync")

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "table"],
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "description": "a SQLAlchemy URL: postgresql://user:${DB_PASSWORD}@host/db, "
            "mysql://..., sqlite:///out/local.db",
        },
        "table": {
            "type": "string",
            "minLength": 1,
            "description": "the table to write (or schema.table); created from the route's types if missing",
        },
        "schema": {"type": "string", "minLength": 1, "description": "the table's schema"},
        "mode": {
            "enum": list(MODES),
            "description": "append (default), replace, upsert, delete or sync (the table ends up "
            "holding exactly the route's rows; only new and changed rows are written, rows no longer "
            "delivered are deleted); replace and sync are guarded by max_shrink and allow_empty",
        },
        "key": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
            ],
            "description": "the column(s) that identify a row: for upsert, delete and sync, and the "
            "primary key of a created table",
        },
        "batch_rows": {
            "type": "integer",
            "minimum": 1,
            "description": "rows per executemany (default 10,000); PostgreSQL's COPY takes each chunk whole",
        },
        **SHRINK_OPTIONS,
        "max_shrink": {
            **SHRINK_OPTIONS["max_shrink"],
            "description": "replace: stop when the table would lose more than this share of its rows; "
            'sync: when it would delete more than this share (0.5 or "50%", the default); --force goes ahead anyway',
        },
        "allow_empty": {
            **SHRINK_OPTIONS["allow_empty"],
            "description": "replace and sync: an empty or much smaller table is intended; do not stop (default false)",
        },
    },
}


def _sqlite_transactions(engine) -> None:
    """Let SQLite run DDL inside our transaction (pysqlite commits before DDL on its own)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")


@delivery(OPTIONS_SCHEMA)
class SqlDelivery:
    """Rows into a database table: append, replace, upsert, delete or sync by key.

    ```yaml
    deliver:
      sql:
        url: postgresql://writer:${DB_PASSWORD}@db.example.org/open_data
        table: payroll
        schema: public
        mode: upsert            # append (default), replace, upsert, delete, sync
        key: [employee_id, pay_date]
        batch_rows: 10000
    ```

    A replace that would empty the table, or shrink it by more than max_shrink, stops with
    nothing changed unless the run has --force:

    ```yaml
    deliver:
      sql: {url: "sqlite:///out/archive.db", table: payroll, mode: replace, max_shrink: "20%"}
    ```

    A sync leaves the table holding exactly the route's rows, like a replace, but writes only the
    rows that are new or changed and deletes those whose key is gone, in one transaction; the
    summary counts created, updated and deleted rows (the JSON report the unchanged ones too). A
    sync that would delete more than max_shrink of the table's rows, or every row, stops with
    nothing changed unless the run has --force or the target allow_empty:

    ```yaml
    deliver:
      sql: {url: "sqlite:///out/archive.db", table: payroll, mode: sync, key: employee_id}
    ```
    """

    atomic = True  # every mode is one transaction: a failed run leaves the table as it was
    commit_order = DATABASE  # after remote revisions, before files

    def __init__(self, options: dict, ctx):
        from sqlalchemy.pool import NullPool

        self.options = options
        self.ctx = ctx
        self.mode = options.get("mode", "append")
        key = options.get("key") or []
        self.key = [key] if isinstance(key, str) else list(key)
        if self.mode in ("upsert", "delete", "sync") and not self.key:
            raise OptionError(f"mode {self.mode} needs key: the column(s) that identify a row", ("key",))
        self.batch_rows = options.get("batch_rows", 10_000)
        self.url = options["url"]
        self.schema = options.get("schema")
        self.table = options["table"]
        if not self.schema and "." in self.table:
            self.schema, self.table = self.table.split(".", 1)
        self.engine = make_engine(self.url, ctx.route_dir, poolclass=NullPool)  # one connection, closed after
        if self.engine.dialect.name == "sqlite":
            _sqlite_transactions(self.engine)
        self.dialect = self.engine.dialect.name
        self.mysql = self.dialect in ("mysql", "mariadb")
        if self.engine.dialect.paramstyle not in PARAMSTYLES:
            raise OptionError(
                f"the sql delivery cannot send rows through the {self.engine.driver} driver "
                f"(parameter style {self.engine.dialect.paramstyle}); use one of PostgreSQL, "
                "MySQL/MariaDB, SQLite or a driver with ? or %s parameters",
                ("url",),
            )
        if self.mode in ("upsert", "sync") and self.dialect not in ("postgresql", "sqlite", "mysql", "mariadb"):
            raise OptionError(
                f"mode {self.mode} is not available for {self.dialect}: it works with PostgreSQL, SQLite and MySQL/MariaDB",
                ("mode",),
            )
        self.where = f"{self.schema}.{self.table}" if self.schema else self.table
        self.dry_run = bool(ctx.run.options.dry_run)
        self.link = None  # the connection, shared by the targets writing one SQLite file
        self.conn = None
        self.info = None
        self.writer = None
        self.sync = None  # mode sync into an existing table (pipeline/deliveries/sql_sync.py)
        self.sync_counts = None  # a dry run's sync: what it would do
        self.target_sql = None  # where rows go: the table, or the new table beside it (MySQL replace)
        self.stage = None
        self.created_mysql = None  # a table MySQL created (DDL commits there): dropped again by abort()
        self.rows = 0
        self.changed = 0
        self.count_before = None
        self.settled = None  # the result to report, once every row is written and the guard passed

    # -- the contract ----------------------------------------------------------------------------

    def open(self, columns: list[str]) -> None:
        self.columns = list(columns)
        if not self.columns:  # nothing reached this target, not even an empty chunk: nothing to do
            return
        missing = [k for k in self.key if k not in self.columns]
        if missing:
            raise DeliveryFailed(
                f"key column {', '.join(missing)} is not among the route's columns "
                f"({', '.join(self.columns)}); nothing was delivered"
            )
        self.sent_columns = self.key if self.mode == "delete" else self.columns
        path = sqlite_file(self.engine.url)
        if path is not None and not self.dry_run:
            path.parent.mkdir(parents=True, exist_ok=True)
        if path is not None and self.dry_run and not path.exists():
            # A dry run writes nothing, and connecting would create the file: the table would be created.
            if self.mode == "delete":
                raise DeliveryFailed(f"cannot delete from {self.where}: {path} does not exist")
            return
        self.link = link_for(self.engine, self.ctx.run, share=not self.dry_run)
        with self.link.lock:
            try:
                self.conn = self.link.join(self)
            except Exception as exc:  # DBAPIError, or a driver's own socket error
                raise connect_error(exc, self.url) from None
            try:
                self.info = tables.reflect(self.conn, self.table, self.schema)
                if self.info is not None:
                    tables.check_columns(self.info, self.sent_columns, self.mode, self.key, self.mysql)
                elif self.mode == "delete":
                    raise DeliveryFailed(f"cannot delete from {self.where}: {mask_url(self.url)} has no such table")
                if self.mode == "replace" and self.mysql:
                    self._remove_leftovers()
                if self.conn.in_transaction() and not self.link.writing:
                    self.conn.rollback()  # reflection's implicit transaction: start ours clean
            except RouteError:
                self._leave()
                raise
            except Exception as exc:
                self._leave()
                raise self._failed("cannot read the table", exc) from None

    def write(self, chunk: pd.DataFrame) -> None:
        absent = [c for c in self.sent_columns if c not in chunk.columns]
        if absent:
            raise DeliveryFailed(f"the chunk has no column {', '.join(absent)} for {self.where}")
        if self.dry_run:
            self.rows += len(chunk)
            if self.mode == "sync" and self.info is not None and self.conn is not None:
                try:
                    self._dry_sync().write(chunk)
                except Exception as exc:
                    raise self._failed("comparing with the table failed", exc) from None
            return
        with self.link.lock:  # targets sharing a SQLite file take turns
            if self.link.failure is not None:
                raise self._rolled_back()
            try:
                if self.writer is None:
                    self._prepare(chunk)
                if len(chunk) == 0:
                    return
                if self.mode == "upsert":
                    self.rows += self.writer.upsert(chunk)
                elif self.mode == "delete":
                    self.rows += len(chunk)
                    self.changed += self.writer.delete(chunk)
                elif self.mode == "sync":
                    self.rows += len(chunk)
                    if self.sync is not None:
                        self.sync.write(chunk)
                    else:  # a table just created: every row is new
                        self.writer.upsert(chunk)
                else:
                    self.rows += self.writer.insert(chunk, self.target_sql)
            except RouteError:
                raise
            except Exception as exc:
                raise self._failed("writing failed", exc) from None

    def close(self) -> DeliveryResult:
        if self.dry_run:
            try:
                return self._dry_result()
            finally:
                self._leave()
        if self.conn is None:  # opened with no columns
            return DeliveryResult(location=self.where)
        link = self.link
        with link.lock:
            try:
                if not link.committed:
                    self._commit_link()
                return link.results.pop(self)
            finally:
                self._leave()

    def prepare_commit(self) -> None:
        """Everything but the commit: the counts, and the replace guard (a stop rolls back).

        The executor calls it for every local target before any commits, so that a table the guard
        protects stops the run before another table or a file changes."""
        if self.dry_run or self.conn is None:
            return
        link = self.link
        with link.lock:
            if link.committed:
                return
            if link.failure is not None:
                raise self._rolled_back()
            with self._undone_on_failure():
                self._settle()

    def abort(self, exc: BaseException | None) -> None:
        link = self.link
        if link is None or self.conn is None:
            return
        with link.lock:
            try:
                if link.committed:  # a target sharing the file closed first and committed this one too
                    self.ctx.log.warning(
                        "%s: already committed together with the other tables of its SQLite file; it stays delivered",
                        self.head,
                    )
                elif link.failure is None:
                    self._undo(exc if exc is not None else DeliveryFailed(f"{self.head}: aborted"))
            except Exception:  # the connection may be gone; the database rolls back on its own then
                pass
            finally:
                self._leave()

    # -- steps -----------------------------------------------------------------------------------

    def _remove_leftovers(self) -> None:
        """MySQL replace: drop the new (or old) table beside this one that a killed run left behind."""
        from sqlalchemy import inspect

        insp = inspect(self.conn)
        for suffix in ("__route_new", "__route_old"):
            name = tables.side_name(self.table, suffix)
            if not insp.has_table(name, schema=self.schema):
                continue
            where = f"{self.schema}.{name}" if self.schema else name
            if self.dry_run:
                self.ctx.log.warning(
                    "%s: %s was left behind by a run that did not finish; a run will remove it", self.head, where
                )
                continue
            self.conn.exec_driver_sql(f"DROP TABLE {tables.qualified(self.conn.dialect, name, self.schema)}")
            self.conn.commit()
            self.ctx.log.warning("%s: removed %s, left behind by a run that did not finish", self.head, where)

    def _prepare(self, chunk: pd.DataFrame) -> None:
        """First chunk: begin, create what is missing, count what is there."""
        conn = self.conn
        self.link.writing = True
        table_sql = tables.qualified(conn.dialect, self.table, self.schema)
        self.target_sql = table_sql
        if self.mode == "replace" and self.mysql:
            name = tables.side_name(self.table, "__route_new")
            self.stage = tables.qualified(conn.dialect, name, self.schema)
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.stage}")
            if self.info is not None:
                conn.exec_driver_sql(f"CREATE TABLE {self.stage} LIKE {table_sql}")
            else:
                tables.create(conn, name, self.schema, chunk, self.columns, self.key)
            conn.commit()  # MySQL DDL commits anyway; the rows follow in their own transaction
            self.target_sql = self.stage
        elif self.info is None:
            tables.create(conn, self.table, self.schema, chunk, self.columns, self.key)
            if self.mysql:  # committed at once by MySQL: a failed run must not leave it behind
                self.created_mysql = table_sql
        elif self.mode == "replace":
            self.count_before = self._count(table_sql)  # what the replace removes, for the guard
            conn.exec_driver_sql(f"DELETE FROM {table_sql}")
        if not conn.in_transaction():
            conn.begin()  # COPY goes through the driver's connection: make the transaction ours to commit
        if self.mode in ("upsert", "sync"):
            self.count_before = self._count(table_sql) if self.info is not None else 0
        self.writer = Writer(conn, table_sql, self.sent_columns, self.key, self.batch_rows)
        if self.mode == "sync" and self.info is not None:
            self.sync = Sync(self.writer, self.table, self.schema)

    def _commit_link(self) -> None:
        """Settle every target of the link (this one first), commit them at once, swap MySQL tables in."""
        link = self.link
        if link.failure is not None:
            raise self._rolled_back()
        members = [self] + link.others(self)
        with self._undone_on_failure():
            for member in members:
                member._settle()
            link.conn.commit()
            for member in members:
                member._swap()
        link.committed = True
        link.results = {m: m.settled for m in members}

    @contextmanager
    def _undone_on_failure(self):
        """Any failure inside rolls back every target of the link."""
        try:
            yield
        except RouteError as exc:
            self._undo(exc)
            raise
        except Exception as exc:
            failed = self._failed("committing failed", exc)
            self._undo(failed)
            raise failed from None

    def _settle(self) -> DeliveryResult:
        """All rows written: the counts to report, or the replace guard's stop. Once only."""
        import pandas as pd

        if self.settled is not None:
            return self.settled
        if self.writer is None and self.mode in ("replace", "sync") and self.info is not None:
            self._prepare(pd.DataFrame(columns=self.columns))  # no chunk at all: empty the table
        elif self.writer is None:  # no chunk at all: nothing to create or change
            self.settled = DeliveryResult(location=self.where)
            return self.settled
        table_sql = tables.qualified(self.conn.dialect, self.table, self.schema)
        result = DeliveryResult(delivered=self.rows, location=self.where)
        if self.mode == "upsert":
            result.created = self._count(table_sql) - self.count_before
            result.updated = self.rows - result.created
        elif self.mode == "delete":
            result.deleted = self.changed
        elif self.mode == "sync":
            self._settle_sync(result, table_sql)
        else:
            result.created = self.rows
        if self.mode == "replace" and self.info is not None:
            current = self._count(table_sql) if self.stage else self.count_before  # MySQL: before the swap
            problem = guard(self.head, current, self.rows, self.options, self.ctx.run, "table")
            if problem:
                raise DeliveryFailed(self.ctx.run.mask(stop_message(self.head, problem)))
            result.details["replaced"] = True
        self.settled = result
        return result

    def _settle_sync(self, result: DeliveryResult, table_sql: str) -> None:
        """The sync's deletions, its counts, and its guard (a stop rolls everything back)."""
        sync = self.sync
        if sync is None:  # a table created by this run
            result.created = self._count(table_sql)
            return
        result.deleted = sync.finish()
        result.created, result.updated = sync.created, sync.updated
        result.details["unchanged"] = sync.unchanged
        stop = sync_guard(self.head, self.count_before, result.deleted, self.rows, self.options, self.ctx.run)
        if stop:
            raise DeliveryFailed(self.ctx.run.mask(stop))
        self.ctx.log.info(
            "%s: synced: %d created, %d updated, %d deleted, %d unchanged",
            self.head,
            result.created,
            result.updated,
            result.deleted,
            sync.unchanged,
        )

    def _swap(self) -> None:
        """Committed: MySQL replace swaps the loaded table in, atomically."""
        self.created_mysql = None  # delivered: the table stays
        if not self.stage:
            return
        conn = self.conn
        table_sql = tables.qualified(conn.dialect, self.table, self.schema)
        old = tables.qualified(conn.dialect, tables.side_name(self.table, "__route_old"), self.schema)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {old}")
        if self.info is not None:
            conn.exec_driver_sql(f"RENAME TABLE {table_sql} TO {old}, {self.stage} TO {table_sql}")
            self.stage = None
            conn.exec_driver_sql(f"DROP TABLE {old}")
        else:
            conn.exec_driver_sql(f"RENAME TABLE {self.stage} TO {table_sql}")
            self.stage = None
        conn.commit()

    def _undo(self, failure: BaseException) -> None:
        """Roll back every target of the link; MySQL drops the tables its DDL committed."""
        link = self.link
        try:
            link.rollback(failure)
        finally:
            for member in list(link.members):
                member._drop_committed_tables()

    def _drop_committed_tables(self) -> None:
        for table in (self.stage, self.created_mysql) if self.mysql else ():
            if not table:
                continue
            try:
                self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
                self.conn.commit()
            except Exception:  # the connection may be gone: the next run removes a leftover new table
                pass
        self.stage = self.created_mysql = None

    def _count(self, table_sql: str) -> int:
        return int(self.conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table_sql}").scalar())

    def _dry_sync(self) -> Sync:
        """A dry run's sync: stages and compares, writes nothing to the table."""
        if self.sync is None:
            table_sql = tables.qualified(self.conn.dialect, self.table, self.schema)
            writer = Writer(self.conn, table_sql, self.sent_columns, self.key, self.batch_rows)
            self.sync = Sync(writer, self.table, self.schema, dry_run=True)
        return self.sync

    def _dry_result(self) -> DeliveryResult:
        details = {"dry_run": True, "rows": self.rows, "plan": self._plan()}
        if self.mode == "sync":
            try:
                details.update(self._dry_sync_counts())
            except RouteError:
                raise
            except Exception as exc:
                raise self._failed("comparing with the table failed", exc) from None
            details["plan"] = self._plan()
        if (
            self.conn is not None
            and self.mode == "replace"
            and self.info is not None
            and not self.options.get("allow_empty")
        ):
            current = self._count(tables.qualified(self.conn.dialect, self.table, self.schema))
            problem = shrink_problem(current, self.rows, shrink_fraction(self.options.get("max_shrink")), "table")
            if problem:
                forced = " (--force given)" if self.ctx.run.options.force else ""
                details["stop"] = f"would stop before replacing: {problem}{forced}"
        return DeliveryResult(location=self.where, details=details)

    def _dry_sync_counts(self) -> dict:
        """What a sync would create, update, delete and leave; and whether its guard would stop it."""
        if self.conn is None or self.info is None:  # the table would be created: every row is new
            return {"create": self.rows, "update": 0, "delete": 0, "unchanged": 0}
        current = self._count(tables.qualified(self.conn.dialect, self.table, self.schema))
        sync = self._dry_sync()
        counts = {"create": sync.created, "update": sync.updated, "delete": sync.finish(), "unchanged": sync.unchanged}
        if not self.options.get("allow_empty"):
            problem = sync_problem(current, counts["delete"], self.rows, self.options)
            if problem:
                forced = " (--force given)" if self.ctx.run.options.force else ""
                counts["stop"] = f"would stop before syncing: {problem}{forced}"
        self.sync_counts = counts
        return counts

    def _plan(self) -> str:
        table = f"table {self.where} ({'exists' if self.info is not None else 'would be created'})"
        verb = {
            "append": "append",
            "replace": "replace every row of",
            "upsert": f"upsert by {', '.join(self.key)} into",
            "delete": f"delete by {', '.join(self.key)} from",
            "sync": f"sync by {', '.join(self.key)} with",
        }[self.mode]
        plan = f"{verb} {table}: {self.rows} row(s)"
        counts = self.sync_counts
        if counts:  # the summary has columns for the rows it would create, update and delete
            plan += f", {counts['unchanged']:,} unchanged"
        return plan

    # -- messages --------------------------------------------------------------------------------

    @property
    def head(self) -> str:
        where = f"{self.ctx.run.route_file.name}:{self.ctx.line}: " if self.ctx.line else ""
        target = f"target '{self.ctx.target}': " if self.ctx.target else ""
        return f"{where}{target}sql table {self.where}"

    def _failed(self, what: str, exc: BaseException) -> DeliveryFailed:
        text = mask_text(
            f"{what} for {self.where} at {mask_url(self.url)}: {reason(exc)}; "
            "nothing was delivered (the transaction was rolled back)",
            self.url,
        )
        return DeliveryFailed(self.ctx.run.mask(text))

    def _rolled_back(self) -> DeliveryFailed:
        """Another target sharing this SQLite file failed: its rollback took this table's rows too."""
        cause = self.link.failure
        if isinstance(cause, RouteError):
            return DeliveryFailed(str(cause))
        return DeliveryFailed(
            self.ctx.run.mask(
                f"{self.head}: nothing was delivered: another target writing "
                f"the same SQLite file failed ({reason(cause)})"
            )
        )

    def _leave(self) -> None:
        if self.link is not None and self.conn is not None:
            self.conn = None
            self.link.leave(self)
