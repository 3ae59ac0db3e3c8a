"""Run history: one row per run in `<state>/history.sqlite`, for `route history` and `route status`.

A run is recorded when it starts (status running) and updated when it ends, so a run that was
killed shows as running forever rather than vanishing. Messages are masked before they get here.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from .report import RunReport

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
    report TEXT
);
CREATE INDEX IF NOT EXISTS runs_route_started ON runs(route, started);
"""


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds")


class History:
    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "history.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(_SCHEMA)
        return con

    def start(self, report: RunReport) -> None:
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR REPLACE INTO runs(run_id, route, route_file, started, status) VALUES (?,?,?,?,?)",
                        (report.run_id, report.route, report.route_file, _iso(report.started), "running"))

    def finish(self, report: RunReport) -> None:
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT OR REPLACE INTO runs(run_id, route, route_file, started, ended, status, rows_read, "
                "rows_rejected, rows_delivered, error, rejects_file, report) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (report.run_id, report.route, report.route_file, _iso(report.started), _iso(report.ended),
                 report.status, report.rows_read, report.rows_rejected, report.rows_delivered,
                 report.error or None, report.rejects_file or None, json.dumps(report.to_dict(), default=str)))

    def runs(self, route: str | None = None, status: str | None = None, since: str | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        sql, args = "SELECT * FROM runs WHERE 1=1", []
        if route:
            sql += " AND route = ?"
            args.append(route)
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
