"""JSON-valued column types: geometries, location, url, document (§3).

They are stored as their canonical JSON text and read back without parsing (orjson.Fragment), so a
page of points costs no more to send than a page of strings. Geometry accepts GeoJSON or WKT and
refuses anything else; location, url and document turn what they cannot read into null, as Socrata
does.
"""

from __future__ import annotations

import re

import orjson

from pipeline.portal import geo
from pipeline.portal.coltype import ColumnType
from pipeline.portal.errors import Maltyped


class JsonValued(ColumnType):
    """Stored as canonical JSON text; read back without parsing."""

    kind = "json"

    def canonical(self, value, field):  # -> JSON-able object or None
        raise NotImplementedError

    def store(self, values, field):
        out = []
        for v in values:
            obj = None if v is None else self.canonical(v, field)
            out.append(None if obj is None else orjson.dumps(obj).decode())
        return out

    def wire(self, values):
        return [v if v is None else orjson.Fragment(v) for v in values]

    def cell(self, values):
        return ["" if v is None else self.text_of(orjson.loads(v)) for v in values]

    def text_of(self, obj) -> str:
        return orjson.dumps(obj).decode()

    def from_text(self, values, field):
        def one(v):
            v = (v or "").strip()
            if not v:
                return None
            if v[0] in "{[":
                try:
                    return orjson.loads(v)
                except orjson.JSONDecodeError:
                    raise Maltyped(field, self.soql, v) from None
            return self.parse_cell(v, field)

        return [one(v) for v in values]

    def parse_cell(self, text, field):
        return text


class Geometry(JsonValued):
    def __init__(self, name):
        super().__init__(name)
        self.soql = name
        self.geojson_type = geo.GEOJSON_TYPE[name]

    def canonical(self, value, field):
        coordinates = geo.coordinates(value, self.geojson_type)
        if coordinates is None:
            raise Maltyped(field, self.soql, value)
        return {"type": self.geojson_type, "coordinates": coordinates}

    def text_of(self, obj):
        return geo.to_wkt(obj)

    def parse_cell(self, text, field):
        from pipeline.portal.behaviour import csv_point

        if self.name == "point":
            return csv_point(text)
        return text


class Location(JsonValued):
    soql = "location"

    def canonical(self, value, field):
        return geo.location(value)  # invalid -> None, never an error (§3)

    def text_of(self, obj):
        where = f"({obj['latitude']}, {obj['longitude']})" if "latitude" in obj else ""
        address = obj.get("human_address")
        if address:
            try:
                parts = orjson.loads(address)
                address = ", ".join(str(x) for x in parts.values() if x)
            except (orjson.JSONDecodeError, AttributeError):
                pass
        return " ".join(x for x in (address, where) if x)

    def parse_cell(self, text, field):
        from pipeline.portal.behaviour import csv_location

        return csv_location(text)


class Url(JsonValued):
    soql = "url"

    def canonical(self, value, field):
        if type(value) is str:
            return {"url": value}
        if isinstance(value, dict) and type(value.get("url")) is str:
            out = {"url": value["url"]}
            if type(value.get("description")) is str:
                out["description"] = value["description"]
            return out
        return None

    def text_of(self, obj):
        return f"{obj['description']} ({obj['url']})" if obj.get("description") else obj["url"]

    def parse_cell(self, text, field):
        m = re.fullmatch(r"(.*?)\s*\((\w+://[^)]*)\)", text)
        return {"url": m.group(2), "description": m.group(1)} if m else {"url": text}


class Document(JsonValued):
    soql = "document"

    def canonical(self, value, field):
        if isinstance(value, dict) and type(value.get("file_id")) is str:
            return {k: value[k] for k in ("file_id", "filename", "content_type") if type(value.get(k)) is str}
        return None
