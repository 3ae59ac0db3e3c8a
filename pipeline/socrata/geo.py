"""Geometry, location and url values: text in the route, Socrata's shapes on the wire.

Geometries travel as WKT (`POINT (lon lat)`), which Socrata accepts for every geometry type and
which keeps the column a plain string; GeoJSON text is accepted from the route and turned into WKT.
A shape goes to the column's type as DataSync's GIS jobs send it: a polygon to a multipolygon column
as a multipolygon of one, a multi of one part to a single column as that part.
Locations and urls are objects in JSON bodies and `addr (lat, lon)` / `label (url)` text in CSV.
WKT shape checks are vectorised regexes; only values written as GeoJSON are parsed one by one.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.socrata.conversion import Conversion, with_bad

NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
WKT_KEYWORD = {
    "point": "POINT",
    "multipoint": "MULTIPOINT",
    "line": "LINESTRING",
    "multiline": "MULTILINESTRING",
    "polygon": "POLYGON",
    "multipolygon": "MULTIPOLYGON",
}
GEOJSON_TYPE = {
    v: k
    for k, v in {
        "point": "Point",
        "multipoint": "MultiPoint",
        "line": "LineString",
        "multiline": "MultiLineString",
        "polygon": "Polygon",
        "multipolygon": "MultiPolygon",
    }.items()
}
LATLON_RE = rf"^\s*(?P<address>.*?)\s*\(\s*(?P<latitude>{NUM})\s*,\s*(?P<longitude>{NUM})\s*\)\s*$"
JSON_LAT = rf'"latitude"\s*:\s*"?(?P<v>{NUM})"?'
JSON_LON = rf'"longitude"\s*:\s*"?(?P<v>{NUM})"?'
JSON_HUMAN = r'"human_address"\s*:\s*"(?P<v>(?:[^"\\]|\\.)*)"'
POINT_RE = rf"(?i)^\s*POINT\s*\(\s*(?P<longitude>{NUM})\s+(?P<latitude>{NUM})\s*\)\s*$"


def _strip_groups(pattern: str) -> str:
    return pattern.replace("(?P<longitude>", "(").replace("(?P<latitude>", "(")


# A shape into a column of its multi type, as DataSync's GIS jobs publish a layer of mixed single and
# multi shapes: POLYGON (...) -> MULTIPOLYGON ((...)). (pattern, rewrite) over trimmed WKT text.
PROMOTE = {
    "multipoint": (r"(?i)^POINT\s*(\(.*\))$", r"MULTIPOINT (\1)"),
    "multiline": (r"(?i)^LINESTRING\s*(\(.*\))$", r"MULTILINESTRING (\1)"),
    "multipolygon": (r"(?i)^POLYGON\s*(\(.*\))$", r"MULTIPOLYGON (\1)"),
}
# A multi shape of one part into a column of the single type: MULTIPOLYGON (((...))) -> POLYGON ((...)).
# (pattern, rewrite, a pattern that finds a second part).
DEMOTE = {
    "point": (
        rf"(?i)^MULTIPOINT\s*\(\s*\(?\s*({NUM}\s+{NUM})\s*\)?\s*\)$",
        r"POINT (\1)",
        r",",
    ),
    "line": (r"(?i)^MULTILINESTRING\s*\(\s*(\(.*\))\s*\)$", r"LINESTRING \1", r"\)\s*,"),
    "polygon": (r"(?i)^MULTIPOLYGON\s*\(\s*(\(.*\))\s*\)$", r"POLYGON \1", r"\)\s*\)\s*,"),
}


def geometry(arr: pa.Array, socrata_type: str):
    """WKT text for a geometry column of `socrata_type`; GeoJSON text is converted, a single shape
    goes to a multi column as a multi of one (and a multi of one part to a single column), and
    anything else is bad."""

    if not pa.types.is_string(arr.type):
        raise TypeError(arr.type)
    keyword = WKT_KEYWORD[socrata_type]
    text = pc.utf8_trim_whitespace(arr)
    is_json = pc.fill_null(pc.starts_with(text, "{"), False)
    if pc.any(is_json).as_py():
        # GeoJSON given as text: convert those values only (a rare form, so a Python loop is fine).
        values = text.to_pylist()
        flags = is_json.to_pylist()
        text = pa.array([_geojson_to_wkt(v) if f else v for v, f in zip(values, flags)], pa.string())
    text = fitted(text, socrata_type)
    if socrata_type == "point":
        ok = pc.match_substring_regex(text, _strip_groups(POINT_RE))
    else:
        ok = pc.match_substring_regex(text, rf"(?i)^{keyword}\s*(\(.*\)|EMPTY)$")
    bad = pc.and_(pc.is_valid(arr), pc.invert(pc.fill_null(ok, False)))
    multi = "multi" + socrata_type.removeprefix("multi")
    return with_bad(
        text,
        bad,
        f"not a {socrata_type} in WKT ({keyword} (...)) or GeoJSON"
        + ("" if socrata_type.startswith("multi") else f", nor a {multi} of one part (several need a {multi} column)"),
    )


def fitted(text: pa.Array, socrata_type: str) -> pa.Array:
    """WKT text with single shapes promoted to the column's multi type, or multis of one part
    demoted to its single type; other values as they are."""
    if socrata_type in PROMOTE:
        pattern, rewrite = PROMOTE[socrata_type]
        return pc.replace_substring_regex(text, pattern, rewrite)
    if socrata_type in DEMOTE:
        pattern, rewrite, second = DEMOTE[socrata_type]
        one = pc.and_(
            pc.fill_null(pc.match_substring_regex(text, pattern), False),
            pc.invert(pc.fill_null(pc.match_substring_regex(text, second), True)),
        )
        if pc.any(one).as_py():
            return pc.if_else(one, pc.replace_substring_regex(text, pattern, rewrite), text)
    return text


def _geojson_to_wkt(text: str) -> str | None:
    try:
        obj = orjson.loads(text)
        if obj.get("type") not in GEOJSON_TYPE:
            return None
        return wkt_of(obj)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError, IndexError, KeyError):
        return None


def wkt_of(obj: dict) -> str:
    """WKT text of a GeoJSON geometry object."""
    kind = obj["type"]
    c = obj["coordinates"]

    def pt(p):
        return f"{_num(p[0])} {_num(p[1])}"

    def ring(r):
        return "(" + ", ".join(pt(p) for p in r) + ")"

    if kind == "Point":
        return f"POINT ({pt(c)})"
    if kind == "MultiPoint":
        return "MULTIPOINT (" + ", ".join(f"({pt(p)})" for p in c) + ")"
    if kind == "LineString":
        return "LINESTRING " + ring(c)
    if kind == "MultiLineString":
        return "MULTILINESTRING (" + ", ".join(ring(r) for r in c) + ")"
    if kind == "Polygon":
        return "POLYGON (" + ", ".join(ring(r) for r in c) + ")"
    if kind == "MultiPolygon":
        return "MULTIPOLYGON (" + ", ".join("(" + ", ".join(ring(r) for r in p) + ")" for p in c) + ")"
    raise ValueError(kind)


def _num(v) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)


def location(arr: pa.Array, form: str):
    """A Socrata location from text: the JSON object Socrata reads back (what the `location` rule
    makes), `(lat, lon)` optionally after an address, or `POINT (lon lat)`."""

    if not pa.types.is_string(arr.type):
        raise TypeError(arr.type)
    text = pc.utf8_trim_whitespace(pc.fill_null(arr, ""))
    is_json = pc.starts_with(text, "{")
    a = pc.extract_regex(text, LATLON_RE)
    p = pc.extract_regex(text, POINT_RE)
    j_lat = pc.struct_field(pc.extract_regex(text, JSON_LAT), "v")
    j_lon = pc.struct_field(pc.extract_regex(text, JSON_LON), "v")
    j_human = pc.struct_field(pc.extract_regex(text, JSON_HUMAN), "v")
    j_human = _json_unescape(j_human)
    j_ok = pc.and_(is_json, pc.or_(pc.and_(pc.is_valid(j_lat), pc.is_valid(j_lon)), pc.is_valid(j_human)))
    a_ok, p_ok = pc.and_(pc.invert(is_json), a.is_valid()), pc.and_(pc.invert(is_json), p.is_valid())
    lat = pc.if_else(j_ok, j_lat, pc.if_else(a_ok, pc.struct_field(a, "latitude"), pc.struct_field(p, "latitude")))
    lon = pc.if_else(j_ok, j_lon, pc.if_else(a_ok, pc.struct_field(a, "longitude"), pc.struct_field(p, "longitude")))
    address = pc.if_else(a_ok, pc.struct_field(a, "address"), pa.scalar(None, pa.string()))
    address = pc.if_else(pc.fill_null(pc.equal(address, ""), True), pa.scalar(None, pa.string()), address)
    ok = pc.or_(j_ok, pc.or_(a_ok, p_ok))
    bad = pc.and_(pc.is_valid(arr), pc.invert(ok))
    reason = "not a location: write (latitude, longitude), optionally after an address, or the location rule's JSON"
    if form == "csv":
        parts = [
            _nonempty(
                pc.struct_field(
                    pc.extract_regex(pc.fill_null(j_human, ""), rf'"{k}"\s*:\s*"(?P<v>(?:[^"\\]|\\.)*)"'), "v"
                )
            )
            for k in ("address", "city", "state", "zip")
        ]
        j_address = _join_present(parts, ", ")
        addr = pc.if_else(j_ok, _nonempty(j_address), address)
        where = pc.binary_join_element_wise("(", lat, ", ", lon, ")", "")
        out = _join_present([addr, where], " ")
        return with_bad(pc.if_else(ok, _nonempty(out), pa.scalar(None, pa.string())), bad, reason)
    human = pc.if_else(
        j_ok,
        j_human,
        pc.if_else(
            pc.is_valid(address),
            pc.binary_join_element_wise('{"address":"', _json_escape(address), '","city":"","state":"","zip":""}', ""),
            pa.scalar(None, pa.string()),
        ),
    )
    out = pa.StructArray.from_arrays([lat, lon, human], ["latitude", "longitude", "human_address"], mask=pc.invert(ok))
    return with_bad(out, bad, reason)


def _join_present(parts, sep: str):
    """Join the non-empty values of each row with `sep` (nulls and empty strings are skipped)."""
    joined = pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], sep)
    joined = pc.replace_substring_regex(joined, f"({sep})" + "{2,}", sep)
    return pc.replace_substring_regex(joined, f"^({sep})+|({sep})+$", "")


def _nonempty(arr):
    return pc.if_else(pc.fill_null(pc.equal(arr, ""), True), pa.scalar(None, pa.string()), arr)


def _json_unescape(arr):
    return pc.replace_substring(pc.replace_substring(arr, '\\"', '"'), "\\\\", "\\")


def _json_escape(arr: pa.Array) -> pa.Array:
    return pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')


def url(arr: pa.Array, form: str):
    """`https://...` or `label (https://...)` text to a Socrata url value."""

    if not pa.types.is_string(arr.type):
        raise TypeError(arr.type)
    text = pc.utf8_trim_whitespace(arr)
    if form == "csv":
        return Conversion(text)
    labelled = pc.extract_regex(
        pc.fill_null(text, ""), r"^(?P<description>.*?)\s*\((?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^)]*)\)$"
    )
    has_label = labelled.is_valid()
    link = pc.if_else(has_label, pc.struct_field(labelled, "url"), text)
    label = pc.if_else(has_label, pc.struct_field(labelled, "description"), pa.scalar(None, pa.string()))
    out = pa.StructArray.from_arrays([link, label], ["url", "description"], mask=pc.is_null(arr))
    return Conversion(out)


def to_text(value) -> str | None:
    """Route text for a geometry, location or url value read from a portal (GeoJSON or objects)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "coordinates" in value and "type" in value:
            return wkt_of(value)
        if "latitude" in value or "longitude" in value or "human_address" in value:
            return orjson.dumps(value).decode()  # the form the location rule makes
        if "url" in value:
            return f"{value['description']} ({value['url']})" if value.get("description") else value["url"]
    return orjson.dumps(value).decode()
