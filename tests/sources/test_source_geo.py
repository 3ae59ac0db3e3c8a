"""The geo source (issue 16, item 3) on real files written with pyogrio: GeoJSON, a shapefile (its
folder, a .zip, without its .prj), KML/KMZ, a GeoPackage of two layers and a File Geodatabase;
reprojection to WGS 84, invalid geometries rejected or repaired, attributes as text."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("pyogrio")
shapely = pytest.importorskip("shapely")

from geokit import CT_FEET, to_wgs84, write_layer, zipped  # noqa: E402
from sourcekit import make_ctx, rejects, rows  # noqa: E402

from pipeline.basics.errors import OptionError, RunFailed  # noqa: E402
from pipeline.sources.geo import GeoSource  # noqa: E402
from pipeline.testing import check_source  # noqa: E402

SQUARE = "POLYGON ((1000000 850000, 1001000 850000, 1001000 851000, 1000000 851000, 1000000 850000))"
TWO = (
    "MULTIPOLYGON (((1002000 850000, 1003000 850000, 1003000 851000, 1002000 850000)), "
    "((1004000 850000, 1005000 850000, 1005000 851000, 1004000 850000)))"
)
BOWTIE = "POLYGON ((1000000 852000, 1001000 853000, 1001000 852000, 1000000 853000, 1000000 852000))"
POINTS = ["POINT (-72.6851 41.7637)", "POINT (-72.9279 41.3083)", None]


def read(tmp_path: Path, options: dict, chunk_rows: int = 50_000):
    source = GeoSource(options, make_ctx(tmp_path, chunk_rows=chunk_rows))
    try:
        return list(source.chunks())
    finally:
        source.close()


def test_a_geojson_file_keeps_the_source_contract(tmp_path):
    made = write_layer(
        tmp_path / "made" / "points.geojson",
        {"name": ["Hartford", "New Haven", "nowhere"], "zip": ["06103", "06510", None]},
        POINTS,
    )
    empty = write_layer(tmp_path / "made" / "empty.geojson", {"name": []}, [], geometry_type="Point")
    read_back = check_source(
        GeoSource,
        {"path": "points.geojson"},
        empty={"path": "empty.geojson"},
        files={"points.geojson": made.read_bytes(), "empty.geojson": empty.read_bytes()},
    )
    assert read_back.output.to_dict("list") == {
        "name": ["Hartford", "New Haven", "nowhere"],
        "zip": ["06103", "06510", None],
        "geometry": ["POINT (-72.6851 41.7637)", "POINT (-72.9279 41.3083)", None],
    }
    assert list(read_back.output.index) == [1, 2, 3]
    assert all(str(t) == "string[pyarrow]" for t in read_back.output.dtypes)


@pytest.mark.parametrize("where", ["folder", "shp", "zip"])
def test_a_shapefile_in_state_plane_feet_comes_out_in_wgs84(tmp_path, where):
    shp = write_layer(
        tmp_path / "parcels" / "parcels.shp",
        {"pin": ["A-1", "B-2"], "acres": [1.5, 2.0], "units": [1, None]},
        [SQUARE, TWO],
        crs=CT_FEET,
        geometry_type="MultiPolygon",
    )
    path = {"folder": "parcels", "shp": "parcels/parcels.shp", "zip": str(zipped(shp).relative_to(tmp_path))}[where]
    chunks = read(tmp_path, {"path": path, "geometry_column": "the_geom"}, chunk_rows=1)
    assert [len(c) for c in chunks] == [1, 1]
    got = rows(chunks)
    assert [(i, r["pin"], r["acres"], r["units"]) for i, r in got] == [(1, "A-1", "1.5", "1"), (2, "B-2", "2", None)]
    for (_, r), original in zip(got, [SQUARE, TWO]):
        reference = to_wgs84(shapely.from_wkt(original), CT_FEET)
        assert shapely.equals_exact(
            shapely.normalize(shapely.from_wkt(r["the_geom"])), shapely.normalize(reference), 1e-6
        )


def test_a_shapefile_without_its_prj_needs_crs_and_a_declared_crs_must_match_the_files(tmp_path):
    shp = write_layer(tmp_path / "bare.shp", {"pin": ["A-1"]}, [SQUARE], crs=CT_FEET)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(RunFailed) as err:
        read(tmp_path, {"path": "bare.shp"})
    assert str(err.value) == (
        "geo source: bare.shp does not say its coordinate system (a shapefile without its .prj?); "
        "give it with crs:, e.g. crs: EPSG:2234"
    )
    ((_, row),) = rows(read(tmp_path, {"path": "bare.shp", "crs": "EPSG:2234"}))
    assert shapely.equals_exact(
        shapely.normalize(shapely.from_wkt(row["geometry"])),
        shapely.normalize(to_wgs84(shapely.from_wkt(SQUARE), CT_FEET)),
        1e-6,
    )
    write_layer(tmp_path / "own.shp", {"pin": ["A-1"]}, [SQUARE], crs=CT_FEET)
    with pytest.raises(RunFailed, match=r"own.shp is in EPSG:2234 .*, but crs says EPSG:3857 .*: remove it"):
        read(tmp_path, {"path": "own.shp", "crs": "EPSG:3857"})
    with pytest.raises(OptionError, match="crs 'EPSG:99999' is not a coordinate system pyproj knows"):
        GeoSource({"path": "own.shp", "crs": "EPSG:99999"}, make_ctx(tmp_path))


def test_an_invalid_polygon_is_rejected_with_its_feature_number_and_reason(tmp_path):
    write_layer(tmp_path / "p.shp", {"pin": ["A-1", "B-2", "C-3"]}, [SQUARE, TWO, BOWTIE], crs=CT_FEET)
    got = rows(read(tmp_path, {"path": "p.shp"}))
    assert [(i, r["pin"]) for i, r in got] == [(1, "A-1"), (2, "B-2")]
    ((line, reason, value),) = rejects(tmp_path)
    assert (line, reason) == ("3", "invalid geometry (feature 3): Self-intersection[1000500 852500]")
    assert shapely.equals(shapely.from_wkt(value), shapely.from_wkt(BOWTIE))  # as the file has it


def test_repair_makes_an_invalid_polygon_valid_and_polygonal(tmp_path):
    write_layer(tmp_path / "p.shp", {"pin": ["A-1", "C-3"]}, [SQUARE, BOWTIE], crs=CT_FEET)
    got = rows(read(tmp_path, {"path": "p.shp", "repair": True}))
    assert [i for i, _ in got] == [1, 2] and rejects(tmp_path) == []
    fixed = shapely.from_wkt(got[1][1]["geometry"])
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon" and len(fixed.geoms) == 2
    expected = to_wgs84(shapely.make_valid(shapely.from_wkt(BOWTIE)), CT_FEET)
    assert abs(fixed.area - expected.area) < 1e-12


def test_a_geopackage_of_two_layers_reads_the_named_one(tmp_path):
    gpkg = tmp_path / "towns.gpkg"
    write_layer(gpkg, {"town": ["Hartford"]}, ["POINT (-72.6851 41.7637)"], layer="centres")
    write_layer(
        gpkg,
        {"road": ["I-84", "I-91"], "lanes": [6, 4]},
        ["LINESTRING (-72.7 41.76, -72.6 41.77)", "LINESTRING (-72.66 41.7, -72.65 41.8)"],
        layer="roads",
        append=True,
    )
    got = rows(read(tmp_path, {"path": "towns.gpkg", "layer": "roads"}))
    assert [r for _, r in got] == [
        {"road": "I-84", "lanes": "6", "geometry": "LINESTRING (-72.7 41.76, -72.6 41.77)"},
        {"road": "I-91", "lanes": "4", "geometry": "LINESTRING (-72.66 41.7, -72.65 41.8)"},
    ]
    with pytest.raises(RunFailed) as err:
        read(tmp_path, {"path": "towns.gpkg"})
    assert str(err.value) == "geo source: towns.gpkg has 2 layers (centres, roads); say which to read with layer:"
    with pytest.raises(RunFailed) as err:
        read(tmp_path, {"path": "towns.gpkg", "layer": "rivers"})
    assert str(err.value) == "geo source: towns.gpkg has no layer 'rivers'; its layers are centres, roads"
    assert GeoSource({"path": "towns.gpkg", "layer": "roads"}, make_ctx(tmp_path)).columns() == [
        "road",
        "lanes",
        "geometry",
    ]


def test_kml_and_kmz_points(tmp_path):
    kml = write_layer(tmp_path / "sites.kml", {"Name": ["Hartford", "New Haven"]}, POINTS[:2], layer="sites")
    with zipfile.ZipFile(tmp_path / "sites.kmz", "w") as z:
        z.write(kml, "doc.kml")
    for path in ("sites.kml", "sites.kmz"):
        got = rows(read(tmp_path, {"path": path}))
        assert [(r["Name"], r["geometry"]) for _, r in got] == [
            ("Hartford", "POINT (-72.6851 41.7637)"),
            ("New Haven", "POINT (-72.9279 41.3083)"),
        ]


def test_a_file_geodatabase_folder_and_its_zip(tmp_path):
    gdb = write_layer(
        tmp_path / "parcels.gdb", {"pin": ["A-1"]}, [SQUARE], crs=CT_FEET, layer="parcels", geometry_type="Polygon"
    )
    with zipfile.ZipFile(tmp_path / "parcels.gdb.zip", "w") as z:
        for part in sorted(gdb.iterdir()):
            z.write(part, f"parcels.gdb/{part.name}")
    reference = shapely.normalize(to_wgs84(shapely.from_wkt(SQUARE), CT_FEET))
    for path in ("parcels.gdb", "parcels.gdb.zip"):
        ((_, row),) = rows(read(tmp_path, {"path": path, "layer": "parcels"}))
        assert row["pin"] == "A-1"
        got = shapely.from_wkt(row["geometry"])  # a geodatabase keeps polygons as multipolygons
        assert got.geom_type == "MultiPolygon" and shapely.hausdorff_distance(got, reference) < 1e-6


def test_what_a_user_can_get_wrong_is_said_once_and_clearly(tmp_path):
    with pytest.raises(RunFailed, match=r"^geo source: file not found: nope.shp \(looked in "):
        read(tmp_path, {"path": "nope.shp"})
    (tmp_path / "notes.zip").write_bytes(b"not a zip")
    with pytest.raises(RunFailed, match="^geo source: notes.zip is not a readable .zip file$"):
        read(tmp_path, {"path": "notes.zip"})
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with zipfile.ZipFile(tmp_path / "table.zip", "w") as z:
        z.write(tmp_path / "table.csv", "table.csv")
    with pytest.raises(RunFailed, match=r"^geo source: table.zip holds no shapefile \(.shp\) or geodatabase"):
        read(tmp_path, {"path": "table.zip"})
    write_layer(tmp_path / "h.geojson", {"shape": ["x"]}, POINTS[:1])
    with pytest.raises(RunFailed, match="has an attribute named 'shape', the name of the geometry column"):
        read(tmp_path, {"path": "h.geojson", "geometry_column": "shape"})


def test_route_execute_reads_rejects_and_repairs(route_cli, write_route, tmp_path):
    write_layer(tmp_path / "p.shp", {"pin": ["A-1", "C-3"]}, [SQUARE, BOWTIE], crs=CT_FEET)
    body = """
        name: {name}
        source:
          geo: {{path: p.shp{extra}}}
        targets:
          - name: out
            deliver: {{jsonl: {{path: {name}.jsonl}}}}
    """
    strict = route_cli("execute", str(write_route(body.format(name="strict", extra=""), "strict.yaml")))
    assert strict.exit_code == 0, strict.output
    assert "1 row rejected" in strict.output
    found = next((tmp_path / ".route/rejects").glob("strict-*.csv"))
    with open(found, newline="", encoding="utf-8") as f:
        (reject,) = list(csv.DictReader(f))
    assert (reject["step"], reject["line"], reject["column"]) == ("geo", "2", "geometry")
    assert reject["reason"].startswith("invalid geometry (feature 2): Self-intersection[")
    repaired = route_cli("execute", str(write_route(body.format(name="fixed", extra=", repair: true"), "fixed.yaml")))
    assert repaired.exit_code == 0, repaired.output
    assert "row rejected" not in repaired.output
    lines = (tmp_path / "fixed.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"MULTIPOLYGON (((' in lines[1]


def test_attributes_are_text_as_every_source_writes_it(tmp_path):
    import datetime as dt

    write_layer(
        tmp_path / "types.gpkg",
        {
            "opened": [dt.date(2024, 1, 5), None],
            "seen": [dt.datetime(2024, 1, 5, 9, 30, 15), dt.datetime(2024, 1, 5, 9, 30, 15, 500000)],
            "open": [True, False],
            "acres": [1.0, 0.1],
            "units": [7, -3],
            "zip": ["06103", None],
        },
        ["POINT (-72.6851 41.7637)", "POINT (-72.9279 41.3083)"],
    )
    got = [r for _, r in rows(read(tmp_path, {"path": "types.gpkg"}))]
    assert got == [
        {
            "opened": "2024-01-05",
            "seen": "2024-01-05T09:30:15Z",  # a GeoPackage keeps date-times in UTC
            "open": "true",
            "acres": "1",
            "units": "7",
            "zip": "06103",
            "geometry": "POINT (-72.6851 41.7637)",
        },
        {
            "opened": None,
            "seen": "2024-01-05T09:30:15.500Z",
            "open": "false",
            "acres": "0.1",
            "units": "-3",
            "zip": None,
            "geometry": "POINT (-72.9279 41.3083)",
        },
    ]


def test_coordinates_that_are_no_longitudes_and_latitudes_are_rejected(tmp_path):
    shp = write_layer(tmp_path / "bare.shp", {"pin": ["A-1"]}, [SQUARE], crs=CT_FEET)
    shp.with_suffix(".prj").unlink()
    assert rows(read(tmp_path, {"path": "bare.shp", "crs": "EPSG:4326"})) == []  # feet taken for degrees
    ((line, reason, _),) = rejects(tmp_path)
    assert (line, reason) == (
        "1",
        "feature 1: its coordinates, read as EPSG:4326 (WGS 84), give no valid longitude and latitude; "
        "check the file's coordinate system (or crs)",
    )


def test_a_geojson_over_http_is_read_like_a_local_one(tmp_path, route_cli):
    """The geo source takes the remote paths every file source takes (docs/files.md)."""
    from remotekit import HttpFiles

    served = tmp_path / "served"
    served.mkdir()
    (served / "stops.geojson").write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "properties": {"name": "Main St"}, "geometry": {"type": "Point", "coordinates": [-72.68, 41.76]}}'
        "]}"
    )
    http = HttpFiles(served)
    try:
        (tmp_path / "route.yaml").write_text(
            f"name: stops\nsource:\n  geo: {{path: '{http.url('stops.geojson')}'}}\n"
            "targets:\n  - name: out\n    deliver: {jsonl: {path: out.jsonl}}\n"
        )
        result = route_cli("execute", str(tmp_path / "route.yaml"))
    finally:
        http.stop()
    assert result.exit_code == 0, result.output
    assert [line for line in (tmp_path / "out.jsonl").read_text().splitlines()] == [
        '{"name":"Main St","geometry":"POINT (-72.68 41.76)"}'
    ]
