"""Dataset metadata, `/api/views` (§4): read, create, publish, update, delete, add and drop columns.

The view JSON carries what clients read: `id`, `name`, `columns` (numeric `id`, `fieldName`,
display `name`, `dataTypeName`, `position`), `rowIdentifierColumnId` (and `metadata.rowIdentifier`,
both the id of the row identifier column), `publicationStage`, epoch-second timestamps.
"""

from __future__ import annotations

import zlib

from pipeline.portal import behaviour, storage
from pipeline.portal import metadata as meta
from pipeline.portal.errors import PortalError, bad_request
from pipeline.portal.http import FOURFOUR, Request, Response, json_response

OWNER = {"id": "loca-lusr", "displayName": "Local portal", "screenName": "local"}
_EXTRA_KEYS = ("attribution", "attributionLink", "license", "licenseId", "privateMetadata", "resourceName")


def column_json(c: storage.Column) -> dict:
    return {
        "id": c.id,
        "name": c.name,
        "dataTypeName": c.type_name,
        "description": c.description,
        "fieldName": c.field,
        "position": c.position,
        "renderTypeName": c.type_name,
        "tableColumnId": c.id,
        "format": c.format,
    }


def view_json(ds: storage.Dataset) -> dict:
    metadata = dict(ds.extra.get("metadata") or {})
    out = {
        "id": ds.id,
        "name": ds.name,
        "assetType": "dataset",
        "description": ds.description,
        "category": ds.category,
        "tags": ds.tags,
        "viewType": "tabular",
        "displayType": "table",
        "newBackend": True,
        "publicationStage": ds.stage,
        "publicationAppendEnabled": False,
        "createdAt": ds.created_at,
        "publicationDate": ds.created_at,
        "rowsUpdatedAt": ds.rows_updated_at,
        "viewLastModified": ds.view_updated_at,
        "rowsUpdatedBy": OWNER["id"],
        "tableId": zlib.crc32(ds.id.encode()) % 10**7,
        "provenance": "official",
        "hideFromCatalog": False,
        "downloadCount": 0,
        "viewCount": 0,
        "flags": ["default", "restorable", "restorePossibleForType"],
        "grants": [] if ds.private else [{"inherited": False, "type": "viewer", "flags": ["public"]}],
        "permissions": {"scope": "private" if ds.private else "public"},
        "owner": OWNER,
        "tableAuthor": OWNER,
        "rights": [
            "read",
            "write",
            "add",
            "delete",
            "grant",
            "add_column",
            "remove_column",
            "update_column",
            "update_view",
            "delete_view",
        ],
        "columns": [column_json(c) for c in ds.columns],
        "metadata": metadata,
    }
    for key in _EXTRA_KEYS:
        if key in ds.extra:
            out[key] = ds.extra[key]
    if ds.ri is not None:
        out["rowIdentifierColumnId"] = ds.ri.id
        metadata["rowIdentifier"] = ds.ri.id
    return out


def _readable(req: Request, fourfour: str) -> storage.Dataset:
    with req.portal.store.read() as conn:
        ds = storage.require(conn, fourfour)
    req.check_read(ds)
    return ds


def _signed_in(req: Request) -> bool:
    return bool(req.user) or req.portal.auth.open


def get_view(req: Request, fourfour: str) -> Response:
    return json_response(meta.for_reader(view_json(_readable(req, fourfour)), _signed_in(req)))


def list_views(req: Request) -> Response:
    with req.portal.store.read() as conn:
        datasets = storage.all_datasets(conn)
    signed_in = _signed_in(req)
    return json_response([meta.for_reader(view_json(d), signed_in) for d in datasets if signed_in or not d.private])


