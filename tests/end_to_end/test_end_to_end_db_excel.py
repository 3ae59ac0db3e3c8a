"""Acceptance for issue 5, as a publisher runs it with `route execute`: workbooks written here with
openpyxl and tables on SQLite, PostgreSQL and MariaDB, checked by the exact rows and types that
reach the files and tables; every sql delivery mode; atomic replace under a concurrent reader;
failed runs that leave tables and incremental marks as they were; passwords that never show;
the CI rule of tests/dbfixtures.py; the example routes as they stand.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import zipfile
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, quote_plus

import openpyxl
import pytest
import sqlalchemy as sa
from conftest import read_csv_rows, read_jsonl
from dbfixtures import db, make_db  # noqa: F401 - fixture
from excelkit import make_workbook
from sqlalchemy.pool import NullPool

from pipeline.basics.plugins import rule
from pipeline.basics.sqlurls import make_engine, parse_url

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent


def execute(route_cli, path: Path, *args: str, code: int = 0, env: dict | None = None) -> dict:
    """`route execute --json ARGS ROUTE`: the exit code must be `code`; returns the JSON report."""
    result = route_cli("execute", "--json", *args, str(path), env=env)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return json.loads(result.stdout)


def typed(rows: list[dict]) -> list[list[tuple[str, object]]]:
    """Rows as (type name, value) pairs, so that 241 and 241.0 differ."""
    return [[(type(v).__name__, v) for v in row.values()] for row in rows]


def kinds(engine, table: str) -> dict[str, str]:
    """The route type each column of a table holds, from what the database declares."""
    out = {}
    for col in sa.inspect(engine).get_columns(table):
        t = col["type"]
        out[col["name"]] = (
            "boolean"
            if isinstance(t, sa.Boolean)
            else "integer"
            if isinstance(t, sa.Integer)
            else "number"
            if isinstance(t, (sa.Float, sa.Numeric))
            else "datetime"
            if isinstance(t, sa.DateTime)
            else "date"
            if isinstance(t, sa.Date)
            else "text"
        )
    return out


def table_rows(engine, table: str, order: str = "id") -> list[tuple]:
    """Every row of a table as typed Python values (SQLAlchemy converts SQLite's text dates)."""
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(t).order_by(t.c[order]))]


# -- workbooks -------------------------------------------------------------------------------------


PERMIT_ROWS = [  # (type, value) of every cell, in column order
    [
        ("str", "P-001"),
        ("str", "06103"),
        ("str", "North"),
        ("str", "2024-01-05"),
        ("str", "2024-01-06T09:30:00.000000"),
        ("float", 120.5),
        ("int", 3),
        ("bool", True),
        ("float", 241.0),
        ("str", "2024-02-04"),
        ("str", "06103-P-001"),
    ],
    [
        ("str", "P-002"),
        ("str", "06010"),
        ("str", "North"),
        ("str", "2024-02-01"),
        ("str", "2024-02-02T14:00:15.000000"),
        ("float", 80.0),
        ("int", 12),
        ("bool", False),
        ("float", 160.0),
        ("str", "2024-03-02"),
        ("str", "06010-P-002"),
    ],
    [
        ("str", "P-003"),
        ("str", "00501"),
        ("str", "South"),
        ("str", "2024-03-09"),
        ("NoneType", None),
        ("float", 0.25),
        ("NoneType", None),
        ("NoneType", None),
        ("float", 0.5),
        ("str", "2024-04-08"),
        ("str", "00501-P-003"),
    ],
]
PERMIT_COLUMNS = ["permit", "zip", "district", "issued", "inspected", "fee", "units", "paid", "fee_x2", "due", "code"]


def test_a_report_style_sheet_gives_exact_rows_and_types_in_a_file_and_a_table(db, route_cli, write_route, tmp_path):
    make_workbook(tmp_path / "permits.xlsx")
    table = db.name("permits")
    path = write_route(f"""
        name: permits
        source:
          excel: {{path: permits.xlsx, sheet: Permits, header_row: 3}}
        targets:
          - name: file
            deliver: {{jsonl: {{path: out/permits.jsonl}}}}
          - name: db
            deliver: {{sql: {{url: "{db.url}", table: {table}, mode: replace, key: permit}}}}
    """)
    report = execute(route_cli, path)
    assert report["rows_read"] == 3 and [t["delivered"] for t in report["targets"]] == [3, 3]

    rows = read_jsonl(tmp_path / "out" / "permits.jsonl")
    assert [list(r) for r in rows] == [PERMIT_COLUMNS] * 3
    assert typed(rows) == PERMIT_ROWS

    # the table was created from the route's types, and holds the same values
    expected_kinds = {
        "permit": "text",
        "zip": "text",
        "district": "text",
        "issued": "date",
        "inspected": "datetime",
        "fee": "number",
        "units": "integer",
        "paid": "boolean",
        "fee_x2": "number",
        "due": "date",
        "code": "text",
    }
    if db.kind == "mariadb":
        expected_kinds["paid"] = "integer"  # MySQL's BOOLEAN is TINYINT(1)
    assert kinds(db.engine, table) == expected_kinds
    got = table_rows(db.engine, table, order="permit")
    assert [[bool(v) if c == "paid" and v is not None else v for c, v in zip(PERMIT_COLUMNS, r)] for r in got] == [
        [
            "P-001",
            "06103",
            "North",
            dt.date(2024, 1, 5),
            dt.datetime(2024, 1, 6, 9, 30),
            120.5,
            3,
            True,
            241.0,
            dt.date(2024, 2, 4),
            "06103-P-001",
        ],
        [
            "P-002",
            "06010",
            "North",
            dt.date(2024, 2, 1),
            dt.datetime(2024, 2, 2, 14, 0, 15),
            80.0,
            12,
            False,
            160.0,
            dt.date(2024, 3, 2),
            "06010-P-002",
        ],
        [
            "P-003",
            "00501",
            "South",
            dt.date(2024, 3, 9),
            None,
            0.25,
            None,
            None,
            0.5,
            dt.date(2024, 4, 8),
            "00501-P-003",
        ],
    ]


