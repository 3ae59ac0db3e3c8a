"""Issue 18: `state:` as a database. Routes run end to end with their state in the real PostgreSQL
(and in a SQLite file): history, incremental marks, created datasets, sync hashes, journals and
locks live in route's tables, nothing of it in a folder, and a killed run is settled the same way."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys

import pytest
from clusterkit import fresh_database, route_cmd
from killkit import CASES, socrata_route, start, write_cases
from polling import wait_until
from portalkit import ROUTE_ARGS
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from pipeline.runs.history import History
from pipeline.state.place import from_option

# Each write to the portal waits 0.2 s: 150,000 rows in 2,000-row batches, two at a time, take several
# seconds however fast the machine, so a run is still going when a test stops it, kills it or takes
# its lease (a run finished in 0.9 s on CI before its lease could be taken).
SLOW_WRITES = "delay@1x*=0.2"
STATE_FILES = ("history.sqlite", "state.sqlite", "datasets.json", "notices.json", "journals", "locks", "sync")


@pytest.fixture
def state():
    with fresh_database() as url:
        yield url


def sql(url: str, query: str) -> list[tuple]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool)
    try:
        with engine.connect() as con:
            return [tuple(r) for r in con.execute(text(query))]
    finally:
        engine.dispose()


INCREMENTAL = """
name: orders
source:
  sql:
    url: sqlite:///shop.db
    table: orders
    incremental: {column: id}
targets:
  - name: copy
    deliver:
      sql: {url: "sqlite:///copy.db", table: orders, mode: append}
