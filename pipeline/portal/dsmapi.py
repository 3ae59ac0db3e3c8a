"""The Dataset Management API, `/api/publishing/v1` (§5), as socrata-py and route use it.

Every answer (except initiate and chunk) is `{"resource": ..., "links": ...}` with root-relative
links under the names socrata-py turns into methods. This module has the revisions and the routes;
sources and uploads are in dsmapi_sources, schemas in dsmapi_schemas, applying in dsmapi_jobs.
"""

from __future__ import annotations

from pipeline.portal import archival, behaviour, dsm_store, import_configs, storage
from pipeline.portal.dsm_store import ROOT, now_iso
from pipeline.portal.dsmapi_schemas import (
    input_row_errors,
    output_rows,
    schema_errors,
    show_input_schema,
    show_output_schema,
    show_transform,
    transform,
    unsupported,
    validate_row_id,
)
from pipeline.portal.dsmapi_sources import (
    add_to_revision,
    chunk,
    commit,
    create_free_source,
    create_source,
    fill_source,
    initiate,
    list_sources,
    make_source,
    show_source,
    update_source,
    upload_bytes,
)
from pipeline.portal.errors import bad_request
from pipeline.portal.http import FOURFOUR, Request, Response, json_response, member

_ACTIONS = ("update", "replace", "delete")


def _enveloped(resource: dict, links: dict, status: int = 200) -> Response:
    return json_response({"resource": resource, "links": links}, status)


def _links(fourfour: str, seq: int) -> dict:
    links = dsm_store.revision_links(fourfour, seq)
    links["restore"] = f"{ROOT}/revision/{fourfour}/{seq}/restore"
    return links


def _revision_answer(conn, rev: dict, status: int = 200) -> Response:
    return _enveloped(dsm_store.render_revision(conn, rev), _links(rev["fourfour"], rev["revision_seq"]), status)


# ---- revisions ----------------------------------------------------------------------------------------


def _new_revision(conn, fourfour: str, action: dict, metadata: dict, user: str) -> dict:
    kind = (action or {}).get("type") or "update"
    if kind not in _ACTIONS:
        raise bad_request("invalid_action", f"Revision action '{kind}' is not one of {', '.join(_ACTIONS)}")
    seqs = [r["revision_seq"] for r in dsm_store.revisions(conn, fourfour)]
    seq = max(seqs) + 1 if seqs else behaviour.FIRST_REVISION_SEQ
    return dsm_store.new(
        conn,
        "revision",
        {
            "fourfour": fourfour,
            "revision_seq": seq,
            "action": {"type": kind, "permission": (action or {}).get("permission")},
            "metadata": metadata or {},
            "output_schema_id": None,
            "blob_id": None,
            "closed_at": None,
            "created_by": {"user_id": user, "display_name": user},
            "notes": None,
            "is_parent": False,
            "href": [],
            "attachments": [],
            "domain_id": 1,
        },
        dataset=fourfour,
    )


def create_dataset_revision(req: Request) -> Response:
    user = req.require_user()
    body = req.json_object()
    action, metadata = member(body, "action"), member(body, "metadata")
    with req.portal.store.write() as conn:
        ds = storage.create_dataset(
            conn,
            metadata.get("name") or "Untitled dataset",
            [],
            None,
            metadata.get("description") or "",
            private=True if action.get("permission") == "private" else None,
            owner=user,
        )
        rev = _new_revision(conn, ds.id, action, metadata, user)
        return _revision_answer(conn, rev, 201)


def create_revision(req: Request, fourfour: str) -> Response:
    user = req.require_user()
    body = req.json_object()
    with req.portal.store.write() as conn:
        storage.require(conn, fourfour)
        action = member(body, "action")
        config = None
        if "config" in body:  # a revision opened with an import config takes its action
            config = import_configs.need(conn, body["config"])
            action = {**action, "type": config["data_action"]}
        rev = _new_revision(conn, fourfour, action, member(body, "metadata"), user)
        if config is not None:
            rev["import_config"] = config["name"]
            dsm_store.save(conn, "revision", rev)
        return _revision_answer(conn, rev, 201)


