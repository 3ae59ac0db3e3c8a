"""mode sync of the sql delivery, as a publisher meets it through `route execute` on SQLite,
PostgreSQL and MariaDB: the table ends up holding exactly the source's rows, only new and changed
rows are written (triggers on the table prove that unchanged rows are not touched), the summary
counts created, updated, deleted and unchanged rows, a failed run leaves the table as it was,
max_shrink counts the deletions, and --dry-run says what a sync would do without doing it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dbfixtures import db  # noqa: F401 - fixture
from killkit import held_for, kill_when, start
from sqlalchemy import inspect

N = 1_000  # rows of the first export


def csv_text(rows: dict[int, tuple[str, float | None]]) -> str:
    def amount(v):
        return "" if v is None else repr(v)

    return "id,name,amount\n" + "".join(f"{i},{n},{amount(a)}\n" for i, (n, a) in rows.items())


def first_export() -> dict[int, tuple[str, float | None]]:
    return {i: (f"name {i}", None if i % 7 == 0 else i * 1.5) for i in range(1, N + 1)}


def sync_route(write_route, db, table: str, rows: dict, extra: str = "") -> object:
    return write_route(
        f"""
        name: synced
        source:
          csv: {{path: data.csv}}
        source_transforms:
          - cast: {{id: integer, amount: number}}
        targets:
          - name: db
            deliver:
              sql: {{url: "{db.url}", table: {table}, mode: sync, key: id{extra}}}
    """,
        **{"data.csv": csv_text(rows)},
    )


def table_rows(db, table: str) -> dict[int, tuple[str, float | None]]:
    return {r[0]: (r[1], r[2]) for r in db.rows(f"SELECT id, name, amount FROM {table}")}


def run_json(route_cli, *args) -> dict:
    result = route_cli("execute", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["targets"][0]


def counts(target: dict) -> tuple:
    return (
        target["created"],
        target["updated"],
        target["deleted"],
        target["details"].get("unchanged"),
    )


def record_writes(db, table: str) -> str:
    """Triggers that log every row the database inserts or updates in `table`; the log's name."""
    log = db.name("log")
    db.execute(f"CREATE TABLE {log} (id BIGINT, op VARCHAR(10))")
    if db.kind == "sqlite":
        db.execute(
            f"CREATE TRIGGER {log}_i AFTER INSERT ON {table} BEGIN INSERT INTO {log} VALUES (new.id, 'insert'); END",
            f"CREATE TRIGGER {log}_u AFTER UPDATE ON {table} BEGIN INSERT INTO {log} VALUES (new.id, 'update'); END",
        )
    elif db.kind == "mariadb":
        db.execute(
            f"CREATE TRIGGER {log}_i AFTER INSERT ON {table} FOR EACH ROW INSERT INTO {log} VALUES (NEW.id, 'insert')",
            f"CREATE TRIGGER {log}_u AFTER UPDATE ON {table} FOR EACH ROW INSERT INTO {log} VALUES (NEW.id, 'update')",
        )
    else:
        db.execute(
            f"CREATE FUNCTION {log}_f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO {log} VALUES (NEW.id, lower(TG_OP)); RETURN NEW; END $$",
            f"CREATE TRIGGER {log}_t AFTER INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {log}_f()",
        )
    return log


def drop_function(db, table: str, log: str) -> None:
    """PostgreSQL: the trigger's function outlives the table; drop both."""
    if db.kind == "postgresql":
        db.execute(f"DROP TABLE IF EXISTS {table}", f"DROP FUNCTION IF EXISTS {log}_f()")


def writes(db, log: str) -> set[tuple[int, str]]:
    return set(db.rows(f"SELECT id, op FROM {log}"))


