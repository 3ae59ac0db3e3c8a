"""Issue 10 as a publisher checks it: failed runs, empty inputs and killed file deliveries leave every
output byte-identical; the three counts of a failure add up to the rows the run would have sent."""

from __future__ import annotations

import json
import re
import signal
import sqlite3

import pytest
from killkit import CASES, case_ids, execute, kill_when, socrata_route, start, write_cases

GOOD = "id,name\n1,a\n2,b\n3,c\n4,d\n"


def outputs(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted((folder / "out").glob("*")) if p.is_file()}


FILES_ROUTE = """
    name: files
    source:
      csv: {path: data.csv}
    targets:
      - name: csv
        deliver: {csv: {path: out/data.csv}}
      - name: jsonl
        deliver: {jsonl: {path: out/data.jsonl}}
      - name: db
        deliver: {sql: {url: "sqlite:///out/data.db", table: rows, mode: replace}}
"""


def table(folder) -> list:
    with sqlite3.connect(folder / "out" / "data.db") as con:
        return con.execute("SELECT id, name FROM rows ORDER BY id").fetchall()


@pytest.mark.parametrize("data", [b"id,name\n", b""], ids=["header-only", "zero-byte"])
def test_an_empty_input_changes_no_output_without_force(route_cli, write_route, tmp_path, data):
    route = write_route(FILES_ROUTE, **{"data.csv": GOOD})
    assert route_cli("execute", str(route)).exit_code == 0
    before, rows = outputs(tmp_path), table(tmp_path)
    (tmp_path / "data.csv").write_bytes(data)
    result = route_cli("execute", str(route))
    assert result.exit_code == 1
    if data:
        for what in ("file", "table"):  # every guard that stops says so, not only the first
            assert f"stopped before replacing: it would empty the {what} (it has 4 rows" in result.stderr
        assert "--force" in result.stderr and "allow_empty: true" in result.stderr
    else:
        assert "data.csv is empty" in result.stderr
    assert outputs(tmp_path) == before and table(tmp_path) == rows
    assert "Left untouched: csv, jsonl, db." in result.stdout
    if data:  # forced: an empty result is what the publisher wants
        forced = route_cli("execute", "--force", str(route))
        assert forced.exit_code == 0, forced.output
        assert (tmp_path / "out" / "data.csv").read_text() == '"id","name"\n' and table(tmp_path) == []


def test_allow_empty_on_a_target_lets_it_replace_with_nothing(route_cli, write_route, tmp_path):
    route = write_route(
        """
        name: allowed
        source:
          csv: {path: data.csv}
        targets:
          - name: csv
            deliver: {csv: {path: out/data.csv, allow_empty: true}}
    """,
        **{"data.csv": GOOD},
    )
    assert route_cli("execute", str(route)).exit_code == 0
    (tmp_path / "data.csv").write_text("id,name\n")
    assert route_cli("execute", str(route)).exit_code == 0
    assert (tmp_path / "out" / "data.csv").read_text() == '"id","name"\n'


