"""The database of a shared state: one engine per URL and process, its tables migrated on first use.

Migrations are numbered steps, each recorded in `route_migrations` once applied, run under a lock
so that machines starting at once do not run one twice (PostgreSQL: an advisory lock held by the
migrating transaction; SQLite: the write lock BEGIN IMMEDIATE takes). A database migrated by a newer
route is refused with a message rather than used by code that does not know its tables.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Callable

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.sqlurls import make_engine, mask_text, reason
from pipeline.state import tables as T
from pipeline.state.place import SharedState, masked

_ENGINES: dict[str, object] = {}
_LOCK = threading.Lock()
_MIGRATION_LOCK = 0x726F757465  # "route": the advisory lock key of migrations on PostgreSQL


def _create_v1(con) -> None:
    T.metadata.create_all(con, tables=[t for t in T.metadata.sorted_tables if t is not T.migrations])


# (version, what it does, how): append only; never edit a step that has shipped.
MIGRATIONS: list[tuple[int, str, Callable]] = [
    (1, "runs, marks, journals, datasets, notices, leases and blobs", _create_v1),
]


class StateUnavailable(RunFailed):
    """The shared state's database cannot be reached or used."""


def engine_for(state: SharedState):
    """The process's engine for this state, its tables migrated (once per process)."""
    with _LOCK:
        engine = _ENGINES.get(state.url)
        if engine is None:
            engine = _ENGINES[state.url] = _open(state)
        return engine


def _open(state: SharedState):
    try:
        if state.url.lower().startswith("sqlite"):
            from pathlib import Path

            from sqlalchemy import event

            file = state.url.split(":///", 1)[-1].split("?", 1)[0]
            if file and file != ":memory:":
                Path(file).parent.mkdir(parents=True, exist_ok=True)

            engine = make_engine(state.url, connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _sqlite_settings(dbapi_con, _record):
                dbapi_con.execute("PRAGMA journal_mode=WAL")
                dbapi_con.execute("PRAGMA synchronous=NORMAL")

        else:
            engine = make_engine(state.url, pool_pre_ping=True, pool_size=4, max_overflow=8)
        migrate(engine)
    except StateUnavailable:
        raise
    except Exception as exc:  # an OptionError (no driver) or the database's refusal
        why = str(exc) if isinstance(exc, OptionError) else mask_text(reason(exc), state.url)
        raise StateUnavailable(f"cannot use the state database {masked(state.url)}: {why}") from exc
    return engine


def migrate(engine) -> list[int]:
    """Apply the migrations this database has not had; return their numbers."""
    from sqlalchemy import insert, select, text

    applied: list[int] = []
    with engine.begin() as con:
        if engine.dialect.name == "postgresql":
            con.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        elif engine.dialect.name == "sqlite":
            con.exec_driver_sql("SELECT 1")  # (the first write below takes SQLite's write lock)
        T.migrations.create(con, checkfirst=True)
        done = {row[0] for row in con.execute(select(T.migrations.c.version))}
        known = {number for number, _, _ in MIGRATIONS}
        newer = sorted(done - known)
        if newer:
            raise StateUnavailable(
                f"the state database {masked(str(engine.url))} was migrated by a newer route (migration "
                f"{newer[-1]}; this route knows up to {max(known)}): upgrade route on this machine"
            )
        for number, name, step in MIGRATIONS:
            if number in done:
                continue
            step(con)
            con.execute(
                insert(T.migrations).values(
                    version=number,
                    name=name,
                    applied=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    host=socket.gethostname(),
                )
            )
            applied.append(number)
    return applied


def db_now(con) -> float:
    """The database's clock in epoch seconds: leases compare times of many machines on one clock."""
    from sqlalchemy import text

    if con.dialect.name == "postgresql":
        return float(con.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar())
    return float(con.execute(text("SELECT (julianday('now') - 2440587.5) * 86400.0")).scalar())


def insert_for(con):
    """The INSERT of this connection's dialect, which knows ON CONFLICT (PostgreSQL and SQLite)."""
    if con.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def forget_engines() -> None:
    """Close every engine (a forked child must not share its parent's connections)."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose(close=False)
        _ENGINES.clear()
