"""The sql delivery against real databases: modes, created tables, atomic replace, abort, dry run."""

from __future__ import annotations

import datetime as dt
import math

import jsonschema
import pandas as pd
import pytest
from dbfixtures import db, make_ctx  # noqa: F401 - fixtures

from pipeline.basics.dtypes import BOOLEAN, DATE, DATETIME, INTEGER, NUMBER, TEXT, datetime_dtype
from pipeline.basics.errors import DeliveryFailed, OptionError
from pipeline.basics.plugins import spec_of
from pipeline.deliveries.sql import OPTIONS_SCHEMA, SqlDelivery
from pipeline.sources.sql import SqlSource


def frame(ids, names=None, start: int = 1) -> pd.DataFrame:
    """Route-typed rows: every canonical dtype, with nulls."""
    n = len(ids)
    names = names if names is not None else [f"name {i}" for i in ids]
    return pd.DataFrame(
        {
            "id": pd.array(ids, dtype=INTEGER),
            "name": pd.array(names, dtype=TEXT),
            "amount": pd.array([i * 1.25 if i % 3 else None for i in ids], dtype=NUMBER),
            "day": pd.array([dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in ids], dtype=DATE),
            "at": pd.array(
                [dt.datetime(2024, 1, 1, 8, 30, 0, 123456) + dt.timedelta(hours=i) for i in ids], dtype=DATETIME
            ),
            "ok": pd.array([bool(i % 2) for i in ids], dtype=BOOLEAN),
        },
        index=pd.RangeIndex(start, start + n),
    )


def deliver(db, table, *chunks, ctx=None, tmp_path=None, **options):
    d = SqlDelivery({"url": db.url, "table": table, **options}, ctx or make_ctx(tmp_path, stage="deliver"))
    try:  # as the executor drives it: open, write every chunk, close; abort on any failure
        d.open(list(chunks[0].columns))
        for chunk in chunks:
            d.write(chunk)
        return d.close()
    except Exception as exc:
        d.abort(exc)
        raise


def read_back(db, table, tmp_path) -> pd.DataFrame:
    chunks = list(SqlSource({"url": db.url, "table": table}, make_ctx(tmp_path)).chunks())
    return pd.concat(chunks).sort_values("id").reset_index(drop=True)


def ids(db, table) -> list[int]:
    return [r[0] for r in db.rows(f"SELECT id FROM {table} ORDER BY id")]


def test_a_missing_table_is_created_from_the_route_types(db, tmp_path):
    table = db.name()
    result = deliver(db, table, frame([1, 2]), frame([3], names=[None], start=3), tmp_path=tmp_path, key="id")
    assert (result.delivered, result.created, result.location) == (3, 3, table)
    back = read_back(db, table, tmp_path)
    expected = {"id": INTEGER, "name": TEXT, "amount": NUMBER, "day": DATE, "at": DATETIME, "ok": BOOLEAN}
    if db.kind == "mariadb":
        expected["ok"] = INTEGER  # MySQL's BOOLEAN is TINYINT(1)
    assert back.dtypes.to_dict() == expected
    assert back["id"].tolist() == [1, 2, 3]
    assert back["name"].tolist()[:2] == ["name 1", "name 2"] and pd.isna(back["name"][2])
    assert back["amount"].tolist()[:2] == [1.25, 2.5] and pd.isna(back["amount"][2])
    assert back["day"].tolist() == [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]
    assert back["at"][0] == pd.Timestamp("2024-01-01 09:30:00.123456")  # microseconds kept
    assert [bool(v) for v in back["ok"]] == [True, False, True]


def test_text_survives_exactly(db, tmp_path):
    table = db.name()
    tricky = ["", "a,b", 'say "hi"', "line\nbreak", "tab\there", "naïve ☃", "\\N", "NULL"]
    deliver(db, table, frame(list(range(1, 9)), names=tricky), tmp_path=tmp_path)
    assert [r[0] for r in db.rows(f"SELECT name FROM {table} ORDER BY id")] == tricky


def test_nan_is_delivered_as_null(db, tmp_path):
    table = db.name()
    chunk = frame([1, 2])
    chunk["amount"] = pd.array([math.nan, 2.0], dtype=NUMBER)
    deliver(db, table, chunk, tmp_path=tmp_path)
    assert db.rows(f"SELECT amount FROM {table} ORDER BY id") == [(None,), (2.0,)]


