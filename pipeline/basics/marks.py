"""High-water marks of incremental sources, kept in the state folder.

An incremental source reads only rows whose column is past the last *delivered* value. The mark
must move only when every target has confirmed delivery, or a failed run would skip rows for
ever; so a source never writes it. It reads the committed mark, and when it has read its last
row it records the new one with `pending()`; the executor calls `commit()` after every target
closed successfully, and nothing (or `discard()`) when the run failed:

    marks = marks_for(ctx.run)            # one MarkStore per run, kept in run.extras["marks"]
    last = marks.get(route, key)          # source, before reading (skipped with --full)
    marks.pending(route, key, new_max)    # source, after its last chunk
    marks.commit()                        # executor, after every delivery's close() succeeded

Marks live in `<state>/state.sqlite`, table `incremental_marks`, keyed by route name and a key
the source chooses (e.g. `sql:sales.updated_at`). Values keep their type (integer, number,
decimal, text, date, datetime with or without a time zone) so they bind back as they were read.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.basics.errors import RunFailed

_SCHEMA = """CREATE TABLE IF NOT EXISTS incremental_marks (
    route TEXT NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL,
    run_id TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (route, key))"""

_DECODE = {
    "integer": int,
    "number": float,
    "decimal": Decimal,
    "text": str,
    "date": dt.date.fromisoformat,
    "datetime": dt.datetime.fromisoformat,
}


def encode(value: Any) -> tuple[str, str]:
    """(type, text) of a mark value."""
    if isinstance(value, bool):
        raise TypeError("a boolean column cannot be an incremental mark")
    if isinstance(value, int):
        return "integer", str(value)
    if isinstance(value, float):
        return "number", repr(value)
    if isinstance(value, Decimal):
        return "decimal", str(value)
    if isinstance(value, dt.datetime):
        return "datetime", value.isoformat()
    if isinstance(value, dt.date):
        return "date", value.isoformat()
    if isinstance(value, str):
        return "text", value
    raise TypeError(f"cannot keep a {type(value).__name__} as an incremental mark")


def decode(kind: str, text: str) -> Any:
    return _DECODE[kind](text)


class MarkStore:
    """The marks of one state folder; pending marks are written only by commit()."""

    def __init__(self, state_dir: Path, run_id: str | None = None):
        from pipeline.state.place import shared

        self.shared = shared(state_dir)  # a database state keeps marks in route_marks
        self.path = Path(state_dir) / "state.sqlite"
        self.run_id = run_id
        self._pending: dict[tuple[str, str], Any] = {}

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise RunFailed(f"cannot open the state file {self.path}: {exc}") from exc
        return db

    def get(self, route: str, key: str) -> Any:
        """The committed mark, or None on the first run."""
        if self.shared is not None:
            from pipeline.state.records import mark_get

            row = mark_get(self.shared, route, key)
            return decode(*row) if row else None
        if not self.path.exists():
            return None
        db = self._connect()
        try:
            row = db.execute(
                "SELECT type, value FROM incremental_marks WHERE route = ? AND key = ?", (route, key)
            ).fetchone()
        finally:
            db.close()
        return decode(*row) if row else None

    def pending(self, route: str, key: str, value: Any) -> None:
        """Remember the mark to store once the run has delivered everything."""
        if value is not None:
            encode(value)  # fail now, not at commit, for a value we could not store
            self._pending[(route, key)] = value

    @property
    def pending_marks(self) -> dict[tuple[str, str], Any]:
        return dict(self._pending)

    def discard(self) -> None:
        self._pending.clear()

    def commit(self) -> int:
        """Write every pending mark in one transaction; returns how many were written."""
        if not self._pending:
            return 0
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        rows = [(route, key, *encode(value), self.run_id, now) for (route, key), value in self._pending.items()]
        if self.shared is not None:
            self._commit_shared(rows)
            self._pending.clear()
            return len(rows)
        db = self._connect()
        try:
            with db:
                db.executemany(
                    "INSERT INTO incremental_marks (route, key, type, value, run_id, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (route, key) DO UPDATE SET "
                    "type = excluded.type, value = excluded.value, run_id = excluded.run_id, "
                    "updated_at = excluded.updated_at",
                    rows,
                )
        except sqlite3.Error as exc:
            raise RunFailed(
                f"the rows were delivered but the incremental mark could not be saved in "
                f"{self.path}: {exc}; the next run will read them again"
            ) from exc
        finally:
            db.close()
        self._pending.clear()
        return len(rows)

    def _commit_shared(self, rows: list[tuple]) -> None:
        from pipeline.state.records import marks_put

        names = ("route", "key", "type", "value", "run_id", "updated_at")
        try:
            marks_put(self.shared, [dict(zip(names, row)) for row in rows])
        except Exception as exc:
            raise RunFailed(
                f"the rows were delivered but the incremental mark could not be saved in the state "
                f"{self.shared}: {exc}; the next run will read them again"
            ) from exc

    def forget(self, route: str, key: str | None = None) -> int:
        """Drop committed marks (all of a route's when key is None): the next run reads everything."""
        if self.shared is not None:
            from pipeline.state.records import marks_forget

            return marks_forget(self.shared, route, key)
        if not self.path.exists():
            return 0
        db = self._connect()
        try:
            with db:
                if key is None:
                    return db.execute("DELETE FROM incremental_marks WHERE route = ?", (route,)).rowcount
                return db.execute("DELETE FROM incremental_marks WHERE route = ? AND key = ?", (route, key)).rowcount
        finally:
            db.close()


def marks_for(run) -> MarkStore:
    """The run's MarkStore (created on first use and kept in run.extras["marks"])."""
    store = run.extras.get("marks")
    if store is None:
        store = run.extras["marks"] = MarkStore(run.state_dir, getattr(run, "run_id", None))
    return store
