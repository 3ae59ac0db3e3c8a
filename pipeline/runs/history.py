"""Run history: one row per run in `<state>/history.sqlite` (or a database state's `route_runs`),
for `route history` and `route status`.

A run is recorded when it starts (status running, with its process id) and updated when it ends.
A run whose process died first stays `running` in the table until someone reads the history:
`settle()` then finds its process gone and records it as `interrupted`, with what each target
delivered according to its delivery journal. Messages are masked before they get here.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import time
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from pipeline.basics.lines import describe_sources
from pipeline.engine.report import RunReport
from pipeline.runs import journal as J

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    route TEXT NOT NULL,
    route_file TEXT,
    started TEXT NOT NULL,
    ended TEXT,
    status TEXT NOT NULL,
    rows_read INTEGER DEFAULT 0,
    rows_rejected INTEGER DEFAULT 0,
    rows_delivered INTEGER DEFAULT 0,
    error TEXT,
    rejects_file TEXT,
    report TEXT,
    pid INTEGER,
    host TEXT,
    slot TEXT,
    attempt INTEGER DEFAULT 1
);
CREATE INDEX IF NOT EXISTS runs_route_started ON runs(route, started);
"""
# Columns added since the first release, added to older files as they are opened.
_ADDED = {"pid": "INTEGER", "host": "TEXT", "slot": "TEXT", "attempt": "INTEGER DEFAULT 1"}
_COLUMNS = (
    "run_id, route, route_file, started, ended, status, rows_read, rows_rejected, rows_delivered, "
    "error, rejects_file, report, pid, host, slot, attempt"
)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


class _FolderRuns:
    """The runs table of a state folder: `history.sqlite`, in WAL mode (readers never wait)."""

    table = "runs"

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "history.sqlite"

    def exists(self) -> bool:
        return self.path.exists()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(50):
            try:
                return self._open()
            except sqlite3.OperationalError as exc:
                # Two runs opening a new history at once: switching it to WAL (or adding a column
                # to an old one) takes the file for a moment, and SQLite says "locked" at once.
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
            have = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
            for name, kind in _ADDED.items():
                if name not in have:
                    try:
                        con.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
                    except sqlite3.OperationalError as exc:  # another process added it first
                        if "duplicate column" not in str(exc):
                            raise
        except BaseException:
            con.close()
            raise
        return con

    def read(self, sql: str, args: dict) -> list[dict[str, Any]]:
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, args)]

    def write(self, sql: str, args: dict) -> int:
        with closing(self._connect()) as con, con:
            return con.execute(sql, args).rowcount


class _DatabaseRuns:
    """The runs table of a database state (`route_runs`)."""

    table = "route_runs"

    def __init__(self, state):
        self.state = state
        self.path = None

    def exists(self) -> bool:
        return True

    def read(self, sql: str, args: dict) -> list[dict[str, Any]]:
        from sqlalchemy import text

        from pipeline.state.database import engine_for

        with engine_for(self.state).connect() as con:
            return [dict(r) for r in con.execute(text(sql), args).mappings()]

    def write(self, sql: str, args: dict) -> int:
        from sqlalchemy import text

        from pipeline.state.database import engine_for

        with engine_for(self.state).begin() as con:
            return con.execute(text(sql), args).rowcount


