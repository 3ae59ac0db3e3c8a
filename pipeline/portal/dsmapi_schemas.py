"""Dataset Management API schemas: input schemas, output schemas (transforms), previews, errors.

Posting output columns to an input schema makes a new output schema and converts the upload with it
before answering; `rows` and `schema_errors` page through the result (their first element is a
header, not a row, as socrata-py expects).
"""

from __future__ import annotations

import csv
import io

import orjson

from pipeline.portal import behaviour, dsm_store, uploads
from pipeline.portal.errors import Maltyped, PortalError, bad_request
from pipeline.portal.http import Request, Response, json_response
from pipeline.portal.storage import quote
from pipeline.portal.wire import column_type


def _enveloped(resource, links: dict, status: int = 200) -> Response:
    return json_response({"resource": resource, "links": links}, status)


def _schemas(conn, source: str, input_schema: str):
    src = dsm_store.need(conn, "source", source)
    is_ = dsm_store.need(conn, "input_schema", input_schema)
    if is_["source_id"] != src["id"]:
        raise PortalError(404, "not_found", f"Source {source} has no input schema {input_schema}")
    return src, is_


def _output_answer(src: dict, os_: dict, status: int = 200) -> Response:
    return _enveloped(
        dsm_store.render_output_schema(os_),
        dsm_store.output_schema_links(src["id"], os_["input_schema_id"], os_["id"]),
        status,
    )