def test_stacked_sheets_match_columns_by_header_name(route_cli, write_route, tmp_path):
    make_workbook(tmp_path / "permits.xlsx")
    path = write_route("""
        name: quarters
        source:
          excel: {path: permits.xlsx, sheets: [Q1, Q2], header_row: 3}
        targets:
          - name: file
            deliver: {jsonl: {path: out/quarters.jsonl}}
    """)
    execute(route_cli, path)
    assert typed(read_jsonl(tmp_path / "out" / "quarters.jsonl")) == [
        [("str", "Q1"), ("str", "P-101"), ("str", "06103"), ("float", 10.0)],  # row 5 of Q1 is empty
        [("str", "Q1"), ("str", "P-102"), ("str", "06902"), ("float", 20.5)],
        [("str", "Q2"), ("str", "P-201"), ("str", "06010"), ("float", 30.0)],
    ]
    assert list(read_jsonl(tmp_path / "out" / "quarters.jsonl")[0]) == ["sheet", "permit", "zip", "fee"]


@pytest.mark.parametrize(
    "sheet, message",
    [
        (
            "Permit",
            (
                "permits.xlsx has no sheet named 'Permit' (did you mean 'Permits'?); the sheets are "
                "'Cover', 'Permits', 'Q1', 'Q2', 'Summary'"
            ),
        ),
        (
            9,
            (
                "permits.xlsx has 5 sheet(s), so there is no sheet number 9; the sheets are "
                "'Cover', 'Permits', 'Q1', 'Q2', 'Summary'"
            ),
        ),
    ],
)
def test_a_missing_sheet_names_the_sheets_that_exist(route_cli, write_route, tmp_path, sheet, message):
    make_workbook(tmp_path / "permits.xlsx")
    path = write_route(f"""
        name: permits
        source:
          excel: {{path: permits.xlsx, sheet: {sheet}, header_row: 3}}
        targets:
          - name: file
            deliver: {{jsonl: {{path: out/permits.jsonl}}}}
          - name: db
            deliver: {{sql: {{url: "sqlite:///out/permits.db", table: permits}}}}
    """)
    report = execute(route_cli, path, code=1)
    assert report["status"] == "failed"
    assert report["error"] == f"{path}:3: source 'excel': {message}"
    shown = route_cli("execute", str(path))
    assert shown.exit_code == 1
    assert f"error: {path}:3: source 'excel': {message}" in shown.output
    assert not (tmp_path / "out").exists()  # no file, no database: nothing was created


# -- sql: types through table -> route -> table ------------------------------------------------------

SOURCE_DDL = {  # the same columns in each database's own words
    "sqlite": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, code VARCHAR(10), amount NUMERIC(12,2), day DATE, "
    "flag BOOLEAN, at TIMESTAMP, note TEXT)",
    "postgresql": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, code VARCHAR(10), amount NUMERIC(12,2), day DATE, "
    "flag BOOLEAN, at TIMESTAMP, note TEXT, at_tz TIMESTAMPTZ)",
    "mariadb": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, code VARCHAR(10), amount DECIMAL(12,2), day DATE, "
    "flag BOOLEAN, at DATETIME(6), note TEXT)",
}
SOURCE_ROWS = [
    "(1, '06103', 1234567.89, '2024-02-29', TRUE, '2024-03-10 02:30:00.123456', 'say \"hi\", naïve'{tz1})",
    "(2, NULL, NULL, NULL, NULL, NULL, NULL{tz2})",
    "(3, '', -0.01, '1999-12-31', FALSE, '2000-01-01 00:00:00', 'line\nbreak'{tz3})",
]


