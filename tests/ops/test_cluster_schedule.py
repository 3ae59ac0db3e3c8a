"""Issue 18: `route schedule --cluster`: runs submitted to a real Dask LocalCluster of process
workers, against a state in the real PostgreSQL; schedulers and workers killed with signals."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from clusterkit import fresh_database, local_cluster, set_clock, start_scheduler, worker_pids
from clusterkit import route_cmd as run_route
from killkit import CASES, case_ids, socrata_route, write_cases
from polling import wait_until
from portalkit import ROUTE_ARGS

from pipeline.runs.history import History
from pipeline.state.leases import holder
from pipeline.state.place import from_option

pytestmark = pytest.mark.timeout(600)
LEASE = "5"  # seconds: a dead scheduler or run lets go this fast (a live one renews every third)
UTC = dt.UTC


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client

    with local_cluster(2, ROUTE_LEASE_SECONDS=LEASE) as found, Client(found) as client:
        yield found, client


@pytest.fixture
def state():
    with fresh_database() as url:
        yield url


# Once a year: a route that never ran is due at once, and none falls due again while a test runs on
# the real clock (every minute would add a run whenever a test spans a minute boundary).
ONCE_A_YEAR = "0 0 1 1 *"


def route_files(folder: Path, count: int, schedule: str = ONCE_A_YEAR) -> list[Path]:
    (folder / "data.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    files = []
    for i in range(1, count + 1):
        path = folder / f"r{i:02d}.yaml"
        path.write_text(
            f"name: r{i:02d}\nschedule: '{schedule}'\nsource:\n  csv: {{path: data.csv}}\n"
            f"targets:\n  - name: out\n    deliver:\n      csv: {{path: out/r{i:02d}.csv}}\n"
        )
        files.append(path)
    return files


def runs_of(state: str) -> list[dict]:
    return History(from_option(state)).runs(limit=10_000)


def route_cmd(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_route(*args, cwd=cwd, env={"ROUTE_LEASE_SECONDS": LEASE, **(env or {})})


def test_route_schedule_cluster_runs_each_route_on_a_worker(tmp_path, cluster, state):
    found, client = cluster
    route_files(tmp_path, 3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "schedule", ".", "--cluster", found.scheduler_address, "--state", state],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ROUTE_LEASE_SECONDS": LEASE},
    )
    try:
        wait_until(lambda: sum(r["status"] == "success" for r in runs_of(state)) == 3, timeout=120, every=0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "leading: this scheduler submits the due runs" in err
    runs = runs_of(state)
    assert sorted(r["route"] for r in runs) == ["r01", "r02", "r03"]
    workers = set(worker_pids(client).values())
    assert {r["pid"] for r in runs} <= workers  # each ran in a worker process, not in the scheduler
    with open(tmp_path / "out" / "r01.csv", newline="") as f:
        assert list(csv.reader(f)) == [["id", "name"], ["1", "a"], ["2", "b"], ["3", "c"]]
    # the history and status commands read the same shared state
    shown = route_cmd("history", "--state", state, cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.count("success") == 3
    status = route_cmd("status", ".", "--state", state, "--json", cwd=tmp_path)
    assert {s["route"]: s["last_status"] for s in json.loads(status.stdout)} == {
        "r01": "success",
        "r02": "success",
        "r03": "success",
    }


def test_cluster_needs_a_database_state_and_a_reachable_scheduler(tmp_path):
    route_files(tmp_path, 1)
    folder = route_cmd("schedule", ".", "--cluster", "tcp://127.0.0.1:9", cwd=tmp_path)
    assert folder.returncode == 2
    assert "their state must be a database" in folder.stderr and "Traceback" not in folder.stderr
    gone = route_cmd(
        "schedule",
        ".",
        "--cluster",
        "tcp://127.0.0.1:9",
        "--state",
        "sqlite:///state.db",
        cwd=tmp_path,
        env={"ROUTE_CLUSTER_TIMEOUT": "2"},
    )
    assert gone.returncode == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in gone.stderr and "Traceback" not in gone.stderr


def leader_ticks(state: str, ticks: int) -> None:
    """Wait for `ticks` ticks of the leading scheduler: each renews its lease before it submits."""
    for _ in range(ticks):
        seen = holder(from_option(state), "scheduler")["expires"]
        wait_until(
            lambda seen=seen: (holder(from_option(state), "scheduler") or {}).get("expires", 0) > seen, timeout=30
        )


def _leader_pid(state: str) -> int | None:
    found = holder(from_option(state), "scheduler")
    match = re.match(r"process (\d+)", (found or {}).get("holder") or "")
    return int(match.group(1)) if match else None


def test_two_schedulers_run_every_due_route_once_a_minute_and_survive_the_leaders_death(tmp_path, cluster, state):
    found, _ = cluster
    files = route_files(tmp_path, 20, schedule="* * * * *")  # on the test's own clock
    now = dt.datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=5)  # ahead of real time, on a minute
    clock = tmp_path / "clock"
    set_clock(clock, start)
    env = {"ROUTE_LEASE_SECONDS": LEASE}
    schedulers = [start_scheduler(clock, found.scheduler_address, state, *files, env=env) for _ in range(2)]

    def done(count: int) -> bool:
        runs = runs_of(state)
        bad = [r for r in runs if r["status"] not in ("success", "queued", "running")]
        assert not bad, bad
        return sum(r["status"] == "success" for r in runs) >= count

    try:
        wait_until(lambda: done(20), timeout=180, every=0.5)  # never run: every route is due at once
        set_clock(clock, start + dt.timedelta(minutes=1, seconds=1))
        wait_until(lambda: done(40), timeout=180, every=0.5)
        leader = _leader_pid(state)
        standby = next(p for p in schedulers if p.pid != leader)
        assert leader in [p.pid for p in schedulers]
        os.kill(leader, signal.SIGKILL)  # the leading scheduler dies
        set_clock(clock, start + dt.timedelta(minutes=2, seconds=1))
        wait_until(lambda: done(60), timeout=180, every=0.5)
        assert _leader_pid(state) == standby.pid
        set_clock(clock, start + dt.timedelta(minutes=3, seconds=1))
        wait_until(lambda: done(80), timeout=180, every=0.5)
        set_clock(clock, start + dt.timedelta(minutes=3, seconds=30))
        leader_ticks(state, 2)  # whole ticks within minutes already served: nothing more is submitted
    finally:
        for proc in schedulers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        logs = [proc.communicate(timeout=60)[1] for proc in schedulers]
    runs = runs_of(state)
    assert len(runs) == 80, logs
    assert all(r["status"] == "success" for r in runs)
    slots = Counter((r["route"], r["slot"]) for r in runs)
    minutes = [(start + dt.timedelta(minutes=k)).isoformat(timespec="seconds") for k in range(4)]
    assert slots == Counter({(f"r{i:02d}", m): 1 for i in range(1, 21) for m in minutes})
    assert any("standing by" in log for log in logs) and any("leading" in log for log in logs)


@pytest.mark.parametrize("mode", ["upsert", "append"])
def test_a_worker_killed_mid_run_leaves_the_run_interrupted_and_it_is_retried_elsewhere(
    tmp_path, cluster, state, portal_process, mode
):
    """An upsert simply runs again; an append resumes from what its journal says arrived."""
    found, client = cluster
    rows = 150_000
    portal = portal_process(faults="delay@1x*=0.15")  # the run still going when its worker is killed
    key = "case_id" if mode == "upsert" else None
    ds = portal.create(CASES, row_identifier=key)
    write_cases(tmp_path / "cases.csv", rows)
    route = socrata_route(tmp_path, portal.url, ds, mode, row_identifier=key, batch_rows=2000)
    text = route.read_text().replace("name: kill", "name: kill\nschedule: '0 0 1 1 *'\nretries: 2")
    route.write_text(text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "schedule", str(route), "--cluster", found.scheduler_address,
         "--state", state, *ROUTE_ARGS],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "ROUTE_LEASE_SECONDS": LEASE},
    )  # fmt: skip
    try:
        wait_until(lambda: any(r["status"] == "running" for r in runs_of(state)), timeout=120, every=0.5)
        wait_until(lambda: portal.count(ds) >= 20_000, timeout=120, every=0.2)
        victim = next(r for r in runs_of(state) if r["status"] == "running")
        assert victim["pid"] in worker_pids(client).values()
        os.kill(victim["pid"], signal.SIGKILL)  # the worker process dies mid-run
        wait_until(lambda: any(r["status"] == "success" for r in runs_of(state)), timeout=240, every=0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    runs = {r["run_id"]: r for r in runs_of(state)}
    first = runs[victim["run_id"]]
    assert first["status"] == "interrupted", err
    assert "its process is gone" in first["error"] or "stopped before it finished" in first["error"]
    retry = runs[victim["run_id"] + "-r1"]
    assert retry["status"] == "success" and retry["pid"] != victim["pid"]
    assert Counter(case_ids(portal, ds)) == Counter(f"C-{i:07d}" for i in range(1, rows + 1))
    wait_until(lambda: len(worker_pids(client)) == 2, timeout=60, every=0.5)  # the nanny restarted the worker


def test_the_cluster_and_the_state_can_come_from_defaults_yaml(tmp_path, cluster):
    found, _ = cluster
    route_files(tmp_path, 1)
    (tmp_path / "defaults.yaml").write_text(f"state: sqlite:///state.db\ncluster: {found.scheduler_address}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "schedule", "."],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    state = f"sqlite:///{tmp_path}/state.db"
    try:
        wait_until(lambda: [r["status"] for r in runs_of(state)] == ["success"], timeout=120, every=0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert f"submitting to the Dask cluster at {found.scheduler_address}" in err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args: str) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "dask"
    return subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_dask_scheduler_that_dies_and_comes_back_gets_the_runs_that_fell_due_meanwhile(tmp_path, state):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"

    def start_cluster():
        scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0")
        worker = _dask("worker", address, "--nthreads", "1", "--no-dashboard")
        return [scheduler, worker]

    cluster = start_cluster()
    route_files(tmp_path, 1)
    log = tmp_path / "schedule.log"
    with open(log, "w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "schedule", ".", "--cluster", address, "--state", state],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err_file, text=True,
            env={**os.environ, "ROUTE_LEASE_SECONDS": LEASE, "ROUTE_CLUSTER_TIMEOUT": "30"},
        )  # fmt: skip
    try:
        wait_until(lambda: [r["status"] for r in runs_of(state)] == ["success"], timeout=120, every=0.5)
        for p in cluster:
            p.kill()
            p.wait()
        wait_until(lambda: "lost the Dask scheduler at" in log.read_text(), timeout=60, every=0.2)
        route_files(tmp_path, 2)  # a route that never ran: due at once, while the cluster is away
        wait_until(lambda: "r02: r02.yaml read" in log.read_text(), timeout=60, every=0.2)
        cluster = start_cluster()
        wait_until(
            lambda: (
                sorted((r["route"], r["status"]) for r in runs_of(state)) == [("r01", "success"), ("r02", "success")]
            ),
            timeout=120,
            every=0.5,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        for p in cluster:
            p.kill()
    err = log.read_text()
    assert "lost the Dask scheduler at" in err and "answers again" in err
    assert "Traceback" not in err
