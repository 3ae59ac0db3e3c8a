"""Geographic rules: points and locations for Socrata, and WKT to and from GeoJSON.

Canonical representation (what these rules produce and the Socrata delivery serialises):
- a point, and any other geometry, is a TEXT column holding WKT, `POINT (-72.68 41.76)`: longitude
  first, as in WKT and GeoJSON. Socrata accepts WKT for point, line and polygon columns on both the
  JSON and the CSV path, and a CSV or SQL delivery writes it as it is. `wkt: {to: geojson}` turns it
  into GeoJSON text when a target wants that.
- a location (Socrata's legacy type) is a TEXT column holding the JSON object Socrata itself reads
  back: {"latitude":"41.76","longitude":"-72.68","human_address":"{\"address\":...}"}, so that a
  dataset copied from a Socrata source comes out the same.
Numbers are parsed and checked with pyarrow.compute; geometry text is converted with RE2 rewrites
over whole columns, never parsed row by row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from pipeline.basics.columnflow import uses
from pipeline.basics.plugins import rule
from transforms._frames import mask_of, need_columns, text_of, text_series, to_arrow, with_columns

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

# pandas, Arrow and numpy are imported by the functions that touch a chunk, so that binding these
# rules (`route validate`) loads none of them.

NAME = {"type": "string", "minLength": 1}
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


def _coordinates(series: pd.Series):
    """A column of coordinates as float64 (NaN for null) and a mask of values that are not numbers."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    data = to_arrow(series)
    if pa.types.is_integer(data.type) or pa.types.is_floating(data.type) or pa.types.is_decimal(data.type):
        numbers = pc.cast(data, pa.float64(), safe=False)  # a huge integer is then out of range, not a crash
        bad = np.zeros(len(series), dtype=bool)
    else:
        text = pc.utf8_trim_whitespace(text_of(series))
        ok = pc.match_substring_regex(text, f"^{_NUMBER}$")
        numbers = pc.cast(pc.if_else(ok, text, pa.scalar(None, pa.string())), pa.float64())
        bad = mask_of(pc.and_kleene(pc.invert(ok), pc.is_valid(text)))
    values = pc.fill_null(numbers, float("nan"))
    return np.asarray(values.to_numpy(), dtype=float), bad