def test_typed_rows_survive_table_to_route_to_table(db, route_cli, write_route, tmp_path):
    src, copy, made = db.name("src"), db.name("copy"), db.name("made")
    pg = db.kind == "postgresql"
    # SQLite: the created table goes to a second file (two targets cannot write one SQLite file,
    # see test_two_sql_targets_into_one_sqlite_file)
    made_url = f"sqlite:///{tmp_path / 'made.db'}" if db.kind == "sqlite" else db.url
    made_engine = make_engine(made_url, poolclass=NullPool)
    tz = (
        {"tz1": ", '2024-03-10 08:30:00+05'", "tz2": ", NULL", "tz3": ", '2024-11-03 01:30:00-04'"}
        if pg
        else {"tz1": "", "tz2": "", "tz3": ""}
    )
    db.execute(
        SOURCE_DDL[db.kind].format(t=src),
        SOURCE_DDL[db.kind].format(t=copy),
        f"INSERT INTO {src} VALUES " + ", ".join(r.format(**tz) for r in SOURCE_ROWS),
    )
    path = write_route(f"""
        name: round-trip
        source:
          sql: {{url: "{db.url}", table: {src}}}
        targets:
          - name: file
            deliver: {{jsonl: {{path: out/src.jsonl}}}}
          - name: copy                        # an existing table of the source's exact types
            deliver: {{sql: {{url: "{db.url}", table: {copy}, mode: replace}}}}
          - name: made                        # a table created from the route's types
            deliver: {{sql: {{url: "{made_url}", table: {made}, mode: append, key: id}}}}
    """)
    report = execute(route_cli, path)
    assert [t["delivered"] for t in report["targets"]] == [3, 3, 3]

    # the existing table now holds exactly the source's values: decimals, dates, booleans, nulls, zones
    assert table_rows(db.engine, copy) == table_rows(db.engine, src)
    first = table_rows(db.engine, copy)[0]
    assert first[2] == Decimal("1234567.89") and first[5] == dt.datetime(2024, 3, 10, 2, 30, 0, 123456)
    if pg:
        assert first[7] == dt.datetime(2024, 3, 10, 3, 30, tzinfo=dt.UTC)

    flag = (lambda v: ("int", v)) if db.kind == "mariadb" else (lambda v: ("bool", bool(v)))
    expected = [
        [
            ("int", 1),
            ("str", "06103"),
            ("float", 1234567.89),
            ("str", "2024-02-29"),
            flag(1),
            ("str", "2024-03-10T02:30:00.123456"),
            ("str", 'say "hi", naïve'),
        ],
        [("int", 2)] + [("NoneType", None)] * 6,
        [
            ("int", 3),
            ("str", ""),
            ("float", -0.01),
            ("str", "1999-12-31"),
            flag(0),
            ("str", "2000-01-01T00:00:00.000000"),
            ("str", "line\nbreak"),
        ],
    ]
    if pg:
        for row, stamp in zip(
            expected,
            [("str", "2024-03-10T03:30:00.000000Z"), ("NoneType", None), ("str", "2024-11-03T05:30:00.000000Z")],
        ):
            row.append(stamp)
    assert typed(read_jsonl(tmp_path / "out" / "src.jsonl")) == expected

    # the created table gives back the same rows, of the same route types, through the sql source
    back = write_route(
        f"""
        name: back
        source:
          sql: {{url: "{made_url}", table: {made}}}
        targets:
          - name: file
            deliver: {{jsonl: {{path: out/made.jsonl}}}}
    """,
        name="back.yaml",
    )
    execute(route_cli, back)
    assert typed(read_jsonl(tmp_path / "out" / "made.jsonl")) == expected
    made_kinds = kinds(made_engine, made)
    assert made_kinds["amount"] == "number" and made_kinds["day"] == "date" and made_kinds["at"] == "datetime"


def two_tables_route(write_route, rows: list[str], archive_mode: str = "append") -> Path:
    """A route whose two targets write two tables of one SQLite file (0.2 s: a lock shows at once)."""
    return write_route(
        f"""
        name: two-tables
        source:
          csv: {{path: data.csv}}
        source_transforms:
          - cast: {{id: integer}}
        targets:
          - name: published
            deliver: {{sql: {{url: "sqlite:///out.db?timeout=0.2", table: published, mode: replace}}}}
          - name: archive
            deliver: {{sql: {{url: "sqlite:///out.db?timeout=0.2", table: archive, mode: {archive_mode}}}}}
    """,
        **{"data.csv": "id,name\n" + "".join(f"{r}\n" for r in rows)},
    )


