"""Fuzzing SoQL (issue 11): whatever a client sends, the portal's answer is rows or a 400.

Property-based with hypothesis. Random text, token soup, very deep shapes and mutations of valid
queries go to the parser and, through `LocalPortal.rows` (the same build-and-run path a SODA read
takes), to a real SQLite dataset; the only exception allowed out is the portal's query error with
status 400, which the server sends as Socrata's error body. Generated well-formed queries must run.

Bounded to a few seconds by default; `ROUTE_FUZZ=long` picks the long profile (the same switch as
the other fuzz tests in the suite).
"""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from portalkit import ServedPortal

from pipeline.portal.errors import PortalError
from pipeline.portal.soql import Parser, split_query

settings.register_profile(
    "route-portal-fuzz", max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "route-portal-fuzz-long",
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FUZZ = settings.get_profile("route-portal-fuzz-long" if os.environ.get("ROUTE_FUZZ") == "long" else "route-portal-fuzz")

COLUMNS = [
    ("name", "text"),
    ("n", "number"),
    ("d", "double"),
    ("opened", "calendar_date"),
    ("at", "date"),
    ("ok", "checkbox"),
    ("spot", "point"),
    ("home", "url"),
]
CLAUSES = ["$select", "$where", "$order", "$group", "$having"]
WORDS = [
    "and",
    "or",
    "not",
    "is",
    "null",
    "in",
    "like",
    "between",
    "as",
    "asc",
    "desc",
    "true",
    "false",
    "distinct",
    "select",
    "where",
    "group",
    "by",
    "having",
    "order",
    "limit",
    "offset",
    "search",
    "nulls",
    "first",
    "last",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "upper",
    "lower",
    "length",
    "starts_with",
    "contains",
    "coalesce",
    "date_trunc_ymd",
    "date_extract_y",
    "within_box",
    "*",
    ":*",
    ":id",
    ":created_at",
    ":updated_at",
    "(",
    ")",
    ",",
    "=",
    "==",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "/",
    "%",
    "||",
    "'",
    '"',
    "`",
    "''",
    "9" * 30,
    "1e308",
    "1e309",
    "-0",
    ".5",
    "5.",
    "'2024-01-05'",
    "'2024-13-45T99:99'",
    "'row-abcd~efgh~ijkl'",
    "'POINT (1 2)'",
    "'NaN'",
    "'x'",
]
WORDS += [c for c, _t in COLUMNS]


def is_query_error(err: PortalError) -> bool:
    body = err.body()
    return err.status == 400 and body["code"].startswith("query.") and body["error"] is True and body["message"]


# ---- strategies ----------------------------------------------------------------------------------------

soql_chars = st.text(alphabet=st.sampled_from(string.printable + "éß中\u0000\u200b`:@"), max_size=120)
token_soup = st.lists(
    st.sampled_from(WORDS)
    | st.from_regex(r"[a-z_:@][a-z0-9_]{0,8}", fullmatch=True)
    | st.integers(-(10**30), 10**30).map(str)
    | st.floats(allow_nan=False).map(repr),
    max_size=30,
).map(" ".join)


def _nested(args):
    opener, closer, depth, core = args
    return opener * depth + core + closer * depth


deep = st.tuples(
    st.sampled_from(
        [("(", ")"), ("not ", ""), ("-", ""), ("upper(", ")"), ("coalesce(", ", 1)"), ("n in (", ")"), ("- (", ")")]
    ),
    st.integers(0, 3000),
    st.sampled_from(["n = 1", "n", "name", "'x'", "1"]),
).map(lambda t: _nested((t[0][0], t[0][1], t[1], t[2])))
chains = st.tuples(
    st.sampled_from([" or ", " and ", " + ", " || ", " * ", " - ", ", "]),
    st.integers(1, 3000),
    st.sampled_from(["n = 1", "n", "'a'", "name is null"]),
).map(lambda t: t[0].join([t[2]] * t[1]))

# Well-formed expressions over the dataset's columns, typed so that each one should run.
num_leaf = st.sampled_from(["n", "d", "0", "1.5", "-2", "1e3", "length(name)"])
text_leaf = st.sampled_from(["name", "'x'", "'it''s'", "upper(name)", "lower('Ab')"])
num_expr = st.recursive(
    num_leaf,
    lambda inner: (
        st.tuples(inner, st.sampled_from(["+", "-", "*", "%"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        | inner.map(lambda e: f"-{e}")
    ),
    max_leaves=8,
)
text_expr = st.recursive(
    text_leaf,
    lambda inner: st.tuples(inner, inner).map(lambda t: f"({t[0]} || {t[1]})") | inner.map(lambda e: f"upper({e})"),
    max_leaves=6,
)
atom = (
    st.tuples(num_expr, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), num_expr).map(" ".join)
    | st.tuples(text_expr, st.sampled_from(["=", "<>", "like", "not like"]), text_expr).map(" ".join)
    | st.tuples(num_expr, num_expr, num_expr).map(lambda t: f"{t[0]} between {t[1]} and {t[2]}")
    | st.lists(num_leaf, min_size=1, max_size=5).map(lambda xs: f"n in ({', '.join(xs)})")
    | st.sampled_from(
        [
            "name is null",
            "n is not null",
            "ok = true",
            "opened > '2024-01-01'",
            "at < '2030-01-01T00:00:00Z'",
            "starts_with(name, 'a')",
            "contains(name, 'b')",
            ":id > 'row-2222~2222~2222'",
            "within_box(spot, 0, 0, 50, 50)",
        ]
    )
)
condition = st.recursive(
    atom,
    lambda inner: (
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        | inner.map(lambda e: f"not ({e})")
    ),
    max_leaves=10,
)


@st.composite
def mutated(draw, source):
    """A valid query, then a few edits: cut, repeat, insert a token, or flip a character."""
    text = draw(source)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 12)))
        edit = draw(st.sampled_from(["cut", "repeat", "insert", "flip"]))
        if edit == "cut":
            text = text[:i] + text[j:]
        elif edit == "repeat":
            text = text[:j] + text[i:j] * draw(st.integers(2, 50)) + text[j:]
        elif edit == "insert":
            text = text[:i] + f" {draw(st.sampled_from(WORDS))} " + text[i:]
        elif text:
            text = text[:i] + draw(st.sampled_from("()'`,.-+|=<>\\\"")) + text[i + 1 :]
    return text


