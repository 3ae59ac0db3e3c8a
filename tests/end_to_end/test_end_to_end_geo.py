"""Acceptance for geodata (issue 16, item 3), as a publisher runs it: `route execute` on a route whose
`geo` source reads a real file (written here with pyogrio), publishing to the local portal served
over http://127.0.0.1, read back over SODA; and the `geojson` file delivery read back by pyogrio."""

from __future__ import annotations

import json
import zipfile

import pytest

pyogrio = pytest.importorskip("pyogrio")
shapely = pytest.importorskip("shapely")

from geokit import CT_FEET, coordinates, to_wgs84, write_layer, zipped  # noqa: E402
from portalkit import ROUTE_ARGS  # noqa: E402

# Three parcels in Connecticut State Plane feet: a square, a polygon with a hole, two parts.
PARCELS = {
    "P-1": "POLYGON ((1000000 850000, 1001000 850000, 1001000 851000, 1000000 851000, 1000000 850000))",
    "P-2": "POLYGON ((1010000 860000, 1014000 860000, 1014000 864000, 1010000 864000, 1010000 860000), "
    "(1011000 861000, 1011000 862000, 1012000 862000, 1012000 861000, 1011000 861000))",
    "P-3": "MULTIPOLYGON (((1002000 850000, 1003000 850000, 1003000 851000, 1002000 850000)), "
    "((1004000 850000, 1005000 850000, 1005000 851000, 1004000 850000)))",
}
SITES = {  # name: (longitude, latitude)
    "Hartford": (-72.6851, 41.7637),
    "New Haven": (-72.9279, 41.3083),
    "Stamford": (-73.5387, 41.0534),
}
HARTFORD_COUNTY_BOX = "within_box(spot, 42.05, -73.05, 41.55, -72.4)"  # NW lat, lon, SE lat, lon


def route(name: str, source: str, target: str, transforms: str = "") -> str:
    return (
        f"name: {name}\nsource:\n  geo: {source}\n"
        + (f"source_transforms:\n{transforms}" if transforms else "")
        + "targets:\n  - name: portal\n    deliver:\n      socrata:\n"
        + "".join(f"        {line}\n" for line in (target + "mode: replace\nbackoff: 0.01").splitlines())
    )


def test_a_state_plane_shapefile_reaches_the_portal_as_wgs84_multipolygons(
    shared_portal, route_cli, write_route, tmp_path
):
    shp = write_layer(
        tmp_path / "parcels" / "parcels.shp",
        {"pin": list(PARCELS), "owner": ["Ames", "Bolt", "Cruz"]},
        list(PARCELS.values()),
        crs=CT_FEET,
        geometry_type="MultiPolygon",
    )
    zipped(shp)
    ds = shared_portal.create(
        [
            {"fieldName": "pin", "name": "PIN", "dataTypeName": "text"},
            {"fieldName": "owner", "name": "Owner", "dataTypeName": "text"},
            {"fieldName": "the_geom", "name": "Shape", "dataTypeName": "multipolygon"},
        ],
        row_identifier="pin",
        name="Parcels",
    )
    path = write_route(
        route("parcels", "{path: parcels/parcels.zip, geometry_column: the_geom}", shared_portal.target(ds))
    )
    result = route_cli("execute", *ROUTE_ARGS, str(path))
    assert result.exit_code == 0, result.output
    got = {r["pin"]: r for r in shared_portal.rows(ds)}
    assert sorted(got) == sorted(PARCELS) and got["P-2"]["owner"] == "Bolt"
    for pin, wkt in PARCELS.items():
        shape = got[pin]["the_geom"]
        assert shape["type"] == "MultiPolygon"  # single polygons promoted, as DataSync publishes them
        published = shapely.geometry.shape(shape)
        reference = to_wgs84(shapely.from_wkt(wkt), CT_FEET)  # pyproj directly, lon/lat
        if reference.geom_type == "Polygon":
            reference = shapely.MultiPolygon([reference])
        assert len(published.geoms) == len(reference.geoms)
        # Ring by ring, point by point (the shapefile may store rings in the other direction).
        for part, ref_part in zip(published.geoms, reference.geoms):
            for ring, ref_ring in zip([part.exterior, *part.interiors], [ref_part.exterior, *ref_part.interiors]):
                a, b = shapely.normalize(shapely.Polygon(ring)), shapely.normalize(shapely.Polygon(ref_ring))
                assert shapely.equals_exact(a, b, tolerance=1e-6), (pin, a.wkt, b.wkt)
        lon, lat = coordinates(shape)[0]
        assert -73.8 < lon < -71.7 and 40.9 < lat < 42.1  # Connecticut


