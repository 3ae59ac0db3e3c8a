"""Issue 10: runs killed with SIGKILL part way leave nothing lost, nothing doubled, nothing behind.

A portal is served in its own process; `route execute` runs in another and is killed once the
portal holds some of its rows. Then, as a publisher would: the history says what happened, a plain
rerun of an append is refused, `--resume` sends exactly the rest, and every dataset ends holding
each row exactly once, with no spool, temp file or open revision left.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest
from killkit import CASES, case_ids, execute, kill_when, socrata_route, start, write_cases
from portalkit import ROUTE_ARGS

ROWS = 200_000


def expected_ids(n: int = ROWS) -> Counter:
    return Counter(f"C-{i:07d}" for i in range(1, n + 1))


def history(folder, route="kill") -> list[dict]:
    with sqlite3.connect(folder / ".route" / "history.sqlite") as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM runs WHERE route = ? ORDER BY started", (route,))]


def leftovers(folder) -> list:
    state = folder / ".route"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.tmp")) + sorted(
        str(p.relative_to(folder)) for p in (state / "tmp").glob("*") if (state / "tmp").is_dir()
    )


@pytest.mark.parametrize("kill_at", [4_000, 90_000])
def test_a_killed_append_resumes_with_no_row_lost_or_doubled(tmp_path, portal_process, kill_at):
    portal = portal_process()
    ds = portal.create(CASES, row_identifier=None)
    write_cases(tmp_path / "cases.csv", ROWS)
    route = socrata_route(tmp_path, portal.url, ds, "append")

    kill_when(start(route), lambda: portal.count(ds) >= kill_at)
    arrived = portal.count(ds)
    assert 0 < arrived < ROWS

    # A plain rerun must not append the rows that arrived again.
    again = execute(route)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "stopped part way through its append" in again.stderr
    assert "--resume" in again.stderr and "--force" in again.stderr
    assert portal.count(ds) == arrived

    # The history says the killed run was interrupted, not running.
    shown = execute_history(tmp_path)
    assert "interrupted" in shown and "running" not in shown

    resumed = execute(route, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert Counter(case_ids(portal, ds)) == expected_ids()
    assert leftovers(tmp_path) == []
    # The next plain run is an ordinary append again (nothing left unfinished).
    runs = history(tmp_path)
    assert [r["status"] for r in runs] == ["interrupted", "failed", "success"]
    killed = json.loads(runs[0]["report"])
    assert killed["targets"][0]["delivered"] >= arrived - 2 * 2000  # confirmed; in flight may be in doubt


def test_a_killed_resume_can_be_resumed_again(tmp_path, portal_process):
    portal = portal_process()
    ds = portal.create(CASES, row_identifier=None)
    write_cases(tmp_path / "cases.csv", ROWS)
    route = socrata_route(tmp_path, portal.url, ds, "append")
    kill_when(start(route), lambda: portal.count(ds) >= 30_000)
    first = portal.count(ds)
    kill_when(start(route, "--resume"), lambda: portal.count(ds) >= first + 40_000)
    resumed = execute(route, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert Counter(case_ids(portal, ds)) == expected_ids()


def test_a_killed_append_with_a_row_identifier_checks_the_rows_in_doubt(tmp_path, portal_process):
    portal = portal_process()
    ds = portal.create(CASES, row_identifier="case_id")
    write_cases(tmp_path / "cases.csv", ROWS)
    route = socrata_route(tmp_path, portal.url, ds, "append", row_identifier="case_id")
    kill_when(start(route), lambda: portal.count(ds) >= 50_000)
    resumed = execute(route, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert Counter(case_ids(portal, ds)) == expected_ids()


def test_force_sends_everything_again_knowingly(tmp_path, portal_process):
    portal = portal_process()
    ds = portal.create(CASES, row_identifier=None)
    write_cases(tmp_path / "cases.csv", 20_000)
    route = socrata_route(tmp_path, portal.url, ds, "append", batch_rows=500)
    kill_when(start(route), lambda: portal.count(ds) >= 2_000)
    arrived = portal.count(ds)
    forced = execute(route, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert portal.count(ds) == arrived + 20_000


@pytest.mark.parametrize("mode", ["upsert", "replace"])
def test_a_killed_upsert_or_replace_is_simply_run_again(tmp_path, portal_process, mode):
    portal = portal_process()
    ds = portal.create(CASES, row_identifier="case_id")
    write_cases(tmp_path / "old.csv", 1_000, start=900_001)
    route = socrata_route(tmp_path, portal.url, ds, "replace", rows_file="old.csv", row_identifier="case_id")
    assert execute(route).returncode == 0
    write_cases(tmp_path / "cases.csv", ROWS)
    route = socrata_route(tmp_path, portal.url, ds, mode, row_identifier="case_id")
    proc = start(route)
    if mode == "upsert":
        kill_when(proc, lambda: portal.count(ds) >= 40_000)
    else:  # killed while the rows are spooled or the revision is open
        kill_when(
            proc,
            lambda: (
                bool(
                    list((tmp_path / ".route" / "tmp").glob("*.csv"))
                    if (tmp_path / ".route" / "tmp").is_dir()
                    else False
                )
                or bool(portal.open_revisions(ds))
            ),
        )
    again = execute(route, "--force")
    assert again.returncode == 0, again.stdout + again.stderr
    want = expected_ids()
    if mode == "upsert":
        want += Counter(f"C-{i:07d}" for i in range(900_001, 901_001))
    assert Counter(case_ids(portal, ds)) == want
    assert portal.open_revisions(ds) == []
    assert leftovers(tmp_path) == []


def execute_history(folder) -> str:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "history", "--state", str(folder / ".route")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def route_command(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=120)


def test_status_says_an_unfinished_append_needs_attention(tmp_path, portal_process):
    portal = portal_process()
    ds = portal.create(CASES, row_identifier=None)
    write_cases(tmp_path / "cases.csv", 60_000)
    route = socrata_route(tmp_path, portal.url, ds, "append")
    kill_when(start(route), lambda: portal.count(ds) >= 4_000)
    shown = route_command("status", str(tmp_path), "--check")
    assert shown.returncode == 1, shown.stdout + shown.stderr
    text = " ".join(shown.stdout.split())
    assert "NEEDS ATTENTION" in text and "--resume" in text
    assert execute(route, "--resume").returncode == 0
    after = route_command("status", str(tmp_path), "--json")
    assert json.loads(after.stdout)[0]["state"] == "not scheduled"


def test_repair_discards_the_revision_a_killed_replace_left_open(tmp_path, portal_process):
    # Every write to a revision waits 1 s: the run is killed while its revision is open.
    served = portal_process(faults="delay@1x*=1/api/publishing/v1/revision")
    ds = served.create(CASES, row_identifier="case_id")
    write_cases(tmp_path / "cases.csv", 2_000)
    route = socrata_route(tmp_path, served.url, ds, "replace", row_identifier="case_id")
    kill_when(start(route), lambda: bool(served.open_revisions(ds)))
    assert served.open_revisions(ds)
    repaired = route_command("status", str(tmp_path), "--repair", *ROUTE_ARGS)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    text = " ".join(repaired.stdout.split())
    assert "recorded 1 run(s) as interrupted" in text
    assert "discarded revision" in text and "removed a spool" in text
    assert served.open_revisions(ds) == []
    assert list((tmp_path / ".route" / "tmp").glob("*")) == []


def test_the_scheduler_never_appends_over_an_unfinished_append(tmp_path, portal_process):
    portal = portal_process()
    ds = portal.create(CASES, row_identifier=None)
    write_cases(tmp_path / "cases.csv", 60_000)
    route = socrata_route(tmp_path, portal.url, ds, "append")
    route.write_text('schedule: "* * * * *"\n' + route.read_text())
    kill_when(start(route), lambda: portal.count(ds) >= 4_000)
    arrived = portal.count(ds)
    with sqlite3.connect(tmp_path / ".route" / "history.sqlite") as con:  # it was killed an hour ago
        con.execute("UPDATE runs SET started = '2026-01-01T00:00:00.000+00:00'")
    scheduled = route_command("schedule", "--once", str(tmp_path), *ROUTE_ARGS)
    assert scheduled.returncode == 1, scheduled.stdout + scheduled.stderr
    assert portal.count(ds) == arrived  # nothing appended twice
    runs = history(tmp_path)
    assert runs[-1]["status"] == "failed" and "--resume" in runs[-1]["error"]
    status = json.loads(route_command("status", str(tmp_path), "--json").stdout)[0]
    assert status["state"] == "needs attention" and "--resume" in status["reason"]
