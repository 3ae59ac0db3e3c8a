"""Generated SoQL against the CT sample portal, over HTTP: every answer is 200 with rows or a 400 in
Socrata's error body, never a 500; and for queries made of simple predicates, the rows are exactly
the ones the predicates select when evaluated here in Python (SQL's three-valued logic: a
comparison with a null is unknown, and `not unknown` is unknown), so no query comes back empty, or
short, where rows match.

Expected results come from the data in test_soql_conformance and pyproj's WGS84 geodesic.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from test_soql_conformance import CT_ROWS, ct_portal, get  # noqa: F401

PROFILE = settings(
    max_examples=2000 if os.environ.get("ROUTE_FUZZ") == "long" else 150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
WGS84 = Geod(ellps="WGS84")
TOWN_NAMES = sorted(r["town"] for r in CT_ROWS)
POPULATIONS = sorted({r["population"] for r in CT_ROWS})
COUNTIES = sorted({r["county"] for r in CT_ROWS if r.get("county")}) + ["Litchfield"]
DATES = ["1700-01-01", "1784-01-08", "1784-05-29", "1800-01-01", "1850-06-15", "1893-05-01", "1900-01-01"]


# ---- predicates: (SoQL text, Python test of a row returning True / False / None) ------------------


def _cmp(op, a, b):
    if a is None or b is None:
        return None
    return {"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


@st.composite
def number_atom(draw):
    op = draw(OPS)
    value = draw(st.sampled_from(POPULATIONS) | st.integers(0, 200_000))
    return f"population {op} {value}", lambda r: _cmp(op, r.get("population"), value)


@st.composite
def double_atom(draw):
    op = draw(OPS)
    value = draw(st.floats(10, 60, allow_nan=False).map(lambda x: round(x, 1)))
    return f"area {op} {value}", lambda r: _cmp(op, r.get("area"), value)


@st.composite
def text_atom(draw):
    kind = draw(st.sampled_from(["cmp", "county", "starts", "like", "upper", "in"]))
    if kind == "cmp":
        op, value = draw(OPS), draw(st.sampled_from(TOWN_NAMES + ["M", "Z", "A"]))
        return f"town {op} '{value}'", lambda r: _cmp(op, r["town"], value)
    if kind == "county":
        op, value = draw(st.sampled_from(["=", "!="])), draw(st.sampled_from(COUNTIES))
        return f"county {op} '{value}'", lambda r: _cmp(op, r.get("county"), value)
    if kind == "starts":
        prefix = draw(st.sampled_from(["N", "New", "S", "Ha", "W", "x"]))
        return f"starts_with(town, '{prefix}')", lambda r: r["town"].startswith(prefix)
    if kind == "like":
        prefix = draw(st.sampled_from(["N", "Br", "S", "M", "h"]))
        return f"town like '{prefix}%'", lambda r: r["town"].startswith(prefix)
    if kind == "upper":
        value = draw(st.sampled_from(COUNTIES))
        return (
            f"upper(county) = '{value.upper()}'",
            lambda r: None if r.get("county") is None else r["county"].upper() == value.upper(),
        )
    values = draw(st.lists(st.sampled_from(TOWN_NAMES), min_size=1, max_size=4))
    listed = ", ".join(f"'{v}'" for v in values)
    return f"town in ({listed})", lambda r: r["town"] in values


@st.composite
def other_atom(draw):
    kind = draw(st.sampled_from(["null", "notnull", "bool", "date", "box", "circle"]))
    if kind == "null":
        return "county is null", lambda r: r.get("county") is None
    if kind == "notnull":
        return "area is not null", lambda r: r.get("area") is not None
    if kind == "bool":
        value = draw(st.booleans())
        return f"coastal = {str(value).lower()}", lambda r: _cmp("=", r.get("coastal"), value)
    if kind == "date":
        op, value = draw(OPS), draw(st.sampled_from(DATES))
        return f"incorporated {op} '{value}'", lambda r: _cmp(op, r.get("incorporated"), value)
    lat = draw(st.floats(40.9, 42.0).map(lambda x: round(x, 3)))
    lon = draw(st.floats(-73.7, -72.0).map(lambda x: round(x, 3)))
    if kind == "box":
        lat2 = draw(st.floats(40.9, 42.0).map(lambda x: round(x, 3)))
        lon2 = draw(st.floats(-73.7, -72.0).map(lambda x: round(x, 3)))

        def in_box(r):
            if "center" not in r:
                return None
            x, y = r["center"]["coordinates"]
            return min(lon, lon2) <= x <= max(lon, lon2) and min(lat, lat2) <= y <= max(lat, lat2)

        return f"within_box(center, {lat}, {lon}, {lat2}, {lon2})", in_box
    radius = draw(st.integers(1, 150_000))

    def in_circle(r):
        if "hall" not in r:
            return None
        return WGS84.inv(lon, lat, r["hall"]["longitude"], r["hall"]["latitude"])[2] <= radius

    return f"within_circle(hall, {lat}, {lon}, {radius})", in_circle


atom = number_atom() | double_atom() | text_atom() | other_atom()


def _and(a, b):
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def _or(a, b):
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


condition = st.recursive(
    atom,
    lambda inner: (
        st.tuples(inner, inner).map(lambda t: (f"({t[0][0]}) and ({t[1][0]})", lambda r: _and(t[0][1](r), t[1][1](r))))
        | st.tuples(inner, inner).map(lambda t: (f"({t[0][0]}) or ({t[1][0]})", lambda r: _or(t[0][1](r), t[1][1](r))))
        | inner.map(lambda t: (f"not ({t[0]})", lambda r: None if t[1](r) is None else not t[1](r)))
    ),
    max_leaves=5,
)


@PROFILE
@given(cond=condition)
def test_generated_conditions_select_exactly_the_matching_rows(ct_portal, cond):
    where, test = cond
    r = get(ct_portal, **{"$select": "town", "$where": where, "$order": "town"})
    assert r.status_code == 200, (where, r.text)
    expected = [row["town"] for row in sorted(CT_ROWS, key=lambda row: row["town"]) if test(row) is True]
    assert [row["town"] for row in r.json()] == expected, where
    counted = get(ct_portal, **{"$select": "count(*) AS n", "$where": where})
    assert counted.status_code == 200 and counted.json() == [{"n": str(len(expected))}], where


# ---- wrong queries: a 400 with Socrata's body, never a 500 --------------------------------------

WRONG = [
    "town > 5",
    "population = 'many'",
    "coastal + 1 > 2",
    "sum(town) > 1",
    "within_box(town, 41, -73, 42, -72)",
    "within_circle(center, 'x', -73, 100)",
    "within_polygon(center, 'POLYGON ((')",
    "intersects(center)",
    "date_extract_y(town) = 1784",
    "upper(population) = 'X'",
    "frobnicate(town)",
    "population like '1%'",
    "hall.altitude > 1",
    "case(population, 1)",
    "greatest(town, 1) = 1",
    "population",
    "town = ",
]


def _is_query_error(r) -> bool:
    if r.status_code != 400:
        return False
    body = r.json()
    return body["error"] is True and body["code"] == body["errorCode"] and body["code"].startswith("query.")


@PROFILE
@given(wrong=st.sampled_from(WRONG), cond=condition, how=st.sampled_from(["and", "or", "alone"]))
def test_wrong_conditions_are_400(ct_portal, wrong, cond, how):
    where = wrong if how == "alone" else f"({cond[0]}) {how} ({wrong})"
    r = get(ct_portal, **{"$where": where})
    assert _is_query_error(r), (where, r.status_code, r.text)


TOKENS = [
    "town", "population", "area", "county", "coastal", "incorporated", "center", "hall", "boundary", "road",
    "website", "website.url", "hall.latitude", "within_box", "within_circle", "within_polygon", "intersects",
    "distance_in_meters", "extent", "convex_hull", "simplify", "num_points", "case", "coalesce", "greatest",
    "least", "distinct", "count", "sum", "upper", "date_trunc_ym", "date_extract_dow", "(", ")", ",", "=",
    "<", ">", "+", "*", "and", "or", "not", "is", "null", "'x'", "'POINT (-72 41)'", "41.5", "-72.5", "1000",
    "true", ".", "::", "*",
]  # fmt: skip


@PROFILE
@given(
    clause=st.sampled_from(["$select", "$where", "$order", "$group", "$q"]),
    words=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12),
)
def test_token_soup_is_rows_or_400(ct_portal, clause, words):
    r = get(ct_portal, **{clause: " ".join(words)})
    assert r.status_code == 200 or _is_query_error(r), (clause, words, r.status_code, r.text)
