"""Import configs, `/api/publishing/v1/config` (DSMAPI "ImportConfig"), as socrata-py uses them.

A config is a saved way to read uploads into a dataset: a name (unique, the key in its URL), a
`data_action` (update, replace or delete: the action of revisions opened with it), parse options
and output columns. `POST /revision/{4x4}` with `{"config": name}` opens a revision with the
config's action; sources made in it take the config's parse options, and their proposed output
schema is the config's columns (when it has any). `POST /config/build_from/{output_schema_id}`
saves an output schema (and its source's parse options) as a config.
"""

from __future__ import annotations

from urllib.parse import quote as url_quote

from pipeline.portal import dsm_store
from pipeline.portal.dsm_store import ROOT, now_iso
from pipeline.portal.errors import PortalError, bad_request
from pipeline.portal.http import Request, Response, json_response

ACTIONS = ("update", "replace", "delete")
PARSE_DEFAULTS = {
    "header_count": 1,
    "column_header": 1,
    "encoding": "utf-8",
    "column_separator": ",",
    "quote_char": '"',
    "parse_source": True,
    "trim_whitespace": True,
    "remove_empty_rows": True,
}
_COLUMN_DEFAULTS = {"format": {}, "description": "", "is_primary_key": None, "flags": []}


def links(name: str) -> dict:
    base = f"{ROOT}/config/{url_quote(name, safe='')}"
    return {"show": base, "update": base, "delete": base, "create_revision": f"{ROOT}/revision/{{fourfour}}"}


def _answer(config: dict, status: int = 200) -> Response:
    return json_response({"resource": dsm_store.public(config), "links": links(config["name"])}, status)


def find(conn, name) -> dict | None:
    row = conn.execute(
        "SELECT body FROM dsm WHERE kind='config' AND json_extract(body, '$.name')=?", (str(name),)
    ).fetchone()
    if row is None:
        return None
    import orjson

    return orjson.loads(row[0])


def need(conn, name) -> dict:
    config = find(conn, name)
    if config is None:
        raise PortalError(404, "not_found", f"There is no import config named '{name}'", {"name": name})
    return config


def _action(value) -> str:
    if value not in ACTIONS:
        raise bad_request("invalid_config", f"data_action must be one of {', '.join(ACTIONS)}, not {value!r}")
    return value


def _parse_options(value) -> dict:
    if value is None:
        return dict(PARSE_DEFAULTS)
    if not isinstance(value, dict):
        raise bad_request("invalid_config", "parse_options must be an object")
    return {**PARSE_DEFAULTS, **value}


def _columns(value) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
        raise bad_request("invalid_config", "columns must be a list of objects")
    out = []
    for c in value:
        if not isinstance(c.get("field_name"), str) or not isinstance(c.get("transform_expr"), str):
            raise bad_request("invalid_config", "each column needs a field_name and a transform_expr (text)")
        out.append({**_COLUMN_DEFAULTS, "display_name": c["field_name"], **c})
    return out


def _new(conn, name, data_action, parse_options, columns, user: str) -> dict:
    if not isinstance(name, str) or not name.strip():
        raise bad_request("invalid_config", "An import config needs a name")
    if find(conn, name) is not None:
        raise PortalError(409, "already_exists", f"An import config named '{name}' already exists", {"name": name})
    return dsm_store.new(
        conn,
        "config",
        {
            "name": name,
            "data_action": _action(data_action),
            "parse_options": _parse_options(parse_options),
            "columns": _columns(columns),
            "created_by": {"user_id": user, "display_name": user},
            "updated_at": now_iso(),
        },
    )


def create(req: Request) -> Response:
    user = req.require_user()
    body = req.json_object()
    with req.portal.store.write() as conn:
        config = _new(
            conn, body.get("name"), body.get("data_action"), body.get("parse_options"), body.get("columns"), user
        )
        return _answer(config, 201)


def list_configs(req: Request) -> Response:
    req.require_user()
    import orjson

    with req.portal.store.read() as conn:
        rows = conn.execute("SELECT body FROM dsm WHERE kind='config' ORDER BY id").fetchall()
    configs = [orjson.loads(r[0]) for r in rows]
    return json_response([{"resource": dsm_store.public(c), "links": links(c["name"])} for c in configs])


def show(req: Request, name: str) -> Response:
    req.require_user()
    with req.portal.store.read() as conn:
        return _answer(need(conn, name))


def update(req: Request, name: str) -> Response:
    req.require_user()
    body = req.json_object()
    with req.portal.store.write() as conn:
        config = need(conn, name)
        if "data_action" in body:
            config["data_action"] = _action(body["data_action"])
        if "parse_options" in body:
            config["parse_options"] = _parse_options(body["parse_options"])
        if "columns" in body:
            config["columns"] = _columns(body["columns"])
        if "name" in body and body["name"] != config["name"]:
            if not isinstance(body["name"], str) or not body["name"].strip() or find(conn, body["name"]):
                raise bad_request("invalid_config", f"Cannot rename the config to {body['name']!r}")
            config["name"] = body["name"]
        config["updated_at"] = now_iso()
        dsm_store.save(conn, "config", config)
        return _answer(config)


def delete(req: Request, name: str) -> Response:
    req.require_user()
    with req.portal.store.write() as conn:
        config = need(conn, name)
        conn.execute("DELETE FROM dsm WHERE kind='config' AND id=?", (config["id"],))
    return _answer(config)


def build_from(req: Request, output_schema: str) -> Response:
    user = req.require_user()
    body = req.json_object()
    with req.portal.store.write() as conn:
        os_ = dsm_store.need(conn, "output_schema", output_schema)
        source = dsm_store.get(conn, "source", os_.get("_source"))
        columns = [
            {
                "field_name": c["field_name"],
                "display_name": c.get("display_name") or c["field_name"],
                "description": c.get("description") or "",
                "transform_expr": c["transform"]["transform_expr"],
                "format": c.get("format") or {},
                "is_primary_key": c.get("is_primary_key") or None,
                "flags": c.get("flags") or [],
            }
            for c in sorted(os_["output_columns"], key=lambda c: c["position"])
        ]
        options = (source or {}).get("parse_options")
        config = _new(conn, body.get("name"), body.get("data_action") or "update", options, columns, user)
        return _answer(config, 201)


def output_columns(config: dict) -> list[dict]:
    """The config's columns as the output columns of a new output schema."""
    return [
        {
            "field_name": c["field_name"],
            "display_name": c.get("display_name") or c["field_name"],
            "description": c.get("description") or "",
            "position": position,
            "is_primary_key": bool(c.get("is_primary_key")),
            "format": c.get("format") or {},
            "transform": {"transform_expr": c["transform_expr"]},
        }
        for position, c in enumerate(config.get("columns") or [], start=1)
    ]


def routes(router) -> None:
    router.add("GET", rf"{ROOT}/config", list_configs)
    router.add("POST", rf"{ROOT}/config", create)
    router.add("POST", rf"{ROOT}/config/build_from/(?P<output_schema>\d{{1,18}})", build_from)
    router.add("GET", rf"{ROOT}/config/(?P<name>[^/]+)", show)
    router.add("PUT PATCH", rf"{ROOT}/config/(?P<name>[^/]+)", update)
    router.add("DELETE", rf"{ROOT}/config/(?P<name>[^/]+)", delete)
