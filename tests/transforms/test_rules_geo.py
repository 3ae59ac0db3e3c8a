"""point, location and wkt: the exact text Socrata receives, and the rows refused."""

import json

import pandas as pd
import pytest
from rulekit import NUMBER, TEXT, apply, frame, make_ctx, rejects, values

from pipeline.testing import check_rule
from transforms.geo import location, point, wkt


@pytest.fixture
def ctx(tmp_path):
    return make_ctx(tmp_path)


COORDS = frame(
    {
        "lat": ["41.7637", None, "95", "abc", " 41.5 ", "0.0000001", None, "-90", "+41."],
        "lon": ["-72.6851", None, "-72", "-72", "-72.10", "1e-7", "5", "180", "-72"],
    }
)


def test_point_is_wkt_lon_lat_and_bad_coordinates_are_rejected(ctx):
    out = apply(point, {"latitude": "lat", "longitude": "lon", "into": "geocoded"}, COORDS, ctx)
    assert out.index.tolist() == [2, 3, 6, 7, 9, 10]
    assert values(out["geocoded"]) == [
        "POINT (-72.6851 41.7637)",
        None,
        "POINT (-72.1 41.5)",
        "POINT (0.0000001 0.0000001)",
        "POINT (180 -90)",
        "POINT (-72 41)",
    ]
    assert out["geocoded"].dtype == TEXT
    assert rejects(ctx) == [
        {"line": "5", "column": "lat", "value": "abc", "reason": "latitude is not a number"},
        {"line": "4", "column": "lat", "value": "95", "reason": "latitude is out of range (-90 to 90)"},
        {"line": "8", "column": "lat", "value": "", "reason": "latitude is missing but longitude is given"},
    ]


def test_point_from_number_columns(ctx):
    chunk = frame(
        {"y": [41.25, float("nan"), -33.8688], "x": [-72.5, 1.0, 151.2093]}, dtypes={"y": NUMBER, "x": NUMBER}
    )
    out = apply(point, {"latitude": "y", "longitude": "x", "into": "p"}, chunk, ctx)
    assert values(out["p"]) == ["POINT (-72.5 41.25)", "POINT (151.2093 -33.8688)"]
    assert rejects(ctx)[0]["reason"] == "latitude is missing but longitude is given"


def test_location_is_the_json_socrata_reads_back(ctx):
    chunk = frame(
        {
            "street": ['12 "Main" St\n', None, None, "Ährenweg 1"],
            "town": ["Hartford", None, None, "日本"],
            "lat": ["41.76", None, None, None],
            "lon": ["-72.68", None, None, None],
        }
    )
    out = apply(
        location,
        {"address": "street", "city": "town", "latitude": "lat", "longitude": "lon", "into": "location_1"},
        chunk,
        ctx,
    )
    got = values(out["location_1"])
    assert got[0] == (
        '{"latitude":"41.76","longitude":"-72.68","human_address":'
        '"{\\"address\\":\\"12 \\\\\\"Main\\\\\\" St\\\\n\\",\\"city\\":\\"Hartford\\",'
        '\\"state\\":\\"\\",\\"zip\\":\\"\\"}"}'
    )
    assert json.loads(json.loads(got[0])["human_address"]) == {
        "address": '12 "Main" St\n',
        "city": "Hartford",
        "state": "",
        "zip": "",
    }
    assert got[1] is None and got[2] is None
    assert json.loads(got[3]) == {"human_address": '{"address":"Ährenweg 1","city":"日本","state":"","zip":""}'}


def test_location_rejects_like_point(ctx):
    chunk = frame({"lat": ["100"], "lon": ["1"], "zip": ["06103"]})
    out = apply(location, {"zip": "zip", "latitude": "lat", "longitude": "lon", "into": "loc"}, chunk, ctx)
    assert out.empty and rejects(ctx)[0]["reason"] == "latitude is out of range (-90 to 90)"


