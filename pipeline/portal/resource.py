"""The SODA row API, `/resource/{4x4}` (§2): reads with SoQL, upsert, replace, single rows.

All URL forms clients use are accepted: `.json`, `.csv`, `.geojson` and no extension (soda-java,
with `$$version=2.0`). Writes take a JSON array (with or without a Content-Type, as sodapy sends it)
or a CSV body (`Content-Type: text/csv`).
"""

from __future__ import annotations

import csv
import io
import time
from email.utils import formatdate

import orjson

from pipeline.portal import behaviour, query, rows, storage
from pipeline.portal.http import FOURFOUR, JSON, Request, Response, json_response
from pipeline.portal.wire import now_fixed


def _dataset(req: Request, fourfour: str, conn) -> storage.Dataset:
    ds = storage.require(conn, fourfour)
    req.check_read(ds)
    return ds


def read(req: Request, fourfour: str, ext: str | None = None) -> Response:
    params = req.params()
    with req.portal.store.read() as conn:
        ds = _dataset(req, fourfour, conn)
        q = query.build(ds, params)
        names, columns = query.run(conn, q)
    headers = {
        "X-SODA2-Fields": orjson.dumps(names).decode(),
        "X-SODA2-Types": orjson.dumps([o.soql_type for o in q.outputs]).decode(),
        "Last-Modified": formatdate(ds.rows_updated_at, usegmt=True),
    }
    if ext == "csv":
        return Response(200, _csv(q.outputs, names, columns), "text/csv; charset=utf-8", headers)
    if ext == "geojson":
        return Response(200, _geojson(q.outputs, names, columns), "application/vnd.geo+json; charset=utf-8", headers)
    return Response(200, orjson.dumps(query.row_objects(names, query.wire(q, columns))), JSON, headers)


def _csv(outputs, names, columns) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    cells = [o.cells(c) for o, c in zip(outputs, columns)] if columns and columns[0] else []
    if cells:
        writer.writerows(zip(*cells))
    return out.getvalue().encode()


def _geojson(outputs, names, columns) -> bytes:
    columns = [o.wire(c) for o, c in zip(outputs, columns)]
    geo_index = next(
        (
            i
            for i, o in enumerate(outputs)
            if o.expr.col is not None
            and o.expr.col.type.soql in ("point", "multipoint", "line", "multiline", "polygon", "multipolygon")
        ),
        None,
    )
    features = []
    for row in zip(*columns) if columns and columns[0] else []:
        props = {n: v for i, (n, v) in enumerate(zip(names, row)) if v is not None and i != geo_index}
        geometry = row[geo_index] if geo_index is not None else None
        features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return orjson.dumps(
        {
            "type": "FeatureCollection",
            "features": features,
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        }
    )


def read_row(req: Request, fourfour: str, row_id: str) -> Response:
    with req.portal.store.read() as conn:
        ds = _dataset(req, fourfour, conn)
        sid = rows.find_sid(conn, ds, row_id)
        if sid is None:
            raise behaviour.missing_row(fourfour, row_id)
        params = {k: v for k, v in req.params().items() if k in ("$select", "$$exclude_system_fields")}
        q = query.build(ds, params, extra_where="_sid = :rowsid", extra_params={"rowsid": sid})
        names, columns = query.run(conn, q)
    found = query.row_objects(names, query.wire(q, columns))
    return json_response(found[0] if found else {})


def write(req: Request, fourfour: str, ext: str | None = None, replace: bool = False) -> Response:
    req.require_user()
    text = req.content_type in ("text/csv", "application/csv")
    store = req.portal.store
    # Parsing and checking run beside another request's write (SQLite writes without the GIL),
    # one request at a time (LocalPortal.check_lock); only writing takes the write lock.
    with req.portal.check_lock:
        batch = rows.batch_from_csv(req.body) if text else rows.batch_from_json(req.body)
        with store.read() as conn:
            ds = _dataset(req, fourfour, conn)
        prepared = rows.prepare(ds, batch, replace)  # checked whole before anything is written
    with store.write() as conn:
        ds = storage.require(conn, fourfour)
        if ds.signature != prepared.signature:  # the columns changed meanwhile: check again
            prepared = rows.prepare(ds, batch, replace)
        if replace:
            conn.execute(f"DELETE FROM {storage.quote(ds.table)}")
        counts = rows.apply(conn, ds, prepared, now_fixed())
    return json_response(
        behaviour.upsert_response(counts, req.param("$$version")),
        headers={"X-SODA2-Truth-Version": str(int(time.time() * 1000))},
    )


def upsert(req: Request, fourfour: str, ext: str | None = None) -> Response:
    return write(req, fourfour, ext)


def replace(req: Request, fourfour: str, ext: str | None = None) -> Response:
    return write(req, fourfour, ext, replace=True)


def delete_row(req: Request, fourfour: str, row_id: str) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        ds = _dataset(req, fourfour, conn)
        rows.delete_one(conn, ds, row_id)
    return json_response([{"typ": "delete", "id": row_id}])


def routes(router) -> None:
    base = rf"/resource/{FOURFOUR}"
    router.add("GET", rf"{base}(?:\.(?P<ext>json|csv|geojson))?", read)
    router.add("GET", rf"/id/{FOURFOUR}(?:\.(?P<ext>json|csv|geojson))?", read)  # SODA 3's row URL
    router.add("POST", rf"{base}(?:\.(?P<ext>json|csv))?", upsert)
    router.add("PUT", rf"{base}(?:\.(?P<ext>json|csv))?", replace)
    router.add("GET", rf"{base}/(?P<row_id>.+?)(?:\.json)?", read_row)
    router.add("DELETE", rf"{base}/(?P<row_id>.+?)(?:\.json)?", delete_row)
