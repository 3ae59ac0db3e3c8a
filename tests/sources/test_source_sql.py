"""The sql source against real databases: typed chunks, queries, incremental marks, messages."""

from __future__ import annotations

import datetime as dt

import jsonschema
import pandas as pd
import pytest
from dbfixtures import db, make_ctx, make_db, pg  # noqa: F401 - fixtures

from pipeline.basics.dtypes import BOOLEAN, DATE, DATETIME, INTEGER, NUMBER, TEXT, datetime_dtype
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.marks import MarkStore, marks_for
from pipeline.basics.plugins import spec_of
from pipeline.sources.sql import OPTIONS_SCHEMA, SqlSource, typed_start

BOOL_TYPE = {"sqlite": "BOOLEAN", "postgresql": "BOOLEAN", "mariadb": "BOOLEAN"}
STAMP_TYPE = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME(6)"}


def sales(db, rows=None) -> str:
    """A table of typed columns with nulls; returns its name."""
    name = db.name("sales")
    db.execute(
        f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, town VARCHAR(40), zip VARCHAR(5), "
        f"amount NUMERIC(12, 2), ratio DOUBLE PRECISION, sold DATE, updated_at {STAMP_TYPE[db.kind]}, "
        f"vacant {BOOL_TYPE[db.kind]})"
    )
    for row in (
        rows
        if rows is not None
        else [
            "(1, 'Hartford', '06103', 1250.50, 0.25, '2024-01-05', '2024-01-05 10:00:00', TRUE)",
            "(2, 'Enfield', '06082', NULL, NULL, NULL, '2024-01-06 11:30:00.250000', FALSE)",
            "(3, NULL, '06010', 99.99, 1.5, '2024-02-01', '2024-02-01 00:00:00', NULL)",
        ]
    ):
        db.execute(f"INSERT INTO {name} VALUES {row}")
    return name


def read(tmp_path, chunk_rows=50_000, ctx=None, **options) -> list[pd.DataFrame]:
    return list(SqlSource(options, ctx or make_ctx(tmp_path, chunk_rows)).chunks())


def values(frame: pd.DataFrame) -> list[list]:
    return [[None if pd.isna(v) else v for v in rec] for rec in frame.astype(object).itertuples(index=False)]


def test_a_table_streams_typed_chunks(db, tmp_path):
    table = sales(db)
    chunks = read(tmp_path, chunk_rows=2, url=db.url, table=table)
    assert [len(c) for c in chunks] == [2, 1]
    frame = pd.concat(chunks)
    assert list(frame.index) == [1, 2, 3]
    assert frame.dtypes.to_dict() == {
        "id": INTEGER,
        "town": TEXT,
        "zip": TEXT,
        "amount": NUMBER,
        "ratio": NUMBER,
        "sold": DATE,
        "updated_at": DATETIME,
        "vacant": BOOLEAN if db.kind != "mariadb" else INTEGER,
    }
    vacant = [True, False, None] if db.kind != "mariadb" else [1, 0, None]  # MySQL's BOOLEAN is TINYINT(1)
    assert values(frame) == [
        [1, "Hartford", "06103", 1250.5, 0.25, dt.date(2024, 1, 5), pd.Timestamp("2024-01-05 10:00:00"), vacant[0]],
        [2, "Enfield", "06082", None, None, None, pd.Timestamp("2024-01-06 11:30:00.25"), vacant[1]],
        [3, None, "06010", 99.99, 1.5, dt.date(2024, 2, 1), pd.Timestamp("2024-02-01 00:00:00"), vacant[2]],
    ]
    for chunk in chunks:
        assert chunk.dtypes.to_dict() == frame.dtypes.to_dict()


def test_columns_and_where_and_schema(db, tmp_path):
    table = sales(db)
    schema = {"sqlite": "main", "postgresql": "public", "mariadb": "test"}[db.kind]
    frame = pd.concat(
        read(
            tmp_path,
            url=db.url,
            table=table,
            schema=schema,
            columns=["zip", "id"],
            where="amount > 100 OR amount IS NULL",
        )
    )
    assert list(frame.columns) == ["zip", "id"]
    assert values(frame.sort_values("id")) == [["06103", 1], ["06082", 2]]
    dotted = pd.concat(read(tmp_path, url=db.url, table=f"{schema}.{table}", columns=["id"]))
    assert sorted(dotted["id"]) == [1, 2, 3]
    percent = pd.concat(read(tmp_path, url=db.url, table=table, columns=["id"], where="zip LIKE '060%' AND id % 2 = 1"))
    assert list(percent["id"]) == [3]


def test_a_query_with_bound_params(db, tmp_path):
    table = sales(db)
    frame = pd.concat(
        read(
            tmp_path,
            url=db.url,
            query=f"SELECT id, zip, amount FROM {table} WHERE zip LIKE :prefix AND id >= :low ORDER BY id;",
            params={"prefix": "06%", "low": 2},
        )
    )
    assert values(frame) == [[2, "06082", None], [3, "06010", 99.99]]
    assert frame["id"].dtype == INTEGER and frame["zip"].dtype == TEXT and frame["amount"].dtype == NUMBER