def sqlite_rows(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def test_two_sql_targets_into_one_sqlite_file(route_cli, write_route, tmp_path):
    # Both targets write from their own threads, chunk after chunk, into one file and one transaction.
    path = two_tables_route(write_route, [f"{i},n{i}" for i in range(1, 501)])
    report = execute(route_cli, path, "--chunk-rows", "7")
    assert [t["delivered"] for t in report["targets"]] == [500, 500]
    for table in ("published", "archive"):
        assert sqlite_rows(tmp_path / "out.db", f"SELECT count(*), sum(id), max(name) FROM {table}") == [
            (500, 125250, "n99")
        ]
    execute(route_cli, path)  # again: published replaced, archive appended
    assert sqlite_rows(tmp_path / "out.db", "SELECT count(*) FROM published") == [(500,)]
    assert sqlite_rows(tmp_path / "out.db", "SELECT count(*) FROM archive") == [(1000,)]


def test_when_the_second_target_into_one_sqlite_file_fails_neither_table_changes(route_cli, write_route, tmp_path):
    db_file = tmp_path / "out.db"
    with closing(sqlite3.connect(db_file)) as conn, conn:
        conn.execute("CREATE TABLE published (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO published VALUES (1, 'old')")
        conn.execute("CREATE TABLE archive (id INTEGER CHECK (id < 300), name TEXT)")
    path = two_tables_route(write_route, [f"{i},new" for i in range(1, 501)])

    # archive refuses row 300, long after published loaded its first chunks
    result = route_cli("execute", "--chunk-rows", "50", str(path))
    assert result.exit_code == 1, result.output
    assert "CHECK constraint failed" in result.output and "nothing was delivered" in result.output
    assert sqlite_rows(db_file, "SELECT id, name FROM published") == [(1, "old")]
    assert sqlite_rows(db_file, "SELECT count(*) FROM archive") == [(0,)]

    # archive's replace guard stops at the commit: published, already settled, is not changed either
    with closing(sqlite3.connect(db_file)) as conn, conn:
        conn.executemany("INSERT INTO archive VALUES (?, 'old')", [(i,) for i in range(1, 11)])
    path = two_tables_route(write_route, ["1,new", "2,new"], archive_mode="replace")
    result = route_cli("execute", str(path))
    assert result.exit_code == 1, result.output
    assert (
        "target 'archive': sql table archive: stopped before replacing: it would shrink the "
        "table from 10 to 2 rows (80% fewer, more than max_shrink 50%). Nothing was changed."
    ) in result.output
    assert sqlite_rows(db_file, "SELECT id, name FROM published") == [(1, "old")]
    assert sqlite_rows(db_file, "SELECT count(*) FROM archive WHERE name = 'old'") == [(10,)]


def test_a_zoned_time_stamp_is_stored_as_its_instant(db, route_cli, write_route, tmp_path):
    table = db.name("zoned")
    path = write_route(
        f"""
        name: zoned
        source:
          csv: {{path: data.csv}}
        source_transforms:
          - cast: {{id: integer, local: {{type: datetime, timezone: America/New_York}}}}
        targets:
          - name: db
            deliver: {{sql: {{url: "{db.url}", table: {table}}}}}
    """,
        **{"data.csv": "id,local\n1,2024-07-01 12:00:00\n2,2024-11-03 01:30:00\n3,\n"},
    )
    execute(route_cli, path)
    utc = dt.UTC if db.kind == "postgresql" else None  # MySQL and SQLite keep UTC wall time
    assert table_rows(db.engine, table) == [
        (1, dt.datetime(2024, 7, 1, 16, 0, tzinfo=utc)),
        (2, dt.datetime(2024, 11, 3, 5, 30, tzinfo=utc)),
        (3, None),
    ]


# -- sql delivery modes ------------------------------------------------------------------------------


def people_route(write_route, url: str, table: str, mode: str, rows: list[tuple]) -> Path:
    data = "id,name,score\n" + "".join(f"{i},{n},{s}\n" for i, n, s in rows)
    return write_route(
        f"""
        name: people-{mode}
        source:
          csv: {{path: {mode}.csv}}
        source_transforms:
          - cast: {{id: integer, score: number}}
        targets:
          - name: db
            deliver: {{sql: {{url: "{url}", table: {table}, mode: {mode}, key: id}}}}
    """,
        **{f"{mode}.csv": data},
    )


def test_every_delivery_mode_end_to_end(db, route_cli, write_route):
    table = db.name("people")

    def run(mode, rows, *args):
        report = execute(route_cli, people_route(write_route, db.url, table, mode, rows), *args)
        t = report["targets"][0]
        return t["delivered"], t["created"], t["updated"], t["deleted"]

    assert run("replace", [(1, "Ann", 1.5), (2, "Bob", 2), (3, "Cy", "")]) == (3, 3, 0, 0)  # creates the table
    assert kinds(db.engine, table) == {"id": "integer", "name": "text", "score": "number"}
    assert run("append", [(4, "Dee", 4), (5, "Eve", 5)]) == (2, 2, 0, 0)
    assert run("upsert", [(5, "Eve 2", 50), (6, "Fay", 6)]) == (2, 1, 1, 0)
    assert table_rows(db.engine, table) == [
        (1, "Ann", 1.5),
        (2, "Bob", 2.0),
        (3, "Cy", None),
        (4, "Dee", 4.0),
        (5, "Eve 2", 50.0),
        (6, "Fay", 6.0),
    ]
    assert run("delete", [(1, "", ""), (6, "", ""), (99, "", "")]) == (3, 0, 0, 2)
    assert [r[0] for r in table_rows(db.engine, table)] == [2, 3, 4, 5]
    # 4 rows to 1: the replace guard stops it (table untouched) until --force
    stopped = route_cli("execute", str(people_route(write_route, db.url, table, "replace", [(10, "Gus", 10)])))
    assert stopped.exit_code == 1
    assert "stopped before replacing: it would shrink the table from 4 to 1 rows (75% fewer" in stopped.stderr
    assert [r[0] for r in table_rows(db.engine, table)] == [2, 3, 4, 5]
    assert run("replace", [(10, "Gus", 10)], "--force") == (1, 1, 0, 0)
    assert table_rows(db.engine, table) == [(10, "Gus", 10.0)]


# A rule used by the replace test: it looks at the target table from a connection of its own while
# the run is writing (chunks before `at_line` have been written by then: a target's rules and its
# delivery take turns in one thread).


def snapshot(url: str, table: str) -> list:
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.exec_driver_sql(f"SELECT COUNT(*), MIN(tag), MAX(tag) FROM {table}").one())
    finally:
        engine.dispose()


