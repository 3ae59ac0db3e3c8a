"""mode sync of the sql delivery: the table ends up holding exactly the route's rows, and only what
changed is written.

Inside the delivery's one transaction, each chunk (the last row of a key wins) goes to a temporary
table with the target's own column types (`stage`; COPY on PostgreSQL, executemany elsewhere). One
statement joins it to the table by key and keeps the rows that are new or differ in some column
(`diff`; NULL-safe: IS NOT DISTINCT FROM, IS, <=>, and on MySQL/MariaDB text is compared as bytes,
so a change of case or of trailing spaces that the collation would ignore is still a change); only
those go to the table, through the same ON CONFLICT / ON DUPLICATE KEY UPDATE the upsert uses. The
chunk's keys are kept in a third temporary table (`seen`); at the end, one DELETE removes the
table's rows whose key was not seen.

Why the database compares, and not pandas over hashes of rows read back: the database compares
values in the table's own types (a float, a time stamp with a zone, MySQL's TINYINT booleans, a
text column's exact bytes), as they would be stored, so "unchanged" means exactly "writing it
would change nothing". Memory stays one chunk whatever the table's size: the keys seen so far live
in the database, not in the process. And it is the fastest path on every dialect: every row has to
travel once either way, and sending rows (COPY, sqlite3's executemany in C) is much cheaper than
reading them back into Python objects to hash them: for 200,000 rows of 8 columns, reading the
table through the sql source and hashing it with pandas alone takes 1.45 s on SQLite and 0.97 s on
PostgreSQL, more than the whole sync (bench/bench_sql_sync.py, 1 % changed: SQLite 0.76 s against
0.66 s for a replace; PostgreSQL 1.2-1.4 s against 1.0-1.5 s; MariaDB 2.7-4.8 s against 2.0-3.6 s,
on a shared, loaded machine). A sync is not faster than a replace on an idle table; it writes 1 %
of the rows instead of every row (no dead tuples, WAL or triggers for the unchanged ones).

The counts come from the diff (created: keys not in the table; updated: keys whose row differs;
unchanged: the rest) and from the DELETE. The delete counts against `max_shrink`: a sync that would
delete more than that share of the table's rows (or every row, when the route delivers none) stops
and rolls back, unless the run has --force or the target allow_empty. A dry run stages and
compares the same way, writes nothing to the table, and counts what the DELETE would remove.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from pipeline.basics.guards import shrink_fraction
from pipeline.deliveries.sql_writers import Writer, arrays, python_rows

if TYPE_CHECKING:
    import pandas as pd

NEW = "route_sync_new"  # the diff's column saying a row is new (1) or changed (0)


def _string_columns(conn, name: str, schema: str | None) -> set[str]:
    import sqlalchemy as sa

    return {
        c["name"] for c in sa.inspect(conn).get_columns(name, schema=schema) if isinstance(c["type"], sa.types.String)
    }


class Sync:
    """One sync into an existing table, chunk by chunk; finish() deletes what was not seen."""

    def __init__(self, writer: Writer, name: str, schema: str | None, dry_run: bool = False):
        self.w = writer
        self.conn = writer.conn
        self.dialect = writer.dialect
        self.mysql = self.dialect in ("mysql", "mariadb")
        self.dry_run = dry_run
        self.created = self.updated = self.unchanged = 0
        tag = uuid.uuid4().hex[:8]  # targets sharing a SQLite connection each have their own
        self.stage, self.diff, self.seen = (f"route_sync_{tag}_{part}" for part in ("stage", "diff", "seen"))
        self.started = False
        q = writer.q
        self.cols = [q(c) for c in writer.columns]
        self.keys = [q(k) for k in writer.key]
        self.texts = {q(c) for c in _string_columns(self.conn, name, schema)} if self.mysql else set()

    # -- SQL pieces ------------------------------------------------------------------------------

    def _same(self, c: str) -> str:
        """`s.c` and `t.c` hold the same value (NULL equals NULL)."""
        if self.dialect == "postgresql":
            return f"s.{c} IS NOT DISTINCT FROM t.{c}"
        if self.mysql:
            if c in self.texts:  # the collation may call 'a' and 'A ' equal: compare the bytes
                return f"CAST(s.{c} AS BINARY) <=> CAST(t.{c} AS BINARY)"
            return f"s.{c} <=> t.{c}"
        return f"s.{c} IS t.{c}"  # SQLite: the stage's column, of BINARY collation, decides

    def _temp(self, name: str, select: str, index: bool = False) -> None:
        table = self.w.table_sql
        if self.dialect == "postgresql":
            sql = f"CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS SELECT {select} FROM {table} WITH NO DATA"
        elif self.mysql:
            idx = f"(INDEX ({', '.join(self.keys)})) " if index else ""  # CREATE INDEX would commit
            sql = f"CREATE TEMPORARY TABLE {name} {idx}AS SELECT {select} FROM {table} WHERE 1 = 0"
        else:
            sql = f"CREATE TEMP TABLE {name} AS SELECT {select} FROM {table} WHERE 0"
        self.conn.exec_driver_sql(sql)

    def _start(self) -> None:
        cols = ", ".join(self.cols)
        self._temp(self.stage, cols)
        self._temp(self.diff, f"{cols}, 0 AS {NEW}")
        self._temp(self.seen, ", ".join(self.keys), index=True)
        self.started = True

    def _run(self, sql: str) -> int:
        return max(self.conn.exec_driver_sql(sql).rowcount, 0)

    # -- the steps -------------------------------------------------------------------------------

    def write(self, chunk: pd.DataFrame) -> None:
        """Compare the chunk with the table; write the rows that are new or changed."""
        if len(chunk) == 0:
            return
        chunk = chunk.drop_duplicates(subset=self.w.key, keep="last")  # last row of a key wins
        cols = ", ".join(self.cols)
        if not self.started:
            self._start()
        elif self.mysql:  # InnoDB logs every row a DELETE removes, and TRUNCATE would commit
            for name, select in ((self.stage, cols), (self.diff, f"{cols}, 0 AS {NEW}")):
                self.conn.exec_driver_sql(f"DROP TEMPORARY TABLE {name}")
                self._temp(name, select)
        else:
            empty = "TRUNCATE" if self.dialect == "postgresql" else "DELETE FROM"
            self.conn.exec_driver_sql(f"{empty} {self.stage}")
            self.conn.exec_driver_sql(f"{empty} {self.diff}")
        arrs = arrays(chunk, self.w.columns, self.dialect)
        if self.dialect == "postgresql" and self.w.use_copy:
            self.w.copy(self.stage, arrs)
        else:
            marks = ", ".join([self.w.mark] * len(self.cols))
            self.w.many(f"INSERT INTO {self.stage} ({cols}) VALUES ({marks})", python_rows(arrs))
        del arrs
        on = " AND ".join(f"t.{k} = s.{k}" for k in self.keys)
        values = [c for c in self.cols if c not in self.keys]
        missing = f"t.{self.keys[0]} IS NULL"
        differs = f" OR NOT ({' AND '.join(self._same(c) for c in values)})" if values else ""
        self.conn.exec_driver_sql(
            f"INSERT INTO {self.diff} ({cols}, {NEW}) "
            f"SELECT {', '.join('s.' + c for c in self.cols)}, CASE WHEN {missing} THEN 1 ELSE 0 END "
            f"FROM {self.stage} s LEFT JOIN {self.w.table_sql} t ON {on} WHERE {missing}{differs}"
        )
        changed, new = self.conn.exec_driver_sql(f"SELECT COUNT(*), SUM({NEW}) FROM {self.diff}").one()
        changed, new = int(changed or 0), int(new or 0)
        self.created += new
        self.updated += changed - new
        self.unchanged += len(chunk) - changed
        if changed and not self.dry_run:
            self.conn.exec_driver_sql(
                f"INSERT INTO {self.w.table_sql} ({cols}) SELECT {cols} FROM {self.diff} WHERE 1 = 1 "
                + self.w.conflict_tail()
            )
        keys = ", ".join(self.keys)
        self.conn.exec_driver_sql(f"INSERT INTO {self.seen} ({keys}) SELECT {keys} FROM {self.stage}")

    def finish(self) -> int:
        """Delete the rows whose key the route did not deliver (a dry run counts them); how many."""
        table = self.w.table_sql
        if not self.started:  # no row at all: every row goes
            if self.dry_run:
                return int(self.conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar())
            return self._run(f"DELETE FROM {table}")
        if self.dialect == "sqlite":  # built once, at the end, rather than kept up row by row
            self.conn.exec_driver_sql(f"CREATE INDEX temp.{self.seen}_key ON {self.seen} ({', '.join(self.keys)})")
        elif self.dialect == "postgresql":
            self.conn.exec_driver_sql(f"ANALYZE {self.seen}")  # temporary tables get no statistics else
        gone = "NOT EXISTS (SELECT 1 FROM {seen} k WHERE {on})".format(
            seen=self.seen, on=" AND ".join(f"k.{k} = {table}.{k}" for k in self.keys)
        )
        if self.dry_run:
            deleted = int(self.conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table} WHERE {gone}").scalar())
        else:
            deleted = self._run(f"DELETE FROM {table} WHERE {gone}")
        drop = "DROP TEMPORARY TABLE" if self.mysql else "DROP TABLE"
        for name in (self.stage, self.diff, self.seen):
            self.conn.exec_driver_sql(f"{drop} {name}")
        self.started = False
        return deleted


# -- the guard -----------------------------------------------------------------------------------


def sync_problem(current: int, deleted: int, delivered: int, options: dict) -> str | None:
    """Why a sync deleting `deleted` of the table's `current` rows must not go ahead, or None."""
    if current <= 0 or deleted <= 0:
        return None
    if delivered == 0:
        return f"it would empty the table (it has {current:,} rows and the route delivers none)"
    max_shrink = shrink_fraction(options.get("max_shrink"))
    lost = deleted / current
    if lost > max_shrink:
        return (
            f"it would delete {deleted:,} of the table's {current:,} rows ({lost:.0%}, more than "
            f"max_shrink {max_shrink:.0%})"
        )
    return None


def sync_guard(head: str, current: int, deleted: int, delivered: int, options: dict, run) -> str | None:
    """The message to stop on (None: go ahead); --force and allow_empty go ahead with a warning."""
    problem = sync_problem(current, deleted, delivered, options)
    if problem is None:
        return None
    force = getattr(run.options, "force", False)
    if force or options.get("allow_empty"):
        run.log.warning("%s: %s; going ahead because of %s", head, problem, "--force" if force else "allow_empty: true")
        return None
    return (
        f"{head}: stopped before syncing: {problem}. Nothing was changed. If this is intended, run again "
        "with --force, or set allow_empty: true (or a higher max_shrink) on the target"
    )
