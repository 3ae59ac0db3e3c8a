"""Exports of a dataset's rows: `/api/views/{4x4}/rows.csv` and `rows.json` (Socrata's downloads).

rows.csv is what "Export > CSV" gives: a header of the columns' display names, then every row in
:id order, with floating timestamps as `MM/DD/YYYY hh:mm:ss AM`, checkboxes as `true`/`false`,
geometries as WKT and locations as `address (lat, lon)`. rows.json is the legacy SODA 1 shape:
`{"meta": {"view": ...}, "data": [[sid, id, position, created_at, created_meta, updated_at,
updated_meta, meta, cell, ...], ...]}`, with the cells as SODA 2 reads them. rows.xml and other
formats are not supported by the local portal (400).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

import orjson

from pipeline.portal import rowids, storage
from pipeline.portal.errors import bad_request
from pipeline.portal.http import JSON, Request, Response
from pipeline.portal.storage import quote
from pipeline.portal.wire import column_type

BATCH = 20_000


def _batches(conn, ds: storage.Dataset, system: bool = False):
    phys = ["_sid", "_created", "_updated"] if system else []
    phys += [c.phys for c in ds.columns]
    if not phys:
        return
    cursor = conn.execute(f"SELECT {', '.join(quote(p) for p in phys)} FROM {quote(ds.table)} ORDER BY _sid")
    while True:
        rows = cursor.fetchmany(BATCH)
        if not rows:
            return
        yield rows


def _us_timestamp(text: str) -> str:
    moment = datetime.fromisoformat(text.rstrip("Z")[:19])
    return moment.strftime("%m/%d/%Y %I:%M:%S %p")


def rows_csv(conn, ds: storage.Dataset) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.name for c in ds.columns])
    types = [column_type(c.type_name) for c in ds.columns]
    for rows in _batches(conn, ds):
        columns = []
        for t, values in zip(types, zip(*rows)):
            if t.kind in ("float_ts", "fixed_ts"):
                columns.append(["" if v is None else _us_timestamp(v) for v in values])
            else:
                columns.append(t.cell(list(values)))
        writer.writerows(zip(*columns))
    return out.getvalue().encode()


def rows_json(conn, ds: storage.Dataset, view: dict) -> bytes:
    types = [column_type(c.type_name) for c in ds.columns]
    data = []
    for rows in _batches(conn, ds, system=True):
        sids, created, updated, *cells = (list(x) for x in zip(*rows))
        wire = [t.wire(values) for t, values in zip(types, cells)]
        for i, sid in enumerate(sids):
            data.append([rowids.encode(sid), sid, i, created[i], None, updated[i], None, "{ }"] + [w[i] for w in wire])
    return orjson.dumps({"meta": {"view": view}, "data": data})


def export(req: Request, fourfour: str, ext: str, view_json) -> Response:
    """The handler of rows.{ext}; `view_json` makes the view JSON of rows.json's meta."""
    with req.portal.store.read() as conn:
        ds = storage.require(conn, fourfour)
        req.check_read(ds)
        if ext == "csv":
            body = rows_csv(conn, ds)
            return Response(
                200,
                body,
                "text/csv; charset=utf-8",
                {"Content-Disposition": f'attachment; filename="{fourfour}.csv"'},
            )
        if ext == "json":
            return Response(200, rows_json(conn, ds, view_json(ds)), JSON)
    raise bad_request("unsupported", f"The local portal does not support rows.{ext} exports; use rows.csv or rows.json")
