"""lookup and join against inline, CSV and SQL tables: matching as text, unmatched rows, errors
reported at bind time, and the table read once."""

import sqlite3

import pytest
from rulekit import INTEGER, TEXT, apply, frame, make_ctx, rejects, values

from pipeline.basics.errors import OptionError, RunFailed
from pipeline.testing import bind_options, check_rule, run_rule
from transforms.lookup import join, lookup

TOWNS_CSV = "code,name,county\n001,Andover,Tolland\n002,Ansonia,New Haven\n003,Ashford,\n"


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "towns.csv").write_text(TOWNS_CSV, encoding="utf-8")
    db = sqlite3.connect(tmp_path / "census.db")
    db.execute("create table acs (tract integer, population integer, name text)")
    db.executemany("insert into acs values (?, ?, ?)", [(101, 3500, "North"), (102, None, "Süd"), (103, 12, None)])
    db.commit()
    db.close()
    return make_ctx(tmp_path)


def test_lookup_csv_keeps_leading_zeros_and_rejects_unknown_codes(ctx):
    chunk = frame({"town_code": ["001", "1", None, "003", "999"]})
    out = apply(
        lookup,
        {"column": "town_code", "table": {"csv": "towns.csv"}, "key": "code", "value": "name", "into": "town"},
        chunk,
        ctx,
    )
    assert out.index.tolist() == [2, 4, 5]
    assert values(out["town"]) == ["Andover", None, "Ashford"] and out["town"].dtype == TEXT
    assert rejects(ctx) == [
        {"line": "3", "column": "town_code", "value": "1", "reason": "not in the lookup table"},
        {"line": "6", "column": "town_code", "value": "999", "reason": "not in the lookup table"},
    ]


def test_lookup_inline_values_keep_and_default(ctx):
    chunk = frame({"dept": ["A", "b", "Z", None]})
    table = {"values": {"A": "Admin", "B": "Budget"}}
    out = apply(lookup, {"column": "dept", "table": table, "unmatched": "keep"}, chunk, ctx)
    assert values(out["dept"]) == ["Admin", "b", "Z", None]
    out = apply(lookup, {"column": "dept", "table": table, "unmatched": "keep", "ignore_case": True}, chunk, ctx)
    assert values(out["dept"]) == ["Admin", "Budget", "Z", None]
    out = apply(
        lookup,
        {"column": "dept", "table": table, "into": "name", "unmatched": "default", "default": "Other"},
        chunk,
        ctx,
    )
    assert values(out["name"]) == ["Admin", "Other", "Other", None] and values(out["dept"])[1] == "b"


def test_lookup_numbers_match_their_text_and_values_keep_their_type(ctx):
    chunk = frame({"n": [1, 2, 3, None]}, dtypes={"n": INTEGER})
    out = apply(lookup, {"column": "n", "table": {"values": {"1": 10, "2": 20}}, "unmatched": "keep"}, chunk, ctx)
    assert values(out["n"]) == [10, 20, 3, None] and out["n"].dtype == INTEGER
    out = apply(lookup, {"column": "n", "table": {"values": {"1": "one"}}, "unmatched": "keep"}, chunk, ctx)
    assert values(out["n"]) == ["one", "2", "3", None] and out["n"].dtype == TEXT


def test_join_sql_with_prefix_and_unmatched(ctx):
    chunk = frame({"tract": ["101", "102", "104", None], "x": ["a", "b", "c", "d"]})
    table = {"sql": {"url": "sqlite:///census.db", "query": "SELECT tract, population, name FROM acs"}}
    out = apply(join, {"column": "tract", "table": table, "prefix": "acs_"}, chunk, ctx)
    assert list(out.columns) == ["tract", "x", "acs_population", "acs_name"]
    assert values(out["acs_population"]) == [3500, None, None, None] and out["acs_population"].dtype == INTEGER
    assert values(out["acs_name"]) == ["North", "Süd", None, None]
    out = apply(join, {"column": "tract", "table": table, "columns": ["name"], "unmatched": "reject"}, chunk, ctx)
    assert out.index.tolist() == [2, 3] and list(out.columns) == ["tract", "x", "name"]
    assert [(r["line"], r["reason"]) for r in rejects(ctx)] == [
        ("4", "no matching row in the join table"),
        ("5", "no matching row in the join table"),
    ]


