"""Dataset Management API sources: create, upload (whole or in chunks), commit, and read the file.

Chunks may arrive in any order (socrata-py sends them in parallel); a commit checks they cover the
file exactly, then reads it at once, so the commit's answer already shows the input schema and the
proposed output schema. Converting the rows for that schema takes longer (a minute for a few million
rows) and runs behind the answer, as on Socrata: the output schema's completed_at says when it is
done.
"""

from __future__ import annotations

from pipeline.portal import behaviour, dsm_store, import_configs, source_fetch, storage, uploads
from pipeline.portal.dsm_store import now_iso
from pipeline.portal.errors import PortalError, bad_request
from pipeline.portal.http import Request, Response, json_response, member

_PARSE_DEFAULTS = import_configs.PARSE_DEFAULTS


def _enveloped(resource, links: dict, status: int = 200) -> Response:
    return json_response({"resource": resource, "links": links}, status)


def _source_answer(conn, source: dict, status: int = 200) -> Response:
    return _enveloped(dsm_store.render_source(conn, source), dsm_store.source_links(source["id"]), status)


def _new_source(conn, req: Request, revision: dict | None) -> dict:
    body = req.json_object()
    source_type = member(body, "source_type") or {"type": "upload"}
    kind = source_type.get("type")
    if kind not in ("upload", "view", "url"):
        raise bad_request(
            "unsupported",
            f"Sources of type '{kind}' are not supported by the local portal; "
            "upload the file, or use a view or url source",
        )
    if kind == "view":
        storage.require(conn, source_type.get("fourfour") if isinstance(source_type.get("fourfour"), str) else "")
        source_type = {**source_type, "loaded": False}  # Socrata's word for a view source read yet
    return make_source(conn, source_type, member(body, "parse_options"), revision, req.user)


def make_source(conn, source_type: dict, parse_options: dict, revision: dict | None, user) -> dict:
    """A new source (its bytes still to come) in a revision, or in none."""
    config = _config_of(conn, revision)
    defaults = config["parse_options"] if config else _PARSE_DEFAULTS
    options = {**_PARSE_DEFAULTS, **defaults, **parse_options}
    return dsm_store.new(
        conn,
        "source",
        {
            "source_type": source_type,
            "parse_options": options,
            "content_type": None,
            "filesize": None,
            "finished_at": None,
            "failed_at": None,
            "failure_details": None,
            "blob": None,
            "created_by": {"user_id": user},
            "_fourfour": revision["fourfour"] if revision else None,
        },
        dataset=revision["fourfour"] if revision else None,
        parent=revision["id"] if revision else None,
    )


def _config_of(conn, revision: dict | None) -> dict | None:
    """The import config a revision was opened with (None without one, or once it is deleted)."""
    name = (revision or {}).get("import_config")
    return import_configs.find(conn, name) if name else None


def create_source(req: Request, fourfour: str, seq: str) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        rev = dsm_store.revision(conn, fourfour, seq)
        src = _new_source(conn, req, rev)
    return _fetched(req, src)


def create_free_source(req: Request) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        src = _new_source(conn, req, None)
    return _fetched(req, src)


def _fetched(req: Request, src: dict) -> Response:
    """A view or url source gets its bytes now (the dataset's rows, the URL's body) and is read."""
    kind = src["source_type"].get("type")
    if kind in ("view", "url"):
        fill_source(req.portal, src["id"], getattr(req.portal, "max_body", 256 << 20))
    with req.portal.store.read() as conn:
        return _source_answer(conn, dsm_store.need(conn, "source", src["id"]), 201)


