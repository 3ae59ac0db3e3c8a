"""Acceptance of running unattended (issue 7), as an operator meets it: a scheduler looking after a
folder of routes for several (test-clock) minutes while routes fail, crash, hang and are edited;
`route schedule` as a real process stopped by SIGTERM; `--once` and `--print`; notifications reaching
a real SMTP server and a real HTTP server with the right content; `route status`; secrets.

The unit-level tests (test_scheduler.py, test_notify.py, test_status.py, test_runlogs.py) check
each behaviour on its own; these check them together, the way a long-lived service sees them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from notify_servers import HttpServer, SmtpServer, free_port
from polling import wait_until

from pipeline.ops.scheduling.catalog import load_entry
from pipeline.ops.scheduling.scheduler import Scheduler
from pipeline.ops.scheduling.status import route_status
from pipeline.runs.history import History
from pipeline.runs.locks import RouteLock

TESTS = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))


# --- helpers ---------------------------------------------------------------------------------


class StepClock:
    """Scheduler time moved by the test, a day ahead of the wall clock (history records wall-clock
    starts), starting at :30 past a minute divisible by 6 (so */2 and */3 both fire at minute 0)."""

    def __init__(self):
        now = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        self.start = now.replace(minute=(now.minute // 6) * 6, second=30, microsecond=0)
        self.t = self.start

    def now(self) -> dt.datetime:
        return self.t

    def at(self, minute: int) -> None:
        self.t = self.start + dt.timedelta(minutes=minute)

    def sleep(self, seconds, wake) -> None:
        wake.wait(0.01)


class NearClock(StepClock):
    """Scheduler time just ahead of the wall clock (30 to 90 s), for routes whose history the
    stale check reads: with a schedule firing at `minutes(0, 1, ...)` of this clock and nowhere
    near, a route is no later by the history's wall-clock times than by this clock."""

    def __init__(self):
        now = dt.datetime.now(dt.UTC)
        self.start = now.replace(second=30, microsecond=0) + dt.timedelta(minutes=1)
        self.t = self.start

    def minutes(self, *offsets: int) -> str:
        """A cron schedule firing at these minutes of the clock (every hour)."""
        return ",".join(str((self.start.minute + m) % 60) for m in offsets) + " * * * *"


def write_route(
    folder: Path,
    name: str,
    schedule: str | None = "* * * * *",
    rule: str = "",
    out: str | None = None,
    extra: str = "",
    source: str = "data.csv",
) -> Path:
    """A route reading data.csv (3 rows) into out-<name>.csv; `rule` options for unattended_plugins:record."""
    options = f"log: {folder / 'runs.log'}" + (f", {rule}" if rule else "")
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: {name}
        {f'schedule: "{schedule}"' if schedule else ""}
        source: {{csv: {{path: {source}}}}}
        source_transforms:
          - unattended_plugins:record: {{{options}}}
        targets:
          - name: out
            deliver: {{csv: {{path: {out or "out-" + name + ".csv"}}}}}
        """)
        + textwrap.dedent(extra)
    )
    if not (folder / "data.csv").exists():
        (folder / "data.csv").write_text("id,v\n1,a\n2,b\n3,c\n")
    return path


def spans(folder: Path, failing: tuple = ()) -> dict[str, list[tuple[float, float]]]:
    """(start, end) of every run that got to its rule, per route, from the record rule's log
    (routes in `failing` fail in the rule, after its start line: they have no end)."""
    out: dict[str, list] = {}
    opened: dict[str, float] = {}
    for line in (folder / "runs.log").read_text().splitlines():
        what, name, ts = line.split()
        if name in failing:
            continue
        if what == "start":
            assert name not in opened, f"{name} started while it was running"
            opened[name] = float(ts)
        else:
            out.setdefault(name, []).append((opened.pop(name), float(ts)))
    return out


def runs_of(folder: Path, name: str) -> list[dict]:
    """The route's runs in the history, oldest first."""
    return list(reversed(History(folder / ".route").runs(name, limit=100)))


# --- the scheduler, several minutes of a folder of routes -----------------------------------------


@pytest.fixture
def hooks():
    server = HttpServer()
    yield server
    server.close()