def test_sync_writes_only_what_changed_and_ends_with_exactly_the_source(db, route_cli, write_route):
    table = db.name("synced")
    rows = first_export()
    path = sync_route(write_route, db, table, rows)
    first = run_json(route_cli, str(path))
    assert counts(first) == (N, 0, 0, None)  # a table created by the run: every row is new
    assert table_rows(db, table) == rows

    log = record_writes(db, table)
    try:
        changed = {i: (f"renamed {i}", rows[i][1]) for i in range(5, N + 1, 100)}  # 10 rows, 1 %
        changed |= {i: (rows[i][0], 0.25) for i in (14, 21)}  # a null amount becomes a number
        changed[3] = (rows[3][0], None)  # and a number becomes null
        changed[6] = ("NAME 6", rows[6][1])  # only the case differs: a change too (MariaDB compares bytes)
        removed = set(range(900, 930))
        added = {i: (f"new {i}", 2.0) for i in range(N + 1, N + 21)}
        second = {i: v for i, v in (rows | changed).items() if i not in removed} | added
        path = sync_route(write_route, db, table, second)
        result = run_json(route_cli, str(path))
        updated = {i for i in changed if i not in removed}
        assert counts(result) == (20, len(updated), 30, N - 30 - len(updated))
        assert result["delivered"] == len(second)
        assert table_rows(db, table) == second
        assert writes(db, log) == {(i, "insert") for i in added} | {(i, "update") for i in updated}

        again = run_json(route_cli, str(path))  # the same export again: nothing to write
        assert counts(again) == (0, 0, 0, len(second))
        assert table_rows(db, table) == second
        assert len(db.rows(f"SELECT id FROM {log}")) == len(added) + len(updated)
    finally:
        drop_function(db, table, log)


def test_the_summary_counts_what_the_sync_did(db, route_cli, write_route):
    table = db.name("synced")
    rows = {i: (f"name {i}", 1.0) for i in range(1, 11)}
    assert route_cli("execute", str(sync_route(write_route, db, table, rows))).exit_code == 0
    rows = {i: v for i, v in rows.items() if i != 10} | {2: ("two", 1.0), 11: ("eleven", 1.0), 12: ("12", None)}
    result = route_cli("execute", str(sync_route(write_route, db, table, rows)))
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("db "))
    # target delivery routed delivered created updated deleted rejected seconds rows/s status where
    cells = line.split()
    assert cells[:8] == ["db", "sql", "11", "11", "2", "1", "1", "0"] and cells[10] == "delivered", line


def test_a_failing_run_leaves_the_table_as_it_was(db, route_cli, write_route):
    table = db.name("synced")
    rows = first_export()
    assert route_cli("execute", str(sync_route(write_route, db, table, rows))).exit_code == 0
    # Chunks of 100 rows: the first nine are synced (changed, added) inside the transaction before
    # the tenth holds a row without its key, which the table refuses.
    second = {i: (f"changed {i}", 1.0) for i in range(1, 951)}
    path = sync_route(write_route, db, table, second)
    data = path.parent / "data.csv"
    data.write_text(data.read_text(encoding="utf-8") + ",no key,1.0\n", encoding="utf-8")
    result = route_cli("execute", "--chunk-rows", "100", str(path))
    assert result.exit_code == 1, result.output
    assert "rolled back" in result.stderr
    assert table_rows(db, table) == rows


def test_max_shrink_counts_the_deletions(db, route_cli, write_route):
    table = db.name("synced")
    rows = {i: (f"name {i}", 1.0) for i in range(1, 11)}
    assert route_cli("execute", str(sync_route(write_route, db, table, rows))).exit_code == 0
    fewer = {i: ("changed", 2.0) for i in range(1, 5)} | {i: (f"new {i}", 1.0) for i in range(20, 30)}
    path = sync_route(write_route, db, table, fewer)  # ends with more rows, but deletes 6 of 10

    result = route_cli("execute", str(path))
    assert result.exit_code == 1, result.output
    assert (
        f"route.yaml:9: target 'db': sql table {table}: stopped before syncing: it would delete 6 of the "
        "table's 10 rows (60%, more than max_shrink 50%). Nothing was changed. If this is intended, run "
        "again with --force, or set allow_empty: true (or a higher max_shrink) on the target"
    ) in result.stderr
    assert table_rows(db, table) == rows  # the updates and inserts were rolled back too

    dry = run_json(route_cli, "--dry-run", str(path))
    assert dry["details"]["stop"] == (
        "would stop before syncing: it would delete 6 of the table's 10 rows (60%, more than max_shrink 50%)"
    )
    assert table_rows(db, table) == rows

    path = sync_route(write_route, db, table, fewer, extra=', max_shrink: "70%"')
    assert counts(run_json(route_cli, str(path))) == (10, 4, 6, 0)
    assert table_rows(db, table) == fewer


