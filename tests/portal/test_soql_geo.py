"""SoQL geo functions as Socrata documents them, on point, location, line, polygon and multi forms.

Each case names the dev.socrata.com page it follows (https://dev.socrata.com/docs/functions/...).
Expected rows are worked out from the CT sample data (test_soql_conformance.TOWNS); distances are
checked against pyproj's WGS84 geodesic, an independent implementation.
"""

from __future__ import annotations

import pytest
import shapely
from pyproj import Geod
from test_soql_conformance import DEV, TOWNS, R, ct_portal, refused, rows, towns  # noqa: F401

GEO_COLUMNS = ["center", "hall", "boundary", "outline", "road", "trail", "landmarks"]
WGS84 = Geod(ellps="WGS84")
POS = {t[0]: (t[6], t[5]) for t in TOWNS}  # town -> (lon, lat)


# ---- within_box: https://dev.socrata.com/docs/functions/within_box -------------------------------
# within_box(field, nw_lat, nw_lon, se_lat, se_lon); the box must hold the whole geometry
# (soql-postgres-adapter: ST_MakeEnvelope(nw_lon, se_lat, se_lon, nw_lat) ~ field).


@pytest.mark.parametrize("column", GEO_COLUMNS)
def test_within_box_on_every_geo_type(ct_portal, column):
    """within_box: "the rows that have geodata within the specified box" (f"{DEV}/functions/within_box")."""
    assert towns(ct_portal, f"within_box({column}, 41.95, -72.8, 41.6, -72.1)") == ["Hartford", "Mansfield"]


def test_within_box_holds_the_whole_geometry_not_a_part(ct_portal):
    """within_box: a box around Hartford's centre that cuts its boundary keeps the point only."""
    assert towns(ct_portal, "within_box(center, 41.78, -72.70, 41.75, -72.65)") == ["Hartford"]
    assert towns(ct_portal, "within_box(boundary, 41.78, -72.70, 41.75, -72.65)") == []
    assert towns(ct_portal, "within_box(hall, 41.78, -72.70, 41.75, -72.65)") == ["Hartford"]


def test_within_box_takes_latitude_first(ct_portal):
    """within_box: latitude, then longitude, for each corner; swapped they name another place."""
    assert towns(ct_portal, "within_box(center, -72.8, 41.95, -72.1, 41.6)") == []


def test_within_box_in_select_is_a_boolean_and_null_for_no_geometry(ct_portal):
    got = rows(ct_portal, **{"$select": "town, within_box(center, 41.95, -72.8, 41.6, -72.1) AS inside"})
    assert {r["town"]: r.get("inside") for r in got} == {
        "Bridgeport": False,
        "Hartford": True,
        "Mansfield": True,
        "New Haven": False,
        "Nowhere": None,
        "Stamford": False,
        "Waterbury": False,
    }


# ---- within_circle: https://dev.socrata.com/docs/functions/within_circle -------------------------
# within_circle(field, lat, lon, radius in meters).


def _within(lon, lat, radius):
    out = []
    for town, (x, y) in sorted(POS.items()):
        if WGS84.inv(lon, lat, x, y)[2] <= radius:
            out.append(town)
    return out


@pytest.mark.parametrize("column", ["center", "hall"])
@pytest.mark.parametrize("radius", [1000, 30_000, 56_000, 60_000, 200_000])
def test_within_circle_on_points_and_locations(ct_portal, column, radius):
    """within_circle: "locations within a specified circle, measured in meters" (f"{DEV}/functions/within_circle")."""
    lon, lat = POS["New Haven"]
    expected = _within(lon, lat, radius)
    assert towns(ct_portal, f"within_circle({column}, {lat}, {lon}, {radius})") == expected
    if radius == 56_000:
        assert "Hartford" in expected and "Stamford" not in expected  # 55.07 km and 58.55 km away


def test_within_circle_holds_every_vertex_of_a_polygon(ct_portal):
    """within_circle on polygons: the whole polygon must be inside (ST_Within); the box's corners
    are about 7 km from Hartford's centre."""
    lon, lat = POS["Hartford"]
    for column in ("boundary", "outline", "road", "trail"):
        assert towns(ct_portal, f"within_circle({column}, {lat}, {lon}, 5000)") == []
    assert towns(ct_portal, f"within_circle(landmarks, {lat}, {lon}, 5000)") == ["Hartford"]  # 1.1 km at most
    assert towns(ct_portal, f"within_circle(boundary, {lat}, {lon}, 8000)") == ["Hartford"]
    assert towns(ct_portal, f"within_circle(road, {lat}, {lon}, 14000)") == ["Hartford"]


# ---- within_polygon: https://dev.socrata.com/docs/functions/within_polygon -----------------------
# within_polygon(field, 'MULTIPOLYGON (((lon lat, ...)))').

FAIRFIELD = "MULTIPOLYGON (((-73.7 41.0, -73.1 41.0, -73.1 41.3, -73.7 41.3, -73.7 41.0)))"


