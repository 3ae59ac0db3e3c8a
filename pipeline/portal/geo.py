"""Geometry values: GeoJSON objects or WKT text in, GeoJSON coordinates out; location objects.

Coordinates are [longitude, latitude] in both GeoJSON and WKT (X, Y order), as Socrata's point
documentation says.
"""

from __future__ import annotations

import re

import orjson

from pipeline.portal.numbers import number_text

GEOJSON_TYPE = {
    "point": "Point",
    "multipoint": "MultiPoint",
    "line": "LineString",
    "multiline": "MultiLineString",
    "polygon": "Polygon",
    "multipolygon": "MultiPolygon",
}
_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}
_WKT_NAMES = {
    "POINT": "Point",
    "MULTIPOINT": "MultiPoint",
    "LINESTRING": "LineString",
    "MULTILINESTRING": "MultiLineString",
    "POLYGON": "Polygon",
    "MULTIPOLYGON": "MultiPolygon",
}
_WKT = re.compile(r"\s*([A-Za-z]+)\s*(\(.*\))\s*", re.S)
_TOKEN = re.compile(r"\s*([(),]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def _number(x) -> bool:
    return type(x) in (int, float)


def _valid(coords, depth: int) -> bool:
    if not isinstance(coords, list):
        return False
    if depth == 0:
        return len(coords) in (2, 3) and all(map(_number, coords))
    return len(coords) > 0 and all(_valid(c, depth - 1) for c in coords)


def coordinates(value, geojson_type: str):
    """Validated coordinates of `value` (GeoJSON dict or WKT string) for that type, or None."""
    if isinstance(value, dict):
        if value.get("type") != geojson_type:
            return None
        coords = value.get("coordinates")
    elif type(value) is str:
        parsed = parse_wkt(value)
        if parsed is None or parsed[0] != geojson_type:
            return None
        coords = parsed[1]
    else:
        return None
    depth = _DEPTH[geojson_type]
    if geojson_type == "MultiPoint" and isinstance(coords, list):
        # WKT allows MULTIPOINT ((1 2), (3 4)) as well as MULTIPOINT (1 2, 3 4)
        coords = [c[0] if isinstance(c, list) and len(c) == 1 and isinstance(c[0], list) else c for c in coords]
    return coords if _valid(coords, depth) else None


def parse_wkt(text: str):
    """('Point', [x, y]) etc. for WKT text; None when it is not WKT we can read."""
    m = _WKT.fullmatch(text)
    if not m or m.group(1).upper() not in _WKT_NAMES:
        return None
    kind = _WKT_NAMES[m.group(1).upper()]
    tokens = _TOKEN.findall(m.group(2))
    if "".join(tokens).replace(" ", "") != re.sub(r"\s+", "", m.group(2)):
        return None
    pos = 0

    def parse_list():
        nonlocal pos
        if tokens[pos] != "(":
            raise ValueError
        pos += 1
        items = []
        while True:
            if tokens[pos] == "(":
                items.append(parse_list())
            else:
                numbers = []
                while tokens[pos] not in (",", ")"):
                    numbers.append(float(tokens[pos]))
                    pos += 1
                items.append([int(n) if n.is_integer() and abs(n) < 1e15 else n for n in numbers])
            if tokens[pos] == ")":
                pos += 1
                return items
            pos += 1  # ","

    try:
        coords = parse_list()
    except (ValueError, IndexError):
        return None
    if pos != len(tokens):
        return None
    if kind == "Point":
        coords = coords[0] if len(coords) == 1 else None
    return kind, coords


def _fmt(n) -> str:
    return repr(n) if type(n) is float else str(n)


def to_wkt(obj: dict) -> str:
    """GeoJSON geometry -> WKT text (the CSV export form)."""
    kind = obj["type"]
    name = next(k for k, v in _WKT_NAMES.items() if v == kind)

    def render(coords, depth):
        if depth == 0:
            return " ".join(map(_fmt, coords))
        return "(" + ", ".join(render(c, depth - 1) for c in coords) + ")"

    depth = _DEPTH[kind]
    body = "(" + render(obj["coordinates"], 0) + ")" if depth == 0 else render(obj["coordinates"], depth)
    return f"{name} {body}"


def _coordinate_text(x) -> str | None:

    if x is None or type(x) is bool:
        return None
    try:
        return number_text(x)
    except ValueError:
        return None


def location(value):
    """A location object in Socrata's read form, or None when the value is not a location."""
    if not isinstance(value, dict):
        return None
    out = {}
    lat, lon = _coordinate_text(value.get("latitude")), _coordinate_text(value.get("longitude"))
    if lat is not None and lon is not None:
        out["latitude"], out["longitude"] = lat, lon
    address = value.get("human_address")
    if isinstance(address, dict):
        out["human_address"] = orjson.dumps(address).decode()
    elif type(address) is str and address:
        out["human_address"] = address
    return out or None