SHAPES = [
    ("POINT (30 10)", '{"type":"Point","coordinates":[30,10]}', "POINT (30 10)"),
    ("point z (1 2 3)", '{"type":"Point","coordinates":[1,2,3]}', "POINT (1 2 3)"),
    (
        "LINESTRING (30 10, 10 30, 40 40)",
        '{"type":"LineString","coordinates":[[30,10],[10,30],[40,40]]}',
        "LINESTRING (30 10, 10 30, 40 40)",
    ),
    (
        "POLYGON ((30 10, 40 40, 20 40, 30 10), (20 30, 35 35, 30 20, 20 30))",
        '{"type":"Polygon","coordinates":[[[30,10],[40,40],[20,40],[30,10]],[[20,30],[35,35],[30,20],[20,30]]]}',
        "POLYGON ((30 10, 40 40, 20 40, 30 10), (20 30, 35 35, 30 20, 20 30))",
    ),
    (
        "MULTIPOINT ((10 40), (40 30))",
        '{"type":"MultiPoint","coordinates":[[10,40],[40,30]]}',
        "MULTIPOINT (10 40, 40 30)",
    ),
    ("MULTIPOINT (10 40)", '{"type":"MultiPoint","coordinates":[[10,40]]}', "MULTIPOINT (10 40)"),
    (
        "MULTILINESTRING ((10 10, 20 20), (40 40, 30 30))",
        '{"type":"MultiLineString","coordinates":[[[10,10],[20,20]],[[40,40],[30,30]]]}',
        "MULTILINESTRING ((10 10, 20 20), (40 40, 30 30))",
    ),
    (
        "MULTIPOLYGON (((30 20, 45 40, 10 40, 30 20)), ((15 5, 40 10, 10 20, 15 5)))",
        '{"type":"MultiPolygon","coordinates":[[[[30,20],[45,40],[10,40],[30,20]]],[[[15,5],[40,10],[10,20],[15,5]]]]}',
        "MULTIPOLYGON (((30 20, 45 40, 10 40, 30 20)), ((15 5, 40 10, 10 20, 15 5)))",
    ),
    ("POINT (+.5 -72.)", '{"type":"Point","coordinates":[0.5,-72]}', "POINT (0.5 -72)"),
    (
        "POINT (-72.123456789012 41.000000001)",
        '{"type":"Point","coordinates":[-72.123456789012,41.000000001]}',
        "POINT (-72.123456789012 41.000000001)",
    ),
]


def test_wkt_to_geojson_and_back(ctx):
    chunk = frame({"g": [s[0] for s in SHAPES] + ["POINT EMPTY", None]})
    out = apply(wkt, {"column": "g", "to": "geojson"}, chunk, ctx)
    assert values(out["g"]) == [s[1] for s in SHAPES] + [None, None]
    for text in values(out["g"])[:-2]:
        json.loads(text)
    back = apply(wkt, {"column": "g", "to": "wkt", "into": "w"}, out, ctx)
    assert values(back["w"]) == [s[2] for s in SHAPES] + [None, None]
    assert rejects(ctx) == []


def test_wkt_rejects_what_is_not_a_geometry(ctx):
    chunk = frame({"g": ["POINT (1)", "POLYGON (30 10, 40 40)", "garbage", "POINT (1 2"]})
    assert apply(wkt, {"column": "g", "to": "geojson"}, chunk, ctx).empty
    assert {r["reason"] for r in rejects(ctx)} == {
        "not a WKT geometry (POINT, LINESTRING, POLYGON or their MULTI forms)"
    }
    assert [r["line"] for r in rejects(ctx)] == ["2", "3", "4", "5"]


def test_geojson_objects_and_text_to_wkt(tmp_path):
    ctx = make_ctx(tmp_path)
    held = pd.Series(
        [
            {"type": "Point", "coordinates": [-72.68, 41.76]},
            '{ "coordinates" : [ 1.5 , 2 ], "type" : "Point" }',
            {"type": "Feature", "geometry": None},
            None,
        ],
        dtype=object,
        index=[2, 3, 4, 5],
    )
    chunk = pd.DataFrame({"the_geom": held})
    out = apply(wkt, {"column": "the_geom", "to": "wkt", "into": "w"}, chunk, ctx)
    assert values(out["w"]) == ["POINT (-72.68 41.76)", "POINT (1.5 2)", None]
    assert [r["line"] for r in rejects(ctx)] == ["4"]


@pytest.mark.parametrize(
    "rule, options",
    [
        (point, {"latitude": "lat", "longitude": "lon", "into": "p"}),
        (location, {"latitude": "lat", "longitude": "lon", "city": "lat", "into": "loc"}),
        (wkt, {"column": "g", "to": "geojson"}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_geo_rules_keep_the_contract(rule, options):
    sample = frame(
        {
            "lat": ["41", "95", None, "41.5", "x", "0"],
            "lon": ["-72", "1", None, "-72", "1", "0"],
            "g": ["POINT (1 2)", None, "bad", "LINESTRING (1 2, 3 4)", "POINT EMPTY", "POINT (5 6)"],
        }
    )
    check_rule(rule, options, sample)