def fill_source(portal, source_id: int, max_bytes: int) -> None:
    """Store a view or url source's bytes as its one chunk, then read them like an upload."""
    body, content_type, types, failure = None, "text/csv", None, None
    with portal.store.read() as conn:
        src = dsm_store.need(conn, "source", source_id)
        kind = src["source_type"].get("type")
        if kind == "view":
            try:
                body = source_fetch.view_csv(conn, src["source_type"].get("fourfour") or "")
                types = source_fetch.view_types(conn, src["source_type"]["fourfour"])
            except PortalError as exc:
                failure = exc.message
    if kind == "url":
        try:
            body, content_type = source_fetch.url_bytes(src["source_type"].get("url"), max_bytes)
        except source_fetch.FetchError as exc:
            failure = str(exc)
    with portal.store.write() as conn:
        src = dsm_store.need(conn, "source", source_id)
        if body is None:
            src.update(failed_at=now_iso(), failure_details={"message": failure or "the source could not be read"})
            dsm_store.save(conn, "source", src)
            return
        conn.execute("DELETE FROM dsm_chunks WHERE source=?", (source_id,))
        conn.execute("INSERT INTO dsm_chunks(source, seq, offset, data) VALUES(?,?,?,?)", (source_id, 0, 0, body))
        src.update(filesize=len(body), content_type=content_type, _types=types)
        if kind == "view":
            src["source_type"] = {**src["source_type"], "loaded": True}
        dsm_store.save(conn, "source", src)
    _process(portal, source_id)


