"""Server-side cursors for the sql source: rows in batches, in bounded memory.

PostgreSQL (psycopg 3) and MySQL/MariaDB (PyMySQL) are read straight from the driver: a named
cursor (DECLARE ... FETCH) and an unbuffered SSCursor, fed the SQL that SQLAlchemy compiled. That
skips SQLAlchemy's row objects (bench/bench_sql.py, 1M PostgreSQL rows of 11 columns: 7.1 s through
SQLAlchemy's Result, 5.2 s this way, of which psycopg's own fetching is about 3 s). Every other
database goes through SQLAlchemy's Result with stream_results and yield_per, whose type
processors it needs (SQLite keeps dates as text).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

_names = (f"route_source_{i}" for i in itertools.count(1))


class AlchemyCursor:
    """Rows through SQLAlchemy's Result (stream_results, yield_per)."""

    def __init__(self, conn, stmt, params: dict, size: int):
        self.conn = conn
        self.result = conn.execution_options(stream_results=True, yield_per=size).execute(stmt, params)
        self.names = list(self.result.keys())
        desc = self.result.cursor.description if self.result.cursor is not None else None
        self.codes = [d[1] for d in desc] if desc else None
        self.size = size

    def batches(self) -> Iterator[list]:
        return self.result.partitions(self.size)

    def stop(self) -> None:
        self.result.close()


class DriverCursor:
    """Rows straight from psycopg's named cursor or PyMySQL's SSCursor."""

    def __init__(self, conn, stmt, params: dict, size: int):
        self.conn = conn
        self.size = size
        compiled = stmt.compile(dialect=conn.dialect)
        args = compiled.construct_params(params)
        if compiled.positiontup:  # a dialect compiled with positional parameters
            args = tuple(args[name] for name in compiled.positiontup)
        raw = conn.connection.driver_connection
        self.mysql = conn.dialect.name in ("mysql", "mariadb")
        if self.mysql:
            import pymysql.cursors

            self.cursor = raw.cursor(pymysql.cursors.SSCursor)
        else:
            self.cursor = raw.cursor(name=next(_names))
        try:
            self.cursor.execute(str(compiled), args)  # even empty: the driver then turns %% into %
        except BaseException:
            self.cursor.close()
            raise
        desc = self.cursor.description or []
        self.names = [d[0] for d in desc]
        self.codes = [d[1] for d in desc]

    def batches(self) -> Iterator[list]:
        while True:
            rows = self.cursor.fetchmany(self.size)
            if not rows:
                break
            yield rows
        self.cursor.close()

    def stop(self) -> None:
        if not self.mysql:
            self.cursor.close()  # CLOSE the server-side cursor
            return
        # PyMySQL would read (and discard) every remaining row of an unbuffered result before it
        # lets the connection go: detach the result and drop the socket instead.
        pending = getattr(self.cursor, "_result", None)
        if pending is not None and hasattr(pending, "unbuffered_active"):
            pending.unbuffered_active = False
        self.cursor.connection = None
        self.conn.invalidate()


def open_cursor(conn, stmt, params: dict, size: int):
    """The fastest cursor the connection's driver offers for `stmt`."""
    driver = conn.dialect.driver
    if (conn.dialect.name == "postgresql" and driver == "psycopg") or (
        conn.dialect.name in ("mysql", "mariadb") and driver == "pymysql"
    ):
        return DriverCursor(conn, stmt, params, size)
    return AlchemyCursor(conn, stmt, params, size)


def driver_errors(conn) -> tuple[type[BaseException], ...]:
    """Exceptions a driver raises when used directly (SQLAlchemy wraps its own as DBAPIError)."""
    from sqlalchemy import exc as sa_exc

    dbapi = getattr(conn.dialect, "loaded_dbapi", None) or getattr(conn.dialect, "dbapi", None)
    error = getattr(dbapi, "Error", None)
    return (sa_exc.DBAPIError, error) if isinstance(error, type) else (sa_exc.DBAPIError,)