def test_a_folder_of_routes_over_six_minutes(tmp_path, hooks):
    folder = tmp_path
    write_route(folder, "every")
    write_route(folder, "even", "*/2 * * * *")
    write_route(folder, "third", "*/3 * * * *")
    write_route(folder, "failing", rule="fail: the portal said no")
    slow = write_route(folder, "slow", rule=f"started: {folder / 'slow-started'}, wait_for: {folder / 'release'}")
    broken = write_route(
        folder,
        "broken",
        extra=f"""\
        notify:
          - webhook: {{url: "{hooks.url}/broken"}}
            on: [failure]
        """,
    )
    (folder / "README.txt").write_text("not a route")
    clock = StepClock()
    s = Scheduler(
        [folder],
        variables=ENV,
        workers=2,
        isolation="thread",
        clock=clock,
        log=logging.getLogger("test.acceptance.schedule"),
    )

    def minute(m: int) -> list[str]:
        """Move to minute m and run what is due there (slow may keep running); the routes started."""
        clock.at(m)
        started = []
        while True:
            jobs = s.tick()
            started += [j.entry.name for j in jobs]
            wait_until(lambda: all(j.done for n, j in list(s.running.items()) if n != "slow"), what="the runs")
            if not jobs:
                return sorted(started)

    assert minute(0) == ["broken", "even", "every", "failing", "slow", "third"]  # never run: due at once
    wait_until(lambda: (folder / "slow-started").exists(), what="slow to start")
    # slow's file is edited while it runs: the run goes on with the version it started with
    slow.write_text(slow.read_text().replace("out-slow.csv", "out-slow-v2.csv").replace('"* * * * *"', '"*/2 * * * *"'))
    assert minute(1) == ["broken", "every", "failing"]
    broken.write_text(broken.read_text().replace("source:", "source: [oops\n"))  # unreadable from now on
    assert minute(2) == ["even", "every", "failing"]
    # the unreadable route is not run, but the run it misses is recorded as failed, and said
    failure = hooks.wait_for(1)[0]["json"]
    assert (failure["kind"], failure["route"]) == ("failure", "broken")
    assert failure["error"].startswith(f"the route file is invalid, so the run did not start: {broken}:4:")
    (folder / "release").write_text("go")
    wait_until(lambda: "slow" not in s.running or s.running["slow"].done, what="slow to end")
    # slow missed minutes 1 and 2 (one run for both, on its new schedule); a new route appears
    write_route(folder, "added", "0 0 1 1 *")
    assert minute(3) == ["added", "every", "failing", "slow", "third"]
    broken.write_text(broken.read_text().replace("source: [oops\n", "source:"))  # fixed
    assert minute(4) == ["broken", "even", "every", "failing", "slow"]
    (folder / "every.yaml").unlink()  # removed: no longer scheduled
    assert minute(5) == ["broken", "failing"]
    s.wait_idle()

    count = {
        name: len(runs_of(folder, name)) for name in ("every", "even", "third", "failing", "slow", "broken", "added")
    }
    assert count == {"every": 5, "even": 3, "third": 2, "failing": 6, "slow": 3, "broken": 6, "added": 1}
    assert {r["status"] for r in runs_of(folder, "failing")} == {"failed"}
    assert all(
        r["status"] == "success" and r["rows_delivered"] == 3
        for name in ("every", "even", "third", "slow", "added")
        for r in runs_of(folder, name)
    )
    assert [r["status"] for r in runs_of(folder, "broken")] == [
        "success",
        "success",
        "failed",
        "failed",
        "success",
        "success",
    ]
    assert [e["json"]["kind"] for e in hooks.items] == ["failure", "failure"]
    # never two runs of a route at once (spans() asserts it), and slow's runs one after the other
    slow_spans = spans(folder, failing=("failing",))["slow"]
    assert len(slow_spans) == 3 and all(a[1] <= b[0] for a, b in zip(slow_spans, slow_spans[1:]))
    assert (folder / "out-slow.csv").exists() and (folder / "out-slow-v2.csv").exists()
    failed = [j for j in s.finished if j.entry.name == "failing"]
    assert [j.outcome.error for j in failed][-1].endswith("the portal said no")


