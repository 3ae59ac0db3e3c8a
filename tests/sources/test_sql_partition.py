"""The sql source's `partition: {column, parts}` read locally: the ranges, the null part, every row
once, the labels rows carry, and the messages for a column that cannot be split."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dbfixtures import db, make_ctx, make_db  # noqa: F401 - fixtures

from pipeline.basics.errors import RunFailed
from pipeline.sources.sql import SqlSource
from pipeline.sources.sql_partition import split


def people(db, n: int = 20) -> str:
    """ids 1..n, every 7th id null; a date column that repeats."""
    name = db.name("people")
    db.execute(f"CREATE TABLE {name} (id INTEGER, name VARCHAR(20), born DATE, score DOUBLE PRECISION)")
    for i in range(1, n + 1):
        ident = "NULL" if i % 7 == 0 else str(i)
        born = (dt.date(2000, 1, 1) + dt.timedelta(days=10 * i)).isoformat()
        db.execute(f"INSERT INTO {name} VALUES ({ident}, 'p{i}', '{born}', {i * 1.5})")
    return name


def read(tmp_path, **options) -> list[pd.DataFrame]:
    return list(SqlSource(options, make_ctx(tmp_path, chunk_rows=4)).chunks())


def names_of(chunks) -> list[str]:
    return sorted(v for c in chunks for v in c["name"].tolist())


def test_parts_read_every_row_once_nulls_included(db, tmp_path):
    table = people(db)
    whole = read(tmp_path, url=db.url, table=table)
    parted = read(tmp_path, url=db.url, table=table, partition={"column": "id", "parts": 4})
    assert names_of(parted) == names_of(whole)
    assert len(names_of(parted)) == 20
    labels = list(dict.fromkeys(c.attrs["source"] for c in parted))
    assert labels[0].endswith(f"{table} part 1 of 5 (id 1 to 5)")
    assert labels[-1].endswith(f"{table} part 5 of 5 (id is null)")
    nulls = [c for c in parted if c.attrs["source"] == labels[-1]]
    assert sorted(n for c in nulls for n in c["name"]) == ["p14", "p7"]
    assert list(nulls[0].index) == [1, 2]  # each part numbers its rows from 1


def test_a_date_column_and_a_where(db, tmp_path):
    table = people(db)
    got = read(tmp_path, url=db.url, table=table, where="score > 6", partition={"column": "born", "parts": 3})
    assert names_of(got) == sorted(f"p{i}" for i in range(5, 21))
    assert "(born 2000-02-20 to" in got[0].attrs["source"]


def test_a_query_is_partitioned_too(db, tmp_path):
    table = people(db)
    query = f"SELECT id, name FROM {table} WHERE id > 2 OR id IS NULL"
    got = read(tmp_path, url=db.url, query=query, partition={"column": "id", "parts": 2})
    assert names_of(got) == sorted(["p7", "p14"] + [f"p{i}" for i in range(3, 21) if i % 7])


def test_more_parts_than_values_and_an_empty_table(tmp_path):
    db = make_db("sqlite", tmp_path)
    table = people(db, n=3)
    source = SqlSource({"url": db.url, "table": table, "partition": {"column": "id", "parts": 10}}, make_ctx(tmp_path))
    parts = source.partitions()
    assert [(p.low, p.high, p.null) for p in parts] == [(1, 2, False), (2, 3, False), (None, None, True)]
    empty = db.name("empty")
    db.execute(f"CREATE TABLE {empty} (id INTEGER, name VARCHAR(20))")
    got = read(tmp_path, url=db.url, table=empty, partition={"column": "id", "parts": 4})
    assert sum(len(c) for c in got) == 0 and list(got[0].columns) == ["id", "name"]


def test_split_keeps_the_ends_and_never_repeats_a_bound():
    parts = split("x", 0.5, 2.0, 3, "t")
    assert [(p.low, p.high, p.last) for p in parts[:-1]] == [(0.5, 1.0, False), (1.0, 1.5, False), (1.5, 2.0, True)]
    stamps = split("t", dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 3), 2, "t")
    assert stamps[1].low == dt.datetime(2024, 1, 2) and stamps[1].high == dt.datetime(2024, 1, 3)
    assert [p.null for p in split("x", 5, 5, 4, "t")] == [False, True]


def test_a_text_column_is_refused_with_its_name(tmp_path):
    db = make_db("sqlite", tmp_path)
    table = people(db)
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=db.url, table=table, partition={"column": "name", "parts": 2})
    assert str(err.value) == (
        f"partition column 'name' of {db.url} {table} holds str values such as 'p1'; "
        "partition by a number, date or time stamp column (an id, a date)"
    )


def test_an_unknown_partition_column_is_named(tmp_path):
    db = make_db("sqlite", tmp_path)
    table = people(db)
    with pytest.raises(
        RunFailed, match=f"table '{table}' has no column 'ident'; its columns are id, name, born, score"
    ):
        read(tmp_path, url=db.url, table=table, partition={"column": "ident", "parts": 2})


def test_the_option_is_checked_at_its_line(write_route, route_cli, tmp_path):
    route = write_route(
        "name: p\nsource:\n  sql:\n    url: sqlite:///x.db\n    table: t\n    partition: {column: id}\n"
        "targets:\n  - name: out\n    deliver: {csv: {path: out.csv}}\n"
    )
    result = route_cli("validate", "--offline", str(route))
    assert result.exit_code == 2
    assert result.output.splitlines()[-1].endswith(
        "route.yaml:6:16: source.sql.partition: missing required key 'parts'"
    )