@pytest.mark.parametrize("column", GEO_COLUMNS)
def test_within_polygon_on_every_geo_type(ct_portal, column):
    """within_polygon: rows whose geometry is inside a WKT multipolygon (f"{DEV}/functions/within_polygon")."""
    expected = ["Bridgeport", "Stamford"]
    if column in ("road", "trail"):  # they run 0.1 degrees north-east: Bridgeport's leaves the polygon
        expected = ["Stamford"]
    assert towns(ct_portal, f"within_polygon({column}, '{FAIRFIELD}')") == expected


def test_within_polygon_uses_longitude_first_in_wkt(ct_portal):
    swapped = "MULTIPOLYGON (((41.0 -73.7, 41.0 -73.1, 41.3 -73.1, 41.3 -73.7, 41.0 -73.7)))"
    assert towns(ct_portal, f"within_polygon(center, '{swapped}')") == []


# ---- intersects: https://dev.socrata.com/docs/functions/intersects -------------------------------


def test_intersects_a_point_with_polygons(ct_portal):
    """intersects: "whether two geospatial datatypes overlap" (f"{DEV}/functions/intersects"):
    which town's boundary holds a point."""
    assert towns(ct_portal, "intersects(boundary, 'POINT (-72.68 41.77)')") == ["Hartford"]
    assert towns(ct_portal, "intersects(outline, 'POINT (-72.68 41.77)')") == ["Hartford"]
    assert towns(ct_portal, "intersects('POINT (-72.68 41.77)', boundary)") == ["Hartford"]


def test_intersects_lines_and_polygons(ct_portal):
    """intersects: a line crossing Hartford's and Mansfield's boxes (at latitude 41.79)."""
    line = "LINESTRING (-73.0 41.79, -72.0 41.79)"
    for column in ("boundary", "outline", "road", "trail"):
        assert towns(ct_portal, f"intersects({column}, '{line}')") == ["Hartford", "Mansfield"]
    assert towns(ct_portal, f"intersects(center, '{line}')") == []


def test_intersects_two_columns(ct_portal):
    assert towns(ct_portal, "intersects(center, boundary)") == sorted(t[0] for t in TOWNS)
    assert towns(ct_portal, "intersects(hall, road)") == sorted(t[0] for t in TOWNS)


# ---- distance_in_meters: https://dev.socrata.com/docs/functions/distance_in_meters ----------------


@pytest.mark.parametrize("column", ["center", "hall"])
def test_distance_in_meters_is_the_wgs84_geodesic(ct_portal, column):
    """distance_in_meters: "the distance, measured in meters, between two Points", here ordered by
    range as the page's example does (f"{DEV}/functions/distance_in_meters")."""
    lon, lat = POS["New Haven"]
    got = rows(
        ct_portal,
        **{
            "$select": f"town, distance_in_meters({column}, 'POINT ({lon} {lat})') AS range",
            "$where": f"{column} IS NOT NULL",
            "$order": "range",
        },
    )
    expected = sorted((WGS84.inv(lon, lat, x, y)[2], town) for town, (x, y) in POS.items())
    assert [r["town"] for r in got] == [town for _d, town in expected]
    for r, (meters, _town) in zip(got, expected):
        assert abs(float(r["range"]) - meters) < 0.01
    assert float(got[0]["range"]) == 0


def test_distance_in_meters_in_where_and_from_polygons(ct_portal):
    lon, lat = POS["Hartford"]
    near = _within(lon, lat, 50_000)
    assert near == ["Hartford", "Mansfield", "Waterbury"]
    assert towns(ct_portal, f"distance_in_meters(center, 'POINT ({lon} {lat})') < 50000") == near
    # from a polygon: to its nearest point; a point inside is 0 away
    got = rows(
        ct_portal,
        **{"$select": f"distance_in_meters(boundary, 'POINT ({lon} {lat})') AS d", "$where": "town = 'Hartford'"},
    )
    assert float(got[0]["d"]) == 0
    east = WGS84.inv(lon + R, lat, lon + R + 0.1, lat)[2]
    got = rows(
        ct_portal,
        **{
            "$select": f"distance_in_meters(boundary, 'POINT ({lon + R + 0.1} {lat})') AS d",
            "$where": "town = 'Hartford'",
        },
    )
    assert abs(float(got[0]["d"]) - east) < 1


# ---- extent: https://dev.socrata.com/docs/functions/extent ---------------------------------------


def test_extent_is_the_bounding_box_as_a_multipolygon(ct_portal):
    """extent: "a bounding box that encloses a set of geometries" (f"{DEV}/functions/extent")."""
    got = rows(ct_portal, **{"$select": "extent(center)", "$order": None})
    xs, ys = [p[0] for p in POS.values()], [p[1] for p in POS.values()]
    shape = shapely.geometry.shape(got[0]["extent_center"])
    assert got[0]["extent_center"]["type"] == "MultiPolygon"
    assert shape.bounds == (min(xs), min(ys), max(xs), max(ys))
    boundary = shapely.geometry.shape(rows(ct_portal, **{"$select": "extent(boundary) AS e", "$order": None})[0]["e"])
    assert boundary.bounds == pytest.approx((min(xs) - R, min(ys) - R, max(xs) + R, max(ys) + R))