def test_a_route_that_crashes_its_process_every_minute(tmp_path, hooks, route_cli):
    """Process isolation: the run's process dies (os._exit) at every run; the scheduler records each
    crash, tells the webhook (with where to look), calls the route stale at the second failure, and
    keeps running the other route; `route status` then flags it."""
    (tmp_path / "defaults.yaml").write_text("stale: {failures: 2}\n")
    clock = NearClock()
    crash = write_route(
        tmp_path,
        "crash",
        clock.minutes(0, 1),
        rule="exit: 3",
        extra=f"""\
        notify:
          - webhook: {{url: "{hooks.url}/ops"}}
        """,
    )
    write_route(tmp_path, "fine", clock.minutes(0, 1))
    s = Scheduler(
        [tmp_path],
        variables=ENV,
        workers=2,
        isolation="process",
        clock=clock,
        log=logging.getLogger("test.acceptance.schedule"),
    )
    for m in (0, 1):
        clock.at(m)
        assert sorted(j.entry.name for j in s.tick()) == ["crash", "fine"]
        s.wait_idle(60)
    assert [r["status"] for r in runs_of(tmp_path, "fine")] == ["success", "success"]
    crashes = runs_of(tmp_path, "crash")
    assert [r["status"] for r in crashes] == ["failed", "failed"]
    assert all(
        r["error"] == "the run crashed: the run process ended with exit code 3 before reporting a result; "
        "see the run's log file"
        for r in crashes
    )
    events = [e["json"] for e in hooks.wait_for(3)]
    assert [e["kind"] for e in events] == ["failure", "failure", "stale"]
    first = events[0]
    assert first["route"] == "crash" and first["run_id"] == crashes[0]["run_id"] and first["status"] == "failed"
    assert first["error"].startswith("the run crashed: ")
    log = Path(first["where"]["log"])
    assert log == tmp_path / ".route" / "logs" / f"crash-{crashes[0]['run_id']}.log" and log.exists()
    assert first["where"]["history"] == f"route history crash --state {tmp_path / '.route'}"
    assert events[2]["headline"] == f"route crash is stale: 2 failed runs in a row (run {crashes[1]['run_id']})"
    # what an operator's monitoring sees
    result = route_cli("status", "--json", str(tmp_path))
    got = {s["route"]: s for s in json.loads(result.stdout)}
    assert (got["crash"]["state"], got["crash"]["reason"]) == ("stale", "failed 2 times in a row")
    assert got["fine"]["state"] == "ok" and got["fine"]["rows_delivered"] == 3
    assert route_cli("status", "--check", str(tmp_path)).exit_code == 1
    assert crash.exists()


def test_runs_missed_while_the_machine_was_off_run_once_and_defaults_are_re_read(tmp_path, route_cli):
    path = write_route(tmp_path, "often", "0 * * * *")
    assert route_cli("execute", str(path), env=ENV).exit_code == 0  # its last run: a day before the clock
    (tmp_path / "defaults.yaml").write_text("timezone: UTC\n")
    clock = StepClock()
    s = Scheduler(
        [tmp_path],
        variables=ENV,
        workers=2,
        isolation="thread",
        clock=clock,
        log=logging.getLogger("test.acceptance.schedule"),
    )
    clock.at(0)
    assert [j.entry.name for j in s.tick()] == ["often"]  # 24 runs missed: one run
    s.wait_idle()
    assert s.tick() == []
    clock.at(1)
    assert s.tick() == []
    assert len(runs_of(tmp_path, "often")) == 2
    # defaults.yaml changes the route's time zone: the scheduler reads it again
    (tmp_path / "defaults.yaml").write_text("timezone: Asia/Kolkata\n")
    clock.at(2)
    s.tick()
    assert s.catalog.routes()[0].schedule.timezone == "Asia/Kolkata"
    s.wait_idle()


# --- `route schedule` as a service: SIGTERM ---------------------------------------------------------


def scheduler_process(folder: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    err = folder / "scheduler.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "schedule", str(folder), *args],
        stdout=subprocess.DEVNULL,
        stderr=open(err, "wb"),
        env=ENV,
    )
    return proc, err


