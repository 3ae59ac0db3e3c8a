"""Run history: one row per run in `<state>/history.sqlite`, for `route history` and `route status`.

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
    host TEXT
);
CREATE INDEX IF NOT EXISTS runs_route_started ON runs(route, started);
"""
# Columns added since the first release, added to older files as they are opened.
_ADDED = {"pid": "INTEGER", "host": "TEXT"}


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


class History:
    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "history.sqlite"

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

    def start(self, report: RunReport) -> None:
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT OR REPLACE INTO runs(run_id, route, route_file, started, status, pid, host) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    report.run_id,
                    report.route,
                    report.route_file,
                    _iso(report.started),
                    "running",
                    os.getpid(),
                    socket.gethostname(),
                ),
            )

    def settle(self, route: str | None = None) -> int:
        """Record runs whose process died as `interrupted`, with their journals' counts; how many."""
        if not self.path.exists():
            return 0
        sql, args = "SELECT * FROM runs WHERE status = 'running'", []
        if route:
            sql += " AND route = ?"
            args.append(route)
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            running = [dict(r) for r in con.execute(sql, args)]
        settled = 0
        for row in running:
            found = interrupted(row, self.path.parent)
            if found is None:
                continue
            status, error, delivered, report = found
            with closing(self._connect()) as con, con:
                con.execute(
                    "UPDATE runs SET status = ?, error = ?, rows_delivered = ?, report = ? "
                    "WHERE run_id = ? AND status = 'running'",
                    (status, error, delivered, json.dumps(report, default=str), row["run_id"]),
                )
            settled += 1
        return settled

    def finish(self, report: RunReport) -> None:
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT OR REPLACE INTO runs(run_id, route, route_file, started, ended, status, rows_read, "
                "rows_rejected, rows_delivered, error, rejects_file, report) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    report.run_id,
                    report.route,
                    report.route_file,
                    _iso(report.started),
                    _iso(report.ended),
                    report.status,
                    report.rows_read,
                    report.rows_rejected,
                    report.rows_delivered,
                    report.error or None,
                    report.rejects_file or None,
                    json.dumps(report.to_dict(), default=str),
                ),
            )

    def runs(
        self,
        route: str | Sequence[str] | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The newest runs first, of `route` (a name, or several) or of every route."""
        if not self.path.exists():
            return []
        names = [route] if isinstance(route, str) else list(route or [])
        for name in names or [None]:
            self.settle(name)
        sql, args = "SELECT * FROM runs WHERE 1=1", []
        if names:
            sql += f" AND route IN ({','.join('?' * len(names))})"
            args.extend(names)
        if status:
            sql += " AND status = ?"
            args.append(status)
        if since:
            sql += " AND started >= ?"
            args.append(since)
        sql += " ORDER BY started DESC, run_id DESC LIMIT ?"
        args.append(limit)
        with closing(self._connect()) as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, args)]


def interrupted(row: dict, state_dir: Path) -> tuple[str, str, int, dict] | None:
    """(status, error, rows delivered, report) for a `running` row whose process is gone, else None."""
    path = J.journal_dir(state_dir, row["route"]) / f"{row['run_id']}.jsonl"
    log = J.read(path) if path.exists() else None
    pid, host = row.get("pid"), row.get("host")
    if log is not None and log.pid is not None:
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
