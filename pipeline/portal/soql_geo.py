"""SoQL geo functions, computed with shapely 2 over a whole column at once (https://dev.socrata.com/docs/functions/).

SQLite knows nothing of geometry, so a geo call compiles to a lookup of values computed before the
query runs: each call becomes a job that reads the column's geometries (`_sid` and GeoJSON, or a
location's latitude and longitude), computes the answer for every row with shapely's array
functions, and hands SQLite either the set of matching row ids (`_sid IN (...)`, for the
predicates) or a value per row id (`soql_geo_value(key, _sid)`). Many geometries against one
polygon go through an STRtree.

Semantics follow soql-postgres-adapter's SqlFunctionsGeometry.scala (PostGIS):
- within_box(geom, nw_lat, nw_lon, se_lat, se_lon): the box contains the geometry's bounding box
  (`ST_MakeEnvelope(nw_lon, se_lat, se_lon, nw_lat) ~ geom`).
- within_circle(geom, lat, lon, radius_m): every vertex within radius_m meters of the centre
  (`ST_Within(geom, ST_Buffer(point::geography, radius))`), distances on the WGS84 ellipsoid.
- within_polygon(geom, 'MULTIPOLYGON (((lon lat, ...)))'): `ST_Within(geom, polygon)`.
- intersects(a, b): `ST_Intersects`. distance_in_meters(a, b): `ST_Distance(a::geography,
  b::geography)`, the WGS84 geodesic distance (Vincenty), between the nearest points.
- extent(geom): the aggregate bounding box as a multipolygon. convex_hull(geom): the hull of each
  geometry as a multipolygon (a normal function in soql-reference). simplify(geom, tolerance) and
  simplify_preserve_topology: ST_Simplify. num_points(geom): ST_NPoints.
Arguments other than geo columns, WKT text and number literals are refused (400, not supported).
"""

from __future__ import annotations

import orjson

from pipeline.portal.errors import bad_request
from pipeline.portal.soql_expr import Expr, is_geo, mismatch, no_such_function, unsupported

FUNCTIONS = {
    "within_box": 5,
    "within_circle": 4,
    "within_polygon": 2,
    "intersects": 2,
    "distance_in_meters": 2,
    "extent": 1,
    "convex_hull": 1,
    "simplify": 2,
    "simplify_preserve_topology": 2,
    "num_points": 1,
}
_MULTI = {"Point": "MultiPoint", "LineString": "MultiLineString", "Polygon": "MultiPolygon"}
_GEOJSON = {
    "point": "Point",
    "multipoint": "MultiPoint",
    "line": "LineString",
    "multiline": "MultiLineString",
    "polygon": "Polygon",
    "multipolygon": "MultiPolygon",
    "location": "Point",
}


def compile_call(c, name: str, args: list) -> Expr:
    if len(args) != FUNCTIONS[name]:
        raise no_such_function(name, len(args))
    try:
        import shapely  # noqa: F401
    except ImportError:
        raise unsupported(f"{name}() without shapely (pip install 'route-etl[geo]')", function=name) from None
    compiled = [c.compile(a) for a in args]
    pair = name in ("intersects", "within_polygon", "distance_in_meters")
    numbers = [] if pair else [_constant_number(c, name, e) for e in compiled[1:]]
    if pair:
        a, b = (_operand(name, e) for e in compiled)
        if a[0] == b[0] == "const":
            raise unsupported(f"{name}() of two literal geometries", function=name)
    else:
        a, b = _operand(name, compiled[0]), None
        if a[0] != "col":
            raise unsupported(f"{name}() on a literal geometry", function=name)
    if name == "within_polygon" and b[0] == "const" and b[1].geom_type not in ("Polygon", "MultiPolygon"):
        raise mismatch(name, Expr("", "text", soql=b[1].geom_type.lower()))
    if name == "extent":
        loc = int(a[1].type == "location")
        return Expr(
            f"soql_extent({a[1].sql}, {loc})", "json", agg=True, soql="multipolygon", ctype=_ctype("multipolygon")
        )
    key = f"g{len(c.jobs)}"
    job = _Job(key, name, a, b, numbers, c.ds.table)
    c.jobs.append(job)
    cols = [o[1] for o in (a, b) if o is not None and o[0] == "col"]
    free = frozenset().union(*(e.free for e in cols))
    nulls = " OR ".join(f"{e.sql} IS NULL" for e in cols)
    if name in ("within_box", "within_circle", "within_polygon", "intersects"):
        c.params[key] = "[]"
        sql = f"(_sid IN (SELECT value FROM json_each(:{key})))"
        return Expr(f"(CASE WHEN {nulls} THEN NULL ELSE {sql} END)" if nulls else sql, "bool", free=free)
    sql = f"soql_geo_value('{key}', _sid)"
    if name in ("distance_in_meters", "num_points"):
        return Expr(sql, "number", free=free)
    out = "multipolygon" if name == "convex_hull" else a[1].type
    if out == "location":
        out = "point"
    job.out = out
    return Expr(sql, "json", free=free, soql=out, ctype=_ctype(out))