def worker_pids(route_file: Path) -> list[int]:
    """Run processes (python -m pipeline.ops.scheduling.worker ... ROUTE) alive for this route file."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if b"pipeline.ops.scheduling.worker" in argv and str(route_file).encode() in argv and state != "Z":
            pids.append(int(entry.name))
    return pids


def test_sigterm_twice_stops_a_running_process_at_once_and_leaves_nothing_behind(tmp_path):
    route = write_route(tmp_path, "blocked", rule=f"started: {tmp_path / 'started'}, until_stopped: true")
    proc, err = scheduler_process(tmp_path, "--isolation", "process", "--grace", "60")
    try:
        wait_until(lambda: (tmp_path / "started").exists(), 60, "the route to start")
        assert len(worker_pids(route)) == 1
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping: waiting up to 60 s for blocked" in err.read_text(), 30, "the first signal")
        assert proc.poll() is None  # the grace: the run goes on
        proc.send_signal(signal.SIGTERM)  # the second signal: stop it now
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    log = err.read_text()
    assert "stopping blocked now: their deliveries are aborted" in log and log.rstrip().endswith("stopped")
    assert worker_pids(route) == []  # no orphaned run process
    run = History(tmp_path / ".route").runs("blocked")[0]
    assert run["status"] == "failed" and run["error"].startswith("the run was stopped before it finished")
    assert not (tmp_path / "out-blocked.csv").exists()  # nothing half-written was committed
    lock = RouteLock(tmp_path / ".route", "blocked")
    assert lock.acquire()  # and the route's lock went with it
    lock.release()


def test_sigterm_on_an_idle_scheduler(tmp_path):
    write_route(tmp_path, "yearly", "0 0 1 1 *")  # never ran: due at once, then idle for a year
    proc, err = scheduler_process(tmp_path, "--isolation", "thread")
    try:
        wait_until(
            lambda: (
                History(tmp_path / ".route").runs("yearly")
                and History(tmp_path / ".route").runs("yearly")[0]["status"] == "success"
            ),
            60,
            "the first run",
        )
        wait_until(lambda: "yearly: run " in err.read_text() and " success: " in err.read_text(), 30, "the log line")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        proc.kill()
    assert err.read_text().rstrip().endswith("stopped")
    assert len(History(tmp_path / ".route").runs("yearly")) == 1


def test_ctrl_c_on_schedule_once_leaves_no_run_going(tmp_path):
    """`route schedule --once` from a terminal, interrupted twice: the run is stopped, not orphaned."""
    route = write_route(tmp_path, "blocked", rule=f"started: {tmp_path / 'started'}, until_stopped: true")
    err = tmp_path / "once.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "schedule", "--once", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=open(err, "wb"),
        env=ENV,
    )
    try:
        wait_until(lambda: (tmp_path / "started").exists(), 60, "the route to start")
        proc.send_signal(signal.SIGINT)
        wait_until(lambda: "stopping: waiting up to 60 s for blocked" in err.read_text(), 30, "the first Ctrl-C")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 1  # a run did not succeed
    finally:
        proc.kill()
    assert err.read_text().rstrip().endswith("stopped")
    assert worker_pids(route) == []
    run = History(tmp_path / ".route").runs("blocked")[0]
    assert run["status"] == "failed" and run["error"].startswith("the run was stopped before it finished")
    assert not (tmp_path / "out-blocked.csv").exists()


# --- `route schedule --once` and `--print` ----------------------------------------------------------


def test_schedule_once_from_cron(tmp_path, route_cli):
    """(In threads, to be quick: the secrets test below runs --once with the default process isolation.)"""
    yearly = "0 0 1 1 *"  # never ran: due at once; then not before next year (whatever the wall clock)
    write_route(tmp_path, "due", yearly)
    write_route(tmp_path, "failing", rule="fail: the database is down")
    write_route(tmp_path, "held", yearly)
    done = write_route(tmp_path, "done", yearly)
    (tmp_path / "broken.yaml").write_text("name: broken\nschedule: '* * * * *'\nsource: [\n")
    assert route_cli("execute", str(done), env=ENV).exit_code == 0  # ran this year already: not due
    elsewhere = RouteLock(tmp_path / ".route", "held")
    assert elsewhere.acquire()  # a `route execute` of it is going on
    try:
        first = route_cli("schedule", "--once", "--isolation", "thread", str(tmp_path), env=ENV)
    finally:
        elsewhere.release()
    assert first.exit_code == 1, first.output  # a run failed
    err = first.stderr
    assert "failing: run " in err and " FAILED: " in err and "the database is down" in err
    assert f"held: due, but running in another process ({os.getpid()}); skipped" in err
    assert "broken: " in err and "cannot be scheduled" in err
    assert [r["status"] for r in runs_of(tmp_path, "due")] == ["success"]
    assert [r["status"] for r in runs_of(tmp_path, "done")] == ["success"]
    assert runs_of(tmp_path, "held") == []
    (tmp_path / "failing.yaml").unlink()
    second = route_cli("schedule", "--once", "--isolation", "thread", str(tmp_path), env=ENV)
    assert second.exit_code == 0, second.output
    assert [r["status"] for r in runs_of(tmp_path, "held")] == ["success"]  # its turn now
    assert len(runs_of(tmp_path, "due")) == 1  # it ran this year already
    third = route_cli("schedule", "--once", "--isolation", "thread", str(tmp_path), env=ENV)
    assert third.exit_code == 0 and "nothing is due" in third.stderr


def test_print_gives_commands_the_system_scheduler_can_run(tmp_path, route_cli):
    folder = tmp_path / "routes 100%"
    folder.mkdir()
    write_route(folder, "sales", "30 6 * * MON-FRI")
    zoned = write_route(folder, "zoned", "0 7 1 * *")
    zoned.write_text(zoned.read_text().replace("schedule:", "timezone: Europe/Paris\nschedule:"))
    write_route(folder, "manual", schedule=None)
    state = tmp_path / "state"
    args = ("--profile", "local", "--state", str(state), str(folder))
    cron = route_cli("schedule", "--print", "cron", *args)
    assert cron.exit_code == 0, cron.output
    lines = cron.stdout.splitlines()
    sales = next(line for line in lines if line.startswith("30 6 * * MON-FRI "))
    # cron turns a bare % into a new line: it must be escaped; the shell then sees one argument
    assert sales.endswith(
        f" execute --quiet --profile local --state {state} '{folder}/sales.yaml'".replace("%", "\\%") + " > /dev/null"
    )
    assert lines[lines.index("CRON_TZ=Europe/Paris") + 1].startswith("0 7 1 * * ")
    assert "# manual: no schedule in " in cron.stdout
    systemd = route_cli("schedule", "--print", "systemd", *args).stdout
    starts = [line for line in systemd.splitlines() if line.startswith(("ExecStart=", "WorkingDirectory="))]
    # in a unit file % starts a specifier: a literal one is %%
    assert f"WorkingDirectory={str(folder).replace('%', '%%')}" in starts
    assert any(
        line.startswith("ExecStart=") and line.endswith(f"'{folder}/sales.yaml'".replace("%", "%%")) for line in starts
    )
    assert "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 06:30:00" in systemd
    assert "OnCalendar=*-*-01 07:00:00 Europe/Paris" in systemd
    windows = route_cli("schedule", "--print", "windows", *args).stdout
    tasks = [line for line in windows.splitlines() if line.startswith("schtasks")]
    assert tasks[0].startswith("schtasks /Create /F /TN route\\sales /SC WEEKLY /D MON,TUE,WED,THU,FRI /ST 06:30 /TR ")
    assert tasks[1].startswith("schtasks /Create /F /TN route\\zoned /SC MINUTE /MO 1 /TR ")
    assert "schedule --once --profile local" in tasks[1]


# --- notifications: a real SMTP server and a real HTTP server ------------------------------------

PAYMENTS = "id,amount\n1,10\n2,abc\n3,7\n4,x\n5,1\n"


def payments_route(folder: Path, notify: str, source: str = "data.csv") -> Path:
    path = folder / "payments.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: payments
        source: {{csv: {{path: {source}}}}}
        source_transforms:
          - cast: {{amount: number}}
        targets:
          - name: out
            deliver: {{csv: {{path: out.csv}}}}
        """)
        + textwrap.dedent(notify)
    )
    return path