def test_an_empty_export_does_not_empty_the_table(db, route_cli, write_route):
    table = db.name("synced")
    rows = {i: (f"name {i}", 1.0) for i in range(1, 4)}
    assert route_cli("execute", str(sync_route(write_route, db, table, rows))).exit_code == 0
    path = sync_route(write_route, db, table, {})
    result = route_cli("execute", str(path))
    assert result.exit_code == 1, result.output
    assert "stopped before syncing: it would empty the table (it has 3 rows and the route delivers none)" in (
        result.stderr
    )
    assert table_rows(db, table) == rows
    path = sync_route(write_route, db, table, {}, extra=", allow_empty: true")
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    assert "going ahead because of allow_empty: true" in result.stderr
    assert table_rows(db, table) == {}


def test_a_dry_run_says_what_it_would_do_and_writes_nothing(db, route_cli, write_route):
    table = db.name("synced")
    rows = {i: (f"name {i}", 1.0) for i in range(1, 101)}
    path = sync_route(write_route, db, table, rows)
    dry = run_json(route_cli, "--dry-run", str(path))  # the table does not exist yet
    assert {k: dry["details"][k] for k in ("create", "update", "delete")} == {"create": 100, "update": 0, "delete": 0}
    assert not inspect(db.engine).has_table(table)
    assert route_cli("execute", str(path)).exit_code == 0

    second = {i: v for i, v in rows.items() if i > 5} | {7: ("seven", 1.0), 8: ("eight", None), 200: ("new", 3.0)}
    path = sync_route(write_route, db, table, second)
    dry = run_json(route_cli, "--dry-run", str(path))
    assert {k: dry["details"][k] for k in ("create", "update", "delete", "unchanged")} == {
        "create": 1,
        "update": 2,
        "delete": 5,
        "unchanged": 93,
    }
    assert "sync by id with table" in dry["details"]["plan"]
    assert table_rows(db, table) == rows
    text = route_cli("execute", "--dry-run", str(path))
    line = next(x for x in text.stdout.splitlines() if x.startswith("db "))
    assert line.split()[:7] == ["db", "sql", "96", "1", "2", "5", "0"]  # rows, create, update, delete, reject
    assert line.rstrip().endswith(f"sync by id with table {table} (exists): 96 row(s), 93 unchanged")


