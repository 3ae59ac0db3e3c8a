"""The geo source: features of a GeoJSON, shapefile, KML/KMZ, GeoPackage or File Geodatabase layer.

Files are read with pyogrio (GDAL in its wheel) as a stream of Arrow batches of chunk_rows
features, so memory does not grow with the file. Each attribute becomes a text column, as in every
source that does not declare types. The geometry becomes one more text column (`geometry` unless
`geometry_column` says otherwise) holding WKT in WGS 84, longitude first: `POINT (-72.68 41.76)`,
the in-route form the point rule makes and the Socrata delivery sends. Geometries are reprojected
from the layer's own coordinate system, or from `crs` for a file that has none (a shapefile
without its .prj); Z values are dropped (Socrata's geometries are 2D); an empty geometry is null.

A geometry that is not valid (OGC rules: a self-intersecting ring, a ring not closed) is rejected
with its feature number and GEOS's reason, or repaired with make_valid when `repair: true` (a
polygon stays polygonal). The index is the feature's position in the layer (1-based), so the
rejects file's line is that number. geopandas is not needed; the geo extra is pyogrio, pyproj and
shapely, imported only when a geo source runs.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.basics.dtypes import TEXT, frame_from_arrow
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import source
from pipeline.sources.base import Source
from pipeline.sources.pick import FILE_OPTIONS, FileSet

_NAME = {"type": "string", "minLength": 1}
EXTRA = "the geo source needs the geo extra: pip install 'route-etl[geo]' (pyogrio, pyproj, shapely)"

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {
            **_NAME,
            "description": "a .geojson, .shp (or its folder, or a .zip of it), .kml, .kmz, .gpkg or "
            ".gdb folder; relative to the route file; or a URL of one file: https://, sftp://, s3://, "
            "ftp://, zip://member::URL (see docs/files.md)",
        },
        **FILE_OPTIONS,
        "layer": {**_NAME, "description": "the layer to read, by name (needed when the file has several)"},
        "crs": {
            **_NAME,
            "description": "the coordinate system of a file that declares none, e.g. EPSG:2234",
        },
        "geometry_column": {**_NAME, "default": "geometry", "description": "the column that holds the WKT"},
        "repair": {
            "type": "boolean",
            "default": False,
            "description": "repair invalid geometries (make_valid) instead of rejecting them",
        },
        "encoding": {**_NAME, "description": "the attributes' encoding, for a shapefile without its .cpg"},
    },
}


def check_options(options: dict, ctx) -> dict:
    """Plan-time check (`route validate`): the constructor's checks, nothing read."""
    GeoSource(options, ctx)
    return options