@pytest.fixture
def smtp():
    server = SmtpServer()
    yield server
    server.close()


def where_lines(body: str) -> dict[str, str]:
    lines = body.split("where to look\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return dict(line.strip().split(None, 1) for line in lines)


def test_emails_say_what_happened_with_the_counts_and_where_to_look(tmp_path, route_cli, smtp):
    route = payments_route(
        tmp_path,
        f"""\
        notify:
          - email: {{to: [data@example.gov, ops@example.gov], from: route@example.gov, host: 127.0.0.1,
                     port: {smtp.port}}}
            on: [failure, rejects, recovery, success]
            rejects_over: "30%"
        """,
    )
    data = tmp_path / "data.csv"
    data.write_text(PAYMENTS)  # 2 of 5 rows rejected: 40 %
    ok = json.loads(route_cli("execute", "--json", str(route)).stdout)
    data.unlink()
    failed = json.loads(route_cli("execute", "--json", str(route)).stdout)
    data.write_text("id,amount\n1,10\n")  # a third of the rows before: forced past the replace guard
    recovered = json.loads(route_cli("execute", "--json", "--force", str(route)).stdout)
    assert [r["status"] for r in (ok, failed, recovered)] == ["success", "failed", "success"]
    mails = smtp.wait_for(5)
    assert len(smtp.items) == 5  # notifications are sent before the run returns: none is still coming
    assert [(m["message"]["X-Route-Event"], m["message"]["Subject"]) for m in mails] == [
        ("success", f"[route] route payments succeeded (run {ok['run_id']})"),
        ("rejects", f"[route] route payments rejected 2 rows (run {ok['run_id']})"),
        ("failure", f"[route] route payments FAILED (run {failed['run_id']})"),
        ("success", f"[route] route payments succeeded (run {recovered['run_id']})"),
        ("recovery", f"[route] route payments recovered: the run succeeded (run {recovered['run_id']})"),
    ]
    assert all(
        m["to"] == ["data@example.gov", "ops@example.gov"] and m["from"] == "route@example.gov" and not m["tls"]
        for m in mails
    )
    rejects = mails[1]["message"].get_content().replace("\r\n", "\n")
    assert "rows      5 read, 2 rejected, 3 delivered (3 created, 0 updated, 0 deleted)" in rejects
    assert f"targets   out (csv): delivered, 3 delivered -> {tmp_path / 'out.csv'}" in rejects
    where = where_lines(rejects)
    state = tmp_path / ".route"
    assert where["log"] == str(state / "logs" / f"payments-{ok['run_id']}.log")
    assert where["report"] == str(state / "logs" / f"payments-{ok['run_id']}.json")
    assert where["rejects"] == ok["rejects_file"]
    assert where["history"] == f"route history payments --state {state}"
    for key in ("log", "report", "rejects"):
        assert Path(where[key]).exists(), key  # every file named is there to be read
    failure = mails[2]["message"].get_content().replace("\r\n", "\n")
    assert "error: " in failure and "data.csv" in failure
    assert "rows      0 read, 0 rejected, 0 delivered (0 created, 0 updated, 0 deleted)" in failure
    assert Path(where_lines(failure)["log"]).exists()
    report = json.loads(Path(where["report"]).read_text())
    assert [(n["event"], n["ok"]) for n in report["notifications"]] == [("success", True), ("rejects", True)]


def test_email_over_smtps_with_a_password_from_the_environment(tmp_path, route_cli):
    """`ssl: true` (SMTPS, TLS from the first byte), the server's certificate trusted via ca_file."""
    import socket
    import ssl

    from pipeline.portal.tls import self_signed

    cert, key = self_signed("127.0.0.1", tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    smtp = SmtpServer(users={"alerts": "smtps-pa55"})  # speaks SMTP on the TLS socket handed to it
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        smtp._session(context.wrap_socket(conn, server_side=True))

    threading.Thread(target=serve, daemon=True).start()
    try:
        route = payments_route(
            tmp_path,
            f"""\
            notify:
              - email: {{to: ops@example.gov, host: 127.0.0.1, port: {listener.getsockname()[1]}, ssl: true,
                         ca_file: "{cert}", username: alerts, password: "${{SMTP_PASSWORD}}"}}
                on: [success]
            """,
        )
        (tmp_path / "data.csv").write_text(PAYMENTS)
        result = route_cli("execute", str(route), env={"SMTP_PASSWORD": "smtps-pa55"})
        assert result.exit_code == 0, result.output
        mail = smtp.wait_for(1)[0]
    finally:
        listener.close()
        smtp.close()
    assert mail["user"] == "alerts" and mail["to"] == ["ops@example.gov"]
    assert mail["message"]["Subject"].startswith("[route] route payments succeeded (run ")


class SlowHook(BaseHTTPRequestHandler):
    """Accepts a POST and never answers (a webhook endpoint that hangs)."""

    def do_POST(self):
        self.server.hung.set()
        self.server.release.wait(10)

    def log_message(self, *args):
        pass


def test_no_notification_problem_fails_the_run(tmp_path, route_cli, hooks):
    refusing = SmtpServer(users={"alerts": "the-right-one"})
    hanging = ThreadingHTTPServer(("127.0.0.1", 0), SlowHook)
    hanging.daemon_threads = True
    hanging.hung, hanging.release = threading.Event(), threading.Event()
    threading.Thread(target=hanging.serve_forever, daemon=True).start()
    try:
        route = payments_route(
            tmp_path,
            f"""\
            notify:
              - email: {{to: ops@example.gov, host: 127.0.0.1, port: {free_port()}}}
                on: [success]
              - email: {{to: ops@example.gov, host: 127.0.0.1, port: {refusing.port}, username: alerts,
                         password: "${{SMTP_PASSWORD}}"}}
                on: [success]
              - webhook: {{url: "http://127.0.0.1:{hanging.server_address[1]}/hook", timeout: 0.3}}
                on: [success]
              - webhook: {{url: "{hooks.url}/ok", headers: {{Authorization: "Bearer ${{HOOK_TOKEN}}"}}}}
                on: [success]
            """,
        )
        (tmp_path / "data.csv").write_text(PAYMENTS)
        started = time.monotonic()
        result = route_cli(
            "execute", "--json", str(route), env={"SMTP_PASSWORD": "wr0ng-pa55", "HOOK_TOKEN": "t0k-777"}
        )
        took = time.monotonic() - started
    finally:
        hanging.release.set()
        hanging.shutdown()
        hanging.server_close()
        refusing.close()
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "success" and report["rows_delivered"] == 3
    assert took < 8
    assert hanging.hung.is_set()
    got = hooks.wait_for(1)[0]
    assert got["headers"]["Authorization"] == "Bearer t0k-777" and got["json"]["kind"] == "success"
    state = tmp_path / ".route"
    saved = json.loads((state / "logs" / f"payments-{report['run_id']}.json").read_text())
    outcomes = [(n["ok"], n["error"].split(":")[0] if not n["ok"] else "") for n in saved["notifications"]]
    assert outcomes == [
        (False, "cannot reach the SMTP server 127.0.0.1"),
        (False, "the SMTP server 127.0.0.1"),
        (False, "cannot reach the webhook at 127.0.0.1"),
        (True, ""),
    ]
    assert "refused the login of alerts: bad credentials" in saved["notifications"][1]["error"]
    log = (state / "logs" / f"payments-{report['run_id']}.log").read_text()
    assert log.count("WARNING could not send the success notification") == 3
    # the credentials are in no file of the state folder and nowhere on the terminal
    for secret in ("wr0ng-pa55", "t0k-777"):
        assert secret not in result.output
        for f in state.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f


# --- `route status` ------------------------------------------------------------------------------------


def status(route_cli, folder: Path) -> dict[str, dict]:
    result = route_cli("status", "--json", str(folder))
    assert result.exit_code == 0, result.output
    return {s["route"]: s for s in json.loads(result.stdout)}


def test_status_flags_failing_and_stale_routes_from_real_runs(tmp_path, route_cli):
    flaky = write_route(tmp_path, "flaky", "0 6 * * *", source="missing.csv")
    oops = write_route(tmp_path, "oops", "0 6 * * *", source="gone.csv")
    daily = write_route(tmp_path, "daily", "0 6 * * *")
    for _ in range(3):
        assert route_cli("execute", str(flaky)).exit_code == 1
    assert route_cli("execute", str(oops)).exit_code == 1
    assert route_cli("execute", str(daily)).exit_code == 0
    got = status(route_cli, tmp_path)
    assert {name: s["state"] for name, s in got.items()} == {"daily": "ok", "flaky": "stale", "oops": "failing"}
    assert (got["flaky"]["reason"], got["flaky"]["failures"]) == ("failed 3 times in a row", 3)
    assert got["oops"]["reason"].startswith("last run failed: ") and "gone.csv" in got["oops"]["reason"]
    assert (got["daily"]["last_status"], got["daily"]["rows_delivered"]) == ("success", 3)
    assert got["daily"]["last_success"] == got["daily"]["last_run"]
    table = route_cli("status", str(tmp_path)).stdout
    row = {line.split()[0]: line for line in table.splitlines() if line.split() and line.split()[0] in got}
    assert "STALE: failed 3 times in a row" in row["flaky"] and "FAILING: last run failed" in row["oops"]
    assert route_cli("status", "--check", str(tmp_path)).exit_code == 1
    # two days later, without a run, the daily route has missed its schedule
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    late = route_status(load_entry(daily, {}), later)
    assert late.state == "stale" and late.reason.startswith("missed its schedule: the run due at ")
    # fixed: each route is ok again after one good run
    (tmp_path / "missing.csv").write_text("id\n1\n")
    (tmp_path / "gone.csv").write_text("id\n1\n")
    assert route_cli("execute", str(flaky)).exit_code == 0 and route_cli("execute", str(oops)).exit_code == 0
    assert {name: s["state"] for name, s in status(route_cli, tmp_path).items()} == {
        "daily": "ok",
        "flaky": "ok",
        "oops": "ok",
    }
    assert route_cli("status", "--check", str(tmp_path)).exit_code == 0
    (tmp_path / "daily.yaml").write_text(daily.read_text().replace("source:", "source: [oops\n"))
    assert status(route_cli, tmp_path)["daily"]["state"] == "invalid"
    assert route_cli("status", "--check", str(tmp_path)).exit_code == 1


# --- secrets ---------------------------------------------------------------------------------------------


def test_secrets_are_masked_in_what_the_scheduler_and_its_runs_write(tmp_path, hooks):
    secret, token = "hidden-name-4711", "tok-secret-9q"
    (tmp_path / "leaky.yaml").write_text(
        textwrap.dedent(f"""\
        name: leaky
        schedule: "0 0 1 1 *"
        source: {{csv: {{path: "${{DATA_SECRET}}.csv"}}}}
        targets:
          - name: out
            deliver: {{csv: {{path: out.csv}}}}
        notify:
          - webhook: {{url: "{hooks.url}/ops", headers: {{X-Api-Key: "${{OPS_TOKEN}}"}}}}
        """)
    )
    (tmp_path / "talky.yaml").write_text(
        textwrap.dedent("""\
        name: talky
        schedule: "0 0 1 1 *"
        source: {csv: {path: data.csv}}
        source_transforms:
          - unattended_plugins:record: {say: "calling the API with ${API_TOKEN}"}
        targets:
          - name: out
            deliver: {csv: {path: out-talky.csv}}
        """)
    )
    (tmp_path / "data.csv").write_text("id\n1\n")
    env = dict(ENV, DATA_SECRET=secret, API_TOKEN=token, OPS_TOKEN=token)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "schedule", "--once", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr  # leaky failed
    assert "leaky: run " in done.stderr and "FAILED" in done.stderr and "***.csv" in done.stderr
    event = hooks.wait_for(1)[0]
    assert event["headers"]["X-Api-Key"] == token  # the webhook gets its credential...
    assert "***.csv" in event["json"]["error"]  # ...but the message does not carry the other secret
    assert secret not in json.dumps(event["json"])
    talky_log = next((tmp_path / ".route" / "logs").glob("talky-*.log")).read_text()
    assert "calling the API with ***" in talky_log
    for text in (done.stdout, done.stderr):
        assert secret not in text and token not in text
    for f in (tmp_path / ".route").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert secret.encode() not in data and token.encode() not in data, f