def test_an_empty_result_is_one_empty_typed_chunk(db, tmp_path):
    table = sales(db, rows=[])
    chunks = read(tmp_path, url=db.url, table=table, columns=["id", "sold"])
    assert len(chunks) == 1 and len(chunks[0]) == 0
    assert chunks[0].dtypes.to_dict() == {"id": INTEGER, "sold": DATE}


def test_incremental_reads_past_the_committed_mark_only(db, tmp_path):
    table = sales(db)
    options = {"url": db.url, "table": table, "incremental": {"column": "updated_at", "start": "2024-01-06"}}

    def run(**run_options):
        ctx = make_ctx(tmp_path, **run_options)
        src = SqlSource(options, ctx)
        ids = sorted(pd.concat(list(src.chunks()))["id"])
        return ids, src, ctx

    ids, src, ctx = run()
    assert ids == [2, 3]  # from start on the first run
    assert src.incremental_mark() == dt.datetime(2024, 2, 1)
    assert marks_for(ctx.run).pending_marks == {("test", f"sql:{table}.updated_at"): dt.datetime(2024, 2, 1)}
    ids, _, _ = run()
    assert ids == [2, 3]  # not delivered (no on_delivered): read again
    src.on_delivered()
    assert MarkStore(tmp_path / ".route").get("test", f"sql:{table}.updated_at") == dt.datetime(2024, 2, 1)
    ids, src, ctx = run()
    assert ids == [] and src.incremental_mark() is None and marks_for(ctx.run).pending_marks == {}
    db.execute(f"INSERT INTO {table} (id, zip, updated_at) VALUES (4, '06001', '2024-03-01 08:00:00')")
    ids, src, _ = run()
    assert ids == [4]
    src.on_delivered()
    assert run()[0] == []
    assert run(full=True)[0] == [2, 3, 4]  # --full ignores the mark, not start
    assert run(dry_run=True)[2].run.extras["marks"].pending_marks == {}


def test_incremental_on_a_query(db, tmp_path):
    table = sales(db)
    options = {"url": db.url, "query": f"SELECT id, updated_at FROM {table}", "incremental": {"column": "id"}}
    ctx = make_ctx(tmp_path)
    src = SqlSource(options, ctx)
    assert sorted(pd.concat(list(src.chunks()))["id"]) == [1, 2, 3]
    src.on_delivered()
    db.execute(f"INSERT INTO {table} (id, zip, updated_at) VALUES (7, '06001', '2024-03-01 08:00:00')")
    again = SqlSource(options, make_ctx(tmp_path))
    assert list(pd.concat(list(again.chunks()))["id"]) == [7]
    assert again.incremental_mark() == 7


def test_a_run_stopped_early_records_no_mark(db, tmp_path):
    table = sales(db)
    ctx = make_ctx(tmp_path, chunk_rows=1)
    src = SqlSource({"url": db.url, "table": table, "incremental": {"column": "id"}}, ctx)
    it = src.chunks()
    next(it)
    src.close()  # what the executor does at --limit
    src.on_delivered()
    assert MarkStore(tmp_path / ".route").get("test", f"sql:{table}.id") is None


def test_unknown_table_and_column_name_what_exists(db, tmp_path):
    table = sales(db)
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=db.url, table=table[:-1])
    assert f"there is no table '{table[:-1]}' in " in str(err.value)
    assert f"(did you mean '{table}'?)" in str(err.value)
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=db.url, table=table, columns=["id", "zipcode"])
    assert str(err.value) == (
        f"table '{table}' has no column 'zipcode' (did you mean 'zip'?); its columns are "
        "id, town, zip, amount, ratio, sold, updated_at, vacant"
    )


def test_a_bad_query_fails_with_the_database_message(db, tmp_path):
    sales(db)
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=db.url, query="SELECT id FROM no_such_table_here")
    assert "reading failed" in str(err.value) and "no_such_table_here" in str(err.value)


@pytest.mark.postgres
def test_timestamps_with_a_time_zone_stay_instants(pg, tmp_path):
    table = pg.name()
    pg.execute(
        f"CREATE TABLE {table} (id int, at timestamptz)",
        f"INSERT INTO {table} VALUES (1, '2024-07-01 12:00:00-04:00'), (2, NULL)",
    )
    frame = pd.concat(read(tmp_path, url=pg.url, table=table))
    assert frame["at"].dtype == datetime_dtype("UTC")
    assert frame["at"].iloc[0] == pd.Timestamp("2024-07-01 16:00:00", tz="UTC")


