"""`/api/archival` and `/api/views/{4x4}/replication.json`: what socrata-py's restore test waits on.

Socrata restores a revision from its archival secondary, which a dataset joins with
`POST /api/archival?id={4x4}&method=enroll`; clients then poll the replication status until the
archival copy has the dataset's latest data version. The local portal has one copy, always up to
date: enrolling is accepted, and the archival version is always the data version (the epoch
second the rows last changed).
"""

from __future__ import annotations

from pipeline.portal import storage
from pipeline.portal.errors import bad_request
from pipeline.portal.http import FOURFOUR, Request, Response, json_response


def enroll(req: Request) -> Response:
    req.require_user()
    fourfour, method = req.param("id"), req.param("method") or "enroll"
    if method not in ("enroll", "status"):
        raise bad_request("unsupported", f"The local portal does not support /api/archival method '{method}'")
    with req.portal.store.read() as conn:
        storage.require(conn, fourfour or "")
    return json_response({"id": fourfour, "enrolled": True})


def replication(req: Request, fourfour: str) -> Response:
    with req.portal.store.read() as conn:
        ds = storage.require(conn, fourfour)
    req.check_read(ds)
    version = int(ds.rows_updated_at or 0)
    return json_response(
        {"truth_data_version": version, "secondary_versions": [{"name": "archival", "version": version}]}
    )


def routes(router) -> None:
    router.add("POST", r"/api/archival(?:\.json)?", enroll)
    router.add("GET", rf"/api/views/{FOURFOUR}/replication(?:\.json)?", replication)