def _ctype(name):
    from pipeline.portal.wire import TYPES

    return TYPES[name]


def _operand(name, e: Expr):
    if e.literal is not None and e.literal[0] == "text":
        import shapely

        try:
            geom = shapely.from_wkt(e.literal[1])
        except shapely.errors.GEOSException:
            geom = None
        if geom is None or geom.is_empty:
            raise bad_request(
                "query.soql.type-mismatch",
                f"'{e.literal[1][:100]}' is not well-known text (WKT) geometry",
                function=name,
            )
        return ("const", geom)
    if e.col is not None and is_geo(e):
        return ("col", e)
    if is_geo(e):
        raise unsupported(f"{name}() on a computed geometry; give it a column or WKT text", function=name)
    raise mismatch(name, e)


def _constant_number(c, name, e: Expr) -> float:
    if e.literal is not None:
        try:
            return float(e.literal[1])
        except (TypeError, ValueError):
            raise mismatch(name, e) from None
    if e.kind in ("number", "double"):
        raise unsupported(f"{name}() with arguments other than number literals", function=name)
    raise mismatch(name, e)


# ---- computing, when the query runs ------------------------------------------------------------


class _Job:
    def __init__(self, key, name, a, b, numbers, table):
        self.key, self.name, self.a, self.b, self.numbers, self.table = key, name, a, b, numbers, table
        self.out = None

    def run(self, conn, params: dict, values: dict) -> None:
        import shapely

        try:
            self._run(conn, params, values)
        except (shapely.errors.GEOSException, ValueError) as exc:
            raise bad_request("query.compiler.malformed", f"Could not compute {self.name}(): {exc}") from None

    def _run(self, conn, params: dict, values: dict) -> None:
        import numpy as np
        import shapely

        a, b = self.a, self.b
        if a[0] == "col" and b is not None and b[0] == "col":
            sa, ga = _load(conn, self.table, a[1])
            sb, gb = _load(conn, self.table, b[1])
            sids, ia, ib = np.intersect1d(sa, sb, return_indices=True)
            ga, gb = ga[ia], gb[ib]
        elif a[0] == "col":
            sids, ga = _load(conn, self.table, a[1])
            gb = None if b is None else b[1]
        else:  # a literal first, a column second: the symmetric functions swap them
            sids, ga = _load(conn, self.table, b[1])
            gb = a[1]
        n = self.numbers
        name = self.name
        if name == "within_box":
            nw_lat, nw_lon, se_lat, se_lon = n
            box = shapely.bounds(ga)
            mask = (
                (box[:, 0] >= min(nw_lon, se_lon))
                & (box[:, 2] <= max(nw_lon, se_lon))
                & (box[:, 1] >= min(nw_lat, se_lat))
                & (box[:, 3] <= max(nw_lat, se_lat))
            )
            params[self.key] = _sid_list(sids[mask])
        elif name == "within_circle":
            lat, lon, radius = n
            coords, index = shapely.get_coordinates(ga, return_index=True)
            far = np.full(len(ga), -np.inf)
            np.maximum.at(far, index, geodesic(coords[:, 0], coords[:, 1], lon, lat))
            params[self.key] = _sid_list(sids[(far <= radius) & ~shapely.is_missing(ga)])
        elif name in ("within_polygon", "intersects"):
            predicate = "contains" if name == "within_polygon" else "intersects"
            if isinstance(gb, np.ndarray):
                mask = shapely.within(ga, gb) if name == "within_polygon" else shapely.intersects(ga, gb)
                params[self.key] = _sid_list(sids[mask])
            elif name == "within_polygon" and a[0] == "const":
                params[self.key] = _sid_list(sids[shapely.within(gb, ga)])
            else:
                tree = shapely.STRtree(ga)
                params[self.key] = _sid_list(sids[np.sort(tree.query(gb, predicate=predicate))])
        elif name == "distance_in_meters":
            values[self.key] = _present(sids, distances(ga, gb))
        elif name == "num_points":
            counts = shapely.get_num_coordinates(ga).astype(float)
            values[self.key] = _present(sids, np.where(shapely.is_missing(ga), np.nan, counts))
        else:
            if name == "convex_hull":
                out = shapely.convex_hull(ga)
            else:
                out = shapely.simplify(ga, n[0], preserve_topology=name == "simplify_preserve_topology")
            values[self.key] = dict(zip(sids.tolist(), (_as(self.out, g) for g in shapely.to_geojson(out).tolist())))


