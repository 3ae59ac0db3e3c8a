"""SoQL as Socrata answers it (issue 15): the CT sample portal, Socrata's error bodies, and what the
local portal refuses as not supported.

The suite is split by the part of Socrata's documentation each case follows:
- test_soql_geo.py: the geo functions (https://dev.socrata.com/docs/functions/, geospatial).
- test_soql_functions.py: SODA 2.1 SoQL functions, keywords, type checks and `$q`.
- test_soql_property.py: generated queries, checked against predicates evaluated in Python.
This module holds the sample data they share (`ct_portal`, `CT_ROWS`) and the cross-cutting cases.

Every case names the page it follows. Error codes are Socrata's query-coordinator codes
(socrata-platform/query-coordinator, QueryCoordinatorErrors.scala).
"""

from __future__ import annotations

import pytest
from portalkit import ServedPortal

DEV = "https://dev.socrata.com/docs"

# Connecticut towns: centre points, a town hall location, a box around each centre (polygon and
# multipolygon), a road and a trail from the centre to the north-east, three landmarks.
TOWNS = [
    # town, county, population, area, incorporated, lat, lon, coastal, nickname, landmark
    (
        "Hartford",
        "Hartford",
        121054,
        18.0,
        "1784-05-29",
        41.7658,
        -72.6734,
        False,
        "Insurance Capital",
        "Bushnell Park",
    ),
    ("New Haven", "New Haven", 134023, 20.1, "1784-01-08", 41.3083, -72.9279, True, "Elm City", "The Green"),
    ("Stamford", "Fairfield", 135470, 52.1, "1893-05-01", 41.0534, -73.5387, True, "The City That Works", "Mill River"),
    ("Bridgeport", "Fairfield", 148654, 19.4, "1836-01-01", 41.1865, -73.1952, True, "Park City", "Seaside Park"),
    ("Waterbury", "New Haven", 114403, 29.0, "1853-06-01", 41.5582, -73.0515, False, "Brass City", "Library Park"),
    ("Mansfield", "Tolland", 25892, 45.5, "1702-10-01", 41.7884, -72.2290, False, "Home of UConn", "Main Street Park"),
]
R = 0.05  # half the side of each town's box, in degrees

COLUMNS = [
    ("town", "text"),
    ("county", "text"),
    ("population", "number"),
    ("area", "double"),
    ("incorporated", "calendar_date"),
    ("surveyed", "date"),
    ("coastal", "checkbox"),
    ("nickname", "text"),
    ("landmark", "text"),
    ("center", "point"),
    ("hall", "location"),
    ("boundary", "multipolygon"),
    ("outline", "polygon"),
    ("road", "line"),
    ("trail", "multiline"),
    ("landmarks", "multipoint"),
    ("website", "url"),
]


def box(lon, lat, r=R):
    return [[lon - r, lat - r], [lon + r, lat - r], [lon + r, lat + r], [lon - r, lat + r], [lon - r, lat - r]]


def ct_rows() -> list[dict]:
    rows = []
    for town, county, pop, area, inc, lat, lon, coastal, nick, mark in TOWNS:
        rows.append(
            {
                "town": town,
                "county": county,
                "population": pop,
                "area": area,
                "incorporated": inc,
                "surveyed": inc + "T12:00:00Z",
                "coastal": coastal,
                "nickname": nick,
                "landmark": mark,
                "center": {"type": "Point", "coordinates": [lon, lat]},
                "hall": {"latitude": lat, "longitude": lon, "human_address": {"city": town, "state": "CT"}},
                "boundary": {"type": "MultiPolygon", "coordinates": [[box(lon, lat)]]},
                "outline": {"type": "Polygon", "coordinates": [box(lon, lat)]},
                "road": f"LINESTRING ({lon} {lat}, {lon + 0.1} {lat + 0.1})",
                # the middle vertex is 0.001 degrees off the straight line: simplify drops it
                "trail": {
                    "type": "MultiLineString",
                    "coordinates": [[[lon, lat], [lon + 0.05, lat + 0.051], [lon + 0.1, lat + 0.1]]],
                },
                "landmarks": {"type": "MultiPoint", "coordinates": [[lon, lat], [lon + 0.01, lat], [lon, lat + 0.01]]},
                "website": {
                    "url": f"https://{town.lower().replace(' ', '')}.ct.gov",
                    "description": f"{town} town hall",
                },
            }
        )
    rows.append({"town": "Nowhere", "population": 0, "nickname": "No geometry at all"})
    return rows