def test_append_adds_rows_in_batches(db, tmp_path):
    table = db.name()
    deliver(db, table, frame([1]), tmp_path=tmp_path)
    result = deliver(
        db,
        table,
        frame(list(range(2, 1202))),
        frame(list(range(1202, 2501))),
        tmp_path=tmp_path,
        mode="append",
        batch_rows=500,
    )
    assert result.delivered == 2500 - 1
    assert ids(db, table) == list(range(1, 2501))


def test_replace_is_atomic_for_readers_and_undone_by_abort(db, tmp_path):
    table = db.name()
    deliver(db, table, frame([1, 2, 3]), tmp_path=tmp_path, key="id")
    d = SqlDelivery({"url": db.url, "table": table, "mode": "replace"}, make_ctx(tmp_path, stage="deliver"))
    d.open(list(frame([1]).columns))
    d.write(frame([7, 8]))
    assert ids(db, table) == [1, 2, 3]  # another connection still sees the old rows
    d.abort(RuntimeError("a later chunk failed"))
    assert ids(db, table) == [1, 2, 3]
    result = deliver(db, table, frame([7, 8]), frame([9], start=3), tmp_path=tmp_path, mode="replace")
    assert (result.delivered, result.details.get("replaced")) == (3, True)
    assert ids(db, table) == [7, 8, 9]
    assert db.rows(f"SELECT COUNT(*) FROM {table} WHERE id = 7 AND name = 'name 7'") == [(1,)]


def test_replace_keeps_the_table_definition(db, tmp_path):
    table = db.name()
    db.execute(
        f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL, extra VARCHAR(5) DEFAULT 'x')"
    )
    db.execute(f"INSERT INTO {table} (id, name) VALUES (1, 'old')")
    deliver(db, table, frame([5])[["id", "name"]], tmp_path=tmp_path, mode="replace")
    assert db.rows(f"SELECT id, name, extra FROM {table}") == [(5, "name 5", "x")]
    with pytest.raises(DeliveryFailed, match=r"(?i)unique|duplicate|primary"):  # the primary key is still there
        deliver(db, table, frame([6, 6])[["id", "name"]], tmp_path=tmp_path, mode="append")
    assert ids(db, table) == [5]


def test_an_abort_after_append_delivers_nothing(db, tmp_path):
    table = db.name()
    deliver(db, table, frame([1]), tmp_path=tmp_path)
    d = SqlDelivery({"url": db.url, "table": table}, make_ctx(tmp_path, stage="deliver"))
    d.open(list(frame([1]).columns))
    d.write(frame([2, 3]))
    d.abort(None)
    assert ids(db, table) == [1]


def test_upsert_inserts_and_updates_on_the_key(db, tmp_path):
    table = db.name()
    deliver(db, table, frame([1, 2, 3]), tmp_path=tmp_path, key=["id"])
    changed = frame([2, 3, 4, 4], names=["two", "three", "four?", "four"])
    result = deliver(db, table, changed, frame([5], start=5), tmp_path=tmp_path, mode="upsert", key="id")
    assert (result.delivered, result.created, result.updated) == (4, 2, 2)
    assert db.rows(f"SELECT id, name FROM {table} ORDER BY id") == [
        (1, "name 1"),
        (2, "two"),
        (3, "three"),
        (4, "four"),
        (5, "name 5"),
    ]


def test_upsert_on_a_composite_key_and_key_only_columns(db, tmp_path):
    table = db.name()
    rows = pd.DataFrame({"town": pd.array(["A", "A", "B"], dtype=TEXT), "year": pd.array([1, 2, 1], dtype=INTEGER)})
    deliver(db, table, rows, tmp_path=tmp_path, mode="upsert", key=["town", "year"])
    result = deliver(db, table, rows, tmp_path=tmp_path, mode="upsert", key=["town", "year"])
    assert result.created == 0
    assert db.rows(f"SELECT town, year FROM {table} ORDER BY town, year") == [("A", 1), ("A", 2), ("B", 1)]


def test_upsert_needs_a_unique_key_on_the_table(db, tmp_path):
    table = db.name()
    db.execute(f"CREATE TABLE {table} (id INTEGER, name TEXT)")
    with pytest.raises(DeliveryFailed) as err:
        deliver(db, table, frame([1])[["id", "name"]], tmp_path=tmp_path, mode="upsert", key="id")
    assert str(err.value) == (
        f"upsert into {table} needs a primary key or unique index on (id); the table has none; nothing was delivered"
    )