def list_revisions(req: Request, fourfour: str) -> Response:
    req.require_user()
    only_open = (req.param("open") or "").lower() == "true"
    with req.portal.store.read() as conn:
        storage.require(conn, fourfour)
        revs = [r for r in dsm_store.revisions(conn, fourfour) if not (only_open and r.get("closed_at"))]
        body = [
            {
                "resource": dsm_store.render_revision(conn, r),
                "links": _links(fourfour, r["revision_seq"]),
            }
            for r in revs
        ]
    return json_response(body)


def show_revision(req: Request, fourfour: str, seq: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        return _revision_answer(conn, dsm_store.revision(conn, fourfour, seq))


def update_revision(req: Request, fourfour: str, seq: str) -> Response:
    req.require_user()
    body = req.json_object()
    with req.portal.store.write() as conn:
        rev = dsm_store.revision(conn, fourfour, seq)
        if isinstance(body.get("metadata"), dict):
            rev["metadata"] = {**(rev.get("metadata") or {}), **body["metadata"]}
        for key in ("output_schema_id", "notes"):
            if key in body:
                rev[key] = body[key]
        if isinstance(body.get("action"), dict) and "permission" in body["action"]:
            rev["action"]["permission"] = body["action"]["permission"]
        dsm_store.save(conn, "revision", rev)
        return _revision_answer(conn, rev)


def discard_revision(req: Request, fourfour: str, seq: str) -> Response:
    from pipeline.portal.dsmapi_jobs import cleanup

    req.require_user()
    with req.portal.store.write() as conn:
        rev = dsm_store.revision(conn, fourfour, seq)
        if not rev.get("closed_at"):
            rev["closed_at"] = now_iso()
            rev["discarded"] = True
            dsm_store.save(conn, "revision", rev)
            cleanup(conn, rev["id"])
        return _revision_answer(conn, rev)


def restore(req: Request, fourfour: str, seq: str) -> Response:
    """A new revision that does again what an applied revision did: its action and metadata, and
    its data as a view source. The local portal keeps no archive of older versions, so only the
    last applied revision (whose data is the dataset's now) can be restored."""
    user = req.require_user()
    with req.portal.store.write() as conn:
        rev = dsm_store.revision(conn, fourfour, seq)
        if not rev.get("closed_at") or rev.get("discarded"):
            raise bad_request(
                "revision_not_applied", f"Revision {seq} of {fourfour} was not applied; it cannot be restored"
            )
        later = [
            r
            for r in dsm_store.revisions(conn, fourfour)
            if r["revision_seq"] > rev["revision_seq"] and r.get("closed_at") and not r.get("discarded")
        ]
        if later:
            raise bad_request(
                "unsupported",
                f"The local portal does not support restoring revision {seq}: it keeps no archive of "
                f"older versions, so only the last applied revision ({later[0]['revision_seq']}) can be restored",
            )
        new = _new_revision(conn, fourfour, rev.get("action") or {}, rev.get("metadata") or {}, user)
        new["restored_from"] = rev["revision_seq"]
        dsm_store.save(conn, "revision", new)
        source = make_source(conn, {"type": "view", "fourfour": fourfour}, {}, new, user)
    fill_source(req.portal, source["id"], 256 << 20)
    with req.portal.store.read() as conn:
        return _revision_answer(conn, dsm_store.need(conn, "revision", new["id"]), 201)


def plan(req: Request, fourfour: str, seq: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        rev = dsm_store.revision(conn, fourfour, seq)
    # The task names Socrata's plan lists (socrata-py's revision tests check them); the local
    # portal does each in the one transaction of the apply.
    action = (rev.get("action") or {}).get("type") or "update"
    names = ["prepare_draft_for_import"]
    if rev.get("output_schema_id") and action != "delete":
        names.append("set_schema")
    names.append("apply_metadata")
    if rev.get("output_schema_id"):
        names.append("delete_task" if action == "delete" else "upsert_task")
    names += ["set_display_type", "publish", "wait_for_replication"]
    if (rev.get("action") or {}).get("permission") in ("public", "private"):
        names.append("set_permission")
    steps = [
        {"type": name, "fourfour": fourfour, "output_schema_id": rev.get("output_schema_id"), "action": action}
        for name in names
    ]
    return _enveloped(steps, {})


def apply(req: Request, fourfour: str, seq: str) -> Response:
    user = req.require_user()
    body = req.json({}) or {}
    with req.portal.store.write() as conn:
        rev = dsm_store.revision(conn, fourfour, seq)
        if rev.get("closed_at"):
            raise bad_request("revision_closed", f"Revision {seq} of {fourfour} is already closed")
        output_schema_id = body.get("output_schema_id") or rev.get("output_schema_id")
        if output_schema_id:
            dsm_store.need(conn, "output_schema", output_schema_id)
        ts = dsm_store.new(
            conn,
            "task_set",
            {
                "status": "initializing",
                "log": [],
                "finished_at": None,
                "output_schema_id": output_schema_id,
                "created_by": user,
                "request_id": req.headers.get("X-Socrata-RequestId"),
            },
            dataset=fourfour,
            parent=rev["id"],
        )
    req.portal.jobs.start(fourfour, rev["id"], ts["id"], output_schema_id)
    with req.portal.store.read() as conn:
        ts = dsm_store.need(conn, "task_set", ts["id"])
    return _enveloped(dsm_store.public(ts), dsm_store.task_set_links(fourfour, rev["revision_seq"], ts["id"]))


def show_task_set(req: Request, fourfour: str, seq: str, task_set: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        rev = dsm_store.revision(conn, fourfour, seq)
        ts = dsm_store.need(conn, "task_set", task_set)
    return _enveloped(dsm_store.public(ts), dsm_store.task_set_links(fourfour, rev["revision_seq"], ts["id"]))


def routes(router) -> None:
    rev = rf"{ROOT}/revision/{FOURFOUR}"
    one = rf"{rev}/(?P<seq>\d{{1,18}})"
    src = rf"{ROOT}/source/(?P<source>\d{{1,18}})"
    schema = rf"{src}/schema/(?P<input_schema>\d{{1,18}})"
    output = rf"{schema}/output/(?P<output_schema>\d{{1,18}}|latest)"
    router.add("POST", rf"{ROOT}/revision", create_dataset_revision)
    router.add("GET", rev, list_revisions)
    router.add("POST", rev, create_revision)
    router.add("GET", one, show_revision)
    router.add("PUT PATCH", one, update_revision)
    router.add("DELETE", one, discard_revision)
    router.add("PUT POST", rf"{one}/apply", apply)
    router.add("GET", rf"{one}/apply/(?P<task_set>\d{{1,18}})", show_task_set)
    router.add("GET", rf"{one}/plan", plan)
    router.add("POST PUT", rf"{one}/restore", restore)
    archival.routes(router)
    router.add("POST", rf"{one}/source", create_source)
    router.add("GET", rf"{one}/source", list_sources)
    router.add("POST", rf"{ROOT}/source", create_free_source)
    router.add("GET", src, show_source)
    router.add("POST", src, upload_bytes)
    router.add("PATCH", src, add_to_revision)
    router.add("POST", rf"{src}/options", update_source)
    router.add("POST", rf"{src}/initiate", initiate)
    router.add("POST", rf"{src}/chunk/(?P<seq>\d{{1,18}})/(?P<offset>\d{{1,18}})", chunk)
    router.add("POST", rf"{src}/chunk/(?P<seq>\d{{1,18}})/(?P<offset>\d{{1,18}})/commit", commit)
    router.add("PUT POST", rf"{src}/(?:load|cancel)", unsupported)
    router.add("GET", schema, show_input_schema)
    router.add("POST", schema, transform)
    router.add("GET", rf"{schema}/errors", input_row_errors)
    router.add("GET", output, show_output_schema)
    router.add("GET", rf"{output}/rows", output_rows)
    router.add("GET", rf"{output}/errors", schema_errors)
    router.add("GET", rf"{output}/validate_row_id/(?P<transform_id>\d{{1,18}})", validate_row_id)
    router.add("GET", rf"{src}/transform/(?P<transform_id>\d{{1,18}})", show_transform)
    import_configs.routes(router)
