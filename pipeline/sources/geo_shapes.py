"""What the geo source does to one batch of features: attributes to text, geometries checked (or
repaired), reprojected to WGS 84 and written as WKT.

Every step is vectorised over the batch with shapely 2 and pyproj; only the rare values Arrow
cannot cast (lists, objects, binary) are turned into text one by one.
"""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

WGS84 = CRS.from_epsg(4326)
# What a repaired geometry may become: its own kind of shape (a polygon stays polygonal).
_DIMENSION = {"Point": 0, "MultiPoint": 0, "LineString": 1, "LinearRing": 1, "MultiLineString": 1}


def parse_crs(text: str) -> CRS:
    """A CRS from what a route writes (EPSG:2234, a WKT or PROJ string); ValueError when unknown."""
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise ValueError(str(exc)) from None


def crs_name(crs: CRS) -> str:
    found = crs.to_authority()
    return f"{found[0]}:{found[1]} ({crs.name})" if found else crs.name


class Reprojection:
    """Coordinates from `crs` to WGS 84 longitude/latitude (always x = longitude)."""

    def __init__(self, crs: CRS):
        self.crs = crs
        self.identity = crs.equals(WGS84, ignore_axis_order=True)
        self.transformer = None if self.identity else Transformer.from_crs(crs, WGS84, always_xy=True)

    def __call__(self, geoms: np.ndarray) -> np.ndarray:
        if self.identity:
            return geoms
        return shapely.transform(geoms, self._xy, interleaved=False)

    def _xy(self, x, y):
        return self.transformer.transform(x, y, errcheck=False)


def geometries(wkb: pa.Array) -> np.ndarray:
    """Shapely geometries (None for null) of a WKB column, without Z."""
    values = wkb.to_numpy(zero_copy_only=False)
    return shapely.force_2d(shapely.from_wkb(values, on_invalid="ignore"))


def invalid(geoms: np.ndarray) -> np.ndarray:
    """A mask of the geometries that are present and not valid (OGC rules)."""
    present = ~shapely.is_missing(geoms)
    out = np.zeros(len(geoms), dtype=bool)
    out[present] = ~shapely.is_valid(geoms[present])
    return out


def reasons(geoms: np.ndarray) -> list[str]:
    """Why each geometry is not valid, as GEOS says it (`Self-intersection[x y]`)."""
    return [str(r) for r in shapely.is_valid_reason(geoms)]


def repaired(geoms: np.ndarray) -> np.ndarray:
    """Valid versions of `geoms`: make_valid keeping the structure (a polygon stays a polygon or
    becomes a multipolygon), then only the parts of the geometry's own dimension."""
    fixed = shapely.make_valid(geoms, method="structure", keep_collapsed=False)
    out = fixed.copy()
    for k, (before, after) in enumerate(zip(geoms, fixed)):
        if after is not None and shapely.get_type_id(after) == 7:  # a GeometryCollection
            dimension = _DIMENSION.get(before.geom_type, 2)
            parts = [p for p in shapely.get_parts(after) if shapely.get_dimensions(p) == dimension]
            out[k] = shapely.union_all(parts) if parts else None
    return out


def unprojectable(geoms: np.ndarray) -> np.ndarray:
    """A mask of geometries with coordinates that did not reproject (infinite or out of range)."""
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    out = np.zeros(len(geoms), dtype=bool)
    if present.any():
        bounds = shapely.bounds(geoms[present])
        finite = np.isfinite(bounds).all(axis=1)
        inside = (bounds[:, 0] >= -180.0000001) & (bounds[:, 2] <= 180.0000001)
        inside &= (bounds[:, 1] >= -90.0000001) & (bounds[:, 3] <= 90.0000001)
        out[present] = ~(finite & inside)
    return out


def wkt(geoms: np.ndarray) -> pa.Array:
    """WKT text (full precision, 2D); null for a missing or empty geometry."""
    text = shapely.to_wkt(geoms, rounding_precision=-1, trim=True, output_dimension=2)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    return pa.array(np.where(empty, None, text), pa.string())


def text(values: pa.Array) -> pa.Array:
    """One attribute column as text, the way the other sources write values: numbers as they read
    (7, 2.5), booleans true/false, dates and date-times in ISO form, lists and objects as JSON."""
    t = values.type
    if pa.types.is_dictionary(t):
        values, t = values.cast(t.value_type), t.value_type
    if pa.types.is_string(t):
        return values
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return values.cast(pa.string())
    if pa.types.is_boolean(t):
        return pc.if_else(values, "true", "false")
    if pa.types.is_timestamp(t):
        iso = pc.replace_substring(values.cast(pa.string()), " ", "T", max_replacements=1)
        return pc.replace_substring_regex(iso, r"\.0+(Z|[+-]\d{2}:?\d{2})?$", r"\1")
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_date(t) or pa.types.is_time(t):
        return values.cast(pa.string())
    if pa.types.is_decimal(t):
        return values.cast(pa.string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.array([None if v is None else v.hex() for v in values.to_pylist()], pa.string())
    return pa.array(
        [None if v is None else orjson.dumps(v, default=str).decode() for v in values.to_pylist()], pa.string()
    )
