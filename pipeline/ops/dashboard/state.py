"""What the dashboard shows, read from the state the scheduler and every run keep.

Routes come from a Catalog (re-read when their files change) and their status from
`route_status`, as `route status` computes it. A run is its history row plus its JSON report, its
log file, its rejects file and, while it runs, its delivery journal. Nothing here writes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import socket
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.ops.artifacts import artifacts_url, local_copy
from pipeline.ops.scheduling.catalog import Catalog, RouteEntry
from pipeline.ops.scheduling.status import RouteStatus, route_status
from pipeline.runs import journal as J
from pipeline.runs.history import History, delivered_per_target
from pipeline.state.place import artifacts_folder, identity

LOG_TAIL_BYTES = 256 * 1024  # a run's log shown on its page: its last 256 KB
REJECTS_MAX_BYTES = 64 * 1024 * 1024  # a rejects file larger than this is read only this far

# Values of keys that look like secrets are masked when a route file is shown (`${VAR}` stays).
_SECRET_KEY = re.compile(
    r"""(?P<key>\b[\w-]*(?:pass|secret|token|pwd|credential|api_key|apikey)[\w-]*\s*:\s*)"""
    r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|\$\{\w+\}|[^\s,}#'"][^,}#\n]*)""",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?P<head>://[^:/@\s]+:)[^@\s]+(?P<tail>@)")


def mask_route_text(text: str) -> str:
    """A route file as it may be shown: values of secret-looking keys and URL passwords masked."""

    def key(m: re.Match) -> str:
        value = m.group("value").strip()
        if re.fullmatch(r"['\"]?\$\{[A-Za-z_][A-Za-z0-9_]*\}['\"]?", value):
            return m.group(0)
        return m.group("key") + "***"

    return _URL_PASSWORD.sub(r"\g<head>***\g<tail>", _SECRET_KEY.sub(key, text))


@dataclass
class RunFiles:
    log: Path
    report: Path
    rejects: Path