def catalog(req: Request) -> Response:
    """A small part of the Discovery API (`/api/catalog/v1`), enough for sodapy's datasets()."""
    with req.portal.store.read() as conn:
        datasets = [d for d in storage.all_datasets(conn) if not d.private]
    offset = req.whole("offset", 0)
    limit = req.whole("limit", 0) or len(datasets)
    results = [
        {
            "resource": {
                "id": d.id,
                "name": d.name,
                "description": d.description,
                "type": "dataset",
                "updatedAt": d.rows_updated_at,
                "columns_field_name": [c.field for c in d.columns],
            },
            "metadata": {"domain": req.headers.get("Host", "")},
            "permalink": f"/d/{d.id}",
        }
        for d in datasets[offset : offset + limit]
    ]
    return json_response({"results": results, "resultSetSize": len(datasets)})


def create_view(req: Request) -> Response:
    user = req.require_user()
    body = req.json_object()
    meta.check_metadata_body(body)
    metadata = dict(body.get("metadata") or {})
    ri = metadata.pop("rowIdentifier", None) or body.get("rowIdentifierColumnId")
    extra = {k: body[k] for k in _EXTRA_KEYS if k in body}
    meta.set_license(extra, body)
    if metadata:
        extra["metadata"] = metadata
    private = body.get("private")
    with req.portal.store.write() as conn:
        ds = storage.create_dataset(
            conn,
            body.get("name"),
            body.get("columns") or [],
            ri,
            body.get("description") or "",
            private=private,
            category=body.get("category"),
            tags=body.get("tags"),
            owner=user,
            extra=extra,
        )
    return json_response(view_json(ds))


def update_view(req: Request, fourfour: str) -> Response:
    req.require_user()
    if req.param("method") == "setPermission":
        value = (req.param("value") or "").lower()
        if value not in ("public", "public.read", "private"):
            raise bad_request("invalid_permission", f"Permission '{value}' is not public.read or private")
        with req.portal.store.write() as conn:
            storage.require(conn, fourfour)
            conn.execute("UPDATE datasets SET private=? WHERE id=?", (int(value == "private"), fourfour))
            storage.touch(conn, fourfour, rows=False)
            ds = storage.load(conn, fourfour)
        return json_response(view_json(ds))
    body = req.json_object()
    meta.check_metadata_body(body)
    with req.portal.store.write() as conn:
        ds = storage.require(conn, fourfour)
        apply_changes(conn, ds, body)
        ds = storage.load(conn, fourfour)
    return json_response(view_json(ds))


def apply_changes(conn, ds: storage.Dataset, body: dict) -> None:
    """Metadata changes from a partial view: each key given replaces the old value."""
    import orjson

    sets = {}
    if "name" in body:
        if not body["name"]:
            raise bad_request("invalid_view", "A dataset needs a name")
        sets["name"] = str(body["name"])
    for key in ("description", "category"):
        if key in body:
            if key == "description":
                sets[key] = "" if body[key] is None else str(body[key])
            else:
                sets[key] = body[key]
    if "tags" in body:
        sets["tags"] = orjson.dumps(list(body["tags"] or [])).decode()
    extra = dict(ds.extra)
    for key in _EXTRA_KEYS:
        if key in body:
            extra[key] = body[key]
    meta.set_license(extra, body)
    ri_given, ri = False, None
    if "metadata" in body and isinstance(body["metadata"], dict):
        metadata = dict(body["metadata"])
        if "rowIdentifier" in metadata:
            ri_given, ri = True, metadata.pop("rowIdentifier")
        extra["metadata"] = metadata
    if "rowIdentifierColumnId" in body:
        ri_given, ri = True, body["rowIdentifierColumnId"]
    sets["extra"] = orjson.dumps(extra).decode()
    assignments = ", ".join(f"{k}=?" for k in sets)
    conn.execute(f"UPDATE datasets SET {assignments} WHERE id=?", (*sets.values(), ds.id))
    if ri_given:
        target = storage.find_column(ds, ri) if ri not in (None, "") else None
        if (target.id if target else None) != ds.ri_id or (ri not in (None, "") and target is None):
            storage.set_row_identifier(conn, ds, ri)
    storage.touch(conn, ds.id, rows=False)


def delete_view(req: Request, fourfour: str) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        storage.delete_dataset(conn, storage.require(conn, fourfour))
    return Response(200, b"")