@rule(
    {
        "type": "object",
        "required": ["url", "table", "at_line", "log"],
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string"},
            "table": {"type": "string"},
            "at_line": {"type": "integer"},
            "log": {"type": "string"},
        },
    }
)
def peek(chunk, options, ctx):
    """Record what another connection sees of the target table when the chunk holding `at_line` passes.

    Example:

        target_transforms:
          - test_end_to_end_db_excel:peek: {url: "sqlite:///t.db", table: t, at_line: 10, log: peeks.jsonl}
    """
    if options["at_line"] in chunk.index:
        with open(options["log"], "a", encoding="utf-8") as f:
            f.write(json.dumps(snapshot(options["url"], options["table"])) + "\n")
    return chunk


def test_replace_is_atomic_for_a_concurrent_reader(db, route_cli, write_route, tmp_path):
    table = db.name("atomic")
    db.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, tag VARCHAR(8))",
        f"INSERT INTO {table} VALUES " + ", ".join(f"({i}, 'old')" for i in range(1, 301)),
    )
    old, new = [300, "old", "old"], [2000, "new", "new"]
    log = tmp_path / "peeks.jsonl"
    path = write_route(
        f"""
        name: atomic
        chunk_rows: 100
        source:
          csv: {{path: data.csv}}
        source_transforms:
          - cast: {{id: integer}}
        targets:
          - name: db
            target_transforms:
              - test_end_to_end_db_excel:peek: {{url: "{db.url}", table: {table}, at_line: 1500, log: "{log}"}}
            deliver: {{sql: {{url: "{db.url}", table: {table}, mode: replace}}}}
    """,
        **{"data.csv": "id,tag\n" + "".join(f"{i},new\n" for i in range(1001, 3001))},
    )

    seen, done, failures = [], threading.Event(), []

    def reader():
        try:
            while not done.is_set():
                seen.append(snapshot(db.url, table))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(repr(exc))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        report = execute(route_cli, path)
    finally:
        done.set()
        thread.join(30)
    assert failures == []
    assert report["targets"][0]["delivered"] == 2000
    assert [json.loads(line) for line in log.read_text().splitlines()] == [old]  # mid-run: the old rows
    assert seen and all(s in (old, new) for s in seen), [s for s in seen if s not in (old, new)][:5]
    assert snapshot(db.url, table) == new
    if db.kind == "mariadb":
        assert not sa.inspect(db.engine).has_table(f"{table}__route_new")


def test_a_failing_run_leaves_the_table_as_it_was_in_every_mode(db, route_cli, write_route):
    """The run fails after two chunks reached the delivery (a plugin bug on the third)."""
    table = db.name("keep")
    db.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(20), score DOUBLE PRECISION)",
        f"INSERT INTO {table} VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)",
    )
    before = table_rows(db.engine, table)

    def failing(target, mode, rows):
        data = "id,name,score\n" + "".join(f"{i},{n},{s}\n" for i, n, s in rows)
        path = write_route(
            f"""
            name: failing-{mode}
            chunk_rows: 2
            source:
              csv: {{path: data.csv}}
            source_transforms:
              - cast: {{id: integer, score: number}}
            targets:
              - name: db
                target_transforms:
                  - plugins_for_tests:explode: {{at_line: 6}}
                deliver: {{sql: {{url: "{db.url}", table: {target}, mode: {mode}, key: id}}}}
        """,
            **{"data.csv": data},
        )
        report = execute(route_cli, path, code=1)
        assert report["status"] == "failed" and report["targets"][0]["delivered"] == 0, report
        assert "plugins_for_tests:explode" in report["error"]

    six = [(1, "x", 9), (2, "x", 9), (3, "x", 9), (10, "x", 9), (11, "x", 9), (12, "x", 9)]
    for mode in ("replace", "append", "upsert", "delete"):
        failing(table, mode, six if mode != "append" else [(i + 20, n, s) for i, n, s in six])
        assert table_rows(db.engine, table) == before, mode
    for mode in ("replace", "append", "upsert"):
        absent = db.name("absent")
        failing(absent, mode, six)
        assert not sa.inspect(db.engine).has_table(absent), f"{mode} left the table it created"
    assert not [t for t in sa.inspect(db.engine).get_table_names() if t.startswith(table) and t != table]


# -- incremental loads -------------------------------------------------------------------------------