def _number_text(values: np.ndarray) -> pa.Array:
    """Floats as the shortest text that reads back the same, never in exponent form (WKT readers
    and Socrata's location parser do not all accept 1e-07)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(pa.array(values, from_pandas=True), pa.string())
    odd = mask_of(pc.match_substring(text, "e"))
    if odd.any():  # only values below 1e-6 in size: a handful at most, fixed one by one
        fixed = text.to_pylist()
        for k in np.flatnonzero(odd):
            fixed[k] = np.format_float_positional(values[k], trim="-")
        text = pa.array(fixed, type=pa.string())
    return text


def _checked_pair(chunk: pd.DataFrame, lat_col: str, lon_col: str, ctx):
    """Latitude and longitude as floats; rows with a bad or half coordinate are rejected.
    Returns (kept chunk, lat, lon, present mask)."""
    import numpy as np

    lat, lat_bad = _coordinates(chunk[lat_col])
    lon, lon_bad = _coordinates(chunk[lon_col])
    problems = [
        (lat_col, lat_bad, "latitude is not a number"),
        (lon_col, lon_bad, "longitude is not a number"),
        (lat_col, np.isfinite(lat) & (np.abs(lat) > 90), "latitude is out of range (-90 to 90)"),
        (lon_col, np.isfinite(lon) & (np.abs(lon) > 180), "longitude is out of range (-180 to 180)"),
        (lon_col, np.isnan(lon) & ~np.isnan(lat) & ~lon_bad, "longitude is missing but latitude is given"),
        (lat_col, np.isnan(lat) & ~np.isnan(lon) & ~lat_bad, "latitude is missing but longitude is given"),
    ]
    rejected = np.zeros(len(chunk), dtype=bool)
    for column, mask, reason in problems:
        new = mask & ~rejected
        if new.any():
            ctx.reject(chunk[new], reason, column=column)
            rejected |= new
    if rejected.any():
        keep = ~rejected
        chunk, lat, lon = chunk[keep], lat[keep], lon[keep]
    return chunk, lat, lon, ~np.isnan(lat) & ~np.isnan(lon)


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["latitude", "longitude", "into"],
        "properties": {"latitude": NAME, "longitude": NAME, "into": NAME},
    },
    columns=uses(reads=["latitude", "longitude"], adds=["into"]),
)
def point(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Make a Socrata point column from latitude and longitude columns (numbers or text), as WKT
    text `POINT (longitude latitude)`. Rows whose coordinates are not numbers, are out of range or
    have only one of the two are rejected; rows with neither get a null point.

    Example:

        - point: {latitude: lat, longitude: lon, into: geocoded_column}
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    lat_col, lon_col, into = options["latitude"], options["longitude"], options["into"]
    need_columns(chunk, [lat_col, lon_col], "point")
    kept, lat, lon, present = _checked_pair(chunk, lat_col, lon_col, ctx)
    wkt = pc.binary_join_element_wise("POINT (", _number_text(lon), " ", _number_text(lat), ")", "")
    wkt = pc.if_else(pa.array(present), wkt, pa.scalar(None, pa.string()))
    like = kept[lat_col]
    return with_columns(kept, {into: text_series(wkt, like, name=into)})


_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"), ("\f", "\\f")]


def _json_string(data) -> pa.Array:
    """Each value as a JSON string literal (quoted and escaped); null stays null."""
    import pyarrow.compute as pc

    for raw, escaped in _ESCAPES:
        data = pc.replace_substring(data, raw, escaped)
    if pc.any(pc.match_substring_regex(data, r"[\x00-\x1f]")).as_py():
        for code in [c for c in range(32) if chr(c) not in "\n\r\t\b\f"]:
            data = pc.replace_substring(data, chr(code), f"\\u{code:04x}")
    return pc.binary_join_element_wise('"', data, '"', "")


_PARTS = ("address", "city", "state", "zip")


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["into"],
        "anyOf": [{"required": [p]} for p in (*_PARTS, "latitude")],
        "dependentRequired": {"latitude": ["longitude"], "longitude": ["latitude"]},
        "properties": {
            "address": NAME,
            "city": NAME,
            "state": NAME,
            "zip": NAME,
            "latitude": NAME,
            "longitude": NAME,
            "into": NAME,
        },
    },
    columns=uses(reads=["address", "city", "state", "zip", "latitude", "longitude"], adds=["into"]),
)
def location(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Make a Socrata location column (the legacy type with an address and coordinates) from address
    columns and/or latitude and longitude, as the JSON text Socrata reads back. Coordinates are
    checked as for `point`; a row with no part at all gets a null location.

    Example:

        - location: {address: street, city: town, state: state, zip: zip,
                     latitude: lat, longitude: lon, into: location_1}
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    into = options["into"]
    used = [options[p] for p in _PARTS if p in options]
    coords = "latitude" in options
    need_columns(chunk, used + ([options["latitude"], options["longitude"]] if coords else []), "location")
    if coords:
        chunk, lat, lon, present = _checked_pair(chunk, options["latitude"], options["longitude"], ctx)
    else:
        present = np.zeros(len(chunk), dtype=bool)
    n = len(chunk)
    empty = pa.array([""] * n, type=pa.string())
    any_part = present.copy()
    fields = []
    for part in _PARTS:
        if part in options:
            text = text_of(chunk[options[part]])
            any_part |= mask_of(pc.is_valid(text))
            value = _json_string(pc.fill_null(text, ""))
        else:
            value = _json_string(empty)
        fields += [f'"{part}":', value, "," if part != "zip" else "}"]
    human = pc.binary_join_element_wise("{", *fields, "")
    pieces = []
    if coords:
        head = pc.binary_join_element_wise(
            '{"latitude":"', _number_text(lat), '","longitude":"', _number_text(lon), '","human_address":', ""
        )
        pieces.append(pc.if_else(pa.array(present), head, '{"human_address":'))
    else:
        pieces.append(pa.array(['{"human_address":'] * n, type=pa.string()))
    joined = pc.binary_join_element_wise(pieces[0], _json_string(human), "}", "")
    joined = pc.if_else(pa.array(any_part), joined, pa.scalar(None, pa.string()))
    like = chunk[used[0]] if used else chunk[options["latitude"]]
    return with_columns(chunk, {into: text_series(joined, like, name=into)})


# --- WKT <-> GeoJSON ------------------------------------------------------------------------

_C = rf"{_NUMBER}\s+{_NUMBER}(?:\s+{_NUMBER})?"
_LIST = rf"{_C}(?:\s*,\s*{_C})*"
_RINGS = rf"\(\s*{_LIST}\s*\)(?:\s*,\s*\(\s*{_LIST}\s*\))*"
_POLYS = rf"\(\s*{_RINGS}\s*\)(?:\s*,\s*\(\s*{_RINGS}\s*\))*"
_PT_LIST = rf"\(\s*{_C}\s*\)(?:\s*,\s*\(\s*{_C}\s*\))*"
_BODIES = {
    "POINT": _C,
    "LINESTRING": _LIST,
    "POLYGON": _RINGS,
    "MULTIPOINT": f"(?:{_LIST}|{_PT_LIST})",
    "MULTILINESTRING": _RINGS,
    "MULTIPOLYGON": _POLYS,
}
_GEOJSON_TYPE = {
    "POINT": "Point",
    "LINESTRING": "LineString",
    "POLYGON": "Polygon",
    "MULTIPOINT": "MultiPoint",
    "MULTILINESTRING": "MultiLineString",
    "MULTIPOLYGON": "MultiPolygon",
}
_VALID_WKT = (
    "^(?i)\\s*(?:" + "|".join(rf"{name}\s*(?:Z\s*)?\(\s*{body}\s*\)" for name, body in _BODIES.items()) + ")\\s*$"
)
_EMPTY_WKT = r"^(?i)\s*[A-Z]+\s+EMPTY\s*$"


def _json_numbers(data):
    """Numbers as JSON writes them: no leading +, no bare leading or trailing dot, no leading zeros."""
    import pyarrow.compute as pc

    data = pc.replace_substring_regex(data, r"\+(\d|\.)", r"\1")
    data = pc.replace_substring_regex(data, r"(^|[^\d])\.(\d)", r"\10.\2")  # RE2: \1 then "0."
    data = pc.replace_substring_regex(data, r"(\d)\.([^\d]|$)", r"\1\2")
    return pc.replace_substring_regex(data, r"(^|[^\d.])0+(\d)", r"\1\2")


def _wkt_to_geojson(text):
    import pyarrow as pa
    import pyarrow.compute as pc

    upper = pc.utf8_upper(pc.utf8_trim_whitespace(text))
    kind = pc.struct_field(pc.extract_regex(upper, r"^(?P<k>[A-Z]+)"), "k")
    body = pc.replace_substring_regex(upper, r"^[A-Z]+\s*(?:Z\s*)?", "")
    is_multipoint = pc.equal(kind, "MULTIPOINT")
    flat = pc.binary_join_element_wise("(", pc.replace_substring_regex(body, r"[()]", ""), ")", "")
    body = pc.if_else(is_multipoint, flat, body)
    body = _json_numbers(body)
    num = f"({_NUMBER})"
    body = pc.replace_substring_regex(body, rf"{num}\s+{num}\s+{num}", r"[\1,\2,\3]")
    body = pc.replace_substring_regex(body, rf"{num}\s+{num}", r"[\1,\2]")
    body = pc.replace_substring_regex(body, r"\s+", "")
    body = pc.replace_substring(pc.replace_substring(body, "(", "["), ")", "]")
    is_point = pc.equal(kind, "POINT")
    body = pc.if_else(is_point, pc.utf8_slice_codeunits(body, 1, -1), body)
    names = pa.array(list(_GEOJSON_TYPE.values()))
    typename = pc.take(names, pc.index_in(kind, value_set=pa.array(list(_GEOJSON_TYPE))))
    return pc.binary_join_element_wise('{"type":"', typename, '","coordinates":', body, "}", "")


def _geojson_to_wkt(text):
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = pc.struct_field(pc.extract_regex(text, r'"type"\s*:\s*"(?P<k>[A-Za-z]+)"'), "k")
    coords = pc.struct_field(pc.extract_regex(text, r'"coordinates"\s*:\s*(?P<c>\[[-+0-9.eE,\s\[\]]*\])'), "c")
    body = pc.replace_substring_regex(coords, r"\s+", "")
    num = f"({_NUMBER})"
    body = pc.replace_substring_regex(body, rf"\[{num},{num},{num}\]", r"\1 \2 \3")
    body = pc.replace_substring_regex(body, rf"\[{num},{num}\]", r"\1 \2")
    body = pc.replace_substring(pc.replace_substring(pc.replace_substring(body, ",", ", "), "[", "("), "]", ")")
    is_point = pc.equal(kind, "Point")
    body = pc.if_else(is_point, pc.binary_join_element_wise("(", body, ")", ""), body)
    names = pa.array(list(_GEOJSON_TYPE))
    typename = pc.take(names, pc.index_in(kind, value_set=pa.array(list(_GEOJSON_TYPE.values()))))
    return pc.binary_join_element_wise(typename, " ", body, "")


def _geometry_text(series: pd.Series):
    """Text of a geometry column; GeoJSON held as dicts (a Socrata source) is written as JSON."""
    import pyarrow.compute as pc

    if series.dtype == object:
        series = series.map(
            lambda v: orjson.dumps(v).decode() if isinstance(v, (dict, list)) else v, na_action="ignore"
        )
    return pc.utf8_trim_whitespace(text_of(series))


@rule(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["column", "to"],
        "properties": {"column": NAME, "into": NAME, "to": {"enum": ["geojson", "wkt"]}},
    },
    columns=uses(reads=["column"], adds=["into"]),
)
def wkt(chunk: pd.DataFrame, options, ctx) -> pd.DataFrame:
    """Convert geometries between WKT (`POINT (-72.68 41.76)`) and GeoJSON text
    (`{"type":"Point","coordinates":[-72.68,41.76]}`): points, lines, polygons and their multi
    forms, as Socrata stores them. `to` names the result; values that are not a geometry of the
    other form are rejected; EMPTY geometries become null.

    Example:

        - wkt: {column: the_geom, to: geojson}
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = options["column"]
    into = options.get("into", column)
    need_columns(chunk, [column], "wkt")
    text = _geometry_text(chunk[column])
    if options["to"] == "geojson":
        empty = pc.match_substring_regex(text, _EMPTY_WKT)
        valid = pc.match_substring_regex(text, _VALID_WKT)
        result = _wkt_to_geojson(text)
        what = "not a WKT geometry (POINT, LINESTRING, POLYGON or their MULTI forms)"
    else:
        empty = pc.match_substring_regex(text, r'"coordinates"\s*:\s*\[\s*\]')
        result = _geojson_to_wkt(text)
        valid = pc.match_substring_regex(result, _VALID_WKT)
        what = "not a GeoJSON geometry (Point, LineString, Polygon or their Multi forms)"
    empty_np, valid_np = mask_of(empty), mask_of(valid)
    present = chunk[column].notna().to_numpy()
    bad = present & ~valid_np & ~empty_np
    result = pc.if_else(pa.array(valid_np & ~empty_np), result, pa.scalar(None, pa.string()))
    if bad.any():
        ctx.reject(chunk[bad], what, column=column)
        keep = ~bad
        chunk = chunk[keep]
        result = pc.filter(result, pa.array(keep))
    return with_columns(chunk, {into: text_series(result, chunk[column], name=into)})
