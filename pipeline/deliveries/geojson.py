"""The geojson delivery: a GeoJSON FeatureCollection file, written atomically like the other files
(files.py's AtomicFile: a temporary file renamed into place when every target succeeded).

Features are streamed: each chunk's geometries are parsed (shapely, vectorised) and its other
columns written as the properties (polars' JSON), one feature a line, so memory holds one chunk.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from pipeline.basics.errors import RunFailed
from pipeline.basics.guards import SHRINK_OPTIONS
from pipeline.basics.plugins import delivery
from pipeline.deliveries.base import DeliveryResult
from pipeline.deliveries.files import COMMON, AtomicFile, count_lines

if TYPE_CHECKING:
    import pandas as pd

# numpy, Arrow and polars are imported where rows are written: planning a route loads this
# delivery without them.

EXTRA = "the geojson delivery needs the geo extra: pip install 'route-etl[geo]' (shapely)"


@delivery(
    {
        "type": "object",
        "required": ["path"],
        "additionalProperties": False,
        "properties": {
            "path": COMMON["path"],
            "geometry_column": {
                "type": "string",
                "minLength": 1,
                "default": "geometry",
                "description": "The column holding each feature's geometry (WKT or GeoJSON text).",
            },
            **SHRINK_OPTIONS,
        },
    }
)
class GeojsonDelivery(AtomicFile):
    """Write the rows to a GeoJSON FeatureCollection (one feature a line), atomically.

    The geometry column (WKT or GeoJSON text, longitude first, as the geo source and the point
    rule make it) becomes each feature's geometry; every other column goes in its properties.
    A row whose geometry is not WKT or GeoJSON is rejected; a null geometry stays null.

    Example:

        deliver:
          geojson: {path: out/parcels.geojson, geometry_column: geometry}
    """

    def __init__(self, options: dict, ctx):
        super().__init__(options, ctx)
        self.geometry_column = options.get("geometry_column", "geometry")
        self.rejected = 0
        self._first = True

    def open(self, columns: list[str]) -> None:
        try:
            import shapely  # noqa: F401
        except ImportError:
            raise RunFailed(EXTRA) from None
        if self.geometry_column not in columns:
            raise RunFailed(
                f"the geojson delivery writes column '{self.geometry_column}' as the features' geometry, and "
                f"the rows have no such column (they have {', '.join(map(str, columns)) or 'none'}); "
                f"name it with geometry_column:"
            )
        super().open(columns)

    def _start(self) -> None:
        self._out.write(b'{"type":"FeatureCollection","features":[\n')

    def write(self, chunk: pd.DataFrame) -> None:
        import numpy as np
        import polars as pl
        import pyarrow as pa
        import shapely

        from pipeline.basics.textformat import iso_timestamps, to_arrow

        if list(chunk.columns) != self.columns:
            super().write(chunk)  # the same message as the other files
        text = to_arrow(chunk[[self.geometry_column]]).column(0).combine_chunks()
        text = text.cast(pa.string()) if not pa.types.is_string(text.type) else text
        values = text.to_numpy(zero_copy_only=False)
        is_json = np.array([v is not None and v.lstrip().startswith("{") for v in values], dtype=bool)
        geoms = np.empty(len(values), dtype=object)
        if (~is_json).any():
            geoms[~is_json] = shapely.from_wkt(values[~is_json], on_invalid="ignore")
        if is_json.any():
            geoms[is_json] = shapely.from_geojson(values[is_json], on_invalid="ignore")
        bad = np.array([v is not None for v in values], dtype=bool) & shapely.is_missing(geoms)
        if bad.any():
            self.rejected += self.ctx.reject(
                chunk[bad], "not a geometry in WKT or GeoJSON text", column=self.geometry_column
            )
            chunk, geoms = chunk[~bad], geoms[~bad]
        self.rows += len(chunk)
        if self._out is None or not len(chunk):
            return
        shapes = shapely.to_geojson(geoms)
        props = iso_timestamps(to_arrow(chunk.drop(columns=[self.geometry_column])))
        if props.num_columns:
            buf = io.BytesIO()
            pl.from_arrow(props, rechunk=False).write_ndjson(buf)
            properties = buf.getvalue().splitlines()
        else:
            properties = [b"{}"] * len(chunk)
        lines = [
            b'{"type":"Feature","properties":' + p + b',"geometry":' + (g.encode() if g else b"null") + b"}"
            for p, g in zip(properties, shapes)
        ]
        try:
            self._out.write((b"" if self._first else b",\n") + b",\n".join(lines))
        except OSError as exc:
            raise RunFailed(f"writing {self.path} failed: {exc.strerror}") from None
        self._first = False

    def close(self) -> DeliveryResult:
        result = super().close()
        result.rejected = self.rejected
        return result

    def prepare_commit(self) -> None:
        if self._out is not None:
            self._out.write(b"\n]}\n")
        super().prepare_commit()

    def _header_lines(self) -> int:
        return 2  # the FeatureCollection's first and last lines; a feature a line between

    def _count_rows(self) -> int:
        try:
            import pyogrio

            return int(pyogrio.read_info(str(self.path))["features"])
        except Exception:  # noqa: BLE001 - not a file GDAL reads: count its lines
            return max(0, count_lines(self.path) - 2)
