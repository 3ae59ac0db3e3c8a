"""Geo uploads (DSMAPI `geojson()`, `kml()`, `shapefile()`): features as rows of text cells.

Each reader yields a header, then one row per feature: the geometry first, as GeoJSON text, in a
column named after its type (`point`, `line`, `polygon`, `multipolygon`...; `the_geom` for
shapefiles, as Socrata names it), then the feature's attributes as text (numbers as written,
booleans as true/false). Coordinates are taken as they are: no reprojection, so a shapefile should
be in WGS84 (EPSG:4326). Shapefile polygons become multipolygons and polylines multilines.
The whole file is read in memory (an upload is at most the portal's body limit); a zipped
shapefile whose parts would inflate far beyond the upload is refused.
"""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET  # noqa: S405 (entities are refused below)
import zipfile

import orjson

GEO_TYPES = {
    "application/vnd.geo+json": "geojson",
    "application/geo+json": "geojson",
    "application/vnd.google-earth.kml+xml": "kml",
    "application/zip": "shapefile",
    "application/x-zip-compressed": "shapefile",
}
_EXTENSIONS = {".geojson": "geojson", ".kml": "kml", ".zip": "shapefile"}
_NAMES = {
    "Point": "point",
    "MultiPoint": "multipoint",
    "LineString": "line",
    "MultiLineString": "multiline",
    "Polygon": "polygon",
    "MultiPolygon": "multipolygon",
}
MAX_INFLATED = 1 << 30


def geo_kind(content_type: str, filename: str = "") -> str | None:
    """geojson, kml or shapefile for a geo upload, else None."""
    if content_type in GEO_TYPES:
        return GEO_TYPES[content_type]
    lowered = filename.lower()
    return next((kind for ext, kind in _EXTENSIONS.items() if lowered.endswith(ext)), None)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _table(features: list[tuple[dict | None, dict]], geometry_name: str | None = None):
    """Rows from (geometry, attributes) pairs: header first."""
    kinds = [_NAMES.get((g or {}).get("type")) for g, _a in features]
    kind = next((k for k in kinds if k), "point")
    if len({k for k in kinds if k}) > 1:  # mixed: the multi form of the first
        kind = kind if kind.startswith("multi") else {"line": "multiline"}.get(kind, "multi" + kind)
    names: list[str] = []
    for _g, attributes in features:
        names += [n for n in attributes if n not in names]
    yield [geometry_name or kind, *names]
    for geometry, attributes in features:
        yield [orjson.dumps(geometry).decode() if geometry else "", *(_text(attributes.get(n)) for n in names)]


def geometry_type(header_cell: str, first_cell: str) -> str | None:
    """The dataTypeName of a geo upload's geometry column, from its first value."""
    try:
        kind = _NAMES.get(orjson.loads(first_cell).get("type")) if first_cell else None
    except (orjson.JSONDecodeError, AttributeError):
        kind = None
    return kind or (header_cell if header_cell in _NAMES.values() else None)


def rows(kind: str, data: bytes):
    """The rows of a geo upload; ValueError when it cannot be read."""
    if kind == "geojson":
        return _geojson(data)
    if kind == "kml":
        return _kml(data)
    return _shapefile(data)


def _geojson(data: bytes):
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the upload is not GeoJSON: {exc}") from None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = {"features": [doc]}
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise ValueError("the GeoJSON upload has no features (a FeatureCollection is expected)")
    pairs = []
    for f in features:
        if isinstance(f, dict):
            pairs.append(
                (f.get("geometry") if isinstance(f.get("geometry"), dict) else None, f.get("properties") or {})
            )
    return _table(pairs)


def _coordinates(text: str) -> list:
    out = []
    for group in (text or "").split():
        parts = group.split(",")
        out.append([float(parts[0]), float(parts[1])])
    return out


def _kml_geometry(element, ns: str):
    point = element.find(f".//{ns}Point/{ns}coordinates")
    if point is not None:
        return {"type": "Point", "coordinates": _coordinates(point.text)[0]}
    line = element.find(f".//{ns}LineString/{ns}coordinates")
    if line is not None:
        return {"type": "LineString", "coordinates": _coordinates(line.text)}
    polygons = []
    for polygon in element.iter(f"{ns}Polygon"):
        rings = [_coordinates(r.text) for r in polygon.iter(f"{ns}coordinates")]
        polygons.append(rings)
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    if polygons:
        return {"type": "MultiPolygon", "coordinates": polygons}
    return None