def list_sources(req: Request, fourfour: str, seq: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        rev = dsm_store.revision(conn, fourfour, seq)
        body = [
            {"resource": dsm_store.render_source(conn, s), "links": dsm_store.source_links(s["id"])}
            for s in dsm_store.children(conn, "source", rev["id"])
        ]
    return json_response(body)


def show_source(req: Request, source: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        return _source_answer(conn, dsm_store.need(conn, "source", source))


def add_to_revision(req: Request, source: str) -> Response:
    req.require_user()
    target = member(req.json_object(), "revision")
    with req.portal.store.write() as conn:
        src = dsm_store.need(conn, "source", source)
        rev = dsm_store.revision(conn, target.get("fourfour"), target.get("revision_seq"))
        src["_fourfour"] = rev["fourfour"]
        dsm_store.save(conn, "source", src, parent=rev["id"])
        conn.execute("UPDATE dsm SET dataset=? WHERE kind='source' AND id=?", (rev["fourfour"], src["id"]))
        return _source_answer(conn, src)


def update_source(req: Request, source: str) -> Response:
    req.require_user()
    body = req.json_object()
    with req.portal.store.write() as conn:
        src = dsm_store.need(conn, "source", source)
        src["parse_options"] = {**src["parse_options"], **member(body, "parse_options")}
        dsm_store.save(conn, "source", src)
        committed = src.get("filesize") is not None
    if committed:
        _process(req.portal, src["id"])
    with req.portal.store.read() as conn:
        return _source_answer(conn, dsm_store.need(conn, "source", source), 201)


def initiate(req: Request, source: str) -> Response:
    req.require_user()
    body = req.json_object()
    with req.portal.store.write() as conn:
        src = dsm_store.need(conn, "source", source)
        src["content_type"] = body.get("content_type") or "text/csv"
        dsm_store.save(conn, "source", src)
    return json_response(
        {
            "preferred_chunk_size": behaviour.PREFERRED_CHUNK_SIZE,
            "preferred_upload_parallelism": behaviour.PREFERRED_UPLOAD_PARALLELISM,
        }
    )


def chunk(req: Request, source: str, seq: str, offset: str) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        src = dsm_store.need(conn, "source", source)
        if src.get("filesize") is not None:
            raise bad_request("already_committed", f"Source {source} is already committed")
        conn.execute(
            "INSERT OR REPLACE INTO dsm_chunks(source, seq, offset, data) VALUES(?,?,?,?)",
            (src["id"], int(seq), int(offset), req.body),
        )
    return json_response(
        {"resource": {"seq_num": int(seq), "byte_offset": int(offset), "end_byte_offset": int(offset) + len(req.body)}}
    )


def commit(req: Request, source: str, seq: str, offset: str) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        src = dsm_store.need(conn, "source", source)
        if src.get("filesize") is None:
            try:
                uploads.check_chunks(conn, src["id"], int(offset))
            except uploads.UploadError as exc:
                raise bad_request("invalid_upload", str(exc)) from None
            src["filesize"] = int(offset)
            src["content_type"] = src.get("content_type") or "text/csv"
            dsm_store.save(conn, "source", src)
    _process(req.portal, src["id"])
    with req.portal.store.read() as conn:
        return _source_answer(conn, dsm_store.need(conn, "source", source))


def upload_bytes(req: Request, source: str) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        src = dsm_store.need(conn, "source", source)
        conn.execute("DELETE FROM dsm_chunks WHERE source=?", (src["id"],))
        conn.execute("INSERT INTO dsm_chunks(source, seq, offset, data) VALUES(?,?,?,?)", (src["id"], 0, 0, req.body))
        src.update(filesize=len(req.body), content_type=req.content_type or src.get("content_type") or "text/csv")
        dsm_store.save(conn, "source", src)
    _process(req.portal, src["id"])
    with req.portal.store.read() as conn:
        return _source_answer(conn, dsm_store.need(conn, "source", source), 201)


def _process(portal, source_id: int) -> None:
    """Read a committed upload: input schema, the proposed output schema, its converted rows."""
    store = portal.store
    with store.read() as conn:
        src = dsm_store.need(conn, "source", source_id)
        fourfour = src.get("_fourfour")
        ds = storage.load(conn, fourfour) if fourfour else None
        if not src["parse_options"].get("parse_source", True):
            is_body = None
        else:
            try:
                is_body = uploads.input_schema(conn, src, ds)
            except uploads.UploadError as exc:
                is_body = exc
    with store.write() as conn:
        src = dsm_store.need(conn, "source", source_id)
        if isinstance(is_body, uploads.UploadError):
            src.update(failed_at=now_iso(), failure_details={"message": str(is_body)})
            dsm_store.save(conn, "source", src)
            return
        if is_body is None:  # a blob (parse_source false): the revision's blob, not parsed
            src["finished_at"] = now_iso()
            dsm_store.save(conn, "source", src)
            revision_id = dsm_store.parent_of(conn, "source", source_id)
            if revision_id:
                rev = dsm_store.need(conn, "revision", revision_id)
                rev["blob_id"] = source_id
                dsm_store.save(conn, "revision", rev)
            return
        first = storage.next_id(conn, "dsm_input_column", count=len(is_body["input_columns"]))
        for i, c in enumerate(is_body["input_columns"]):
            c["id"] = first + i
        is_body["source_id"] = source_id
        is_ = dsm_store.new(conn, "input_schema", is_body, dataset=fourfour, parent=source_id)
        revision_id = dsm_store.parent_of(conn, "source", source_id)
        config = _config_of(conn, dsm_store.get(conn, "revision", revision_id) if revision_id else None)
        proposed = import_configs.output_columns(config) if config and config.get("columns") else None
        os_ = dsm_store.new(
            conn,
            "output_schema",
            uploads.build_output_schema(conn, src, is_, proposed or uploads.default_output_columns(conn, is_, ds)),
            dataset=fourfour,
            parent=is_["id"],
        )
    with store.write() as conn:
        src = dsm_store.need(conn, "source", source_id)
        src["finished_at"] = now_iso()
        dsm_store.save(conn, "source", src)
        revision_id = dsm_store.parent_of(conn, "source", source_id)
        if revision_id:
            rev = dsm_store.need(conn, "revision", revision_id)
            rev["output_schema_id"] = os_["id"]
            dsm_store.save(conn, "revision", rev)
    if fourfour:  # the rows are converted behind the answer; the output schema says when it is done
        portal.jobs.evaluate(fourfour, is_["id"], os_["id"])