@pytest.mark.parametrize("kind", ["geojson", "kml", "kmz"])
def test_geojson_and_kml_points_publish_as_point_columns_within_box_finds(
    kind, shared_portal, route_cli, write_route, tmp_path
):
    made = write_layer(
        tmp_path / f"sites.{'kml' if kind == 'kmz' else kind}",
        {"Name": list(SITES)},
        [f"POINT ({lon} {lat})" for lon, lat in SITES.values()],
        layer="sites",
    )
    if kind == "kmz":
        with zipfile.ZipFile(tmp_path / "sites.kmz", "w") as z:
            z.write(made, "doc.kml")
    ds = shared_portal.create(
        [
            {"fieldName": "name", "name": "Name", "dataTypeName": "text"},
            {"fieldName": "spot", "name": "Spot", "dataTypeName": "point"},
        ],
        row_identifier="name",
        name=f"Sites {kind}",
    )
    keep = "  - select: [Name, spot]\n" if kind != "geojson" else ""  # KML brings its description too
    path = write_route(
        route("sites", f"{{path: sites.{kind}, geometry_column: spot}}", shared_portal.target(ds), keep),
        name=f"{kind}.yaml",
    )
    result = route_cli("execute", *ROUTE_ARGS, str(path))
    assert result.exit_code == 0, result.output
    published = {r["name"]: r["spot"] for r in shared_portal.rows(ds)}
    assert published == {n: {"type": "Point", "coordinates": [lon, lat]} for n, (lon, lat) in SITES.items()}
    found = shared_portal.rows(ds, **{"$where": HARTFORD_COUNTY_BOX})
    assert [r["name"] for r in found] == ["Hartford"]


