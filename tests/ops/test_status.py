"""`route status`: schedule, next and last run, last success, rows, and the stale and failing flags."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

from notify_servers import HttpServer

from pipeline.engine.report import RunReport, TargetStats
from pipeline.runs.history import History
from pipeline.runs.locks import RouteLock

DAY = 86400


def route(
    folder: Path, name: str, schedule: str | None = "* * * * *", source: str = "data.csv", notify: str = ""
) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: {name}
        {f'schedule: "{schedule}"' if schedule else ""}
        source: {{csv: {{path: {source}}}}}
        targets:
          - name: out
            deliver: {{csv: {{path: out-{name}.csv}}}}
        """)
        + notify
    )
    (folder / "data.csv").write_text("id\n1\n2\n3\n")
    return path


def recorded(folder: Path, name: str, status: str, ago: float, error: str = "", delivered: int = 0) -> None:
    """A run in the history as the runner records it, `ago` seconds ago."""
    started = time.time() - ago
    report = RunReport(
        name,
        str(folder / f"{name}.yaml"),
        f"r{started:.0f}-{status}",
        started=started,
        ended=started + 1,
        status=status,
        error=error,
    )
    report.targets = [TargetStats("out", "csv", delivered=delivered)]
    history = History(folder / ".route")
    history.start(report)
    if status != "running":
        history.finish(report)


def statuses(route_cli, folder: Path, *args) -> tuple[int, dict]:
    result = route_cli("status", "--json", str(folder), *args)
    return result.exit_code, {s["route"]: s for s in json.loads(result.stdout)}


def test_status_flags_failing_and_stale_routes(tmp_path, route_cli):
    for name in ("fine", "failing", "never"):
        route(tmp_path, name)
    route(tmp_path, "broken", "0 6 1 1 *")  # yearly: only its failures can make it stale here
    assert route_cli("execute", str(tmp_path / "fine.yaml")).exit_code == 0
    route(tmp_path, "failing", source="missing.csv")
    assert route_cli("execute", str(tmp_path / "failing.yaml")).exit_code == 1
    for ago in (300, 200, 100):
        recorded(tmp_path, "broken", "failed", ago, error="the portal refused the commit (403)")
    route(tmp_path, "late", "0 6 * * *")
    recorded(tmp_path, "late", "success", 3 * DAY, delivered=1234)
    route(tmp_path, "killed", "0 6 1 1 *")
    recorded(tmp_path, "killed", "running", 30)
    route(tmp_path, "manual", schedule=None)
    route(tmp_path, "wrong", "every day")
    code, got = statuses(route_cli, tmp_path)
    assert code == 0
    assert {n: s["state"] for n, s in got.items()} == {
        "broken": "stale",
        "failing": "failing",
        "fine": "ok",
        "killed": "failing",
        "late": "stale",
        "manual": "not scheduled",
        "never": "never run",
        "wrong": "invalid",
    }
    assert got["broken"]["reason"] == "failed 3 times in a row"
    assert got["broken"]["failures"] == 3 and got["broken"]["last_success"] is None
    assert got["failing"]["reason"].startswith("last run failed: ") and "missing.csv" in got["failing"]["reason"]
    assert got["failing"]["failures"] == 1 and not got["failing"]["stale"]
    assert got["fine"]["last_status"] == "success" and got["fine"]["rows_delivered"] == 3
    assert got["late"]["reason"].startswith("missed its schedule: the run due at ")
    assert (got["late"]["rows_delivered"], got["late"]["last_status"], got["late"]["due"]) == (1234, "success", True)
    assert got["killed"]["last_status"] == "interrupted"
    assert got["never"]["next_run"] and not got["never"]["stale"]
    assert got["wrong"]["reason"].startswith(f"{tmp_path / 'wrong.yaml'}:2:11: schedule: 'every day' is not a cron")
    assert route_cli("status", "--check", str(tmp_path)).exit_code == 1
    # the table a person reads
    table = route_cli("status", str(tmp_path)).stdout
    line = next(row for row in table.splitlines() if row.startswith("broken"))
    assert "STALE: failed 3 times in a row" in line
    assert "FAILING: last run failed" in next(row for row in table.splitlines() if row.startswith("failing"))


def test_a_route_that_never_ran_is_stale_once_its_first_run_is_late(tmp_path, route_cli):
    path = route(tmp_path, "new", "0 6 * * *")
    os.utime(path, (time.time() - 3 * DAY,) * 2)  # written three days ago, never run since
    _, got = statuses(route_cli, tmp_path)
    assert got["new"]["state"] == "stale"
    assert got["new"]["reason"].startswith("has never run; a run was due at ")


def test_stale_threshold_and_grace_come_from_defaults(tmp_path):
    import datetime as dt

    from pipeline.ops.scheduling.catalog import load_entry
    from pipeline.ops.scheduling.status import route_status

    def at(text):
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

    route(tmp_path, "broken", schedule=None)
    for ago in (300, 200, 100):
        recorded(tmp_path, "broken", "failed", ago)
    route(tmp_path, "daily", "0 6 * * *")
    recorded(tmp_path, "daily", "success", time.time() - at("2030-01-07T06:00:05").timestamp())
    ten_past = at("2030-01-08T06:10:00")  # the 06:00 run of the next day has not started
    entry = load_entry(tmp_path / "daily.yaml", {})
    assert route_status(entry, ten_past).state == "ok"  # within the default 15 minutes
    assert route_status(load_entry(tmp_path / "broken.yaml", {}), ten_past).state == "stale"  # 3 failures
    (tmp_path / "defaults.yaml").write_text("stale: {failures: 5, grace: 5m}\n")
    late = route_status(load_entry(tmp_path / "daily.yaml", {}), ten_past)
    assert (late.state, late.reason) == (
        "stale",
        "missed its schedule: the run due at 2030-01-08T06:00+00:00 did not start",
    )
    assert route_status(load_entry(tmp_path / "broken.yaml", {}), ten_past).state == "failing"
    (tmp_path / "defaults.yaml").write_text("stale: {grace: 3d}\n")  # never more than one interval (a day)
    assert route_status(load_entry(tmp_path / "daily.yaml", {}), at("2030-01-09T06:01:00")).state == "stale"


def test_the_scheduler_announces_a_stale_route_once(tmp_path):
    import datetime as dt
    import logging

    from pipeline.ops.scheduling.scheduler import Scheduler

    hooks = HttpServer()
    try:
        route(tmp_path, "stuck", "0 6 * * *", notify=f"notify: [{{webhook: {{url: '{hooks.url}/ops'}}}}]\n")
        recorded(tmp_path, "stuck", "success", 3 * DAY)
        elsewhere = RouteLock(tmp_path / ".route", "stuck")  # another process is (still) running it
        assert elsewhere.acquire()

        class Clock:
            t = dt.datetime.now(dt.UTC)

            def now(self):
                return self.t

        clock = Clock()
        s = Scheduler(
            [tmp_path],
            variables=dict(os.environ),
            isolation="thread",
            clock=clock,
            log=logging.getLogger("test.schedule"),
        )
        assert s.tick() == []  # due, but held elsewhere
        clock.t += dt.timedelta(minutes=1)
        s.tick()
        clock.t += dt.timedelta(minutes=1)
        s.tick()
        events = hooks.wait_for(1)
        assert len(hooks.items) == 1  # tick() sends before it returns: none is still coming
        event = events[0]["json"]
        assert event["kind"] == "stale" and event["route"] == "stuck"
        assert event["headline"].startswith("route stuck is stale: missed its schedule: the run due at ")
        elsewhere.release()
    finally:
        hooks.close()
