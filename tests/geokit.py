"""Real GIS files for the geo tests, written with pyogrio (GDAL) from shapely geometries: a
shapefile, GeoJSON, KML, GeoPackage or File Geodatabase layer of a few features."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow as pa
import pyogrio
import shapely
from pyproj import Transformer

DRIVERS = {
    ".shp": "ESRI Shapefile",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".kml": "KML",
    ".gpkg": "GPKG",
    ".gdb": "OpenFileGDB",
}

# Connecticut State Plane (NAD83, US feet): what the state's parcel shapefiles are in.
CT_FEET = "EPSG:2234"


def write_layer(
    path: Path,
    attributes: dict[str, list],
    geometries: list,
    *,
    crs: str | None = "EPSG:4326",
    layer: str | None = None,
    geometry_type: str | None = None,
    append: bool = False,
) -> Path:
    """One layer of features at `path` (the driver from its suffix): `attributes` are columns of
    Python values, `geometries` shapely geometries or WKT text (None for no geometry)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    geoms = [shapely.from_wkt(g) if isinstance(g, str) else g for g in geometries]
    columns = {name: pa.array(values) if values else pa.array([], pa.string()) for name, values in attributes.items()}
    columns["geometry"] = pa.array(shapely.to_wkb(geoms).tolist(), pa.binary())
    kinds = {g.geom_type for g in geoms if g is not None}
    pyogrio.write_arrow(
        pa.table(columns),
        str(path),
        layer=layer,
        driver=DRIVERS[path.suffix.lower()],
        geometry_name="geometry",
        geometry_type=geometry_type or (kinds.pop() if len(kinds) == 1 else "Unknown"),
        crs=crs,
        append=append,
    )
    return path


def zipped(shp: Path) -> Path:
    """The shapefile's parts (.shp, .shx, .dbf, .prj, .cpg) in a .zip beside it."""
    out = shp.with_suffix(".zip")
    with zipfile.ZipFile(out, "w") as z:
        for part in sorted(shp.parent.glob(shp.stem + ".*")):
            if part.suffix.lower() != ".zip":
                z.write(part, part.name)
    return out


def to_wgs84(geom, crs: str):
    """The reference reprojection, done with pyproj directly (longitude first)."""
    t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return shapely.transform(geom, lambda xy: __import__("numpy").column_stack(t.transform(xy[:, 0], xy[:, 1])))


def coordinates(geojson: dict) -> list[tuple[float, float]]:
    """Every (x, y) of a GeoJSON geometry, flattened in order."""
    out: list[tuple[float, float]] = []

    def walk(c):
        if c and isinstance(c[0], (int, float)):
            out.append((float(c[0]), float(c[1])))
        else:
            for part in c:
                walk(part)

    walk(geojson["coordinates"])
    return out