def _as(soql_type: str, text):
    """A computed geometry as GeoJSON text of the expected type (a part-less result is null)."""
    if text is None:
        return None
    obj = orjson.loads(text)
    want = _GEOJSON[soql_type]
    if obj["type"] == want:
        return text if obj["coordinates"] else None
    if _MULTI.get(obj["type"]) == want:
        return orjson.dumps({"type": want, "coordinates": [obj["coordinates"]]}).decode()
    return None  # a hull that collapsed to a point or a line, or an emptied geometry


def _present(sids, numbers) -> dict:
    """{row id: value}, leaving out the rows whose geometry could not be read (NaN)."""
    import numpy as np

    keep = ~np.isnan(numbers)
    return dict(zip(sids[keep].tolist(), numbers[keep].tolist()))


def _sid_list(sids) -> str:
    return orjson.dumps(sids.tolist()).decode()


_POINT_XY = r'"coordinates":\[(?P<x>[^,\]]+),(?P<y>[^,\]]+)'
_LOCATION_XY = r'"latitude":"(?P<y>[^"]+)","longitude":"(?P<x>[^"]+)"'


def _load(conn, table, e: Expr):
    """(row ids, shapely geometries) of one geo column's non-null values (a location without
    coordinates is left out)."""
    import numpy as np
    import shapely

    from pipeline.portal.storage import quote

    col = e.sql
    rows = conn.execute(f"SELECT _sid, {col} FROM {quote(table)} WHERE {col} IS NOT NULL ORDER BY _sid").fetchall()
    if not rows:
        return np.array([], dtype=np.int64), np.array([], dtype=object)
    sids, texts = zip(*rows)
    sids = np.array(sids, dtype=np.int64)
    if e.type in ("point", "location"):
        found = _xy(texts, _POINT_XY if e.type == "point" else _LOCATION_XY)
        if found is not None:
            keep, xs, ys = found
            return sids[keep], shapely.points(xs[keep], ys[keep])
    if e.type == "location":
        pairs = [orjson.loads(t) for t in texts]
        keep = np.array(["latitude" in o and "longitude" in o for o in pairs], dtype=bool)
        xs = np.array([float(o["longitude"]) if k else 0.0 for o, k in zip(pairs, keep)])
        ys = np.array([float(o["latitude"]) if k else 0.0 for o, k in zip(pairs, keep)])
        return sids[keep], shapely.points(xs[keep], ys[keep])
    return sids, shapely.from_geojson(np.array(texts, dtype=object), on_invalid="ignore")