"""


def shop(folder, ids) -> None:
    with sqlite3.connect(folder / "shop.db") as con:
        con.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, item TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, f"item {i}") for i in ids])


def test_marks_history_and_journals_live_in_the_database_and_nothing_in_a_folder(tmp_path, state):
    shop(tmp_path, range(1, 4))
    (tmp_path / "orders.yaml").write_text(INCREMENTAL)
    first = route_cmd("execute", "orders.yaml", "--state", state, "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["rows_read"] == 3
    shop(tmp_path, range(4, 6))
    second = route_cmd("execute", "orders.yaml", "--state", state, "--json", cwd=tmp_path)
    assert json.loads(second.stdout)["rows_read"] == 2  # the mark, kept in route_marks, moved on
    assert sql(state, "SELECT route, key, value FROM route_marks") == [("orders", "sql:orders.id", "5")]
    assert [r[0] for r in sql(state, "SELECT status FROM route_runs ORDER BY started")] == ["success", "success"]
    assert sql(state, "SELECT count(*) FROM route_journals")[0][0] == 2
    assert sql(state, "SELECT version FROM route_migrations") == [(1,)]
    scratch = tmp_path / ".route"
    assert [p.name for p in scratch.iterdir() if p.name in STATE_FILES] == [] if scratch.exists() else True
    shown = route_cmd("history", "orders.yaml", "--state", state, cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.count("success") == 2


def test_a_dataset_route_created_is_found_again_through_the_database(tmp_path, state):
    from pathlib import Path
    from shutil import copytree

    copytree(Path(__file__).resolve().parents[2] / "routes" / "payroll", tmp_path / "payroll")
    folder = tmp_path / "payroll"
    runs = [route_cmd("execute", "payroll.yaml", "--state", state, "--json", cwd=folder) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    created = sql(state, "SELECT key, id FROM route_datasets")
    assert len(created) == 1 and created[0][0] == "payroll/portal"
    where = [json.loads(r.stdout)["targets"][0]["location"] for r in runs]
    assert created[0][1] in where[0] and where[0] == where[1]  # the second run updated the same dataset


def test_a_run_holds_the_routes_lease_and_a_killed_run_is_settled_as_interrupted(tmp_path, state, portal_process):
    portal = portal_process(faults=SLOW_WRITES)
    ds = portal.create(CASES, row_identifier=None)
    write_cases(tmp_path / "cases.csv", 150_000)
    route = socrata_route(tmp_path, portal.url, ds, "append")
    env = {"ROUTE_LEASE_SECONDS": "6"}
    import os

    os.environ.update(env)
    try:
        proc = start(route, "--state", state)
        wait_until(lambda: portal.count(ds) >= 4_000, timeout=120, every=0.2)
        proc.send_signal(signal.SIGSTOP)  # frozen part way: its lease is still good for a few seconds
        busy = route_cmd("execute", str(route), "--state", state, *ROUTE_ARGS, cwd=tmp_path, env=env)
        assert busy.returncode == 1
        assert re.search(r"route kill is already running \(run \S+, process \d+ on ", busy.stderr), busy.stderr
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        arrived = portal.count(ds)
        wait_until(
            lambda: History(from_option(state)).runs("kill")[0]["status"] == "interrupted", timeout=30, every=0.5
        )
        again = route_cmd("execute", str(route), "--state", state, *ROUTE_ARGS, cwd=tmp_path, env=env)
        assert again.returncode == 1 and "stopped part way through its append" in again.stderr
        resumed = route_cmd("execute", str(route), "--state", state, "--resume", *ROUTE_ARGS, cwd=tmp_path, env=env)
        assert resumed.returncode == 0, resumed.stderr
    finally:
        for key in env:
            os.environ.pop(key, None)
    assert portal.count(ds) == 150_000 and arrived < 150_000
    statuses = [r["status"] for r in History(from_option(state)).runs("kill")]
    assert statuses == ["success", "failed", "interrupted"]


def test_a_password_in_the_state_url_is_never_shown_nor_kept(tmp_path, state):
    secret_url = state.replace("postgresql://postgres@", "postgresql://postgres:hunter2-secret@")
    shop(tmp_path, [1])
    (tmp_path / "orders.yaml").write_text(INCREMENTAL)
    failed = route_cmd("execute", "orders.yaml", "--state", secret_url, cwd=tmp_path)
    assert failed.returncode == 0, failed.stderr
    assert sql(state, "SELECT count(*) FROM route_runs") == [(1,)]
    shown = route_cmd("history", "--state", secret_url, "--json", cwd=tmp_path)
    everything = failed.stdout + failed.stderr + shown.stdout + shown.stderr
    everything += repr(sql(state, "SELECT * FROM route_runs")) + repr(sql(state, "SELECT * FROM route_journal_lines"))
    assert "hunter2-secret" not in everything
    unreachable = route_cmd("history", "--state", "postgresql://u:hunter2-secret@127.0.0.1:9/x", cwd=tmp_path)
    assert unreachable.returncode == 1
    assert "cannot use the state database" in unreachable.stderr and "***" in unreachable.stderr
    assert "hunter2-secret" not in unreachable.stderr and "Traceback" not in unreachable.stderr


def test_a_database_migrated_by_a_newer_route_is_refused(tmp_path, state):
    shop(tmp_path, [1])
    (tmp_path / "orders.yaml").write_text(INCREMENTAL)
    assert route_cmd("execute", "orders.yaml", "--state", state, cwd=tmp_path).returncode == 0
    sql_exec(state, "INSERT INTO route_migrations (version, name, applied) VALUES (99, 'future', 'x')")
    refused = route_cmd("execute", "orders.yaml", "--state", state, cwd=tmp_path)
    assert refused.returncode == 1
    assert "was migrated by a newer route (migration 99; this route knows up to 1)" in refused.stderr


def sql_exec(url: str, statement: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool)
    with engine.begin() as con:
        con.execute(text(statement))
    engine.dispose()


def test_a_sqlite_state_file_and_artifacts_in_a_folder(tmp_path):
    shop(tmp_path, range(1, 3))
    (tmp_path / "defaults.yaml").write_text("state: sqlite:///shared/state.db\nartifacts: shared/files\n")
    (tmp_path / "orders.yaml").write_text(
        INCREMENTAL.replace("    incremental: {column: id}\n", "    incremental: {column: id}\nsource_transforms:\n"
                            "  - cast: {item: integer}\n")  # every row rejected
    )  # fmt: skip
    run = route_cmd("execute", "orders.yaml", "--json", cwd=tmp_path)
    report = json.loads(run.stdout)
    assert (tmp_path / "shared" / "state.db").exists()
    assert report["rejects_file"].startswith(str(tmp_path / "shared" / "files" / "rejects"))
    assert list((tmp_path / "shared" / "files" / "logs").glob("orders-*.log"))
    with sqlite3.connect(tmp_path / "shared" / "state.db") as con:
        assert con.execute("SELECT count(*) FROM route_runs").fetchone() == (1,)
    assert not (tmp_path / ".route" / "history.sqlite").exists()


def test_artifacts_at_an_s3_url_take_the_rejects_and_logs_and_the_dashboard_reads_them(tmp_path, monkeypatch):
    from remotekit import S3Files

    from pipeline.ops.dashboard.state import DashboardState

    s3 = S3Files(bucket="route-files")
    try:
        env = {
            "AWS_ACCESS_KEY_ID": s3.KEY_ID,
            "AWS_SECRET_ACCESS_KEY": s3.SECRET,
            "AWS_ENDPOINT_URL": s3.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        shop(tmp_path, range(1, 4))
        (tmp_path / "defaults.yaml").write_text("state: sqlite:///state.db\nartifacts: s3://route-files/prod\n")
        (tmp_path / "orders.yaml").write_text(
            INCREMENTAL.replace("targets:", "source_transforms:\n  - filter: \"id != 2\"\n  - cast: {item: integer}\n"
                                "on_error: {max_rejects: 100%}\ntargets:")
        )  # fmt: skip
        run = route_cmd("execute", "orders.yaml", "--json", cwd=tmp_path, env=env)
        report = json.loads(run.stdout)
        run_id = report["run_id"]
        assert report["rejects_file"] == f"s3://route-files/prod/rejects/orders-{run_id}.csv", run.stderr
        assert s3.keys() == [
            f"prod/logs/orders-{run_id}.json",
            f"prod/logs/orders-{run_id}.log",
            f"prod/rejects/orders-{run_id}.csv",
        ]
        assert not list((tmp_path / ".route").rglob("*.csv"))  # copied there, not left here
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)
        dashboard = DashboardState([tmp_path])
        entry = dashboard.entries()[0]
        row = History(entry.state_dir).get(run_id)
        files = dashboard.files(entry, row)
        assert "cannot be read as integer" in files.rejects.read_text() or "integer" in files.rejects.read_text()
        assert f"route orders run {run_id} started" in dashboard.log_text(entry, row)
    finally:
        s3.stop()


def test_two_routes_never_write_one_dataset_at_once(tmp_path, state, portal_process):
    portal = portal_process(faults=SLOW_WRITES)
    ds = portal.create(CASES, row_identifier=None)
    write_cases(tmp_path / "cases.csv", 150_000)
    first = socrata_route(tmp_path, portal.url, ds, "append", name="first")
    second = first.with_name("second.yaml")
    second.write_text(first.read_text().replace("name: first", "name: second"))
    proc = start(first, "--state", state)
    try:
        wait_until(lambda: portal.count(ds) >= 4_000, timeout=120, every=0.2)
        proc.send_signal(signal.SIGSTOP)  # holding its leases, frozen
        waited = route_cmd(
            "execute", str(second), "--state", state, *ROUTE_ARGS, cwd=tmp_path, env={"ROUTE_WRITER_WAIT": "3"}
        )
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.wait(timeout=120)
    assert waited.returncode == 1
    assert "another run has been writing" in waited.stderr and "this run was not started" in waited.stderr
    assert portal.count(ds) == 150_000  # only the first route's rows


def test_a_route_names_its_own_state(tmp_path):
    shop(tmp_path, range(1, 3))
    (tmp_path / "orders.yaml").write_text("state: sqlite:///own-state.db\n" + INCREMENTAL)
    assert route_cmd("execute", "orders.yaml", "-q", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "own-state.db") as con:
        assert con.execute("SELECT route, status FROM route_runs").fetchall() == [("orders", "success")]
    shown = route_cmd("history", "orders.yaml", cwd=tmp_path)
    assert "success" in shown.stdout


def test_a_run_that_loses_its_lease_stops_and_says_why(tmp_path, state, portal_process):
    portal = portal_process(faults=SLOW_WRITES)
    ds = portal.create(CASES, row_identifier="case_id")
    write_cases(tmp_path / "cases.csv", 150_000)
    route = socrata_route(tmp_path, portal.url, ds, "upsert", row_identifier="case_id")
    import os

    os.environ["ROUTE_LEASE_SECONDS"] = "3"
    try:
        proc = start(route, "--state", state)
    finally:
        os.environ.pop("ROUTE_LEASE_SECONDS")
    wait_until(lambda: portal.count(ds) >= 4_000, timeout=120, every=0.2)
    sql_exec(state, "UPDATE route_leases SET owner = 'another-run' WHERE name = 'route:kill'")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "the run lost its lease on route kill" in err
    assert History(from_option(state)).runs("kill")[0]["status"] == "partial"  # some rows had arrived


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_route_schedule_on_one_machine_with_a_database_state(tmp_path, state, isolation):
    shop(tmp_path, range(1, 4))
    (tmp_path / "orders.yaml").write_text("schedule: '0 6 * * *'\n" + INCREMENTAL)
    done = route_cmd("schedule", ".", "--once", "--isolation", isolation, "--state", state, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r["status"] for r in History(from_option(state)).runs("orders")] == ["success"]
    assert sql(state, "SELECT count(*) FROM route_leases WHERE expires > 0 AND name = 'route:orders'") == [(0,)]