INCREMENTAL = """
name: sales-sync
source:
  sql:
    url: "{url}"
    table: {src}
    incremental: {{column: updated_at, start: "2024-01-01"}}
targets:
  - name: db
    deliver: {{sql: {{url: "{url}", table: {dst}, mode: upsert, key: id}}}}
  - name: file
    deliver: {{csv: {{path: {csv}}}}}
"""


def test_the_mark_moves_only_when_every_target_delivered(db, route_cli, write_route, tmp_path):
    src, dst, narrow = db.name("src"), db.name("dst"), db.name("narrow")
    stamp = {"sqlite": "TIMESTAMP", "postgresql": "TIMESTAMPTZ", "mariadb": "DATETIME(6)"}[db.kind]
    db.execute(
        f"CREATE TABLE {src} (id INTEGER PRIMARY KEY, name VARCHAR(20), updated_at {stamp})",
        f"INSERT INTO {src} VALUES (1, 'old', '2023-12-31 09:00:00'), (2, 'a', '2024-01-02 09:00:00'), "
        "(3, 'b', '2024-01-03 09:00:00')",
        f"CREATE TABLE {dst} (id INTEGER PRIMARY KEY, name VARCHAR(20), updated_at {stamp})",
        f"CREATE TABLE {narrow} (id INTEGER PRIMARY KEY, updated_at {stamp})",
    )  # lacks `name`
    out = tmp_path / "out"

    def run(*args, table=dst, csv="out/sales.csv", code=0):
        path = write_route(INCREMENTAL.format(url=db.url, src=src, dst=table, csv=csv))
        return execute(route_cli, path, *args, code=code)

    def dst_ids():
        return [r[0] for r in db.rows(f"SELECT id FROM {dst} ORDER BY id")]

    # 1. the file cannot be put in place (a folder has its name): found before anything commits,
    #    so the table is left as it was too, and the run failed
    (out / "sales.csv").mkdir(parents=True)
    report = run(code=1)
    assert report["status"] == "failed" and report["rows_read"] == 2
    assert [t["status"] for t in report["targets"]] == ["untouched", "failed"]
    assert dst_ids() == []
    assert report["error"].endswith(
        f"cannot write {out / 'sales.csv'}: a folder has that name; nothing was written there"
    )
    assert sorted(p.name for p in out.iterdir()) == ["sales.csv"]  # no temporary file left behind
    # 2. the same rows are read again, never skipped
    (out / "sales.csv").rmdir()
    report = run()
    assert (report["status"], report["rows_read"]) == ("success", 2)
    assert [r["id"] for r in read_csv_rows(out / "sales.csv")] == ["2", "3"]
    # 3. nothing new
    assert run()["rows_read"] == 0
    # 4. new rows; a target that fails before anything is written: no mark, nothing in the file
    db.execute(f"INSERT INTO {src} VALUES (4, 'c', '2024-01-04 09:00:00'), (5, 'd', '2024-01-05 09:00:00')")
    before = (out / "sales.csv").read_bytes()
    report = run(table=narrow, code=1)
    assert report["rows_read"] == 2 and f"table {narrow} has no column name" in report["error"]
    assert (out / "sales.csv").read_bytes() == before
    (tmp_path / "blocker").write_text("a file where a folder should be")
    report = run(csv="blocker/sales.csv", code=1)  # the file target cannot even start
    assert report["rows_read"] == 2 and report["status"] == "failed"
    assert dst_ids() == [2, 3]
    # 5. delivered at last
    report = run()
    assert (report["status"], report["rows_read"]) == ("success", 2)
    assert [r["id"] for r in read_csv_rows(out / "sales.csv")] == ["4", "5"]
    # 6. --full ignores the mark for one run (start still holds), and no row is sent twice to the table
    report = run("--full")
    assert report["rows_read"] == 4 and [r["id"] for r in read_csv_rows(out / "sales.csv")] == ["2", "3", "4", "5"]
    assert run()["rows_read"] == 0
    assert db.rows(f"SELECT id, name FROM {dst} ORDER BY id") == [(2, "a"), (3, "b"), (4, "c"), (5, "d")]


def test_after_a_failed_run_an_append_target_gets_no_row_twice(route_cli, write_route, tmp_path):
    """The file cannot be replaced (a folder has its name): found before any table commits, so the
    table gets nothing, the mark stays, and the next run appends each row once."""
    src = make_engine(f"sqlite:///{tmp_path / 'src.db'}", poolclass=NullPool)
    with src.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE sales (id INTEGER PRIMARY KEY, updated_at TIMESTAMP)")
        conn.exec_driver_sql("INSERT INTO sales VALUES (1, '2024-01-02 09:00:00'), (2, '2024-01-03 09:00:00')")
    path = write_route("""
        name: append-sync
        source:
          sql: {url: "sqlite:///src.db", table: sales, incremental: {column: updated_at}}
        targets:
          - name: db
            deliver: {sql: {url: "sqlite:///dst.db", table: sales, mode: append}}
          - name: file
            deliver: {csv: {path: out/sales.csv}}
    """)
    (tmp_path / "out" / "sales.csv").mkdir(parents=True)
    assert execute(route_cli, path, code=1)["status"] == "failed"
    (tmp_path / "out" / "sales.csv").rmdir()
    assert execute(route_cli, path)["status"] == "success"
    dst = make_engine(f"sqlite:///{tmp_path / 'dst.db'}", poolclass=NullPool)
    assert [r[0] for r in table_rows(dst, "sales")] == [1, 2]