def test_join_inline_rows_on_a_differently_named_key(ctx):
    chunk = frame({"type": ["R", "C", "X"]})
    table = {
        "rows": [
            {"code": "R", "label": "Residential", "taxable": True},
            {"code": "C", "label": "Commercial", "taxable": False},
        ]
    }
    out = apply(join, {"column": "type", "key": "code", "table": table}, chunk, ctx)
    assert values(out["label"]) == ["Residential", "Commercial", None]
    assert values(out["taxable"]) == [True, False, None]


def test_join_refuses_to_overwrite_a_column(ctx):
    with pytest.raises(RunFailed, match="join: the rows already have column 'x'; add a `prefix`"):
        apply(join, {"column": "k", "table": {"rows": [{"k": "1", "x": 2}]}}, frame({"k": ["1"], "x": ["0"]}), ctx)


def test_table_is_read_once_at_bind(ctx, tmp_path):
    prepared = bind_options(lookup, {"column": "c", "table": {"csv": "towns.csv"}, "key": "code", "value": "name"}, ctx)
    (tmp_path / "towns.csv").write_text("code,name\n001,Changed\n", encoding="utf-8")
    out = run_rule(lookup, prepared, [frame({"c": ["001", "002"]}), frame({"c": ["003"]}, lines=[9])], ctx)
    assert [values(o["c"]) for o in out] == [["Andover", "Ansonia"], ["Ashford"]]


@pytest.mark.parametrize(
    "options, path, message",
    [
        ({"column": "c", "table": {"csv": "nope.csv"}}, ("table", "csv"), "lookup table file not found: "),
        (
            {"column": "c", "table": {"csv": "towns.csv"}},
            ("key",),
            "the lookup table has no column 'key'; its columns are: code, name, county",
        ),
        (
            {"column": "c", "table": {"csv": "towns.csv"}, "key": "code"},
            ("value",),
            "the lookup table has no column 'value'",
        ),
        ({"column": "c", "table": {"values": {"a": 1, "b": "x"}}}, ("table", "values"), "the values mix types"),
        (
            {"column": "c", "table": {"rows": [{"key": "a", "value": 1}, {"key": "a", "value": 2}]}},
            ("table",),
            "the lookup table has key 'a' more than once",
        ),
        (
            {"column": "c", "table": {"sql": {"url": "sqlite:///census.db", "query": "SELECT * FROM nope"}}},
            ("table", "sql"),
            "lookup query failed: (sqlite3.OperationalError) no such table: nope",
        ),
        ({"column": "c", "table": {"values": {"a": 1}}, "unmatched": "default"}, ("default",), "needs a `default`"),
        (
            {"column": "c", "table": {"values": {"a": 1}}, "unmatched": "default", "default": "x"},
            ("default",),
            "`default` 'x' is not of the table's value type (int64)",
        ),
        ({"column": "c", "table": {"values": {"a": 1}, "csv": "towns.csv"}}, ("table",), "is valid under each of"),
    ],
)
def test_bad_tables_are_reported_before_any_row(ctx, options, path, message):
    with pytest.raises(OptionError) as err:
        bind_options(lookup, options, ctx)
    assert message in str(err.value) and err.value.path == path


def test_lookup_and_join_keep_the_contract(ctx):
    sample = frame({"c": ["001", None, "002", "9", "003", "001"], "n": [1, 2, None, 4, 5, 6]}, dtypes={"n": INTEGER})
    check_rule(lookup, {"column": "c", "table": {"values": {"001": "x", "002": "y", "003": "z"}}}, sample)
    check_rule(lookup, {"column": "n", "table": {"values": {"1": 1.5}}, "unmatched": "keep"}, sample)
    check_rule(join, {"column": "n", "table": {"rows": [{"n": 1, "v": "one"}, {"n": 5, "v": "five"}]}}, sample)