def test_sync_without_key_is_an_error_at_the_options_line(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: synced
        source:
          csv: {path: data.csv}
        targets:
          - name: db
            deliver:
              sql:
                url: sqlite:///out.db
                table: t
                mode: sync
    """,
        **{"data.csv": "id\n1\n"},
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 2, result.output
    assert (
        "route.yaml:8:9: targets[0].deliver.sql.key: mode sync needs key: the column(s) that identify a row"
    ) in result.stderr
    assert not (tmp_path / "out.db").exists()


def test_sync_needs_a_unique_key_on_an_existing_table(db, route_cli, write_route):
    table = db.name("synced")
    db.execute(f"CREATE TABLE {table} (id INTEGER, name VARCHAR(20), amount DOUBLE PRECISION)")
    result = route_cli("execute", str(sync_route(write_route, db, table, {1: ("a", 1.0)})))
    assert result.exit_code == 1, result.output
    assert f"sync into {table} needs a primary key or unique index on (id)" in result.stderr


# -- a run killed outright ------------------------------------------------------------------------

BIG = 200_000


def big_export(tmp_path: Path, name: str, label: str) -> None:
    with open(tmp_path / name, "w", encoding="utf-8") as f:
        f.write("id,name,amount\n")
        f.writelines(f"{i},{label} {i},1.5\n" for i in range(1, BIG + 1))


def writing(db, table: str, tmp_path: Path) -> bool:
    """Whether the run's sync has begun writing to the table (and not committed)."""
    if db.kind == "sqlite":
        return (tmp_path / "test.db-journal").exists()  # the rollback journal of a write transaction
    if db.kind == "postgresql":
        return (
            db.rows(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                f"WHERE c.relname = '{table}' AND l.mode = 'RowExclusiveLock'"
            )[0][0]
            > 0
        )
    return (  # the sync's INSERT into the table, caught in the act
        db.rows(f"SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'INSERT INTO {table} (%%'")[0][0]
        > 0
    )


def test_a_sync_killed_mid_run_leaves_the_table_as_it_was(db, route_cli, write_route, tmp_path):
    table = db.name("killed")
    big_export(tmp_path, "data.csv", "old")
    path = write_route(f"""
        name: big-sync
        source:
          csv: {{path: data.csv}}
        source_transforms:
          - cast: {{id: integer, amount: number}}
        targets:
          - name: db
            deliver: {{sql: {{url: "{db.url}", table: {table}, mode: sync, key: id}}}}
    """)
    assert route_cli("execute", str(path)).exit_code == 0
    big_export(tmp_path, "data.csv", "new")  # every row changed: every chunk writes to the table

    proc = start(path, "--chunk-rows", "1000")  # killed some chunks into the sync
    kill_when(proc, held_for(lambda: writing(db, table, tmp_path), 0.3), timeout=60)
    assert proc.returncode == -signal.SIGKILL

    old = "name = 'old ' || id" if db.kind != "mariadb" else "name = CONCAT('old ', id)"
    assert db.rows(f"SELECT count(*) FROM {table}") == [(BIG,)]
    assert db.rows(f"SELECT count(*) FROM {table} WHERE {old}") == [(BIG,)]

    result = run_json(route_cli, str(path))
    assert counts(result) == (0, BIG, 0, 0)
    new = old.replace("old", "new")
    assert db.rows(f"SELECT count(*) FROM {table} WHERE {new}") == [(BIG,)]


def test_a_key_of_two_columns(db, route_cli, write_route):
    table = db.name("synced")

    def route(rows: str):
        return write_route(
            f"""
            name: two-keys
            source:
              csv: {{path: data.csv}}
            source_transforms:
              - cast: {{year: integer, amount: number}}
            targets:
              - name: db
                deliver:
                  sql: {{url: "{db.url}", table: {table}, mode: sync, key: [town, year]}}
        """,
            **{"data.csv": "town,year,amount\n" + rows},
        )

    assert route_cli("execute", str(route("A,2020,1\nA,2021,2\nB,2020,3\n"))).exit_code == 0
    result = run_json(route_cli, str(route("A,2021,2\nB,2020,4\nB,2021,5\n")))
    assert counts(result) == (1, 1, 1, 1)
    assert sorted(db.rows(f"SELECT town, year, amount FROM {table}")) == [
        ("A", 2021, 2.0),
        ("B", 2020, 4.0),
        ("B", 2021, 5.0),
    ]


def test_the_summary_says_how_many_rows_a_sync_left_as_they_were(route_cli, write_route, tmp_path):
    rows = {1: ("a", 1.0), 2: ("b", 2.0), 3: ("c", 3.0)}
    url = f"sqlite:///{tmp_path / 'out.db'}"
    path = write_route(
        f"""
        name: synced
        source:
          csv: {{path: data.csv}}
        source_transforms:
          - cast: {{id: integer, amount: number}}
        targets:
          - name: db
            deliver:
              sql: {{url: "{url}", table: t, mode: sync, key: id}}
    """,
        **{"data.csv": csv_text(rows)},
    )
    assert route_cli("execute", str(path)).exit_code == 0
    (tmp_path / "data.csv").write_text(csv_text({**rows, 2: ("B", 2.0)}))
    second = route_cli("execute", str(path))
    assert second.exit_code == 0, second.output
    assert "db: 2 rows unchanged, not sent" in second.stdout