def test_a_mark_that_cannot_be_saved_is_a_recorded_failure(route_cli, write_route, tmp_path):
    src = make_engine(f"sqlite:///{tmp_path / 'src.db'}", poolclass=NullPool)
    with src.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE sales (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO sales VALUES (1), (2)")
    state = tmp_path / ".route"
    state.mkdir()
    with make_engine(f"sqlite:///{state / 'state.sqlite'}", poolclass=NullPool).begin() as conn:
        # a state file the marks cannot be written to (here: a table of another shape)
        conn.exec_driver_sql("CREATE TABLE incremental_marks (route TEXT, key TEXT, type TEXT, value TEXT)")
    path = write_route("""
        name: unsaved-mark
        source:
          sql: {url: "sqlite:///src.db", table: sales, incremental: {column: id}}
        targets:
          - name: file
            deliver: {jsonl: {path: out.jsonl}}
    """)
    result = route_cli("execute", str(path))
    assert result.exit_code == 1
    assert "the rows were delivered but the incremental mark could not be saved" in result.output
    history = json.loads(route_cli("history", "--json", str(path)).stdout)
    assert history[0]["status"] != "running"


# -- secrets -----------------------------------------------------------------------------------------


def everything_shown(route_cli, path: Path, env: dict) -> tuple[list[str], object]:
    """Every text a user sees: the summary, the --json report, history as a table and as JSON."""
    table = route_cli("execute", str(path), env=env)
    report = route_cli("execute", "--json", str(path), env=env)
    texts = [
        r.stdout + "\n" + r.stderr
        for r in (
            table,
            report,
            route_cli("history", str(path), env=env),
            route_cli("history", "--json", str(path), env=env),
        )
    ]
    return texts, table


def assert_never_shown(secret: str, texts: list[str], state: Path) -> None:
    """Neither the password nor any piece of it (split at ':', '@', '/'), plain or URL-quoted."""
    pieces = {secret, *[p for p in re.split(r"[@:/]", secret) if len(p) >= 4]}
    pieces |= {quote(p, safe="") for p in list(pieces)} | {quote_plus(p) for p in list(pieces)}
    for piece in pieces:
        for text in texts:
            assert piece not in text, (piece, text)
        for f in state.rglob("*"):
            if f.is_file():
                assert piece.encode() not in f.read_bytes(), (piece, f)


WRONG = "Wr0ng:p@ssw0rd/x%41-77"  # ':', '@', '/' and '%' as a real password may hold


def test_a_wrong_mariadb_password_is_never_shown(route_cli, write_route, tmp_path):
    mariadb = make_db("mariadb", tmp_path)
    try:
        table = mariadb.name("secret")
        mariadb.execute(f"CREATE TABLE {table} (id INTEGER)")
        server = parse_url(mariadb.url)
        where = f"{server.host}:{server.port or 3306}/{server.database}"
        url = f"mysql://{server.username}:${{DB_PASSWORD}}@{where}"
        for role in ("source", "delivery"):
            source = f'sql: {{url: "{url}", table: {table}}}' if role == "source" else "csv: {path: data.csv}"
            deliver = f'sql: {{url: "{url}", table: {table}}}' if role == "delivery" else "jsonl: {path: out.jsonl}"
            path = write_route(
                f"""
                name: secret-{role}
                source:
                  {source}
                targets:
                  - name: t
                    deliver: {{{deliver}}}
            """,
                **{"data.csv": "id\n1\n"},
            )
            texts, shown = everything_shown(route_cli, path, {"DB_PASSWORD": WRONG})
            assert shown.exit_code == 1
            # the host is the one after the last '@', and the message names it without the password
            denied = f"mysql+pymysql://{server.username}:***@{where}: Access denied for user '{server.username}'@"
            assert denied in shown.output, shown.output
            assert_never_shown(WRONG, texts, tmp_path / ".route")
    finally:
        mariadb.drop_all()


def test_a_postgres_password_never_shows_on_success_rejects_or_refusal(route_cli, write_route, tmp_path):
    pgdb = make_db("postgresql", tmp_path)
    try:
        src, dst = pgdb.name("src"), pgdb.name("dst")
        pgdb.execute(
            f"CREATE TABLE {src} (id INTEGER, amount TEXT)",
            f"INSERT INTO {src} VALUES (1, '10'), (2, 'ten'), (3, '30')",
        )
        server = parse_url(pgdb.url)
        # the project's test server trusts 127.0.0.1, so any password connects; a server given with
        # its own password (ROUTE_TEST_POSTGRES_URL) is tested with that one
        secret = server.password or "Pg-s3cret:@/41x"
        for port, code in ((server.port or 5432, 0), (1, 1)):
            url = f"postgresql://{server.username}:${{PGPASSWORD}}@{server.host}:{port}/{server.database}"
            path = write_route(f"""
                name: pg-secret
                source:
                  sql: {{url: "{url}", table: {src}}}
                source_transforms:
                  - cast: {{amount: number}}       # 'ten' is rejected: the rejects file names the source
                targets:
                  - name: t
                    deliver: {{sql: {{url: "{url}", table: {dst}, mode: replace}}}}
            """)
            texts, shown = everything_shown(route_cli, path, {"PGPASSWORD": secret})
            assert shown.exit_code == code, shown.output
            if code:
                assert (
                    f"cannot connect to postgresql+psycopg://{server.username}:***@{server.host}:1/"
                    f"{server.database}: " in shown.output
                )
            else:
                assert pgdb.rows(f"SELECT id, amount FROM {dst} ORDER BY id") == [(1, 10.0), (3, 30.0)]
                rejects = list((tmp_path / ".route" / "rejects").glob("pg-secret-*.csv"))
                assert rejects and f"{server.username}:***@{server.host}:{port}" in rejects[0].read_text()
            assert_never_shown(secret, texts, tmp_path / ".route")
    finally:
        pgdb.drop_all()


@pytest.mark.timeout(30)
def test_an_unparsable_url_with_a_password_is_refused_without_it(route_cli, write_route, tmp_path):
    path = write_route("""
        name: bad-url
        source:
          sql: {url: "postgresql://reader:${DB_PASSWORD}@db.example.org:fivefourthreetwo/finance", table: t}
        targets:
          - name: t
            deliver: {jsonl: {path: out.jsonl}}
    """)
    secret = "Bad@url-pw/4242"
    result = route_cli("execute", str(path), env={"DB_PASSWORD": secret})
    assert result.exit_code == 2, result.output
    assert "'postgresql://reader:***@db.example.org:fivefourthreetwo/finance' is not a database URL" in result.output
    assert_never_shown(secret, [result.output], tmp_path)


# -- the CI rule of tests/dbfixtures.py --------------------------------------------------------------


def test_a_missing_server_skips_locally_and_fails_under_ci(tmp_path):
    (tmp_path / "test_needs_pg.py").write_text(
        "from dbfixtures import pg  # noqa: F401\n\n\ndef test_needs_postgres(pg):\n    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(
        PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]),
        ROUTE_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:1/test",
    )
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_needs_pg.py"]
    runs = {
        ci: subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=env | ({"CI": "true"} if ci else {}),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for ci in (False, True)
    }
    out = {ci: p.communicate(timeout=60)[0] for ci, p in runs.items()}
    reason = "postgresql at postgresql+psycopg://postgres@127.0.0.1:1/test does not answer"
    assert runs[False].returncode == 0 and "1 skipped" in out[False] and reason in out[False], out[False]
    assert runs[True].returncode == 1 and ("1 error" in out[True] or "1 failed" in out[True]), out[True]
    assert reason in out[True] and "(CI=true: the database tests must run)" in out[True], out[True]


