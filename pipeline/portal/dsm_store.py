"""Dataset Management API objects (revisions, sources, schemas, task sets) kept in the portal file.

Each object is a JSON body in the `dsm` table, keyed by kind and id, with its dataset and parent
(revision -> source -> input schema -> output schema; revision -> task set). Keys starting with `_`
are the portal's own and are never sent.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from pipeline.portal.errors import PortalError
from pipeline.portal.storage import next_id

ROOT = "/api/publishing/v1"


def now_iso() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def new(conn, kind: str, body: dict, dataset: str | None = None, parent: int | None = None) -> dict:
    body = dict(body)
    body["id"] = next_id(conn, "dsm_" + kind, start=1)
    body.setdefault("created_at", now_iso())
    conn.execute(
        "INSERT INTO dsm(kind, id, dataset, parent, body) VALUES(?,?,?,?,?)",
        (kind, body["id"], dataset, parent, orjson.dumps(body)),
    )
    return body


def save(conn, kind: str, body: dict, parent: int | None = None) -> None:
    if parent is None:
        conn.execute("UPDATE dsm SET body=? WHERE kind=? AND id=?", (orjson.dumps(body), kind, body["id"]))
    else:
        conn.execute(
            "UPDATE dsm SET body=?, parent=? WHERE kind=? AND id=?", (orjson.dumps(body), parent, kind, body["id"])
        )


def get(conn, kind: str, id_) -> dict | None:
    try:
        id_ = int(id_)
    except (TypeError, ValueError):
        return None
    row = conn.execute("SELECT body FROM dsm WHERE kind=? AND id=?", (kind, id_)).fetchone()
    return orjson.loads(row[0]) if row else None


def need(conn, kind: str, id_) -> dict:
    body = get(conn, kind, id_)
    if body is None:
        raise PortalError(404, "not_found", f"There is no {kind.replace('_', ' ')} {id_}", {"id": id_})
    return body


def children(conn, kind: str, parent: int) -> list[dict]:
    rows = conn.execute("SELECT body FROM dsm WHERE kind=? AND parent=? ORDER BY id", (kind, parent)).fetchall()
    return [orjson.loads(r[0]) for r in rows]


def parent_of(conn, kind: str, id_: int) -> int | None:
    row = conn.execute("SELECT parent FROM dsm WHERE kind=? AND id=?", (kind, id_)).fetchone()
    return row[0] if row else None


def revision(conn, fourfour: str, seq) -> dict:
    try:
        seq = int(seq)
    except (TypeError, ValueError):
        seq = -1
    row = conn.execute(
        "SELECT body FROM dsm WHERE kind='revision' AND dataset=? AND json_extract(body, '$.revision_seq')=?",
        (fourfour, seq),
    ).fetchone()
    if row is None:
        raise PortalError(
            404, "not_found", f"Dataset {fourfour} has no revision {seq}", {"fourfour": fourfour, "revision_seq": seq}
        )
    return orjson.loads(row[0])


def revisions(conn, fourfour: str) -> list[dict]:
    rows = conn.execute(
        "SELECT body FROM dsm WHERE kind='revision' AND dataset=? ORDER BY id DESC", (fourfour,)
    ).fetchall()
    return [orjson.loads(r[0]) for r in rows]


def public(body: dict) -> dict:
    return {k: v for k, v in body.items() if not k.startswith("_")}


# ---- links (socrata-py builds its methods from these names) ---------------------------------------


def revision_links(fourfour: str, seq: int) -> dict:
    base = f"{ROOT}/revision/{fourfour}/{seq}"
    return {
        "show": base,
        "update": base,
        "apply": base + "/apply",
        "discard": base,
        "create_source": base + "/source",
        "list_sources": base + "/source",
        "plan": base + "/plan",
    }


def output_schema_links(source_id, input_schema_id="{input_schema_id}", output_schema_id="{output_schema_id}") -> dict:
    base = f"{ROOT}/source/{source_id}/schema/{input_schema_id}/output/{output_schema_id}"
    return {
        "show": base,
        "rows": base + "/rows",
        "schema_errors": base + "/errors",
        "validate_row_id": base + "/validate_row_id/{transform_id}",
        "build_config": f"{ROOT}/config/build_from/{output_schema_id}",
    }


def input_schema_links(source_id, input_schema_id="{input_schema_id}") -> dict:
    base = f"{ROOT}/source/{source_id}/schema/{input_schema_id}"
    return {
        "show": base,
        "transform": base,
        "latest_output": base + "/output/latest",
        "row_errors": base + "/errors",
        "output_schema_links": output_schema_links(source_id, input_schema_id),
    }


def source_links(source_id) -> dict:
    base = f"{ROOT}/source/{source_id}"
    return {
        "show": base,
        "bytes": base,
        "update": base + "/options",
        "add_to_revision": base,
        "initiate": base + "/initiate",
        "chunk": base + "/chunk/{seq_num}/{byte_offset}",
        "commit": base + "/chunk/{seq_num}/{byte_offset}/commit",
        "load": base + "/load",
        "cancel": base + "/cancel",
        "input_schema_links": input_schema_links(source_id),
    }


def task_set_links(fourfour: str, seq: int, task_set_id: int) -> dict:
    return {"show": f"{ROOT}/revision/{fourfour}/{seq}/apply/{task_set_id}"}


# ---- rendering with children ------------------------------------------------------------------------


def render_output_schema(os_: dict) -> dict:
    return public(os_)


def render_input_schema(conn, is_: dict) -> dict:
    out = public(is_)
    out["output_schemas"] = [render_output_schema(o) for o in children(conn, "output_schema", is_["id"])]
    return out


def render_source(conn, source: dict) -> dict:
    out = public(source)
    out["schemas"] = [render_input_schema(conn, s) for s in children(conn, "input_schema", source["id"])]
    return out


def render_revision(conn, rev: dict) -> dict:
    out = public(rev)
    out["task_sets"] = [public(t) for t in children(conn, "task_set", rev["id"])]
    return out