class DashboardState:
    """The routes under `paths` (folders or route files) and everything their runs left."""

    def __init__(
        self,
        paths: list[str | Path],
        variables: Mapping[str, str] | None = None,
        state: str | Path | None = None,
        profile: str | None = None,
    ):
        self.variables = dict(os.environ if variables is None else variables)
        self.state, self.profile = state, profile
        self.catalog = Catalog(list(paths), self.variables, profile, state, on_skip=lambda line: None)
        self._lock = threading.Lock()

    # ---- routes
    def entries(self) -> list[RouteEntry]:
        with self._lock:
            self.catalog.scan()
            return self.catalog.routes()

    def entry(self, name: str) -> RouteEntry | None:
        return next((e for e in self.entries() if e.name == name), None)

    def statuses(self) -> list[tuple[RouteEntry, RouteStatus]]:
        now = dt.datetime.now(dt.UTC)
        return [(e, route_status(e, now)) for e in self.entries()]

    def status(self, entry: RouteEntry) -> RouteStatus:
        return route_status(entry, dt.datetime.now(dt.UTC))

    # ---- runs
    def runs(self, entry: RouteEntry, limit: int = 200) -> list[dict[str, Any]]:
        rows = History(entry.state_dir).runs(entry.name, limit=limit)
        for r in rows:
            finishing(r)
            r["report_data"] = load_report(r)
            r["delivered"] = delivered_per_target(r, r["report_data"])
            r["seconds"] = seconds_of(r)
        return rows

    def last_run_id(self, entry: RouteEntry, started: str | None) -> str | None:
        """The id of the route's run that started at `started` (its status's last run)."""
        if not started:
            return None
        rows = History(entry.state_dir).runs(entry.name, since=started, limit=50)
        same = [r["run_id"] for r in rows if r["started"] == started and r["status"] != "dry-run"]
        return max(same) if same else None

    def find_run(self, run_id: str) -> tuple[RouteEntry, dict[str, Any]] | None:
        """The run `run_id` of one of the routes, looked up by its id in each state's history."""
        entries = self.entries()
        states = {identity(e.state_dir): e.state_dir for e in entries}
        for place, state_dir in states.items():
            history = History(state_dir)
            row = _run_row(history, run_id)
            entry = next(
                (e for e in entries if identity(e.state_dir) == place and row and e.name == row["route"]), None
            )
            if row is None or entry is None:
                continue
            if row["status"] == "running":  # gone? settle it as route status would
                history.settle(entry.name)
                row = _run_row(history, run_id) or row
            finishing(row)
            row["report_data"] = load_report(row)
            row["delivered"] = delivered_per_target(row, row["report_data"])
            row["seconds"] = seconds_of(row)
            return entry, row
        return None

    def files(self, entry: RouteEntry, run: dict) -> RunFiles:
        """The run's log, report and rejects file, here (a copy, when they went to an artifacts URL)."""
        base = artifacts_folder(entry.state_dir)
        stem = f"{entry.name}-{run['run_id']}"
        rejects = run.get("rejects_file") or str(base / "rejects" / f"{stem}.csv")
        url = artifacts_url(entry.state_dir)
        logs = [base / "logs" / f"{stem}{suffix}" for suffix in (".log", ".json")]
        if url is not None:  # there once the run has ended; until then in the scratch folder
            logs = [p if p.exists() else local_copy(entry.state_dir, f"{url}/logs/{p.name}") for p in logs]
        return RunFiles(logs[0], logs[1], local_copy(entry.state_dir, rejects))

    def log_text(self, entry: RouteEntry, run: dict) -> str:
        path = self.files(entry, run).log
        try:
            with open(path, "rb") as f:
                size = f.seek(0, io.SEEK_END)
                f.seek(max(0, size - LOG_TAIL_BYTES))
                data = f.read()
        except OSError:
            return ""
        text = data.decode("utf-8", "replace")
        return text if size <= LOG_TAIL_BYTES else "[...]\n" + text.split("\n", 1)[-1]

    def progress(self, entry: RouteEntry, run: dict) -> dict[str, Any]:
        """A running run as its journal tells it: per target, rows that arrived so far."""
        out: dict[str, Any] = {"targets": []}
        log = J.read_run(J.book_for(entry.state_dir), entry.name, run["run_id"])
        if log.targets:
            out["targets"] = [
                {"name": t.name, "kind": t.delivery, "arrived": t.arrived, "in_doubt": t.in_doubt_rows,
                 "committed": t.committed}
                for t in log.targets.values()
            ]  # fmt: skip
        started = parse_time(run.get("started"))
        if started is not None and run.get("status") == "running":
            out["elapsed"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
        return out

    def running(self) -> list[dict[str, Any]]:
        """Every run the history calls running (and whose process is alive), with its progress."""
        found = []
        for entry in self.entries():
            for r in History(entry.state_dir).runs(entry.name, status="running", limit=20):
                found.append(run_json(entry, r, self.progress(entry, r)))
        return found


def process_alive(row: dict) -> bool:
    """Is the process that recorded this run still running (on this machine)?"""
    pid, host = row.get("pid"), row.get("host")
    return bool(pid) and (not host or host == socket.gethostname()) and J.pid_alive(int(pid))


def finishing(row: dict) -> dict:
    """A run whose journal has ended but whose process has not yet written its result: reading the
    history in between settles it from the journal (runs/history.py), without its counts, and its
    own result replaces that a moment later. Until then it is shown as still running."""
    if row.get("ended") is None and row.get("status") not in ("running", "dry-run") and process_alive(row):
        row["status"] = "running"
    return row


def _run_row(history: History, run_id: str) -> dict | None:
    try:
        return history.get(run_id)
    except sqlite3.Error:
        return None


def load_report(run: dict) -> dict:
    try:
        data = json.loads(run.get("report") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def seconds_of(run: dict) -> float | None:
    a, b = parse_time(run.get("started")), parse_time(run.get("ended"))
    return round((b - a).total_seconds(), 3) if a and b else None


def run_json(entry: RouteEntry, run: dict, progress: dict | None = None) -> dict[str, Any]:
    """A run as the JSON endpoints give it (no report blob, no process details)."""
    report = run.get("report_data") if "report_data" in run else load_report(run)
    out = {
        "run_id": run["run_id"],
        "route": entry.name,
        "status": run["status"],
        "started": run.get("started"),
        "ended": run.get("ended"),
        "seconds": seconds_of(run),
        "rows_read": run.get("rows_read") or 0,
        "rows_rejected": run.get("rows_rejected") or 0,
        "rows_delivered": run.get("rows_delivered") or 0,
        "error": run.get("error") or "",
        "targets": [
            {
                k: t.get(k)
                for k in (
                    "name",
                    "kind",
                    "routed",
                    "delivered",
                    "created",
                    "updated",
                    "deleted",
                    "rejected",
                    "status",
                    "seconds",
                )
            }
            for t in report.get("targets") or []
        ],  # fmt: skip
    }
    if progress is not None:
        out["progress"] = progress
    return out


@dataclass
class RejectsPage:
    columns: list[str]
    rows: list[dict[str, str]]
    total: int  # rows matching the filter
    offset: int
    limit: int
    reasons: list[tuple[str, int]]  # every reason in the file, with its count


SHOWN_REJECT_COLUMNS = ("stage", "step", "target", "column", "value", "reason", "source", "line")


def read_rejects(path: Path, text: str = "", reason: str = "", offset: int = 0, limit: int = 50) -> RejectsPage:
    """One page of a rejects file: rows whose cells contain `text` and whose reason is `reason`."""
    rows, counts = list(iter_rejects(path)), {}
    for r in rows:
        counts[r.get("reason", "")] = counts.get(r.get("reason", ""), 0) + 1
    matching = [r for r in rows if matches(r, text, reason)]
    columns = list(rows[0].keys()) if rows else list(SHOWN_REJECT_COLUMNS)
    return RejectsPage(
        columns,
        matching[offset : offset + limit],
        len(matching),
        offset,
        limit,
        sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
    )


def iter_rejects(path: Path):
    try:
        f = open(path, encoding="utf-8", newline="")
    except OSError:
        return
    with f:
        head = f.read(REJECTS_MAX_BYTES)
        yield from csv.DictReader(io.StringIO(head))


def matches(row: dict, text: str, reason: str) -> bool:
    if reason and row.get("reason", "") != reason:
        return False
    if text:
        needle = text.lower()
        return any(needle in str(v).lower() for v in row.values())
    return True


def rejects_csv(path: Path, text: str = "", reason: str = "") -> str:
    """The rejects (those matching the filter) as a CSV download, with every column of the file."""
    out = io.StringIO()
    writer = None
    for row in iter_rejects(path):
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row.keys()), lineterminator="\n")
            writer.writeheader()
        if matches(row, text, reason):
            writer.writerow(row)
    return out.getvalue()