# -- the example routes, as they stand ---------------------------------------------------------------


def portal_rows(route_cli, state: Path) -> list[str]:
    listing = route_cli("portal", "list", "--state", str(state))
    assert listing.exit_code == 0, listing.output
    return [line.split() for line in listing.stdout.splitlines()[1:] if line.strip()]


def test_the_example_routes_run_as_they_stand(route_cli, tmp_path):
    repo_files = sorted((REPO / "routes").rglob("*"))
    for folder in ("permits-xlsx", "sales-sqlite"):
        shutil.copytree(REPO / "routes" / folder, tmp_path / folder, ignore=shutil.ignore_patterns(".route"))
    permits, sales = tmp_path / "permits-xlsx" / "permits.yaml", tmp_path / "sales-sqlite" / "sales.yaml"
    assert route_cli("validate", str(permits), str(sales)).exit_code == 0

    report = execute(route_cli, permits)
    assert report["rows_read"] == 4 and report["targets"][0]["delivered"] == 4
    assert [row[1] for row in portal_rows(route_cli, permits.parent / ".route")] == ["4"]

    assert execute(route_cli, sales)["rows_read"] == 3
    assert execute(route_cli, sales)["rows_read"] == 0  # the mark holds
    engine = make_engine(f"sqlite:///{sales.parent / 'sales.db'}", poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO sales VALUES (4, 'Norwalk', '2024-02-01', 401000, '2024-02-02 10:00:00')")
        conn.exec_driver_sql("UPDATE sales SET price = 250000, updated_at = '2024-02-03 08:00:00' WHERE id = 1")
    report = execute(route_cli, sales)
    assert report["rows_read"] == 2 and (report["targets"][0]["created"], report["targets"][0]["updated"]) == (1, 1)
    assert [row[1] for row in portal_rows(route_cli, sales.parent / ".route")] == ["4"]
    assert execute(route_cli, sales, "--full")["rows_read"] == 4
    assert sorted((REPO / "routes").rglob("*")) == repo_files  # the repo's examples were not touched