def test_delete_by_key(db, tmp_path):
    table = db.name()
    deliver(db, table, frame([1, 2, 3, 4]), tmp_path=tmp_path, key="id")
    gone = pd.DataFrame({"id": pd.array([2, 4, 99], dtype=INTEGER), "other": pd.array(["x"] * 3, dtype=TEXT)})
    result = deliver(db, table, gone, tmp_path=tmp_path, mode="delete", key="id")
    assert (result.delivered, result.deleted) == (3, 2)
    assert ids(db, table) == [1, 3]


def test_dry_run_writes_nothing_and_says_what_it_would_do(db, tmp_path):
    table = db.name()
    ctx = make_ctx(tmp_path, stage="deliver", dry_run=True)
    result = deliver(db, table, frame([1, 2]), ctx=ctx, mode="replace")
    assert result.delivered == 0
    assert result.details == {
        "dry_run": True,
        "rows": 2,
        "plan": f"replace every row of table {table} (would be created): 2 row(s)",
    }
    from sqlalchemy import inspect

    assert not inspect(db.engine).has_table(table)


def test_a_column_the_table_lacks_is_refused_before_any_row(db, tmp_path):
    table = db.name()
    db.execute(f"CREATE TABLE {table} (id INTEGER, name TEXT)")
    with pytest.raises(DeliveryFailed) as err:
        deliver(db, table, frame([1])[["id", "name", "ok"]], tmp_path=tmp_path)
    assert str(err.value) == (
        f"table {table} has no column ok (it has id, name); add the column, or select "
        "and rename the route's columns to match; nothing was delivered"
    )


def test_a_value_the_table_refuses_fails_without_delivering(db, tmp_path):
    table = db.name()
    db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(3) NOT NULL)")
    d = SqlDelivery({"url": db.url, "table": table}, make_ctx(tmp_path, stage="deliver"))
    d.open(["id", "name"])
    d.write(frame([1])[["id", "name"]].assign(name=pd.array(["ok"], dtype=TEXT)))
    with pytest.raises(DeliveryFailed) as err:
        d.write(frame([2])[["id", "name"]].assign(name=pd.array([None], dtype=TEXT)))
        d.close()
    d.abort(err.value)
    assert str(err.value).startswith(f"writing failed for {table} at ") or "committing failed" in str(err.value)
    assert str(err.value).endswith("nothing was delivered (the transaction was rolled back)")
    assert ids(db, table) == []


def test_failures_never_show_the_password(tmp_path):
    ctx = make_ctx(tmp_path, stage="deliver")
    d = SqlDelivery({"url": "mysql://writer:Pa55word@127.0.0.1:1/test", "table": "t"}, ctx)
    with pytest.raises(Exception) as err:
        d.open(["id"])
    assert "Pa55word" not in str(err.value)
    assert str(err.value).startswith("cannot connect to mysql+pymysql://writer:***@127.0.0.1:1/test: ")


def test_timestamps_with_a_zone_are_stored_in_utc(db, tmp_path):
    table = db.name()
    chunk = pd.DataFrame(
        {
            "id": pd.array([1], dtype=INTEGER),
            "at": pd.array(
                [pd.Timestamp("2024-07-01 12:00", tz="America/New_York")], dtype=datetime_dtype("America/New_York")
            ),
        }
    )
    deliver(db, table, chunk, tmp_path=tmp_path)
    back = read_back(db, table, tmp_path)["at"][0]
    if db.kind == "postgresql":
        assert back == pd.Timestamp("2024-07-01 16:00", tz="UTC")
    else:
        assert back == pd.Timestamp("2024-07-01 16:00")  # no zone type: UTC wall time


@pytest.mark.parametrize(
    "options, message, path",
    [
        ({"mode": "upsert"}, "mode upsert needs key: the column(s) that identify a row", ("key",)),
        ({"mode": "delete"}, "mode delete needs key: the column(s) that identify a row", ("key",)),
    ],
)
def test_bad_options(tmp_path, options, message, path):
    with pytest.raises(OptionError) as err:
        SqlDelivery({"url": "sqlite://", "table": "t", **options}, make_ctx(tmp_path, stage="deliver"))
    assert (str(err.value), err.value.path) == (message, path)


def test_spec_and_schema():
    assert spec_of(SqlDelivery).kind == "deliveries"
    jsonschema.validate({"url": "sqlite://", "table": "t", "mode": "upsert", "key": ["a", "b"]}, OPTIONS_SCHEMA)
    with pytest.raises(jsonschema.ValidationError, match="'merge' is not one of"):
        jsonschema.validate({"url": "sqlite://", "table": "t", "mode": "merge"}, OPTIONS_SCHEMA)


