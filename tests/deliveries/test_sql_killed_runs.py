"""Nothing left behind: a real `route execute` killed with SIGKILL in the middle of a sql replace,
on SQLite, PostgreSQL and MariaDB. The table keeps exactly its previous rows (PostgreSQL and SQLite
roll the one transaction back; MariaDB never swapped its new table in), and the next run removes
what the killed one left (MariaDB's `<table>__route_new`, saying so) and delivers exactly its rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dbfixtures import db, make_db  # noqa: F401 - fixture
from killkit import held_for, kill_when, start
from sqlalchemy import inspect

ROWS = 300_000


def big_replace_route(write_route, tmp_path: Path, url: str, table: str) -> Path:
    """A replace of 300,000 rows in chunks of 1,000: long enough to be killed half way."""
    data = tmp_path / "big.csv"
    with open(data, "w", encoding="utf-8") as f:
        f.write("id,name\n")
        f.writelines(f"{i},name {i}\n" for i in range(1, ROWS + 1))
    return write_route(f"""
        name: big-replace
        source:
          csv: {{path: big.csv}}
        source_transforms:
          - cast: {{id: integer}}
        targets:
          - name: db
            deliver: {{sql: {{url: "{url}", table: {table}, mode: replace, batch_rows: 500}}}}
    """)


def loading(db, table: str, tmp_path: Path) -> bool:
    """Whether the run's replace has begun writing (and not committed)."""
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
    return inspect(db.engine).has_table(f"{table}__route_new")


def side_tables(db, table: str) -> list[str]:
    return sorted(n for n in inspect(db.engine).get_table_names() if n.startswith(table + "__"))


def kill_mid_load(path: Path, db, table: str, tmp_path: Path) -> None:
    """A real `route execute` killed with SIGKILL some chunks into its load."""
    proc = start(path, "--chunk-rows", "1000")
    kill_when(proc, held_for(lambda: loading(db, table, tmp_path), 0.3), timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_a_replace_killed_mid_load_leaves_the_table_as_it_was(db, route_cli, write_route, tmp_path):
    table = db.name("killed")
    db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(40))")
    db.execute(
        f"INSERT INTO {table} (id, name) VALUES (%s, %s)"
        if db.kind != "sqlite"
        else f"INSERT INTO {table} (id, name) VALUES (?, ?)",
        params=[(i, "old") for i in range(1, 1001)],
    )
    path = big_replace_route(write_route, tmp_path, db.url, table)

    kill_mid_load(path, db, table, tmp_path)
    if db.kind == "sqlite":  # killed inside its transaction: the next reader rolls the hot journal back
        assert (tmp_path / "test.db-journal").exists()
    assert db.rows(f"SELECT count(*), min(id), max(id) FROM {table} WHERE name = 'old'") == [(1000, 1, 1000)]
    assert db.rows(f"SELECT count(*) FROM {table}") == [(1000,)]
    assert side_tables(db, table) == ([f"{table}__route_new"] if db.kind == "mariadb" else [])

    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    removed = f"removed {table}__route_new, left behind by a run that did not finish"
    assert (removed in result.stderr) == (db.kind == "mariadb"), result.stderr
    assert db.rows(f"SELECT count(*), sum(id), min(id), max(id) FROM {table}") == [
        (ROWS, ROWS * (ROWS + 1) // 2, 1, ROWS)
    ]
    assert db.rows(
        f"SELECT count(*) FROM {table} WHERE name = 'name ' || id"
        if db.kind != "mariadb"
        else f"SELECT count(*) FROM {table} WHERE name = CONCAT('name ', id)"
    ) == [(ROWS,)]
    assert side_tables(db, table) == []


def test_a_mariadb_replace_removes_only_its_own_leftovers(route_cli, write_route, tmp_path):
    """A run killed after the RENAME left `<table>__route_old`; another target's leftovers are not ours."""
    maria = make_db("mariadb", tmp_path)
    try:
        table, other = maria.name("swapped"), maria.name("other")
        maria.execute(
            f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(40))",
            f"INSERT INTO {table} VALUES (1, 'new')",
            f"CREATE TABLE {table}__route_old (id INTEGER PRIMARY KEY, name VARCHAR(40))",
            f"CREATE TABLE {other}__route_new (id INTEGER)",
        )
        path = write_route(
            f"""
            name: swap
            source:
              csv: {{path: data.csv}}
            source_transforms:
              - cast: {{id: integer}}
            targets:
              - name: db
                deliver: {{sql: {{url: "{maria.url}", table: {table}, mode: replace}}}}
        """,
            **{"data.csv": "id,name\n1,newer\n2,newer\n"},
        )
        dry = route_cli("execute", "--dry-run", str(path))
        assert f"{table}__route_old was left behind by a run that did not finish; a run will remove it" in dry.stderr
        assert side_tables(maria, table) == [f"{table}__route_old"]
        result = route_cli("execute", str(path))
        assert result.exit_code == 0, result.output
        assert f"removed {table}__route_old, left behind by a run that did not finish" in result.stderr
        assert maria.rows(f"SELECT id, name FROM {table} ORDER BY id") == [(1, "newer"), (2, "newer")]
        assert side_tables(maria, table) == []
        assert side_tables(maria, other) == [f"{other}__route_new"]
    finally:
        maria.drop_all()
