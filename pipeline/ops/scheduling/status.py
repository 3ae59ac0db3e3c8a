"""Where each route stands: schedule, next run, last run and result, last success, stale or failing.

A route is stale when a scheduled run did not start within its grace (defaults.yaml
`stale.grace`, 15 minutes, never more than one schedule interval), or when it failed
`stale.failures` times in a row (3). A run the history still calls running while nobody holds the
route's lock died with its process: it shows as interrupted and counts as a failure.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.ops.afterrun import stale_failures
from pipeline.ops.scheduling.catalog import RouteEntry
from pipeline.ops.scheduling.cron import UTC, parse_iso
from pipeline.route.project import parse_duration
from pipeline.runs.history import History, delivered_per_target
from pipeline.runs.locks import is_locked
from pipeline.runs.recovery import dead_journals

DEFAULT_GRACE = 15 * 60
FAILED = ("failed", "partial", "interrupted")


@dataclass
class RouteStatus:
    """One row of `route status`."""

    route: str
    file: str
    state: str  # ok, failing, stale, running, queued (on a cluster), needs attention, never run,
    # invalid, not scheduled
    schedule: str | None = None
    next_run: str | None = None  # ISO UTC
    due: bool = False
    last_run: str | None = None  # ISO UTC start
    last_status: str | None = None
    last_error: str | None = None
    last_success: str | None = None
    rows_delivered: int | None = None  # by the last run, summed over its targets (kept for old readers)
    delivered: str = "-"  # by the last run, per target: `portal 11, archive 11`
    failures: int = 0  # failed runs in a row
    stale: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grace_seconds(entry: RouteEntry, now: dt.datetime) -> float:
    """How late a scheduled run may start: `stale.grace`, never more than one schedule interval."""
    stale = (entry.project.setting("stale", {}) if entry.project is not None else {}) or {}
    grace = parse_duration(stale["grace"]) if stale.get("grace") else DEFAULT_GRACE
    if entry.schedule is not None:
        grace = min(grace, entry.schedule.interval_at(now).total_seconds())
    return grace


def route_status(entry: RouteEntry, now: dt.datetime) -> RouteStatus:
    """The status of one route at `now` (an aware datetime)."""
    out = RouteStatus(
        entry.name, str(entry.file), "ok", schedule=entry.schedule.describe() if entry.schedule else entry.schedule_text
    )
    if entry.problem:
        out.state, out.reason = "invalid", entry.problem.splitlines()[0]
        return out
    runs = [r for r in History(entry.state_dir).runs(entry.name, limit=100) if r["status"] != "dry-run"]
    running = queued = False
    for r in runs:
        if r["status"] == "queued":  # submitted to a cluster, not started on a worker yet
            queued = queued or r is runs[0]
            continue
        if r["status"] == "running":
            if r is runs[0] and is_locked(entry.state_dir, entry.name):
                running = True
            else:
                r["status"] = "interrupted"
                r["error"] = r["error"] or "the run ended without recording a result (its process was killed?)"
    last = runs[0] if runs else None
    if last:
        out.last_run, out.last_status, out.last_error = last["started"], last["status"], last["error"]
        out.rows_delivered = last["rows_delivered"]
        try:
            report = json.loads(last.get("report") or "{}")
        except ValueError:
            report = {}
        out.delivered = delivered_per_target(last, report)
    success = next((r for r in runs if r["status"] == "success"), None)
    out.last_success = success["started"] if success else None
    for r in runs[1:] if running else runs:
        if r["status"] not in FAILED:
            break
        out.failures += 1
    last_start = parse_iso(last["started"]) if last else None
    reasons = []
    if entry.schedule is not None:
        prev = entry.schedule.previous(now)
        out.due = last_start is None or prev > last_start
        out.next_run = entry.schedule.next(now).isoformat(timespec="seconds")
        since = last_start or _written(entry)
        first_missed = entry.schedule.next(since)
        late = (now - first_missed).total_seconds()
        if late > grace_seconds(entry, now):
            when = first_missed.isoformat(timespec="minutes")
            reasons.append(
                f"missed its schedule: the run due at {when} did not start"
                if last_start
                else f"has never run; a run was due at {when}"
            )
    limit = stale_failures(entry.project)
    if out.failures >= limit:
        reasons.append(f"failed {out.failures} times in a row")
    out.stale, out.reason = bool(reasons), "; ".join(reasons)
    attention = [] if running else unfinished_appends(entry)
    if attention:
        reasons.insert(0, attention[0])
        out.reason = "; ".join(reasons)
    if running:
        out.state = "running"
    elif queued:
        out.state = "queued"
    elif attention:
        out.state = "needs attention"
    elif out.stale:
        out.state = "stale"
    elif last and last["status"] in FAILED:
        out.state, out.reason = "failing", f"last run {last['status']}: {last['error'] or ''}".rstrip(": ")
    elif last is None:
        out.state = "never run" if entry.schedule is not None else "not scheduled"
    elif entry.schedule is None:
        out.state = "not scheduled"
    return out


def unfinished_appends(entry: RouteEntry) -> list[str]:
    """Why the route needs a person: an append that stopped part way, which no run may repeat blindly."""
    found = []
    for log in dead_journals(entry.state_dir, entry.name):
        for t in log.unfinished_appends:
            found.append(
                f"run {log.run_id} stopped part way through its append to target '{t.name}' "
                f"({t.arrived:,} rows arrived, {t.in_doubt_rows:,} in doubt): run `route execute "
                f"{entry.file} --resume` to send the rest"
            )
    return found[-1:]


def _written(entry: RouteEntry) -> dt.datetime:
    """When a route that never ran started to exist: its file's modification time."""
    try:
        return dt.datetime.fromtimestamp(entry.file.stat().st_mtime, UTC)
    except OSError:
        return dt.datetime.now(UTC)


def announce_stale(entry: RouteEntry, status: RouteStatus, log) -> list[dict]:
    """Send a stale notification once per stale spell (Notices remembers it)."""
    if not status.stale or not entry.notify:
        return []
    from pipeline.ops.afterrun import where_to_look
    from pipeline.ops.notify import notify
    from pipeline.ops.notify.events import Notices, stale_event

    notices = Notices(entry.state_dir)
    if notices.said(entry.name, "stale"):
        return []
    where = where_to_look(entry.name, str(entry.file), entry.state_dir, None, None)
    outcomes = notify(
        stale_event(entry.name, status.reason, where, status.last_status or "", status.last_error or ""),
        entry.notify,
        log,
    )
    notices.mark(entry.name, "stale")
    return outcomes