def _xy(texts, pattern):
    """Coordinates of points (or locations) read from their canonical JSON text in Arrow, about
    ten times faster than parsing GeoJSON; None when some text is not in the expected form."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        parts = pc.extract_regex(pa.array(texts, pa.string()), pattern)
        xs = pc.cast(parts.field("x"), pa.float64()).to_numpy(zero_copy_only=False)
        ys = pc.cast(parts.field("y"), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    keep = ~(np.isnan(xs) | np.isnan(ys))
    if pattern == _POINT_XY and not keep.all():
        return None  # a point's text always has its coordinates: something unexpected, parse it
    return keep, xs, ys


# ---- distances on the WGS84 ellipsoid -----------------------------------------------------------

_A = 6378137.0
_F = 1 / 298.257223563
_B = _A * (1 - _F)
_MEAN_RADIUS = 6371008.8


def distances(ga, gb):
    """Meters between the nearest points of each geometry in `ga` and `gb` (an array or one)."""
    import numpy as np
    import shapely

    out = np.full(len(ga), np.nan)
    lines = shapely.shortest_line(ga, gb)  # None where either geometry could not be read
    found = ~shapely.is_missing(lines)
    if found.any():
        coords = shapely.get_coordinates(lines[found]).reshape(-1, 2, 2)
        out[found] = geodesic(coords[:, 0, 0], coords[:, 0, 1], coords[:, 1, 0], coords[:, 1, 1])
    return out


def geodesic(lon1, lat1, lon2, lat2):
    """Vincenty's inverse formula on WGS84, vectorised; haversine where it does not converge
    (nearly antipodal points)."""
    import numpy as np

    lon1, lat1, lon2, lat2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lon1, lat1, lon2, lat2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        L = np.radians(lon2 - lon1)
        u1 = np.arctan((1 - _F) * np.tan(np.radians(lat1)))
        u2 = np.arctan((1 - _F) * np.tan(np.radians(lat2)))
        su1, cu1, su2, cu2 = np.sin(u1), np.cos(u1), np.sin(u2), np.cos(u2)
        lam = L.copy()
        converged = np.zeros(L.shape, dtype=bool)
        for _ in range(200):
            sl, cl = np.sin(lam), np.cos(lam)
            ss = np.sqrt((cu2 * sl) ** 2 + (cu1 * su2 - su1 * cu2 * cl) ** 2)
            cs = su1 * su2 + cu1 * cu2 * cl
            sigma = np.arctan2(ss, cs)
            sa = np.where(ss == 0, 0.0, cu1 * cu2 * sl / np.where(ss == 0, 1, ss))
            c2a = 1 - sa**2
            c2sm = np.where(c2a == 0, 0.0, cs - 2 * su1 * su2 / np.where(c2a == 0, 1, c2a))
            C = _F / 16 * c2a * (4 + _F * (4 - 3 * c2a))
            previous = lam
            lam = L + (1 - C) * _F * sa * (sigma + C * ss * (c2sm + C * cs * (-1 + 2 * c2sm**2)))
            converged = np.abs(lam - previous) < 1e-12
            if converged.all():
                break
        u_sq = c2a * (_A**2 - _B**2) / _B**2
        big_a = 1 + u_sq / 16384 * (4096 + u_sq * (-768 + u_sq * (320 - 175 * u_sq)))
        big_b = u_sq / 1024 * (256 + u_sq * (-128 + u_sq * (74 - 47 * u_sq)))
        ds = (
            big_b
            * ss
            * (c2sm + big_b / 4 * (cs * (-1 + 2 * c2sm**2) - big_b / 6 * c2sm * (-3 + 4 * ss**2) * (-3 + 4 * c2sm**2)))
        )
        s = _B * big_a * (sigma - ds)
    if not converged.all():
        p1, p2 = np.radians(lat1), np.radians(lat2)
        h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
        s = np.where(converged, s, 2 * _MEAN_RADIUS * np.arcsin(np.sqrt(np.minimum(h, 1))))
    return s


# ---- functions SQLite calls ---------------------------------------------------------------------


class Extent:
    """extent(geom): the bounding box of a group's geometries, as a multipolygon."""

    def __init__(self):
        self.texts, self.location = [], False

    def step(self, value, location):
        if value is not None:
            self.texts.append(value)
            self.location = bool(location)

    def finalize(self):
        import numpy as np
        import shapely

        if not self.texts:
            return None
        if self.location:
            objs = [orjson.loads(t) for t in self.texts]
            pts = [(float(o["longitude"]), float(o["latitude"])) for o in objs if "latitude" in o]
            if not pts:
                return None
            geoms = shapely.points(np.array(pts))
        else:
            geoms = shapely.from_geojson(np.array(self.texts, dtype=object), on_invalid="ignore")
        x0, y0, x1, y1 = (float(v) for v in shapely.total_bounds(geoms))
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return orjson.dumps({"type": "MultiPolygon", "coordinates": [[ring]]}).decode()


def register(conn, values: dict) -> None:
    """The geo functions SQLite calls for this query (`values`: each job's value per row id)."""
    conn.create_function("soql_geo_value", 2, lambda key, sid: values.get(key, {}).get(sid), deterministic=True)
    conn.create_aggregate("soql_extent", 2, Extent)