def test_a_relative_sqlite_file_is_created_beside_the_route(tmp_path):
    ctx = make_ctx(tmp_path, stage="deliver")
    d = SqlDelivery({"url": "sqlite:///out/copy.db", "table": "t"}, ctx)
    d.open(["id"])
    d.write(frame([1, 2])[["id"]])
    assert d.close().delivered == 2
    assert (tmp_path / "out" / "copy.db").exists()


# -- targets writing one SQLite file -------------------------------------------------------------


def one_file(tmp_path, *tables, ctx=None):
    """Deliveries of one run into tables of one SQLite file (0.2 s: a lock would show at once)."""
    ctx = ctx or make_ctx(tmp_path, stage="deliver")
    url = f"sqlite:///{tmp_path / 'one.db'}?timeout=0.2"
    return [SqlDelivery({"url": url, "table": t, "mode": "replace"}, ctx) for t in tables]


def sqlite_tables(tmp_path) -> dict[str, list[int]]:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(tmp_path / "one.db")) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: [r[0] for r in conn.execute(f"SELECT id FROM {n} ORDER BY id")] for n in names}


def test_targets_writing_one_sqlite_file_take_turns_and_commit_together(tmp_path):
    import threading

    a, b = one_file(tmp_path, "a", "b")
    a.open(list(frame([1]).columns))
    b.open(list(frame([1]).columns))

    def load(d, first):  # as the executor does: each target from its own thread
        for start in range(first, first + 400, 4):
            d.write(frame(list(range(start, start + 4)), start=start))

    threads = [threading.Thread(target=load, args=(d, first)) for d, first in ((a, 1), (b, 1001))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sqlite_tables(tmp_path) == {}  # nothing shows before the commit
    result_a = a.close()  # the first close commits both tables at once
    assert sqlite_tables(tmp_path) == {"a": list(range(1, 401)), "b": list(range(1001, 1401))}
    result_b = b.close()
    assert (result_a.delivered, result_b.delivered) == (400, 400)


def test_a_failed_target_rolls_back_every_table_of_its_sqlite_file(tmp_path):
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(tmp_path / "one.db")) as conn, conn:
        conn.execute("CREATE TABLE a (id INTEGER, name TEXT, amount REAL, day DATE, at TIMESTAMP, ok BOOLEAN)")
        conn.execute("INSERT INTO a (id) VALUES (99)")
    a, b = one_file(tmp_path, "a", "b")
    a.open(list(frame([1]).columns))
    b.open(list(frame([1]).columns))
    a.write(frame([1, 2]))
    b.write(frame([3]))
    b.abort(RuntimeError("a later chunk of b failed"))
    with pytest.raises(DeliveryFailed) as err:
        a.write(frame([4]))
    assert str(err.value) == (
        "sql table a: nothing was delivered: another target writing the "
        "same SQLite file failed (a later chunk of b failed)"
    )
    a.abort(err.value)
    assert sqlite_tables(tmp_path) == {"a": [99]}


def test_a_target_aborted_after_its_sqlite_file_was_committed_stays_delivered(tmp_path, caplog):
    a, b = one_file(tmp_path, "a", "b")
    for d, ids in ((a, [1]), (b, [2, 3])):
        d.open(list(frame([1]).columns))
        d.write(frame(ids))
    a.close()
    b.abort(RuntimeError("a target committed after these failed"))
    assert "sql table b: already committed together with the other tables of its SQLite file" in caplog.text
    assert sqlite_tables(tmp_path) == {"a": [1], "b": [2, 3]}


def test_a_guard_stop_in_prepare_commit_rolls_back_every_table_of_its_sqlite_file(tmp_path):
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(tmp_path / "one.db")) as conn, conn:
        conn.execute("CREATE TABLE b (id INTEGER, name TEXT, amount REAL, day DATE, at TIMESTAMP, ok BOOLEAN)")
        conn.executemany("INSERT INTO b (id) VALUES (?)", [(i,) for i in range(10, 20)])
    a, b = one_file(tmp_path, "a", "b")
    for d, ids in ((a, [1, 2]), (b, [3])):
        d.open(list(frame([1]).columns))
        d.write(frame(ids))
    a.prepare_commit()  # as the executor does: every local target checks before any commits
    with pytest.raises(DeliveryFailed) as err:
        b.prepare_commit()
    assert str(err.value).startswith(
        "sql table b: stopped before replacing: it would shrink the table from 10 "
        "to 1 rows (90% fewer, more than max_shrink 50%). Nothing was changed."
    )
    a.abort(err.value)
    b.abort(err.value)
    assert sqlite_tables(tmp_path) == {"b": list(range(10, 20))}