def publish(req: Request, fourfour: str) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        storage.require(conn, fourfour)
        if req.param("method") != "copy" or not behaviour.WORKING_COPY_IS_SELF:
            conn.execute("UPDATE datasets SET stage='published' WHERE id=?", (fourfour,))
            storage.touch(conn, fourfour, rows=False)
        ds = storage.load(conn, fourfour)
    return json_response(view_json(ds))


def list_columns(req: Request, fourfour: str) -> Response:
    return json_response([column_json(c) for c in _readable(req, fourfour).columns])


def _column(ds: storage.Dataset, column_id: str) -> storage.Column:
    col = storage.find_column(ds, column_id)
    if col is None:
        raise PortalError(404, "not_found", f"Column {column_id} is not in dataset {ds.id}")
    return col


def get_column(req: Request, fourfour: str, column: str) -> Response:
    return json_response(column_json(_column(_readable(req, fourfour), column)))


def add_column(req: Request, fourfour: str) -> Response:
    req.require_user()
    body = req.json_object()
    with req.portal.store.write() as conn:
        col = storage.add_column(conn, storage.require(conn, fourfour), body)
    return json_response(column_json(col))


def update_column(req: Request, fourfour: str, column: str) -> Response:
    req.require_user()
    body = req.json_object()
    with req.portal.store.write() as conn:
        ds = storage.require(conn, fourfour)
        col = _column(ds, column)
        if "dataTypeName" in body and body["dataTypeName"] != col.type_name and not behaviour.ALLOW_COLUMN_TYPE_CHANGE:
            raise bad_request(
                "invalid_column",
                f"Changing the type of column '{col.field}' is not supported "
                "here; replace the dataset through a revision with the new type",
            )
        field_ = body.get("fieldName", col.field)
        if field_ != col.field:
            storage.check_column_spec({"fieldName": field_}, {c.field for c in ds.columns})
        name = body.get("name", col.name)
        if not name or not isinstance(name, str):
            raise bad_request("invalid_column", f"Column '{col.field}' needs a name (text)")
        description = body.get("description", col.description)
        conn.execute(
            "UPDATE columns SET field=?, name=?, description=? WHERE id=?",
            (field_, name, "" if description is None else str(description), col.id),
        )
        if "position" in body and body["position"] != col.position:
            meta.move_column(conn, ds.columns, col, body["position"])
        storage.touch(conn, fourfour, rows=False)
        col = _column(storage.load(conn, fourfour), str(col.id))
    return json_response(column_json(col))


def drop_column(req: Request, fourfour: str, column: str) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        ds = storage.require(conn, fourfour)
        col = _column(ds, column)
        storage.drop_column(conn, ds, col)
    return json_response(column_json(col))


def routes(router) -> None:
    views = r"/api/views"
    one = rf"/api/views/{FOURFOUR}"
    router.add("GET", rf"{views}(?:\.json)?", list_views)
    router.add("POST", rf"{views}(?:\.json)?", create_view)
    router.add("GET", rf"{one}(?:\.json)?", get_view)
    router.add("PUT PATCH", rf"{one}(?:\.json)?", update_view)
    router.add("DELETE", rf"{one}(?:\.json)?", delete_view)
    router.add("POST", rf"{one}/publication(?:\.json)?", publish)
    router.add("GET", rf"{one}/columns(?:\.json)?", list_columns)
    router.add("POST", rf"{one}/columns(?:\.json)?", add_column)
    router.add("GET", rf"{one}/columns/(?P<column>\w+)(?:\.json)?", get_column)
    router.add("PUT PATCH", rf"{one}/columns/(?P<column>\w+)(?:\.json)?", update_column)
    router.add("DELETE", rf"{one}/columns/(?P<column>\w+)(?:\.json)?", drop_column)
    router.add("GET", r"/api/catalog/v1", catalog)
    router.add("GET", rf"{one}/rows\.(?P<ext>\w{{1,10}})", _export)


def _export(req: Request, fourfour: str, ext: str) -> Response:
    from pipeline.portal.exports import export

    return export(req, fourfour, ext, view_json)