class History:
    """The runs of a state: in its folder's history.sqlite, or in its database's route_runs."""

    def __init__(self, state_dir: Path):
        from pipeline.state.place import shared

        found = shared(state_dir)
        self.state_dir = state_dir
        self._db = _DatabaseRuns(found) if found is not None else _FolderRuns(state_dir)
        self.path = self._db.path  # the folder's file (None for a database)
        self._t = self._db.table

    def _put(self, row: dict[str, Any]) -> None:
        """Insert the run, or update the columns given of the one recorded."""
        names = list(row)
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "run_id")
        self._db.write(
            f"INSERT INTO {self._t} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)}) "
            f"ON CONFLICT (run_id) DO UPDATE SET {updates}",
            row,
        )

    def queue(self, route: str, route_file: str, run_id: str, slot: dt.datetime, attempt: int = 1) -> None:
        """A run handed to a cluster: recorded as `queued` until a worker starts it."""
        now = _iso(time.time())
        self._put(
            {
                "run_id": run_id,
                "route": route,
                "route_file": route_file,
                "started": now,
                "status": "queued",
                "slot": slot.isoformat(timespec="seconds"),
                "attempt": attempt,
            }
        )

    def start(self, report: RunReport) -> None:
        self._put(
            {
                "run_id": report.run_id,
                "route": report.route,
                "route_file": report.route_file,
                "started": _iso(report.started),
                "status": "running",
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
        )

    def settle(self, route: str | None = None) -> int:
        """Record runs whose process died as `interrupted`, with their journals' counts; how many."""
        if not self._db.exists():
            return 0
        sql, args = f"SELECT * FROM {self._t} WHERE status = 'running'", {}
        if route:
            sql += " AND route = :route"
            args["route"] = route
        settled = 0
        for row in self._db.read(sql, args):
            found = interrupted(row, self.state_dir)
            if found is None:
                continue
            status, error, delivered, report = found
            self._db.write(
                f"UPDATE {self._t} SET status = :status, error = :error, rows_delivered = :delivered, "
                "report = :report WHERE run_id = :run_id AND status = 'running'",
                {
                    "status": status,
                    "error": error,
                    "delivered": delivered,
                    "report": json.dumps(report, default=str),
                    "run_id": row["run_id"],
                },
            )
            settled += 1
        return settled

    def finish(self, report: RunReport) -> None:
        self._put(
            {
                "run_id": report.run_id,
                "route": report.route,
                "route_file": report.route_file,
                "started": _iso(report.started),
                "ended": _iso(report.ended),
                "status": report.status,
                "rows_read": report.rows_read,
                "rows_rejected": report.rows_rejected,
                "rows_delivered": report.rows_delivered,
                "error": report.error or None,
                "rejects_file": report.rejects_file or None,
                "report": json.dumps(report.to_dict(), default=str),
            }
        )

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run by its id (as recorded: not settled), or None."""
        if not self._db.exists():
            return None
        rows = self._db.read(f"SELECT * FROM {self._t} WHERE run_id = :run_id", {"run_id": run_id})
        return rows[0] if rows else None

    def runs(
        self,
        route: str | Sequence[str] | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The newest runs first, of `route` (a name, or several) or of every route."""
        if not self._db.exists():
            return []
        names = [route] if isinstance(route, str) else list(route or [])
        for name in names or [None]:
            self.settle(name)
        sql, args = f"SELECT {_COLUMNS} FROM {self._t} WHERE 1=1", {}
        if names:
            sql += f" AND route IN ({', '.join(f':r{i}' for i in range(len(names)))})"
            args.update({f"r{i}": n for i, n in enumerate(names)})
        if status:
            sql += " AND status = :status"
            args["status"] = status
        if since:
            sql += " AND started >= :since"
            args["since"] = since
        sql += " ORDER BY started DESC, run_id DESC LIMIT :limit"
        args["limit"] = limit
        return self._db.read(sql, args)


def interrupted(row: dict, state_dir: Path) -> tuple[str, str, int, dict] | None:
    """(status, error, rows delivered, report) for a `running` row whose process is gone, else None."""
    book = J.book_for(state_dir)
    log = J.read_run(book, row["route"], row["run_id"])
    if not log.targets and log.pid is None:
        log = None  # no journal (yet)
    pid, host = row.get("pid"), row.get("host")
    running = book.running(row["route"], row["run_id"])
    if running is not None:  # a database state: the run's lease tells, wherever it runs
        if running:
            return None
    elif log is not None and log.pid is not None:
        if J.alive(log):
            return None
        if log.ended and (not log.host or log.host == socket.gethostname()) and J.pid_alive(log.pid):
            return None  # the journal has ended and the run is writing its result to this history now
    elif pid is None or (host and host != socket.gethostname()) or J.pid_alive(pid):
        return None  # an older row without a pid, another machine's run, or still running
    targets = []
    parts = []
    for t in log.targets.values() if log is not None else []:
        arrived = t.arrived - t.carried_rows
        doubt = t.in_doubt_rows
        targets.append(
            {
                "name": t.name,
                "kind": t.delivery,
                "delivered": arrived,
                "in_doubt": doubt,
                "status": "delivered" if t.committed else ("aborted" if arrived or doubt else "untouched"),
            }
        )
        if t.committed:
            parts.append(f"target {t.name}: delivered {arrived:,} rows")
        elif not t.atomic and (arrived or doubt):
            text = f"target {t.name}: {arrived:,} rows arrived"
            if doubt:
                lines = describe_sources(t.doubt_lines())
                text += f", {doubt:,} may or may not have ({lines})"
            parts.append(text + ", the rest was not sent")
    ended = log is not None and log.ended
    status = (log.status or "failed") if ended else "interrupted"
    if ended:
        error = row.get("error") or ""
    else:
        error = "the run stopped before it finished: its process is gone (killed?)"
        error += "; " + ("; ".join(parts) if parts else "nothing was delivered")
        if log is not None and log.unfinished_appends:
            error += ". An append stopped part way: run the route with --resume to send the rest"
    delivered = sum(t["delivered"] for t in targets)
    return (
        status,
        error,
        delivered,
        {
            "route": row["route"],
            "run_id": row["run_id"],
            "status": status,
            "error": error,
            "targets": targets,
            "rows_delivered": delivered,
        },
    )


def delivered_per_target(run: dict, report: dict) -> str:
    """`portal 11, archive 11`: what each target delivered (a sum would count a row per target)."""
    targets = report.get("targets") or []
    if run["status"] in ("running", "dry-run"):
        return "-"
    if not targets:
        return f"{run['rows_delivered'] or 0:,}"
    return ", ".join(f"{t.get('name')} {t.get('delivered') or 0:,}" for t in targets)
