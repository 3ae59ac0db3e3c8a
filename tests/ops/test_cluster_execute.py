"""`route execute --cluster` on a real Dask LocalCluster (2 worker processes): the same delivered
rows, rejects and messages as a local run, and the routes it refuses, with their lines."""

from __future__ import annotations

import csv
import socket
import sqlite3
from pathlib import Path

import pytest
from clusterkit import local_cluster
from conftest import run_route_cli
from portalkit import ROUTE_ARGS

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as running:
        yield running.scheduler_address


def write_parts(folder: Path, files: int = 4, rows: int = 300) -> None:
    """files of rows each: a ragged row every 97th, an amount that is no number every 50th."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for f in range(files):
        with open(folder / "data" / f"part{f}.csv", "w", encoding="utf-8") as out:
            out.write("id,name,amount,kind\n")
            for i in range(rows):
                n = f * rows + i
                if n % 97 == 5:
                    out.write(f"{n},x{n},1\n")
                    continue
                amount = "bad" if n % 50 == 0 else f"{n * 1.5}"
                out.write(f"{n},name {n},{amount},{'a' if n % 3 else 'b'}\n")


ROUTE = """\
name: parts
source:
  csv:
    path: data/*.csv
source_transforms:
  - cast: {id: integer, amount: number}
  - derive: {double: "amount * 2"}
targets:
  - name: a
    when: "kind == 'a'"
    target_transforms:
      - sort: [id]
    deliver:
      csv: {path: out/a.csv}
  - name: b
    when: "kind == 'b'"
    deliver:
      sql: {url: "sqlite:///out/b.db", table: b, mode: replace}
"""


def execute(route: Path, *args: str, env: dict | None = None):
    return run_route_cli("execute", *args, str(route), env={"ROUTE_PROGRESS_AFTER": "0", **(env or {})})


def rejects_of(route: Path, output: str) -> list[tuple[str, ...]]:
    """(stage, step, column, reason, source, line) of each rejected row, sorted."""
    path = next(line.split("see ", 1)[1].strip() for line in output.splitlines() if "rows rejected: see" in line)
    with open(path, encoding="utf-8") as f:
        return sorted(
            (r["stage"], r["step"], r["column"], r["reason"], r["source"], r["line"]) for r in csv.DictReader(f)
        )


def table_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM b ORDER BY id").fetchall()


def test_a_glob_gives_the_rows_and_rejects_of_a_local_run(cluster, tmp_path):
    write_parts(tmp_path)
    route = tmp_path / "route.yaml"
    route.write_text(ROUTE)
    local = execute(route)
    assert local.exit_code == 0, local.output
    local_a, local_b = (tmp_path / "out/a.csv").read_bytes(), table_rows(tmp_path / "out/b.db")
    local_rejects = rejects_of(route, local.output)

    result = execute(route, "--cluster", cluster)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out/a.csv").read_bytes() == local_a
    assert table_rows(tmp_path / "out/b.db") == local_b
    assert len(local_b) + local_a.count(b"\n") - 1 == 1200 - 13 - 24
    cluster_rejects = rejects_of(route, result.output)
    assert cluster_rejects == local_rejects
    # the right file and line: row 102 is on line 104 of part0.csv, row 393 on line 95 of part1.csv
    assert ("source", "csv", "", "line 104 has 3 fields, the header has 4", "data/part0.csv", "104") in cluster_rejects
    assert ("source", "csv", "", "line 95 has 3 fields, the header has 4", "data/part1.csv", "95") in cluster_rejects
    assert any(r[1] == "cast" and r[4] == "data/part2.csv" and r[5] == "2" for r in cluster_rejects)
    # the summary and progress read as a local run's
    assert "success" in result.stdout and "1,200 rows read" in result.stdout
    assert "parts: reading" in result.stderr and "parts: committing" in result.stderr
    assert "Traceback" not in result.output


def test_a_file_with_its_columns_in_another_order_is_aligned(cluster, tmp_path):
    write_parts(tmp_path, files=2, rows=20)
    (tmp_path / "data/part2.csv").write_text("kind,id,amount,name\na,900,1.5,late\n")
    route = tmp_path / "route.yaml"
    route.write_text(ROUTE.replace("    path: data/*.csv\n", "    path: data/*.csv\n    file_column: file\n"))
    assert execute(route).exit_code == 0
    local = (tmp_path / "out/a.csv").read_bytes()
    result = execute(route, "--cluster", cluster)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out/a.csv").read_bytes() == local
    assert b'900,"late",1.5,"a","data/part2.csv",3\n' in local


def test_the_local_portal_gets_the_same_rows(cluster, tmp_path, shared_portal):
    write_parts(tmp_path, files=4, rows=30)
    columns = [
        {"fieldName": "id", "name": "id", "dataTypeName": "number"},
        {"fieldName": "name", "name": "name", "dataTypeName": "text"},
        {"fieldName": "amount", "name": "amount", "dataTypeName": "number"},
    ]
    dataset = shared_portal.create(columns, row_identifier="id", name="Parts")
    target = "\n".join("        " + line for line in shared_portal.target(dataset).splitlines())
    route = tmp_path / "route.yaml"
    route.write_text(
        "name: to-portal\nsource:\n  csv:\n    path: data/*.csv\nsource_transforms:\n"
        "  - cast: {id: integer, amount: number}\n  - select: [id, name, amount]\n"
        f"targets:\n  - name: portal\n    deliver:\n      socrata:\n        mode: replace\n{target}\n"
        "on_error:\n  max_rejects: 100\n"
    )
    assert execute(route, *ROUTE_ARGS).exit_code == 0
    local = shared_portal.rows(dataset)
    result = execute(route, *ROUTE_ARGS, "--cluster", cluster)
    assert result.exit_code == 0, result.output
    assert shared_portal.rows(dataset) == local and len(local) == 115


def test_a_stream_rule_in_the_source_rules_is_refused_at_its_line(cluster, tmp_path):
    write_parts(tmp_path, files=2, rows=5)
    route = tmp_path / "route.yaml"
    route.write_text(ROUTE.replace("  - derive:", "  - dedupe: [id]\n  - derive:"))
    result = execute(route, "--cluster", cluster)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{route}:7:5: source_transforms[1].dedupe: dedupe needs every row of the stream (a stream rule), "
        "which --cluster cannot split between workers; move it to a target's target_transforms (they run "
        "on this machine, after the gather), or run the route without --cluster"
    )
    assert not (tmp_path / "out").exists()


def test_a_source_of_one_file_is_refused(cluster, tmp_path):
    write_parts(tmp_path, files=1, rows=5)
    route = tmp_path / "route.yaml"
    route.write_text(ROUTE.replace("data/*.csv", "data/part0.csv"))
    result = execute(route, "--cluster", cluster)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{route}:3:3: source.csv: --cluster needs a partitioned source: a glob of files (csv: "
        "{path: data/*.csv}, each file a partition) or sql with partition: {column: id, parts: 4}; it "
        "reads one file; run the route without --cluster"
    )


def test_a_bad_file_on_a_worker_is_the_local_one_line_message(cluster, tmp_path):
    write_parts(tmp_path, files=2, rows=10)
    (tmp_path / "data/part1.csv").write_bytes(b"id,name,amount,kind\n1,\xff\xfe,2,a\n")
    route = tmp_path / "route.yaml"
    route.write_text(ROUTE)
    local = execute(route)
    result = execute(route, "--cluster", cluster)
    assert local.exit_code == result.exit_code == 1
    line = (
        f"error: {route}:3: source 'csv': data/part1.csv: line 2, byte offset 22 (0xff) is not valid "
        "utf-8; if the file was saved by Excel or another Windows program, set encoding: cp1252 (or latin-1)"
    )
    assert line in local.stderr.splitlines() and line in result.stderr.splitlines()
    assert "Traceback" not in result.output
    assert not (tmp_path / "out/a.csv").exists()


def test_an_unreachable_scheduler_is_one_message(tmp_path):
    write_parts(tmp_path, files=2, rows=5)
    route = tmp_path / "route.yaml"
    route.write_text(ROUTE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a port nothing listens on
    address = f"tcp://127.0.0.1:{port}"
    result = execute(route, "--cluster", address, env={"ROUTE_CLUSTER_TIMEOUT": "1"})
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach the Dask scheduler at {address}: ")
    assert result.stderr.rstrip().endswith(
        f"; start one with `dask scheduler` (and workers with `dask worker {address}`), or check the address"
    )
    assert len(result.stderr.strip().splitlines()) == 1


SQL_ROUTE = """\
name: from-sql
source:
  sql:
    url: sqlite:///src.db
    table: people
    partition: {column: id, parts: 3}
source_transforms:
  - derive: {twice: "score * 2"}
targets:
  - name: high
    when: "score >= 100"
    deliver:
      csv: {path: out/high.csv}
  - name: all
    deliver:
      csv: {path: out/all.csv}
"""


def test_sql_partitions_give_the_rows_of_a_local_run_nulls_included(cluster, tmp_path):
    with sqlite3.connect(tmp_path / "src.db") as conn:
        conn.execute("CREATE TABLE people (id INTEGER, name TEXT, score REAL)")
        conn.executemany(
            "INSERT INTO people VALUES (?, ?, ?)",
            [(None if i % 9 == 0 else i, f"p{i}", i * 1.0) for i in range(1, 201)],
        )
    route = tmp_path / "route.yaml"
    route.write_text(SQL_ROUTE)
    whole = tmp_path / "whole.yaml"
    whole.write_text(SQL_ROUTE.replace("    partition: {column: id, parts: 3}\n", "").replace("out/", "whole/"))
    assert execute(whole).exit_code == 0
    assert execute(route).exit_code == 0
    local = {name: (tmp_path / "out" / name).read_bytes() for name in ("high.csv", "all.csv")}
    result = execute(route, "--cluster", cluster)
    assert result.exit_code == 0, result.output
    for name, data in local.items():
        assert (tmp_path / "out" / name).read_bytes() == data
    lines = local["all.csv"].decode().splitlines()
    assert len(lines) == 201 and sorted(lines) == sorted((tmp_path / "whole/all.csv").read_text().splitlines())
    assert sum(1 for line in lines if line.startswith(',"p')) == 22  # the null ids, read by the null part
    assert local["high.csv"].count(b"\n") == 1 + 101


def test_rows_no_target_takes_go_to_the_unrouted_file_as_locally(cluster, tmp_path):
    write_parts(tmp_path, files=3, rows=40)
    route = tmp_path / "route.yaml"
    text = ROUTE.replace("    when: \"kind == 'b'\"\n", "    when: \"kind == 'b' and id < 60\"\n")
    route.write_text(text + "routing:\n  unrouted: out/unrouted.csv\n")
    assert execute(route).exit_code == 0
    local = (tmp_path / "out/unrouted.csv").read_bytes()
    result = execute(route, "--cluster", cluster)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out/unrouted.csv").read_bytes() == local
    assert local.count(b"\n") == 1 + 19  # kind b from id 60 on, less 102 (a ragged row)


def test_an_incremental_sql_source_is_not_partitioned_on_the_cluster(cluster, tmp_path):
    with sqlite3.connect(tmp_path / "src.db") as conn:
        conn.execute("CREATE TABLE people (id INTEGER, name TEXT, score REAL)")
    route = tmp_path / "route.yaml"
    route.write_text(SQL_ROUTE.replace("    partition:", "    incremental: {column: id}\n    partition:"))
    result = execute(route, "--cluster", cluster)
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(
        "source.sql: --cluster needs a partitioned source: a glob of files (csv: {path: data/*.csv}, each "
        "file a partition) or sql with partition: {column: id, parts: 4}; an incremental sql source is read "
        "in one piece (its mark is kept here); run the route without --cluster"
    )


def test_a_piece_keeps_its_dtypes_lines_and_source_on_the_way():
    import numpy as np
    import pandas as pd

    from pipeline.basics.dtypes import INTEGER, TEXT
    from pipeline.ops.cluster.partitioned_pieces import from_arrow, to_arrow

    arrow = pd.DataFrame({"a": pd.Series(["x", None], dtype=TEXT), "n": pd.Series([1, None], dtype=INTEGER)})
    plain = pd.DataFrame({"n": np.array([1, 2]), "o": [{"k": 1}, None]})  # a plugin's numpy and object columns
    for frame in (arrow, plain):
        frame.index = pd.Index([7, 19], dtype="int64")
        frame.attrs["source"] = "data/part1.csv"
        table, attrs = to_arrow(frame)
        back = from_arrow(table, np.asarray(frame.index), attrs)
        pd.testing.assert_frame_equal(back, frame)
        assert back.attrs == {"source": "data/part1.csv"}


def test_an_append_is_journaled_batch_by_batch_with_its_files_and_lines(cluster, tmp_path, shared_portal):
    import json

    write_parts(tmp_path, files=4, rows=30)
    columns = [
        {"fieldName": "id", "name": "id", "dataTypeName": "number"},
        {"fieldName": "name", "name": "name", "dataTypeName": "text"},
    ]
    dataset = shared_portal.create(columns, row_identifier=None, name="Appended")
    target = "\n".join("        " + line for line in shared_portal.target(dataset).splitlines())
    route = tmp_path / "route.yaml"
    route.write_text(
        "name: appended\nsource:\n  csv:\n    path: data/*.csv\nsource_transforms:\n"
        "  - cast: {id: integer}\n  - select: [id, name]\n"
        f"targets:\n  - name: portal\n    deliver:\n      socrata:\n        mode: append\n        batch_rows: 25\n{target}\n"
    )
    result = execute(route, *ROUTE_ARGS, "--cluster", cluster)
    assert result.exit_code == 0, result.output
    assert len(shared_portal.rows(dataset)) == 118  # 120 rows, less the ragged ones (5, 102)
    [journal] = (tmp_path / ".route" / "journals" / "appended").glob("*.jsonl")
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [e["src"] for e in events if e["e"] == "source"] == [f"data/part{i}.csv" for i in range(4)]
    sent = [e for e in events if e["e"] == "sent"]
    assert sum(e["rows"] for e in sent) == 118
    assert {e["src"] for e in sent} == {f"data/part{i}.csv" for i in range(4)}
    assert [e["runs"] for e in sent if e["src"] == "data/part1.csv"][0][0][0] == 2  # part1's first row is on line 2
    assert len([e for e in events if e["e"] == "ok"]) == len(sent)
    assert events[-1]["e"] == "end" and events[-1]["status"] == "success"


def test_a_file_a_worker_cannot_see_is_named_with_what_to_do(tmp_path):
    from pipeline.basics.context import RunOptions
    from pipeline.ops.cluster.partitioned_work import FilePart, Job, run_partition
    from pipeline.route.yamlfile import Document

    doc = Document("route.yaml", {"name": "r", "source": {"csv": {"path": "data/*.csv"}}, "targets": []})
    job = Job(doc, str(tmp_path / "route.yaml"), str(tmp_path / ".route"), "r", "1", RunOptions(), 100)
    result = run_partition(job, FilePart("data/part7.csv", None, "data/*.csv"))
    assert result.pieces == [] and result.error_kind == "RunFailed"
    assert result.error == "route.yaml:1: source 'csv': " + (
        f"data/part7.csv: no such file on the Dask worker here ({tmp_path / 'data/part7.csv'}); with --cluster "
        "every worker reads the files itself, at the path the route names: put them in a folder every worker "
        "mounts at that path"
    )