@source(OPTIONS_SCHEMA, bind=check_options)
class GeoSource(Source):
    """Read the features of a GIS file: GeoJSON, shapefile (.shp, its folder or a .zip), KML/KMZ,
    GeoPackage or File Geodatabase (.gdb).

    Attributes become text columns; the geometry becomes a WKT column in WGS 84 (longitude,
    latitude), reprojected from the file's coordinate system or from `crs` when the file has none.
    Invalid geometries are rejected with their feature number and the reason, or repaired with
    `repair: true`. A socrata target sends the column as its point, line or polygon type.

    Example:

    ```yaml
    source:
      geo:
        path: data/parcels.zip           # a zipped shapefile
        layer: parcels                   # by name; needed when the file has several layers
        crs: EPSG:2234                   # only for a file without a coordinate system (.prj)
        geometry_column: the_geom        # default: geometry
        repair: true                     # make invalid polygons valid instead of rejecting them
    ```
    """

    plan_columns = "local"  # columns() reads the layer's definition, not its features

    def __init__(self, options: dict, ctx):
        super().__init__(options, ctx)
        self.path = options["path"]
        # A remote file (or a glob, picked) is copied here first: GDAL reads a local file.
        self.fileset = FileSet(options, ctx, "geo source", many=False, glob_hint="*.geojson")
        self._download = contextlib.ExitStack()
        self.layer = options.get("layer")
        self.geometry_column = options.get("geometry_column", "geometry")
        self.repair = bool(options.get("repair", False))
        self.encoding = options.get("encoding")
        self.declared = None
        if options.get("crs"):
            try:
                from pipeline.sources.geo_shapes import parse_crs
            except ImportError:
                raise OptionError(EXTRA) from None
            try:
                self.declared = parse_crs(options["crs"])
            except ValueError:
                raise OptionError(
                    f"crs '{options['crs']}' is not a coordinate system pyproj knows; write it as EPSG:2234",
                    ("crs",),
                ) from None
        self._gen = None

    # -- the contract ------------------------------------------------------------------------

    def columns(self) -> list[str] | None:
        if self._fetched:
            return None  # a remote file is not downloaded only to check its columns
        info = self._info(self._open_path())
        return [*info["fields"], self.geometry_column]

    @property
    def _fetched(self) -> bool:
        return self.fileset.location.remote or self.fileset.globbed

    @property
    def details(self) -> dict:
        """The file read (and the one picked), for the run report."""
        return self.fileset.details

    def on_delivered(self) -> None:
        self.fileset.after_read()

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        self._download.close()

    def chunks(self) -> Iterator[pd.DataFrame]:
        self._gen = self._read()
        return self._gen

    # -- reading -----------------------------------------------------------------------------

    def _read(self) -> Iterator[pd.DataFrame]:
        import pyogrio

        from pipeline.sources import geo_shapes as shapes

        where = self._open_path()
        info = self._info(where)
        project = shapes.Reprojection(self._crs(info))
        names = [str(n) for n in info["fields"]]
        size = max(1, int(self.ctx.run.chunk_rows or 50_000))
        number, produced = 1, False
        try:
            with pyogrio.open_arrow(
                where, layer=self.layer, encoding=self.encoding, batch_size=size, use_pyarrow=True
            ) as (meta, reader):
                geometry = _geometry_field(reader.schema, meta.get("geometry_name"))
                for batch in reader:
                    if not batch.num_rows:
                        continue
                    index = pd.RangeIndex(number, number + batch.num_rows)
                    number += batch.num_rows
                    chunk = self._chunk(batch, names, geometry, index, project, shapes)
                    produced = True
                    yield chunk
        except _gdal_errors() as exc:
            raise RunFailed(f"geo source: cannot read {self.path}: {_first_line(exc)}") from None
        if not produced:
            yield pd.DataFrame({n: pd.Series([], dtype=TEXT) for n in [*names, self.geometry_column]})

    def _chunk(self, batch: pa.RecordBatch, names, geometry, index, project, shapes) -> pd.DataFrame:
        columns = {n: shapes.text(batch.column(n)) for n in names}
        geoms = shapes.geometries(batch.column(geometry))
        why: dict[int, str] = {}  # position in the batch -> why the row is rejected
        bad = shapes.invalid(geoms)
        if bad.any() and self.repair:
            geoms[bad] = shapes.repaired(geoms[bad])
            self.ctx.log.info("geo source: repaired %d invalid geometries", int(bad.sum()))
        elif bad.any():
            for k, reason in zip(bad.nonzero()[0], shapes.reasons(geoms[bad])):
                why[int(k)] = f"invalid geometry (feature {index[k]}): {reason}"
        # An invalid geometry goes to the rejects file as the file has it, in its own coordinates.
        original = shapes.wkt(geoms[bad]).to_pylist() if why else []
        geoms = project(geoms)
        for k in shapes.unprojectable(geoms).nonzero()[0]:
            why.setdefault(
                int(k),
                f"feature {index[k]}: its coordinates, read as {shapes.crs_name(project.crs)}, give no valid "
                f"longitude and latitude; check the file's coordinate system (or crs)",
            )
        text = shapes.wkt(geoms)
        if original:
            values = text.to_numpy(zero_copy_only=False).copy()
            values[bad] = original
            text = pa.array(values, pa.string())
        columns[self.geometry_column] = text
        chunk = frame_from_arrow(pa.table(columns), index=index)
        chunk.attrs["source"] = self.path
        if not why:
            return chunk
        rejected = np.zeros(len(chunk), dtype=bool)
        rejected[list(why)] = True
        out = chunk[rejected]
        self.ctx.reject(out, pd.Series([why[k] for k in sorted(why)], index=out.index), self.geometry_column)
        return chunk[~rejected]

    # -- the file ----------------------------------------------------------------------------

    def _open_path(self) -> str:
        """What GDAL opens: the path, or a /vsizip/ path into a zipped shapefile or geodatabase."""
        try:
            import pyogrio  # noqa: F401
        except ImportError:
            raise RunFailed(EXTRA) from None
        if self._fetched:
            found = self.fileset.files()[0]
            self.path = found.shown
            resolved = Path(self._download.enter_context(found.local_copy()))
        else:
            resolved = self.ctx.resolve_path(self.path)
        if not resolved.exists():
            where = "" if Path(self.path).expanduser().is_absolute() else f" (looked in {resolved.parent})"
            raise RunFailed(f"geo source: file not found: {self.path}{where}")
        if resolved.is_file() and resolved.suffix.lower() == ".zip":
            return self._in_zip(resolved)
        return str(resolved)

    def _in_zip(self, resolved: Path) -> str:
        try:
            with zipfile.ZipFile(resolved) as z:
                members = z.namelist()
        except zipfile.BadZipFile:
            raise RunFailed(f"geo source: {self.path} is not a readable .zip file") from None
        gdb = sorted({m.split(".gdb/")[0] + ".gdb" for m in members if ".gdb/" in m})
        shp = sorted(m for m in members if m.lower().endswith(".shp"))
        inner = {m.lower().rsplit(".", 1)[-1] for m in members if "." in m.rsplit("/", 1)[-1]}
        if len(gdb) == 1 and not shp:
            return f"/vsizip/{resolved}/{gdb[0]}"
        if len(shp) == 1 and not gdb:
            return f"/vsizip/{resolved}/{shp[0]}"
        if shp or gdb:
            return f"/vsizip/{resolved}"  # several layers: `layer` picks one
        raise RunFailed(
            f"geo source: {self.path} holds no shapefile (.shp) or geodatabase (.gdb); it has "
            f"{', '.join(sorted(inner)) or 'no files'}"
        )

    def _info(self, where: str) -> dict:
        import pyogrio

        try:
            layers = [str(name) for name, _ in pyogrio.list_layers(where)]
        except _gdal_errors() as exc:
            raise RunFailed(f"geo source: cannot open {self.path} as a GIS file: {_first_line(exc)}") from None
        if self.layer is None and len(layers) > 1:
            raise RunFailed(
                f"geo source: {self.path} has {len(layers)} layers ({', '.join(layers)}); say which to read with layer:"
            )
        if self.layer is not None and self.layer not in layers:
            raise RunFailed(
                f"geo source: {self.path} has no layer '{self.layer}'; its layers are {', '.join(layers) or '(none)'}"
            )
        try:
            info = pyogrio.read_info(where, layer=self.layer, encoding=self.encoding)
        except _gdal_errors() as exc:
            raise RunFailed(f"geo source: cannot read {self.path}: {_first_line(exc)}") from None
        if info.get("geometry_type") in (None, "None") and not info.get("geometry_name"):
            raise RunFailed(f"geo source: layer '{self.layer or layers[0]}' of {self.path} has no geometry")
        fields = [str(f) for f in info["fields"]]
        if self.geometry_column in fields:
            raise RunFailed(
                f"geo source: {self.path} has an attribute named '{self.geometry_column}', the name of the "
                f"geometry column; give the geometry another name with geometry_column:"
            )
        return {"fields": fields, "crs": info.get("crs")}

    def _crs(self, info: dict):
        from pipeline.sources.geo_shapes import crs_name, parse_crs

        own = parse_crs(info["crs"]) if info.get("crs") else None
        if own is None and self.declared is None:
            raise RunFailed(
                f"geo source: {self.path} does not say its coordinate system (a shapefile without its "
                f".prj?); give it with crs:, e.g. crs: EPSG:2234"
            )
        if own is not None and self.declared is not None and not own.equals(self.declared, ignore_axis_order=True):
            raise RunFailed(
                f"geo source: {self.path} is in {crs_name(own)}, but crs says {crs_name(self.declared)}; "
                f"crs is for files that declare none: remove it"
            )
        return own or self.declared


def _geometry_field(schema: pa.Schema, named: str | None) -> str:
    """The name of the WKB geometry column of GDAL's Arrow stream (wkb_geometry, geom, ...)."""
    for f in schema:
        if (f.metadata or {}).get(b"ARROW:extension:name") == b"geoarrow.wkb":
            return f.name
    return named or "wkb_geometry"


def _gdal_errors() -> tuple[type[Exception], ...]:
    """What pyogrio raises for a file GDAL cannot read (a broken file, a bad encoding name)."""
    from pyogrio import errors

    return (errors.DataSourceError, errors.DataLayerError, errors.FieldError, errors.GeometryError, LookupError)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