def test_sqlite_query_columns_take_the_type_of_their_values(tmp_path):
    db = make_db("sqlite", tmp_path)
    db.execute("CREATE TABLE t (a, b, c)", "INSERT INTO t VALUES (1, 'x', 1.5), (2, NULL, 2)")
    frame = pd.concat(read(tmp_path, url=db.url, query="SELECT a, b, c FROM t"))
    assert frame.dtypes.to_dict() == {"a": INTEGER, "b": TEXT, "c": NUMBER}
    db.execute("INSERT INTO t VALUES ('three', NULL, NULL)")
    with pytest.raises(RunFailed) as err:
        read(tmp_path, chunk_rows=2, url=db.url, query="SELECT a FROM t ORDER BY rowid")
    assert str(err.value) == (
        f"column 'a' of sqlite:///{tmp_path}/test.db query is integer but holds 'three'; "
        "convert it in a query (CAST(a AS ...))"
    )


def test_connection_failures_never_show_the_password(tmp_path):
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url="postgresql://reader:s3cret%40x@127.0.0.1:1/test", table="t")
    text = str(err.value)
    assert text.startswith("cannot connect to postgresql+psycopg://reader:***@127.0.0.1:1/test: ")
    assert "s3cret" not in text and "Connection refused" in text


@pytest.mark.mariadb
def test_an_authentication_failure_is_clear(tmp_path):
    from dbfixtures import require_server

    url = require_server("mariadb").replace("root@", "root:Wr0ngPass@")
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=url, table="t")
    assert "Access denied for user 'root'" in str(err.value)
    assert "Wr0ngPass" not in str(err.value) and "root:***@" in str(err.value)


@pytest.mark.parametrize(
    "options, message, path",
    [
        ({"url": "sqlite://"}, "give either a table or a query", ()),
        ({"url": "sqlite://", "table": "a", "query": "select 1"}, "give a table or a query, not both", ("query",)),
        (
            {"url": "sqlite://", "query": "select 1", "where": "x"},
            "'where' goes with table; with a query, write it in the SQL",
            ("where",),
        ),
        (
            {"url": "sqlite://", "table": "a", "params": {"x": 1}},
            "params are bound into a query; with a table, write the condition in where",
            ("params",),
        ),
        (
            {"url": "sqlite://", "table": "a", "columns": ["id"], "incremental": {"column": "at"}},
            "add 'at' to columns: the incremental column is read to know where the next run starts",
            ("columns",),
        ),
        (
            {"url": "postgresql+psycopg2://u:pw@h/db", "table": "a"},
            "the database driver for postgresql+psycopg2:// is not installed (no module 'psycopg2'): pip install "
            "psycopg2-binary (or use postgresql+psycopg:// with pip install 'route-etl[postgres]')",
            ("url",),
        ),
        (
            {"url": "oracle+oracledb://u:pw@h/db", "table": "a"},
            "the database driver for oracle+oracledb:// is not installed (no module 'oracledb'): pip install the "
            "package that provides the Python module 'oracledb'",
            ("url",),
        ),
    ],
)
def test_bad_options(tmp_path, options, message, path):
    with pytest.raises(OptionError) as err:
        SqlSource(options, make_ctx(tmp_path))
    assert str(err.value) == message
    assert err.value.path == path


def test_start_values_bind_with_the_column_type():
    assert typed_start("2024-01-01") == dt.date(2024, 1, 1)
    assert typed_start("2024-01-01", "datetime") == dt.datetime(2024, 1, 1)
    assert typed_start("2024-01-01T10:00:00Z") == dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)
    assert typed_start("42") == 42 and typed_start("4.5") == 4.5
    assert typed_start("42", "text") == "42"
    assert typed_start(dt.date(2024, 1, 1), "datetime") == dt.datetime(2024, 1, 1)


def test_spec_and_schema():
    assert spec_of(SqlSource).kind == "sources"
    jsonschema.validate({"url": "sqlite://", "table": "t", "incremental": {"column": "c", "start": 5}}, OPTIONS_SCHEMA)
    with pytest.raises(jsonschema.ValidationError, match="'column' is a required property"):
        jsonschema.validate({"url": "sqlite://", "table": "t", "incremental": {"start": 5}}, OPTIONS_SCHEMA)


def test_a_relative_sqlite_path_is_relative_to_the_route_file(tmp_path):
    db = make_db("sqlite", tmp_path)
    db.execute("CREATE TABLE t (a INTEGER)", "INSERT INTO t VALUES (7)")
    assert values(pd.concat(read(tmp_path, url="sqlite:///test.db", table="t"))) == [[7]]
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url="sqlite:///nope.db", table="t")
    assert str(err.value) == (
        f"there is no SQLite database {tmp_path / 'nope.db'} (relative paths in a "
        "sqlite:/// URL are relative to the route file)"
    )
    assert not (tmp_path / "nope.db").exists()


def test_a_table_source_says_how_many_of_its_rows_it_has_read(route_cli, write_route, tmp_path):
    """The table's rows (its where included) are counted once, for the progress bar's percent."""
    import json
    import sqlite3

    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("CREATE TABLE t (id INTEGER, keep INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, i % 2) for i in range(1, 1001)])
    path = write_route(
        """
        name: counted
        chunk_rows: 100
        source: {sql: {url: "sqlite:///s.db", table: t, where: "keep = 1"}}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
        """
    )
    result = route_cli("execute", "--json", str(path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["source_done"], report["source_total"], report["source_unit"]) == (500, 500, "rows")