def _kml(data: bytes):
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        raise ValueError("the KML upload declares a DTD or entities, which the local portal does not read")
    try:
        root = ET.fromstring(data)  # noqa: S314 (no DTD, no entities: checked above)
    except ET.ParseError as exc:
        raise ValueError(f"the upload is not KML: {exc}") from None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    pairs = []
    try:
        for placemark in root.iter(f"{ns}Placemark"):
            attributes = {}
            for tag in ("name", "description"):
                found = placemark.find(f"{ns}{tag}")
                if found is not None and found.text:
                    attributes[tag] = found.text
            for item in placemark.iter(f"{ns}SimpleData"):
                attributes[item.get("name")] = item.text or ""
            for item in placemark.iter(f"{ns}Data"):
                value = item.find(f"{ns}value")
                attributes[item.get("name")] = value.text if value is not None and value.text else ""
            pairs.append((_kml_geometry(placemark, ns), attributes))
    except (ValueError, IndexError) as exc:
        raise ValueError(f"the KML upload has coordinates that are not numbers: {exc}") from None
    return _table(pairs)


# ---- shapefiles (a zip with .shp and .dbf) -----------------------------------------------------------


def _shapefile(data: bytes):
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
        if sum(i.file_size for i in infos) > min(MAX_INFLATED, max(64 << 20, 50 * len(data))):
            raise ValueError("the zipped shapefile would inflate to too many bytes for the local portal")
        shp = next((i for i in infos if i.filename.lower().endswith(".shp")), None)
        if shp is None:
            raise ValueError("the zip holds no .shp file")
        dbf = next((i for i in infos if i.filename.lower() == shp.filename.lower()[:-4] + ".dbf"), None)
        shapes = _shapes(archive.read(shp))
        records = _records(archive.read(dbf)) if dbf else [{} for _ in shapes]
    except (zipfile.BadZipFile, struct.error, IndexError, KeyError, UnicodeDecodeError, OverflowError) as exc:
        raise ValueError(f"the upload is not a readable zipped shapefile: {exc}") from None
    if len(records) < len(shapes):
        records += [{}] * (len(shapes) - len(records))
    return _table(list(zip(shapes, records)), "the_geom")


def _shapes(shp: bytes) -> list[dict | None]:
    out, at = [], 100
    while at + 8 <= len(shp):
        _number, words = struct.unpack(">ii", shp[at : at + 8])
        if words < 0:
            raise ValueError("a shapefile record has a negative length")
        body = shp[at + 8 : at + 8 + words * 2]
        at += 8 + words * 2
        out.append(_shape(body))
    return out


def _shape(body: bytes) -> dict | None:
    kind = struct.unpack("<i", body[:4])[0] if len(body) >= 4 else 0
    if kind in (1, 11, 21):
        x, y = struct.unpack("<2d", body[4:20])
        return {"type": "Point", "coordinates": [x, y]}
    if kind in (8, 18, 28):
        (n,) = struct.unpack("<i", body[36:40])
        return {
            "type": "MultiPoint",
            "coordinates": [list(p) for p in struct.iter_unpack("<2d", body[40 : 40 + 16 * n])],
        }
    if kind in (3, 13, 23, 5, 15, 25):
        parts_n, points_n = struct.unpack("<2i", body[36:44])
        starts = list(struct.unpack(f"<{parts_n}i", body[44 : 44 + 4 * parts_n])) + [points_n]
        at = 44 + 4 * parts_n
        points = [list(p) for p in struct.iter_unpack("<2d", body[at : at + 16 * points_n])]
        rings = [points[starts[i] : starts[i + 1]] for i in range(parts_n)]
        if kind in (3, 13, 23):
            return {"type": "MultiLineString", "coordinates": rings}
        return {"type": "MultiPolygon", "coordinates": _polygons(rings)}
    return None


def _polygons(rings: list) -> list:
    """Shapefile rings -> polygons: a clockwise ring starts a polygon, the others are its holes."""
    polygons: list = []
    for ring in rings:
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))
        if area <= 0 or not polygons:  # clockwise (negative signed area): an outer ring
            polygons.append([ring])
        else:
            polygons[-1].append(ring)
    return polygons


def _records(dbf: bytes) -> list[dict]:
    count, header_size, record_size = struct.unpack("<IHH", dbf[4:12])
    if record_size == 0:
        return []
    count = min(count, max(0, len(dbf) - header_size) // record_size)  # as many as the file holds
    fields, at = [], 32
    while at < header_size - 1 and dbf[at] != 0x0D:
        name = dbf[at : at + 11].split(b"\0")[0].decode("latin-1").strip().lower()
        fields.append((name, chr(dbf[at + 11]), dbf[at + 16]))
        at += 32
    out = []
    for i in range(count):
        start = header_size + i * record_size
        record = dbf[start : start + record_size]
        if not record or record[:1] == b"*":
            continue
        values, pos = {}, 1
        for name, kind, size in fields:
            raw = record[pos : pos + size].decode("latin-1").strip()
            pos += size
            if kind == "L":
                raw = {"T": "true", "Y": "true", "F": "false", "N": "false"}.get(raw.upper(), "")
            elif kind == "D" and len(raw) == 8 and raw.isdigit():
                raw = f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
            values[name] = raw
        out.append(values)
    return out