hostile = soql_chars | token_soup | deep | chains | mutated(condition) | mutated(token_soup)


# ---- a real dataset -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_portal(tmp_path_factory):
    with ServedPortal(tmp_path_factory.mktemp("fuzz") / "p.sqlite") as portal:
        ff = portal.create(
            columns=[{"fieldName": f, "name": f, "dataTypeName": t} for f, t in COLUMNS],
            row_identifier=None,
            name="fuzz",
        )
        r = portal.post(  # loaded the way a client loads it
            f"/resource/{ff}.json",
            [
                {
                    "name": "ab",
                    "n": 1,
                    "d": 2.5,
                    "opened": "2024-01-05",
                    "at": "2024-01-05T10:00:00Z",
                    "ok": True,
                    "spot": {"type": "Point", "coordinates": [10, 20]},
                    "home": {"url": "https://x.org"},
                },
                {"name": None, "n": "-7.25", "d": "NaN", "ok": False},
                {"name": "it's", "n": "12345678901234567890"},
            ],
        )
        assert r.status_code == 200, r.text
        yield portal.local, ff  # read through LocalPortal.rows, the path a SODA read takes


def read(fuzz_portal, **params):
    p, ff = fuzz_portal
    return p.rows(ff, **params)


# ---- properties ----------------------------------------------------------------------------------------


@FUZZ
@given(text=hostile, clause=st.sampled_from(["select_list", "condition", "expr_list", "order_list"]))
def test_the_parser_answers_a_tree_or_a_query_error(text, clause):
    try:
        getattr(Parser(text, "$where"), clause)()
    except PortalError as err:
        assert is_query_error(err), err.body()


@FUZZ
@given(
    text=hostile
    | st.tuples(
        st.sampled_from(["SELECT ", "select * where ", "SELECT n ORDER BY ", "WHERE ", "SELECT n LIMIT ", "SEARCH "]),
        hostile,
    ).map("".join)
)
def test_split_query_answers_clauses_or_a_query_error(text):
    try:
        split_query(text)
    except PortalError as err:
        assert is_query_error(err), err.body()


@FUZZ
@given(clause=st.sampled_from(CLAUSES + ["$query", "$limit", "$offset", "$q"]), text=hostile)
def test_a_read_answers_rows_or_a_query_error(fuzz_portal, clause, text):
    try:
        read(fuzz_portal, **{clause: text})
    except PortalError as err:
        assert is_query_error(err), err.body()


@FUZZ
@given(
    where=condition,
    order=st.sampled_from(["n", "name desc", "n desc, :id", "upper(name)", "d"]),
    limit=st.integers(0, 10**25).map(str),
    offset=st.integers(0, 10**25).map(str),
)
def test_well_formed_queries_run(fuzz_portal, where, order, limit, offset):
    rows = read(fuzz_portal, where=where, order=order, limit=limit, offset=offset)
    assert isinstance(rows, list) and len(rows) <= 3


@pytest.mark.parametrize("n", [1, 2, 700, 3000])
@pytest.mark.parametrize("op", ["or", "and"])
def test_flat_and_or_chains_of_any_length_run(fuzz_portal, n, op):
    terms = [f"n = {i}" for i in range(n)] if op == "or" else [f"n < {i + 2}" for i in range(n)]
    rows = read(fuzz_portal, where=f" {op} ".join(terms), order="n")
    if op == "or":
        assert [r["n"] for r in rows] == (["1"] if n > 1 else [])
    else:
        assert [r["n"] for r in rows] == ["-7.25", "1"]
