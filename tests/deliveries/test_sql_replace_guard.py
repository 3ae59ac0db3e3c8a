"""The sql replace guard, as a publisher meets it through `route execute` on SQLite, PostgreSQL and
MariaDB: an input that would empty a table or shrink it by more than max_shrink stops the run with
exit 1 and the table untouched; --force and allow_empty go ahead; --dry-run says it would stop."""

from __future__ import annotations

import json

import pytest
from dbfixtures import db  # noqa: F401 - fixture


def replace_route(write_route, db, table: str, ids: list[int], extra: str = "") -> object:
    """A route replacing `table` with the rows `ids` (none: a header-only CSV)."""
    return write_route(
        f"""
        name: guarded
        source:
          csv: {{path: data.csv}}
        source_transforms:
          - cast: {{id: integer}}
        targets:
          - name: db
            deliver:
              sql: {{url: "{db.url}", table: {table}, mode: replace{extra}}}
    """,
        **{"data.csv": "id,name\n" + "".join(f"{i},n{i}\n" for i in ids)},
    )


def holding(db, table: str, ids: list[int]) -> None:
    db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(20))")
    if ids:
        db.execute(*[f"INSERT INTO {table} VALUES ({i}, 'old')" for i in ids])


def ids_in(db, table: str) -> list[int]:
    return [r[0] for r in db.rows(f"SELECT id FROM {table} ORDER BY id")]


def leftovers(db, table: str) -> list[str]:
    from sqlalchemy import inspect

    names = inspect(db.engine).get_table_names()
    return sorted(n for n in names if n.startswith(table + "__"))


def stop_text(table: str, problem: str) -> str:
    return f"route.yaml:9: target 'db': sql table {table}: stopped before replacing: {problem}. Nothing was changed."


ADVICE = "If this is intended, run again with --force, or set allow_empty: true (or a higher max_shrink) on the target"


def test_a_header_only_input_does_not_empty_the_table(db, route_cli, write_route):
    table = db.name("guarded")
    holding(db, table, [1, 2, 3])
    path = replace_route(write_route, db, table, [])

    result = route_cli("execute", str(path))
    assert result.exit_code == 1, result.output
    assert stop_text(table, "it would empty the table (it has 3 rows and the route delivers none)") in result.stderr
    assert ADVICE in result.stderr
    assert ids_in(db, table) == [1, 2, 3]
    assert leftovers(db, table) == []  # MariaDB: the new table beside it is gone too

    dry = route_cli("execute", "--dry-run", "--json", str(path))
    assert dry.exit_code == 0, dry.output
    details = json.loads(dry.stdout)["targets"][0]["details"]
    assert details["stop"] == (
        "would stop before replacing: it would empty the table (it has 3 rows and the route delivers none)"
    )
    assert ids_in(db, table) == [1, 2, 3]

    forced = route_cli("execute", "--force", str(path))
    assert forced.exit_code == 0, forced.output
    assert (
        f"target 'db': sql table {table}: it would empty the table (it has 3 rows and the route "
        "delivers none); going ahead because of --force"
    ) in forced.stderr
    assert ids_in(db, table) == []


def test_allow_empty_empties_the_table_without_force(db, route_cli, write_route):
    table = db.name("guarded")
    holding(db, table, [1, 2, 3])
    path = replace_route(write_route, db, table, [], extra=", allow_empty: true")
    dry = route_cli("execute", "--dry-run", "--json", str(path))
    assert "stop" not in json.loads(dry.stdout)["targets"][0]["details"]
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    assert "going ahead because of allow_empty: true" in result.stderr
    assert ids_in(db, table) == []


@pytest.mark.parametrize(
    "new, extra, problem",
    [
        (list(range(1, 5)), "", "it would shrink the table from 10 to 4 rows (60% fewer, more than max_shrink 50%)"),
        (list(range(1, 5)), ', max_shrink: "70%"', None),
        (list(range(1, 6)), "", None),  # exactly half: within the default 50 %
        (
            list(range(1, 9)),
            ", max_shrink: 0.1",
            "it would shrink the table from 10 to 8 rows (20% fewer, more than max_shrink 10%)",
        ),
        (list(range(1, 21)), ", max_shrink: 0", None),  # growing is never a problem
    ],
    ids=["60%-fewer", "max_shrink-70%", "half", "max_shrink-0.1", "growing"],
)
def test_shrinking_more_than_max_shrink_stops(db, route_cli, write_route, new, extra, problem):
    table = db.name("guarded")
    holding(db, table, list(range(1, 11)))
    path = replace_route(write_route, db, table, new, extra=extra)
    result = route_cli("execute", str(path))
    if problem:
        assert result.exit_code == 1, result.output
        assert stop_text(table, problem) in result.stderr
        assert ids_in(db, table) == list(range(1, 11))
    else:
        assert result.exit_code == 0, result.output
        assert ids_in(db, table) == new
    assert leftovers(db, table) == []


def test_a_missing_or_empty_table_is_never_a_problem(db, route_cli, write_route):
    table = db.name("guarded")
    path = replace_route(write_route, db, table, [])
    assert route_cli("execute", str(path)).exit_code == 0  # created, empty
    assert ids_in(db, table) == []
    assert route_cli("execute", str(path)).exit_code == 0  # empty stays empty
    path = replace_route(write_route, db, table, [1, 2])
    assert route_cli("execute", str(path)).exit_code == 0
    assert ids_in(db, table) == [1, 2]


def test_other_modes_are_not_guarded(db, route_cli, write_route):
    table = db.name("guarded")
    holding(db, table, [1, 2, 3])
    path = write_route(
        f"""
        name: deleting
        source:
          csv: {{path: gone.csv}}
        source_transforms:
          - cast: {{id: integer}}
        targets:
          - name: db
            deliver: {{sql: {{url: "{db.url}", table: {table}, mode: delete, key: id}}}}
    """,
        **{"gone.csv": "id\n1\n2\n3\n"},
    )
    assert route_cli("execute", str(path)).exit_code == 0
    assert ids_in(db, table) == []