CT_ROWS = ct_rows()


@pytest.fixture(scope="module")
def ct_portal(tmp_path_factory):
    """(ServedPortal, 4x4) of the CT towns, loaded over HTTP."""
    with ServedPortal(tmp_path_factory.mktemp("ct") / "portal.sqlite") as portal:
        ff = portal.create(
            columns=[{"fieldName": f, "name": f, "dataTypeName": t} for f, t in COLUMNS],
            row_identifier="town",
            name="CT towns",
        )
        r = portal.post(f"/resource/{ff}.json", CT_ROWS)
        assert r.status_code == 200, r.text
        yield portal, ff


def get(ct, **params):
    portal, ff = ct
    return portal.get(f"/resource/{ff}.json", params=params)


def rows(ct, **params) -> list[dict]:
    params.setdefault("$order", "town")
    r = get(ct, **params)
    assert r.status_code == 200, r.text
    return r.json()


def towns(ct, where: str, **params) -> list[str]:
    return [r["town"] for r in rows(ct, **{"$select": "town", "$where": where, **params})]


def refused(ct, code: str, *words, **params) -> dict:
    """A 400 in Socrata's error body with this code; `words` appear in the message."""
    r = get(ct, **params)
    assert r.status_code == 400, (params, r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert set(body) == {"code", "errorCode", "error", "message", "data"}
    assert body["error"] is True and body["code"] == body["errorCode"] == code, body
    for word in words:
        assert word in body["message"], body
    return body


# ---- the sample portal itself -----------------------------------------------------------------


def test_the_sample_portal_serves_every_geo_type(ct_portal):
    r = get(ct_portal, **{"$where": "town = 'Hartford'"})
    row = r.json()[0]
    assert row["center"] == {"type": "Point", "coordinates": [-72.6734, 41.7658]}
    assert row["hall"]["latitude"] == "41.7658"
    assert row["boundary"]["type"] == "MultiPolygon" and row["road"]["type"] == "LineString"
    types = dict(zip(eval(r.headers["X-SODA2-Fields"]), eval(r.headers["X-SODA2-Types"])))
    assert types["boundary"] == "multipolygon" and types["hall"] == "location"


# ---- response codes and error bodies (https://dev.socrata.com/docs/response-codes) --------------


@pytest.mark.parametrize(
    "params, code, word",
    [
        ({"$select": "sum(town)"}, "query.soql.type-mismatch", "sum"),
        ({"$where": "population = 'many'"}, "query.soql.type-mismatch", "many"),
        ({"$where": "town = 5"}, "query.soql.type-mismatch", "op$="),
        ({"$select": "town, count(*)"}, "query.soql.column-not-in-group-bys", "town"),
        ({"$select": "frobnicate(town)"}, "query.soql.no-such-function", "frobnicate"),
        ({"$select": "upper(town, county)"}, "query.soql.no-such-function", "upper"),
        ({"$select": "nosuch"}, "query.soql.no-such-column", "nosuch"),
        ({"$where": "population"}, "query.soql.non-boolean-where", "number"),
        ({"$where": "count(*) > 1"}, "query.soql.aggregate-in-ungrouped-context", "$having"),
        ({"$where": "town ="}, "query.compiler.malformed", "$where"),
    ],
)
def test_bad_queries_are_400_with_socratas_codes(ct_portal, params, code, word):
    """Response codes: https://dev.socrata.com/docs/response-codes (400: the query is malformed)."""
    refused(ct_portal, code, word, **params)


# ---- what the local portal does not support: a 400 that says so ----------------------------------


@pytest.mark.parametrize(
    "params, words",
    [
        ({"$select": "population::point"}, ["does not support", "::point"]),
        ({"$where": "within_box(center, 41 + 1, -73, 41, -72)"}, ["does not support", "within_box"]),
        ({"$select": "convex_hull('POINT (1 2)')"}, ["does not support", "convex_hull"]),
    ],
)
def test_unsupported_features_say_so(ct_portal, params, words):
    refused(ct_portal, "query.soql.not-supported", *words, **params)