def show_input_schema(req: Request, source: str, input_schema: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        src, is_ = _schemas(conn, source, input_schema)
        return _enveloped(dsm_store.render_input_schema(conn, is_), dsm_store.input_schema_links(src["id"], is_["id"]))


def transform(req: Request, source: str, input_schema: str) -> Response:
    req.require_user()
    body = req.json_object()
    columns = body.get("output_columns")
    if not isinstance(columns, list) or not columns:
        raise bad_request("invalid_output_schema", "output_columns must be a non-empty list")
    with req.portal.store.write() as conn:
        src, is_ = _schemas(conn, source, input_schema)
        fourfour = src.get("_fourfour")
        if not fourfour:
            raise bad_request("no_revision", f"Source {source} is not part of a revision")
        schema = uploads.build_output_schema(conn, src, is_, columns, body.get("sort_bys"))
        os_ = dsm_store.new(conn, "output_schema", schema, dataset=fourfour, parent=is_["id"])
        revision_id = dsm_store.parent_of(conn, "source", src["id"])
        if revision_id and (req.param("increment_revision") or "true").lower() != "false":
            rev = dsm_store.need(conn, "revision", revision_id)
            rev["output_schema_id"] = os_["id"]
            dsm_store.save(conn, "revision", rev)
    # The rows are converted behind the answer, as Socrata does: the answer shows the schema as
    # made, and clients poll it until completed_at is set.
    req.portal.jobs.evaluate(fourfour, is_["id"], os_["id"])
    return _output_answer(src, os_, 201)


def show_output_schema(req: Request, source: str, input_schema: str, output_schema: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        src, is_ = _schemas(conn, source, input_schema)
        if output_schema == "latest":
            found = dsm_store.children(conn, "output_schema", is_["id"])
            if not found:
                raise PortalError(404, "not_found", f"Input schema {input_schema} has no output schema yet")
            os_ = found[-1]
        else:
            os_ = dsm_store.need(conn, "output_schema", output_schema)
        return _output_answer(src, os_)


def _limit_offset(req: Request) -> tuple[int, int]:
    return req.whole("limit", 500), req.whole("offset", 0)


def output_rows(req: Request, source: str, input_schema: str, output_schema: str) -> Response:
    req.require_user()
    limit, offset = _limit_offset(req)
    with req.portal.store.read() as conn:
        _schemas(conn, source, input_schema)
        os_ = dsm_store.need(conn, "output_schema", output_schema)
        cols = sorted(os_["output_columns"], key=lambda c: c["position"])
        rows = []
        if os_.get("_table"):
            phys = ", ".join(quote(f"c{c['id']}") for c in cols)
            rows = conn.execute(
                f"SELECT {phys} FROM {quote(os_['_table'])} ORDER BY _sid LIMIT ? OFFSET ?", (limit, offset)
            ).fetchall()
    types = [column_type(c["transform"]["output_soql_type"]) for c in cols]
    wire = [t.wire(list(v)) for t, v in zip(types, zip(*rows))] if rows else []
    body = [behaviour.preview_head(offset, limit, os_.get("total_rows") or 0)]
    body += [{"row": [{"ok": v} for v in values]} for values in zip(*wire)]
    return json_response(body)


def schema_errors(req: Request, source: str, input_schema: str, output_schema: str) -> Response:
    req.require_user()
    limit, offset = _limit_offset(req)
    with req.portal.store.read() as conn:
        _schemas(conn, source, input_schema)
        os_ = dsm_store.need(conn, "output_schema", output_schema)
        found = conn.execute(
            "SELECT row_index, cells FROM dsm_row_errors WHERE schema=? ORDER BY row_index LIMIT ? OFFSET ?",
            (os_["id"], limit, offset),
        ).fetchall()
    if "text/csv" in (req.headers.get("Accept") or ""):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        cols = sorted(os_["output_columns"], key=lambda c: c["position"])
        writer.writerow(["row"] + [c["field_name"] for c in cols] + ["error"])
        for index, cells in found:
            cells = orjson.loads(cells)
            errors = "; ".join(c["error"]["message"] for c in cells if "error" in c)
            writer.writerow(
                [index + 1] + [c.get("ok") or (c.get("error") or {}).get("input") or "" for c in cells] + [errors]
            )
        return Response(200, out.getvalue().encode(), "text/csv; charset=utf-8")
    body = [behaviour.preview_head(offset, limit, os_.get("error_count") or 0)]
    body += [{"row": orjson.loads(cells), "row_index": index} for index, cells in found]
    return json_response(body)


def validate_row_id(req: Request, source: str, input_schema: str, output_schema: str, transform_id: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        _schemas(conn, source, input_schema)
        os_ = dsm_store.need(conn, "output_schema", output_schema)
        col = next((c for c in os_["output_columns"] if str(c["transform"]["id"]) == transform_id), None)
        if col is None:
            raise PortalError(404, "not_found", f"Output schema {output_schema} has no transform {transform_id}")
        # A row identifier is valid when its own column converted every cell, with a value in
        # every row and no value twice, counting the rows that another column's error keeps out.
        valid = False
        if os_.get("_table") and not col["transform"].get("error_count"):
            phys, table = quote(f"c{col['id']}"), quote(os_["_table"])
            values = [r[0] for r in conn.execute(f"SELECT {phys} FROM {table}")]
            position = sorted(os_["output_columns"], key=lambda c: c["position"]).index(col)
            for (cells,) in conn.execute("SELECT cells FROM dsm_row_errors WHERE schema=?", (os_["id"],)):
                cell = orjson.loads(cells)[position]
                values.append(None if "error" in cell else cell.get("ok"))
            ctype = column_type(col["transform"]["output_soql_type"])
            try:
                keys = ctype.key(ctype.store(ctype.from_text([str(v) for v in values if v is not None], ""), ""), "")
            except Maltyped:
                keys = values
            valid = None not in values and len(set(keys)) == len(values)
    return json_response({"valid": valid})


def input_row_errors(req: Request, source: str, input_schema: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        _schemas(conn, source, input_schema)
    return json_response([])


def show_transform(req: Request, source: str, transform_id: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        for is_ in dsm_store.children(conn, "input_schema", int(source)):
            for os_ in dsm_store.children(conn, "output_schema", is_["id"]):
                for c in os_["output_columns"]:
                    if str(c["transform"]["id"]) == transform_id:
                        return _enveloped(c["transform"], {})
    raise PortalError(404, "not_found", f"Source {source} has no transform {transform_id}")


def unsupported(req: Request, **_groups) -> Response:
    raise PortalError(
        404,
        "unsupported",
        "Import configs and view sources are not supported by the local portal; upload files to a revision instead",
    )
