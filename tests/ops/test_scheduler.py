"""The scheduler on folders of routes, driven by a fake clock: right minutes, no overlaps, crashes
survived, edits picked up; SIGTERM tested on a real `route schedule` process."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from polling import wait_until

from pipeline.ops.scheduling.scheduler import Scheduler
from pipeline.runs.history import History

TESTS = Path(__file__).resolve().parents[1]


class FakeClock:
    """Scheduler time, moved by the test. History records wall-clock starts, so the fake time
    starts a day ahead of the real one and only moves forward."""

    def __init__(self):
        now = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        self.t = now.replace(minute=(now.minute // 10) * 10, second=30, microsecond=0)  # an even minute, :30
        self.start = self.t

    def now(self) -> dt.datetime:
        return self.t

    def at(self, minutes: int) -> None:
        self.t = self.start + dt.timedelta(minutes=minutes)

    def sleep(self, seconds, wake) -> None:
        wake.wait(0.01)


def route(folder: Path, name: str, schedule: str = "* * * * *", record: str = "", out: str | None = None) -> Path:
    path = folder / f"{name}.yaml"
    options = f"{{log: {folder / 'runs.log'}{', ' + record if record else ''}}}"
    path.write_text(
        textwrap.dedent(f"""\
        name: {name}
        schedule: "{schedule}"
        source: {{csv: {{path: data.csv}}}}
        source_transforms:
          - unattended_plugins:record: {options}
        targets:
          - name: out
            deliver: {{csv: {{path: {out or "out-" + name + ".csv"}}}}}
        """)
    )
    (folder / "data.csv").write_text("id,v\n1,a\n2,b\n")
    return path


def scheduler(folder: Path, clock: FakeClock, isolation: str = "thread", workers: int = 2) -> Scheduler:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    return Scheduler(
        [folder],
        variables=env,
        workers=workers,
        isolation=isolation,
        clock=clock,
        log=logging.getLogger("test.schedule"),
    )


def minute(s: Scheduler, clock: FakeClock, m: int, timeout: float = 30) -> list[str]:
    """Move to minute m, and run what is due there until nothing more starts; the routes started."""
    clock.at(m)
    started = []
    while True:
        jobs = s.tick()
        if not jobs:
            return started
        started += [j.entry.name for j in jobs]
        s.wait_idle(timeout)


def intervals(folder: Path) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list] = {}
    open_: dict[str, float] = {}
    for line in (folder / "runs.log").read_text().splitlines():
        what, name, ts = line.split()
        if what == "start":
            open_[name] = float(ts)
        else:
            out.setdefault(name, []).append((open_.pop(name), float(ts)))
    return out


def test_routes_run_at_the_right_minutes(tmp_path):
    route(tmp_path, "every")
    route(tmp_path, "even", "*/2 * * * *")
    route(tmp_path, "daily", "0 6 * * *")
    (tmp_path / "notes.txt").write_text("not a route")
    clock = FakeClock()
    s = scheduler(tmp_path, clock)
    started = [sorted(minute(s, clock, m)) for m in range(5)]
    # never-run routes are due at once (two workers: the third starts when one ends); then the schedules
    assert started == [["daily", "even", "every"], ["every"], ["even", "every"], ["every"], ["even", "every"]]
    assert all(j.outcome.status == "success" for j in s.finished), [(j.entry.name, j.outcome) for j in s.finished]
    runs = History(tmp_path / ".route").runs(limit=100)
    assert sorted(r["route"] for r in runs) == ["daily"] + ["even"] * 3 + ["every"] * 5
    assert all(r["status"] == "success" and r["rows_delivered"] == 2 for r in runs)


def test_a_route_never_overlaps_itself_and_missed_runs_run_once(tmp_path):
    route(tmp_path, "slow", record=f"wait_for: {tmp_path / 'release'}")
    clock = FakeClock()
    s = scheduler(tmp_path, clock)
    other = scheduler(tmp_path, clock)  # a second scheduler (another process) on the same folder
    clock.at(0)
    assert [j.entry.name for j in s.tick()] == ["slow"]
    for m in (1, 2, 3):
        clock.at(m)
        assert s.tick() == [] and other.tick() == []  # still running: here, and locked for the other
    (tmp_path / "release").write_text("go")
    s.wait_idle()
    assert [j.entry.name for j in s.tick()] == ["slow"]  # minutes 1-3 were missed: one run for them
    s.wait_idle()
    assert s.tick() == []
    spans = intervals(tmp_path)["slow"]
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]


def test_at_most_one_writer_per_dataset(tmp_path):
    route(tmp_path, "first", record=f"wait_for: {tmp_path / 'release'}", out="shared.csv")
    route(tmp_path, "second", out="shared.csv")
    route(tmp_path, "third")
    clock = FakeClock()
    s = scheduler(tmp_path, clock, workers=3)
    clock.at(0)
    assert sorted(j.entry.name for j in s.tick()) == ["first", "third"]  # second waits for shared.csv
    wait_until(lambda: "third" not in s.running or s.running["third"].done, what="third to end")
    assert s.tick() == []
    (tmp_path / "release").write_text("go")
    wait_until(lambda: all(j.done for j in s.running.values()), what="first to end")
    assert [j.entry.name for j in s.tick()] == ["second"]
    s.wait_idle()


def test_a_route_file_edited_while_it_runs(tmp_path):
    path = route(tmp_path, "edited", record=f"started: {tmp_path / 'started'}, wait_for: {tmp_path / 'release'}")
    clock = FakeClock()
    s = scheduler(tmp_path, clock)
    clock.at(0)
    assert [j.entry.name for j in s.tick()] == ["edited"]
    wait_until(lambda: (tmp_path / "started").exists(), what="the run to start")
    path.write_text(path.read_text().replace("out-edited.csv", "out-v2.csv").replace('"* * * * *"', '"*/2 * * * *"'))
    clock.at(1)
    assert s.tick() == []
    assert s.catalog.routes()[0].schedule.text == "*/2 * * * *"
    (tmp_path / "release").write_text("go")
    s.wait_idle()
    assert (tmp_path / "out-edited.csv").exists() and not (tmp_path / "out-v2.csv").exists()
    assert minute(s, clock, 1) == [] and minute(s, clock, 2) == ["edited"]
    assert (tmp_path / "out-v2.csv").read_text().splitlines() == ['"id","v"', '"1","a"', '"2","b"']


def test_crashing_and_invalid_routes_do_not_stop_the_scheduler(tmp_path):
    route(tmp_path, "crash", record="exit: 3")
    route(tmp_path, "fine")
    (tmp_path / "broken.yaml").write_text("name: broken\nschedule: '61 * * * *'\n")
    clock = FakeClock()
    s = scheduler(tmp_path, clock, isolation="process")
    assert sorted(minute(s, clock, 0, timeout=90)) == ["crash", "fine"]
    outcomes = {j.entry.name: j.outcome for j in s.finished}
    assert outcomes["fine"].status == "success"
    assert outcomes["crash"].status == "crashed"
    runs = {r["route"]: r for r in History(tmp_path / ".route").runs(limit=10)}
    assert runs["crash"]["status"] == "failed"
    assert runs["crash"]["error"] == (
        "the run crashed: the run process ended with exit code 3 before reporting a result; see the run's log file"
    )
    broken = next(e for e in s.catalog.routes() if e.name == "broken")
    assert broken.problem.startswith(f"{tmp_path / 'broken.yaml'}:2:11: schedule: '61 * * * *' is not a valid cron")


def test_schedule_once_runs_what_is_due_and_exits(tmp_path, route_cli):
    route(tmp_path, "every")
    route(tmp_path, "failing", record="fail: the portal said no")
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    first = route_cli("schedule", "--once", "--isolation", "thread", str(tmp_path), env=env)
    assert first.exit_code == 1
    assert "every: run " in first.stderr and "failing: run " in first.stderr and "FAILED: " in first.stderr
    again = route_cli("schedule", "--once", "--isolation", "thread", str(tmp_path), env=env)
    assert again.exit_code == 0 and "nothing is due" in again.stderr


def schedule_process(folder: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    err = folder / "scheduler.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "schedule", str(folder), *args],
        stdout=subprocess.DEVNULL,
        stderr=open(err, "wb"),
        env=env,
    )
    return proc, err


def test_sigterm_stops_a_running_route_cleanly(tmp_path):
    route(tmp_path, "blocked", record=f"started: {tmp_path / 'started'}, until_stopped: true")
    proc, err = schedule_process(tmp_path, "--isolation", "thread", "--grace", "0")
    try:
        wait_until(lambda: (tmp_path / "started").exists(), 60, "the route to start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    log = err.read_text()
    assert "stopping blocked now: their deliveries are aborted" in log and log.rstrip().endswith("stopped")
    run = History(tmp_path / ".route").runs("blocked")[0]
    assert run["status"] == "failed" and run["error"].startswith("the run was stopped before it finished")
    assert not (tmp_path / "out-blocked.csv").exists()  # nothing half-written was committed


def test_sigterm_lets_a_running_route_finish(tmp_path):
    route(tmp_path, "finishing", record=f"started: {tmp_path / 'started'}, wait_for: {tmp_path / 'release'}")
    proc, err = schedule_process(tmp_path, "--grace", "60")
    try:
        wait_until(lambda: (tmp_path / "started").exists(), 60, "the route to start")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping: waiting up to 60 s for finishing" in err.read_text(), 30, "the scheduler to stop")
        assert proc.poll() is None
        (tmp_path / "release").write_text("go")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    run = History(tmp_path / ".route").runs("finishing")[0]
    assert run["status"] == "success"
    assert (tmp_path / "out-finishing.csv").read_text().splitlines() == ['"id","v"', '"1","a"', '"2","b"']


def test_print_crontab_systemd_and_task_scheduler(tmp_path, route_cli):
    from pipeline.ops.scheduling.printers import route_program

    route(tmp_path, "weekday", "0 6 * * MON-FRI")
    path = route(tmp_path, "zoned", "30 7 1 * MON")
    path.write_text(path.read_text().replace("schedule:", "timezone: America/New_York\nschedule:"))
    route(tmp_path, "quarter", "*/15 * * * *")
    prog = " ".join(route_program())
    cron = route_cli("schedule", "--print", "cron", str(tmp_path)).stdout.splitlines()
    assert cron[2:] == [
        f"# quarter ({tmp_path / 'quarter.yaml'})",
        f"*/15 * * * * {prog} execute --quiet {tmp_path / 'quarter.yaml'} > /dev/null",
        f"# weekday ({tmp_path / 'weekday.yaml'})",
        f"0 6 * * MON-FRI {prog} execute --quiet {tmp_path / 'weekday.yaml'} > /dev/null",
        f"# zoned ({tmp_path / 'zoned.yaml'})",
        "CRON_TZ=America/New_York",
        f"30 7 1 * MON {prog} execute --quiet {tmp_path / 'zoned.yaml'} > /dev/null",
    ]
    systemd = route_cli("schedule", "--print", "systemd", str(tmp_path)).stdout
    assert [line for line in systemd.splitlines() if line.startswith("OnCalendar=")] == [
        "OnCalendar=*-*-* *:00,15,30,45:00",
        "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 06:00:00",
        "OnCalendar=*-*-01 07:30:00 America/New_York",
        "OnCalendar=Mon *-*-* 07:30:00 America/New_York",
    ]
    assert f"ExecStart={prog} execute --quiet {tmp_path / 'weekday.yaml'}" in systemd
    windows = [
        line
        for line in route_cli("schedule", "--print", "windows", str(tmp_path)).stdout.splitlines()
        if line.startswith("schtasks")
    ]
    assert [line.split(" /TR ")[0] for line in windows] == [
        "schtasks /Create /F /TN route\\quarter /SC MINUTE /MO 15",
        "schtasks /Create /F /TN route\\weekday /SC WEEKLY /D MON,TUE,WED,THU,FRI /ST 06:00",
        "schtasks /Create /F /TN route\\zoned /SC MINUTE /MO 1",
    ]
    assert windows[2].endswith(f'schedule --once {tmp_path / "zoned.yaml"}"')


def test_route_execute_refuses_to_run_a_route_that_is_running(tmp_path, route_cli):
    from pipeline.runs.locks import RouteLock

    path = route(tmp_path, "busy")
    held = RouteLock(tmp_path / ".route", "busy")
    assert held.acquire()
    try:
        result = route_cli("execute", str(path))
        assert result.exit_code == 1
        assert result.stderr.strip() == (
            f"error: route busy is already running (process {os.getpid()}, lock "
            f"{tmp_path / '.route' / 'locks' / 'busy.lock'}); this run was not started"
        )
    finally:
        held.release()
    assert route_cli("execute", str(path)).exit_code == 0