def test_the_geojson_delivery_writes_a_feature_collection_pyogrio_reads_back(route_cli, write_route, tmp_path):
    gpkg = tmp_path / "towns.gpkg"
    write_layer(gpkg, {"town": ["Hartford"]}, ["POINT (-72.6851 41.7637)"], layer="centres")
    write_layer(
        gpkg,
        {"pin": list(PARCELS), "acres": [1.5, 20.25, None]},
        list(PARCELS.values()),
        crs=CT_FEET,
        layer="parcels",
        geometry_type="Unknown",
        append=True,
    )
    path = write_route(
        """
        name: export
        chunk_rows: 2
        source:
          geo: {path: towns.gpkg, layer: parcels}
        source_transforms:
          - cast: {acres: number}
        targets:
          - name: file
            deliver:
              geojson: {path: out/parcels.geojson}
        """
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "parcels.geojson"
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["type"] == "FeatureCollection" and len(document["features"]) == 3
    assert [f["properties"] for f in document["features"]] == [
        {"pin": "P-1", "acres": 1.5},
        {"pin": "P-2", "acres": 20.25},
        {"pin": "P-3", "acres": None},
    ]
    assert [p.name for p in out.parent.iterdir()] == ["parcels.geojson"]  # no temporary file left
    info = pyogrio.read_info(out)
    assert info["features"] == 3 and info["crs"] == "EPSG:4326"
    table = pyogrio.read_arrow(out)[1]
    assert table.column("pin").to_pylist() == list(PARCELS)
    read_back = shapely.from_wkb(table.column("wkb_geometry").to_pylist())
    for got, wkt in zip(read_back, PARCELS.values()):
        reference = to_wgs84(shapely.from_wkt(wkt), CT_FEET)
        assert shapely.hausdorff_distance(got, reference) < 1e-6

    # A row whose geometry is not WKT is rejected; the rest is written.
    bad = write_route(
        """
        name: bad
        source:
          geo: {path: towns.gpkg, layer: parcels}
        source_transforms:
          - derive: {geometry: "if(pin == 'P-2', 'POINT (nowhere)', geometry)"}
        targets:
          - name: file
            deliver: {geojson: {path: out/bad.geojson}}
        """,
        name="bad.yaml",
    )
    result = route_cli("execute", str(bad))
    assert result.exit_code == 0, result.output
    assert "1 row rejected" in result.output
    written = json.loads((tmp_path / "out" / "bad.geojson").read_text())["features"]
    assert [f["properties"]["pin"] for f in written] == ["P-1", "P-3"]


def test_lines_fit_line_and_multiline_columns_and_a_true_multi_is_refused_by_a_single_column(
    shared_portal, route_cli, write_route, tmp_path
):
    write_layer(
        tmp_path / "roads.geojson",
        {"road": ["I-84", "I-91", "Route 2"]},
        [
            "LINESTRING (-72.7 41.76, -72.6 41.77)",
            "MULTILINESTRING ((-72.66 41.7, -72.65 41.8))",
            "MULTILINESTRING ((-72.6 41.7, -72.5 41.6), (-72.4 41.6, -72.3 41.5))",
        ],
    )
    columns = [
        {"fieldName": "road", "name": "Road", "dataTypeName": "text"},
        {"fieldName": "geometry", "name": "Line", "dataTypeName": "line"},
    ]
    single = shared_portal.create(columns, row_identifier="road", name="Roads")
    multi = shared_portal.create(
        [columns[0], {**columns[1], "dataTypeName": "multiline"}], row_identifier="road", name="Roads multi"
    )
    for ds, name in ((single, "single"), (multi, "multi")):
        path = write_route(route(name, "{path: roads.geojson}", shared_portal.target(ds)), name=f"{name}.yaml")
        result = route_cli("execute", *ROUTE_ARGS, str(path))
        assert result.exit_code == 0, result.output
    got = {r["road"]: r.get("geometry") for r in shared_portal.rows(single)}
    assert got == {
        "I-84": {"type": "LineString", "coordinates": [[-72.7, 41.76], [-72.6, 41.77]]},
        "I-91": {"type": "LineString", "coordinates": [[-72.66, 41.7], [-72.65, 41.8]]},  # a multi of one
    }
    rejected = next((tmp_path / ".route/rejects").glob("single-*.csv")).read_text()
    assert "not a line in WKT (LINESTRING (...)) or GeoJSON, nor a multiline of one part" in rejected
    got = {r["road"]: r["geometry"]["type"] for r in shared_portal.rows(multi)}
    assert got == {"I-84": "MultiLineString", "I-91": "MultiLineString", "Route 2": "MultiLineString"}


def test_the_geojson_delivery_keeps_the_delivery_contract():
    import pandas as pd

    from pipeline.api import TEXT, check_delivery
    from pipeline.deliveries.geojson import GeojsonDelivery

    sample = pd.DataFrame(
        {
            "name": pd.Series(["Hartford", "New Haven", "nowhere"], dtype=TEXT),
            "geometry": pd.Series(
                ["POINT (-72.6851 41.7637)", '{"type": "Point", "coordinates": [-72.9279, 41.3083]}', None],
                dtype=TEXT,
            ),
        }
    ).set_axis(pd.RangeIndex(1, 4))

    def read_back(folder):
        out = folder / "out.geojson"
        return json.loads(out.read_text(encoding="utf-8")) if out.exists() else None

    checked = check_delivery(GeojsonDelivery, {"path": "out.geojson"}, sample, read_back=read_back)
    assert checked.output == {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "Hartford"},
                "geometry": {"type": "Point", "coordinates": [-72.6851, 41.7637]},
            },
            {
                "type": "Feature",
                "properties": {"name": "New Haven"},
                "geometry": {"type": "Point", "coordinates": [-72.9279, 41.3083]},
            },
            {"type": "Feature", "properties": {"name": "nowhere"}, "geometry": None},
        ],
    }
