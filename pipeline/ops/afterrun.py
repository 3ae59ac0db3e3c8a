"""What happens once a run has ended: notifications, the log dataset row, the JSON report.

The report goes beside the run's log (`<state>/logs/<route>-<run id>.json`, see
pipeline/runs/runlog.py) and says where the log is and which notifications went out. None of this
can fail the run: every step logs what went wrong and carries on.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from pipeline.engine.report import RunReport
from pipeline.runs.history import History
from pipeline.runs.runlog import report_path

DEFAULT_STALE_FAILURES = 3


def where_to_look(
    route: str,
    route_file: str,
    state_dir: Path,
    log_file: Path | None,
    report_file: Path | None,
    rejects_file: str = "",
) -> dict[str, str]:
    """The files and the command a person should look at after a run, for messages."""
    return {
        "log": str(log_file or ""),
        "report": str(report_file or ""),
        "rejects": rejects_file,
        "history": f"route history {route} --state {state_dir}",
        "route": route_file,
    }


def finish_run(plan, report: RunReport, log: logging.Logger, log_file: Path | None) -> dict[str, Any]:
    """Notify, append to the log dataset and write the JSON report; returns what was done."""
    state = plan.run.state_dir
    project = getattr(plan, "project", None)
    report_file = report_path(state, report.route, report.run_id)
    done: dict[str, Any] = {"notifications": [], "log_dataset": None}
    quiet_run = report.dry_run or report.status == "dry-run" or plan.run.options.test or plan.run.options.preview
    if not quiet_run:
        where = where_to_look(report.route, report.route_file, state, log_file, report_file, report.rejects_file)
        try:
            done["notifications"] = _notify(plan, report, project, where, log)
        except Exception as exc:
            log.warning("notifications were not sent: %s: %s", type(exc).__name__, exc)
        options = project.log_dataset() if project is not None else None
        if options:
            from pipeline.ops.logdataset import append_run

            done["log_dataset"] = {"dataset": options["dataset"], "ok": append_run(options, report, plan.run, log)}
    try:
        write_report(
            report_file,
            report,
            {
                "log_file": str(log_file or ""),
                "state_dir": str(state),
                "profile": getattr(project, "profile", None),
                **done,
            },
        )
    except OSError as exc:
        log.warning("could not write the run report %s: %s", report_file, exc)
    done["report_file"] = str(report_file)
    return done


def write_report(path: Path, report: RunReport, extra: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({**report.to_dict(), **extra}, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _notify(plan, report: RunReport, project, where: dict, log: logging.Logger) -> list[dict]:
    return notify_run(report, plan.raw.get("notify"), project, plan.run.state_dir, where, log)


def notify_run(report: RunReport, config, project, state_dir: Path, where: dict, log: logging.Logger) -> list[dict]:
    """Send what a finished run calls for (failure, rejects, stale, recovery, success) to `config`'s targets."""
    from pipeline.ops.notify import notify
    from pipeline.ops.notify.events import Notices, after_run, failure_streak, run_event

    failures_for_stale = stale_failures(project)
    earlier = [
        r
        for r in History(state_dir).runs(report.route, limit=max(failures_for_stale + 5, 20))
        if r["run_id"] != report.run_id
    ]
    notices = Notices(state_dir)
    kinds = after_run(report, earlier, notices, failures_for_stale)
    streak = failure_streak(report, earlier)
    outcomes = []
    for kind in kinds:
        outcomes += notify(run_event(kind, report, where, failures=streak), config, log) if config else []
    if "stale" in kinds:
        notices.mark(report.route, "stale")
    if report.ok and notices.said(report.route, "stale"):
        notices.clear(report.route)
    return outcomes


def stale_failures(project) -> int:
    """Failed runs in a row that make a route stale (defaults.yaml `stale.failures`, default 3)."""
    stale = (project.setting("stale", {}) if project is not None else {}) or {}
    return int(stale.get("failures", DEFAULT_STALE_FAILURES))