def test_a_shrink_beyond_max_shrink_stops_and_a_small_one_goes_ahead(route_cli, write_route, tmp_path):
    route = write_route(
        """
        name: shrink
        source:
          csv: {path: data.csv}
        targets:
          - name: out
            deliver: {jsonl: {path: out/data.jsonl, max_shrink: "30%"}}
    """,
        **{"data.csv": "id\n" + "".join(f"{i}\n" for i in range(10))},
    )
    assert route_cli("execute", str(route)).exit_code == 0
    (tmp_path / "data.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(8)))
    assert route_cli("execute", str(route)).exit_code == 0  # 20 % fewer
    (tmp_path / "data.csv").write_text("id\n1\n2\n")
    result = route_cli("execute", str(route))
    assert result.exit_code == 1
    assert "it would shrink the file from 8 to 2 rows (75% fewer, more than max_shrink 30%)" in result.stderr
    assert len((tmp_path / "out" / "data.jsonl").read_text().splitlines()) == 8


def test_a_quoted_multi_line_csv_is_counted_by_rows_not_lines(route_cli, write_route, tmp_path):
    route = write_route(
        """
        name: quoted
        source:
          csv: {path: data.csv}
        targets:
          - name: out
            deliver: {csv: {path: out/data.csv}}
    """,
        **{"data.csv": 'id,note\n1,"a\nb\nc\nd\ne\nf"\n2,x\n'},
    )
    assert route_cli("execute", str(route)).exit_code == 0
    (tmp_path / "data.csv").write_text("id,note\n3,y\n")  # 2 rows -> 1: 50 %, not 7 lines -> 1
    assert route_cli("execute", str(route)).exit_code == 0


def test_a_failed_remote_target_leaves_every_local_output_byte_identical(tmp_path, route_cli, portal_process):
    """A socrata replace stops ("it would empty the dataset"): no file is replaced, no table committed."""
    portal = portal_process()
    ds = portal.create(CASES, row_identifier="case_id")
    write_cases(tmp_path / "cases.csv", 50)
    extra = """\
      - name: archive
        deliver: {csv: {path: out/cases.csv}}
      - name: db
        deliver: {sql: {url: "sqlite:///out/cases.db", table: cases, mode: replace}}
    """
    route = socrata_route(tmp_path, portal.url, ds, "replace", row_identifier="case_id", extra_targets=extra)
    first = execute(route)
    assert first.returncode == 0, first.stderr
    before = outputs(tmp_path)
    (tmp_path / "cases.csv").write_text("case_id,amount\n")
    failed = execute(route)
    assert failed.returncode == 1
    assert "stopped before replacing: it would empty the" in failed.stderr
    assert outputs(tmp_path) == before
    assert "Committed: none. Left untouched: portal, archive, db." in " ".join(failed.stdout.split())
    assert portal.count(ds) == 50


def test_the_three_counts_of_a_failed_append_add_up_and_resume_completes_it(tmp_path, portal_process):
    """The 6th write is applied but its answer is lost, so that batch is in doubt and the append
    stops: arrived + in doubt + not sent = the 30,000 rows it would have sent (rows never read
    included). --resume then settles the batch in doubt by the dataset's count and sends the rest."""
    portal = portal_process(faults="drop-after@6/resource")
    ds = portal.create(CASES, row_identifier=None)
    write_cases(tmp_path / "cases.csv", 30_000)
    route = socrata_route(tmp_path, portal.url, ds, "append", batch_rows=1000)
    route.write_text(
        route.read_text()
        .replace("concurrency: 2", "concurrency: 1")
        .replace("source:\n", "chunk_rows: 2000\nsource:\n", 1)
    )
    failed = execute(route, "--json")
    assert failed.returncode == 1, failed.stderr
    report = json.loads(failed.stdout)
    text = " ".join(report["error"].split())
    assert "Arrived for certain: 5,000 rows (rows at lines 2-5001 of cases.csv)." in text
    assert "May or may not have arrived: 1,000 rows (rows at lines 5002-6001 of cases.csv)" in text
    assert "Not sent: 24,000 rows." in text
    assert "run the route again with --resume" in text
    target = report["targets"][0]
    assert (target["delivered"], target["in_doubt"], target["not_sent"]) == (5_000, 1_000, 24_000)
    assert report["status"] == "partial"
    assert portal.count(ds) == 6_000  # the batch in doubt did arrive
    resumed = execute(route, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    ids = case_ids(portal, ds)
    assert len(ids) == 30_000 and len(set(ids)) == 30_000


def test_a_killed_file_delivery_leaves_the_old_file_and_the_next_run_cleans_up(tmp_path, write_route):
    write_cases(tmp_path / "cases.csv", 5_000)
    route = write_route("""
        name: bigfile
        source:
          csv: {path: cases.csv}
        targets:
          - name: out
            deliver: {csv: {path: out/cases.csv}}
    """)
    done = execute(route)
    assert done.returncode == 0, done.stderr
    before = outputs(tmp_path)
    write_cases(tmp_path / "cases.csv", 1_500_000)
    proc = start(route)
    kill_when(
        proc,
        lambda: (
            any((tmp_path / "out").glob(".cases.csv.*.tmp"))
            and next((tmp_path / "out").glob(".cases.csv.*.tmp")).stat().st_size > 1_000_000
        ),
    )
    assert (tmp_path / "out" / "cases.csv").read_bytes() == before["cases.csv"]  # the old file, byte for byte
    assert list((tmp_path / "out").glob(".*.tmp"))  # the killed run's partial file...
    rerun = execute(route)
    assert rerun.returncode == 0, rerun.stderr
    assert list((tmp_path / "out").glob(".*.tmp")) == []  # ...removed by the next run
    assert len((tmp_path / "out" / "cases.csv").read_text().splitlines()) == 1_500_001
    with sqlite3.connect(tmp_path / ".route" / "history.sqlite") as con:
        statuses = [r[0] for r in con.execute("SELECT status FROM runs ORDER BY started")]
    assert statuses == ["success", "interrupted", "success"]
    # the rerun's log (two runs of one second sort by their random suffix: take the newest file)
    last = max((tmp_path / ".route" / "logs").glob("bigfile-*.log"), key=lambda p: p.stat().st_mtime_ns)
    assert re.search(r"removed a temporary file left by interrupted run \S+: .*\.cases\.csv\..*\.tmp", last.read_text())


def test_ctrl_c_cancels_the_run_leaves_the_outputs_and_is_not_a_failure(tmp_path, write_route):
    write_cases(tmp_path / "cases.csv", 5_000)
    route = write_route("""
        name: cancel-me
        source:
          csv: {path: cases.csv}
        targets:
          - name: out
            deliver: {csv: {path: out/cases.csv}}
    """)
    assert execute(route).returncode == 0
    before = (tmp_path / "out" / "cases.csv").read_bytes()
    write_cases(tmp_path / "cases.csv", 1_500_000)
    proc = start(route)
    kill_when(proc, lambda: any((tmp_path / "out").glob(".cases.csv.*.tmp")), sig=signal.SIGINT)
    assert proc.returncode == 130, proc.stderr.read() if proc.stderr else ""
    assert (tmp_path / "out" / "cases.csv").read_bytes() == before
    assert list((tmp_path / "out").glob(".*.tmp")) == []  # aborted cleanly: nothing left
    with sqlite3.connect(tmp_path / ".route" / "history.sqlite") as con:
        last = con.execute("SELECT status, error FROM runs ORDER BY started DESC LIMIT 1").fetchone()
    assert last[0] == "cancelled" and "cancelled (Ctrl+C)" in last[1]
    status = __import__("subprocess").run(
        [*__import__("killkit").ROUTE, "status", "--json", str(route)], capture_output=True, text=True
    )
    assert json.loads(status.stdout)[0]["state"] == "not scheduled"