def test_extent_by_group(ct_portal):
    got = rows(
        ct_portal,
        **{
            "$select": "county, extent(hall) AS e",
            "$group": "county",
            "$where": "county = 'Fairfield'",
            "$order": "county",
        },
    )
    (sx, sy), (bx, by) = POS["Stamford"], POS["Bridgeport"]
    assert shapely.geometry.shape(got[0]["e"]).bounds == (sx, sy, bx, by)


# ---- convex_hull: https://dev.socrata.com/docs/functions/convex_hull ------------------------------


def test_convex_hull_of_each_geometry(ct_portal):
    """convex_hull: "the minimum convex geometry that encloses all of another geometry", as a
    multipolygon (f"{DEV}/functions/convex_hull")."""
    got = rows(ct_portal, **{"$select": "town, convex_hull(landmarks) AS hull", "$where": "town = 'Hartford'"})
    hull = got[0]["hull"]
    assert hull["type"] == "MultiPolygon"
    lon, lat = POS["Hartford"]
    assert shapely.geometry.shape(hull).equals(shapely.Polygon([(lon, lat), (lon + 0.01, lat), (lon, lat + 0.01)]))


# ---- simplify and num_points: https://dev.socrata.com/docs/functions/simplify, .../num_points -----


def test_simplify_drops_vertices_closer_than_the_tolerance(ct_portal):
    """simplify: "reduce the number of vertices in a line or polygon" (f"{DEV}/functions/simplify")."""
    got = rows(
        ct_portal,
        **{
            "$select": "num_points(trail) AS before, simplify(trail, 0.01) AS t, simplify(trail, 0.0001) AS kept",
            "$where": "town = 'Hartford'",
        },
    )
    r = got[0]
    assert r["before"] == "3"
    assert r["t"]["type"] == "MultiLineString" and len(r["t"]["coordinates"][0]) == 2
    assert len(r["kept"]["coordinates"][0]) == 3


def test_num_points(ct_portal):
    """num_points: "the number of vertices in a geospatial data record" (f"{DEV}/functions/num_points")."""
    got = rows(
        ct_portal,
        **{
            "$select": "num_points(center) AS c, num_points(boundary) AS b, num_points(road) AS r, num_points(landmarks) AS l",
            "$where": "town = 'Hartford'",
        },
    )
    assert got == [{"c": "1", "b": "5", "r": "2", "l": "3"}]


# ---- wrong types and arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, code",
    [
        ({"$where": "within_box(town, 42, -73, 41, -72)"}, "query.soql.type-mismatch"),
        ({"$where": "within_box(population, 42, -73, 41, -72)"}, "query.soql.type-mismatch"),
        ({"$where": "within_circle(center, 'north', -73, 1000)"}, "query.soql.type-mismatch"),
        ({"$where": "within_circle(center, 41, -73)"}, "query.soql.no-such-function"),
        ({"$where": "within_polygon(center, 'NOT WKT')"}, "query.soql.type-mismatch"),
        ({"$where": "within_polygon(center, 'POINT (1 2)')"}, "query.soql.type-mismatch"),
        ({"$where": "intersects(center, 5)"}, "query.soql.type-mismatch"),
        ({"$select": "distance_in_meters(center)"}, "query.soql.no-such-function"),
        ({"$select": "extent(town)"}, "query.soql.type-mismatch"),
        ({"$select": "num_points(website)"}, "query.soql.type-mismatch"),
    ],
)
def test_geo_functions_refuse_wrong_types(ct_portal, params, code):
    refused(ct_portal, code, **params)


def test_a_geometry_shapely_cannot_read_is_left_out_not_an_error(ct_portal):
    """A stored line of one point (the portal accepts it; GEOS cannot build it) matches no geo
    predicate and has no geo values; the other rows answer as usual."""
    portal, _ff = ct_portal
    ff = portal.create(
        columns=[{"fieldName": "n", "dataTypeName": "number"}, {"fieldName": "road", "dataTypeName": "line"}],
        row_identifier=None,
    )
    body = [{"n": 1, "road": "LINESTRING (1 2)"}, {"n": 2, "road": "LINESTRING (1 2, 1.001 2)"}]
    assert portal.post(f"/resource/{ff}.json", body).status_code == 200
    for where in ("within_circle(road, 2, 1, 1000)", "within_box(road, 3, 0, 0, 3)", "intersects(road, 'POINT (1 2)')"):
        assert [r["n"] for r in portal.rows(ff, **{"$where": where})] == ["2"], where
    got = portal.rows(ff, **{"$select": "n, distance_in_meters(road, 'POINT (1 2)') AS d, num_points(road) AS k"})
    assert got == [{"n": "1"}, {"n": "2", "d": "0", "k": "2"}]
