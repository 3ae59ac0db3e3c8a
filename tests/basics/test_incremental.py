"""Incremental loads: the mark store, and routes run again and again through `route execute`."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from dbfixtures import db  # noqa: F401 - fixture

from pipeline.basics.context import RunContext
from pipeline.basics.marks import MarkStore, decode, encode, marks_for


@pytest.mark.parametrize(
    "value",
    [
        42,
        2.5,
        Decimal("10.25"),
        "2024-01-01 10:00:00",
        dt.date(2024, 1, 1),
        dt.datetime(2024, 1, 1, 10, 0, 0, 5),
        dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC),
    ],
)
def test_marks_keep_their_type(value):
    assert decode(*encode(value)) == value
    assert type(decode(*encode(value))) is type(value)


def test_a_boolean_is_no_mark():
    with pytest.raises(TypeError, match="a boolean column cannot be an incremental mark"):
        encode(True)


def test_pending_marks_are_written_only_by_commit(tmp_path):
    store = MarkStore(tmp_path / "state", run_id="r1")
    assert store.get("route", "sql:t.id") is None
    store.pending("route", "sql:t.id", 10)
    assert MarkStore(tmp_path / "state").get("route", "sql:t.id") is None
    assert store.commit() == 1
    assert MarkStore(tmp_path / "state").get("route", "sql:t.id") == 10
    store.pending("route", "sql:t.id", 20)
    store.discard()
    assert store.commit() == 0
    assert MarkStore(tmp_path / "state").get("route", "sql:t.id") == 10
    store.pending("route", "sql:t.id", 30)
    store.pending("other", "sql:t.id", 1)
    store.commit()
    assert MarkStore(tmp_path / "state").get("route", "sql:t.id") == 30
    assert store.forget("route") == 1 and store.get("route", "sql:t.id") is None
    assert store.get("other", "sql:t.id") == 1


def test_one_store_per_run(tmp_path):
    run = RunContext("r", tmp_path / "route.yaml", tmp_path / ".route", "1")
    assert marks_for(run) is marks_for(run)
    assert marks_for(run).path == tmp_path / ".route" / "state.sqlite"


ROUTE = """
name: sales-sync
source:
  pipeline.sources.sql:SqlSource:
    url: "{url}"
    table: {src}
    incremental: {{column: updated_at, start: "2024-01-02"}}
targets:
  - name: copy
    deliver:
      pipeline.deliveries.sql:SqlDelivery:
        url: "{url}"
        table: {dst}
        mode: append
"""


def test_an_incremental_route_delivers_each_row_once_even_after_a_failure(db, write_route, route_cli):
    src, dst = db.name("src"), db.name("dst")
    stamp = "DATETIME(6)" if db.kind == "mariadb" else "TIMESTAMP"
    db.execute(
        f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, name VARCHAR(20), updated_at {stamp})",
        f"INSERT INTO {src} VALUES (1, 'old', '2024-01-01 09:00:00'), (2, 'a', '2024-01-02 09:00:00'), "
        "(3, 'b', '2024-01-03 09:00:00')",
        f"CREATE TABLE {dst} (id INTEGER, updated_at {stamp})",
    )  # lacks `name`: the first run fails
    route = write_route(ROUTE.format(url=db.url, src=src, dst=dst))

    def run(*args):
        result = route_cli("execute", str(route), "--json", *args)
        return result.exit_code, json.loads(result.stdout)

    code, report = run()
    assert code == 1 and report["rows_read"] == 2
    assert f"table {dst} has no column name" in report["error"]
    assert db.rows(f"SELECT id FROM {dst}") == []
    db.execute(f"ALTER TABLE {dst} ADD COLUMN name VARCHAR(20)")
    code, report = run()  # the failed run's rows are read again
    assert (code, report["rows_read"]) == (0, 2)
    code, report = run()  # nothing new
    assert (code, report["rows_read"]) == (0, 0)
    db.execute(f"INSERT INTO {src} VALUES (4, 'c', '2024-01-04 09:00:00'), (5, 'd', '2024-01-05 09:00:00')")
    code, report = run("--dry-run")  # a dry run moves no mark
    assert (code, report["rows_read"]) == (0, 2)
    code, report = run()
    assert (code, report["rows_read"]) == (0, 2)
    assert db.rows(f"SELECT id, name FROM {dst} ORDER BY id") == [(2, "a"), (3, "b"), (4, "c"), (5, "d")]
    code, report = run("--full", "--dry-run")  # --full reads from start again
    assert (code, report["rows_read"]) == (0, 4)
