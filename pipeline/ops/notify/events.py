"""What is worth telling someone after a run: failure, too many rejects, stale, recovery, success.

An Event carries everything a message needs (route, error, counts, where to look) and renders
itself as a subject and a plain-text body; the email and webhook senders only format and send.
Which events a run produces depends on its history (a success after failures is a recovery; the
Nth failure in a row makes the route stale), and Notices remembers what was already said, so a
stale route is announced once, not every minute.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.engine.report import RunReport

FAILED = ("failed", "partial")


@dataclass
class Event:
    """One thing worth telling: what happened to which route, with counts and where to look."""

    kind: str  # failure, rejects, stale, recovery, success
    route: str
    headline: str
    status: str = ""
    run_id: str = ""
    error: str = ""
    reason: str = ""  # why a route is stale
    started: str = ""
    seconds: float | None = None
    counts: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)
    where: dict = field(default_factory=dict)
    host: str = field(default_factory=socket.gethostname)

    def to_dict(self) -> dict:
        return asdict(self)

    def subject(self) -> str:
        return f"[route] {self.headline}"

    def text(self) -> str:
        """The plain-text body shared by email and chat messages."""
        lines = [self.headline, ""]
        if self.error:
            lines += [f"error: {self.error}", ""]
        if self.reason:
            lines += [f"why: {self.reason}", ""]
        if self.started:
            took = f", took {self.seconds:.1f} s" if self.seconds is not None else ""
            lines.append(f"started   {self.started}{took}")
        c = self.counts
        if c:
            lines.append(
                f"rows      {c.get('read', 0):,} read, {c.get('rejected', 0):,} rejected, "
                f"{c.get('delivered', 0):,} delivered ({c.get('created', 0):,} created, "
                f"{c.get('updated', 0):,} updated, {c.get('deleted', 0):,} deleted)"
            )
        for i, t in enumerate(self.targets):
            where = f" -> {t['location']}" if t.get("location") else ""
            lines.append(
                f"{'targets' if i == 0 else '':<10}{t['name']} ({t['kind']}): {t['status']}, "
                f"{t['delivered']:,} delivered{where}"
            )
        if self.where:
            lines += ["", "where to look"]
            lines += [f"  {k:<9}{v}" for k, v in self.where.items() if v]
        lines += ["", f"host: {self.host}"]
        return "\n".join(lines)


def run_event(kind: str, report: RunReport, where: dict, failures: int = 0) -> Event:
    """An event about a finished run."""
    word = {
        "failure": "FAILED" if report.status == "failed" else "PARTIAL: only part was delivered",
        "rejects": f"rejected {report.rows_rejected:,} rows",
        "recovery": "recovered: the run succeeded",
        "success": "succeeded",
        "stale": f"is stale: {failures} failed runs in a row",
    }[kind]
    targets = [
        {"name": t.name, "kind": t.kind, "status": t.status, "delivered": t.delivered, "location": t.location}
        for t in report.targets
    ]
    counts = {
        "read": report.rows_read,
        "rejected": report.rows_rejected,
        "delivered": report.rows_delivered,
        "created": sum(t.created for t in report.targets),
        "updated": sum(t.updated for t in report.targets),
        "deleted": sum(t.deleted for t in report.targets),
    }
    started = dt.datetime.fromtimestamp(report.started, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Event(
        kind,
        report.route,
        f"route {report.route} {word} (run {report.run_id})",
        report.status,
        report.run_id,
        report.error,
        f"the last {failures} runs failed" if kind == "stale" else "",
        started,
        round(report.seconds, 3),
        counts,
        targets,
        where,
    )


def stale_event(route: str, reason: str, where: dict, last_status: str = "", last_error: str = "") -> Event:
    """An event for a route found stale between runs (by the scheduler)."""
    return Event(
        "stale", route, f"route {route} is stale: {reason}", last_status, error=last_error, reason=reason, where=where
    )


def after_run(report: RunReport, earlier: list[dict], notices: Notices, stale_failures: int) -> list[str]:
    """Event kinds for a finished run, given the route's earlier runs (newest first, this one excluded)."""
    if report.status in ("dry-run", "running"):
        return []
    kinds = []
    finished = [r for r in earlier if r["status"] not in ("dry-run", "running")]
    if report.status in FAILED:
        kinds.append("failure")
        if failure_streak(report, earlier) >= stale_failures and not notices.said(report.route, "stale"):
            kinds.append("stale")
    else:
        kinds.append("success")
        if (finished and finished[0]["status"] in FAILED) or notices.said(report.route, "stale"):
            kinds.append("recovery")
    if report.rows_rejected:
        kinds.append("rejects")
    return kinds


def failure_streak(report: RunReport, earlier: list[dict]) -> int:
    """Failed runs in a row, this one included (0 when it succeeded)."""
    if report.status not in FAILED:
        return 0
    streak = 1
    for r in earlier:
        if r["status"] in ("dry-run", "running"):
            continue
        if r["status"] not in FAILED:
            break
        streak += 1
    return streak


class Notices:
    """What was already announced per route (`<state>/notices.json`), so stale is said once."""

    def __init__(self, state_dir: Path):
        from pipeline.state.place import shared

        self.shared = shared(state_dir)  # a database state: route_notices
        self.path = Path(state_dir) / "notices.json"

    def _load(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def said(self, route: str, kind: str) -> bool:
        if self.shared is not None:
            from pipeline.state.records import notices_of

            return kind in notices_of(self.shared, route)
        return kind in self._load().get(route, {})

    def mark(self, route: str, kind: str) -> None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if self.shared is not None:
            from pipeline.state.records import notice_put

            notice_put(self.shared, route, kind, now)
            return
        data = self._load()
        data.setdefault(route, {})[kind] = now
        self._save(data)

    def clear(self, route: str) -> None:
        if self.shared is not None:
            from pipeline.state.records import notices_clear

            notices_clear(self.shared, route)
            return
        data = self._load()
        if data.pop(route, None) is not None:
            self._save(data)

    def _save(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)
