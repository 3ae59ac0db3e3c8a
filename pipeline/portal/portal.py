"""LocalPortal: a Socrata-compatible portal on one SQLite file, used in-process or served over HTTP.

portal = LocalPortal(".route/portal.sqlite", users={"me": "secret"})
ff = portal.create_dataset(name="Cases", columns=[{"fieldName": "case_id", "name": "Case ID",
                                                   "dataTypeName": "text"}], row_identifier="case_id")
with portal.serve() as server:          # http://127.0.0.1:<free port>
    ...                                 # sodapy, socrata-py (tls=True) or route talk to server.url
portal.faults.fail(2)                   # program failures: see pipeline.portal.faults
"""

from __future__ import annotations

import threading
from pathlib import Path

from pipeline.portal import storage
from pipeline.portal.auth import Auth
from pipeline.portal.faults import Faults
from pipeline.portal.http import Router
from pipeline.portal.storage import Store


class LocalPortal:
    def __init__(self, data_path: str | Path, users: dict[str, str] | None = None, faults: Faults | str | None = None):
        self.store = Store(data_path)
        # Row writes parse and check their body one at a time (resource.write): that work holds
        # the GIL, so two requests doing it at once only take turns, in slices, with their caches
        # cold. One at a time, it still runs beside the write before it, which SQLite does
        # without the GIL.
        self.check_lock = threading.Lock()
        self.data_path = Path(data_path)
        self.auth = Auth(users)
        self.faults = faults if isinstance(faults, Faults) else Faults(faults)
        self.router = _router()
        self._jobs = None

    # ---- serving
    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        cert: str | None = None,
        key: str | None = None,
        **limits,
    ):
        """Start serving in a background thread; returns a PortalServer (`url`, `stop()`, `with`).
        `limits` are PortalServer's `max_body` (bytes) and `read_timeout` (seconds)."""
        from pipeline.portal.server import PortalServer

        return PortalServer(self, host, port, tls, cert, key, **limits)

    def add_user(self, name: str, secret: str) -> None:
        """Allow one more user (or API key id) with its secret."""
        self.auth.add(name, secret)

    @property
    def jobs(self):
        if self._jobs is None:
            from pipeline.portal.dsmapi_jobs import Jobs

            self._jobs = Jobs(self)
        return self._jobs

    def close(self) -> None:
        if self._jobs is not None:
            self._jobs.wait()
        self.store.close()

    # ---- the catalog, without HTTP
    def create_dataset(
        self,
        name: str,
        columns: list[dict],
        row_identifier: str | None = None,
        description: str | None = None,
        private: bool = False,
        publish: bool = True,
    ) -> str:
        """Create (and publish) a dataset; returns its 4x4. Columns are /api/views column objects."""
        with self.store.write() as conn:
            ds = storage.create_dataset(conn, name, columns, row_identifier, description or "", private=private)
            if publish:
                conn.execute("UPDATE datasets SET stage='published' WHERE id=?", (ds.id,))
        return ds.id

    def datasets(self) -> list[dict]:
        """Every dataset as its /api/views JSON, plus `rowCount`."""
        from pipeline.portal.views import view_json

        with self.store.read() as conn:
            return [dict(view_json(d), rowCount=storage.row_count(conn, d)) for d in storage.all_datasets(conn)]

    def view(self, fourfour: str) -> dict:
        """One dataset's /api/views JSON, plus `rowCount` (PortalError 404 when there is none)."""
        from pipeline.portal.views import view_json

        with self.store.read() as conn:
            ds = storage.require(conn, fourfour)
            return dict(view_json(ds), rowCount=storage.row_count(conn, ds))

    def rows(self, fourfour: str, **soql) -> list[dict]:
        """Rows as a SODA read returns them; keyword arguments are SoQL parameters without `$`
        (`limit=None` reads every row)."""
        from pipeline.portal import query

        params = {("$" + k if not k.startswith("$") else k): str(v) for k, v in soql.items() if v is not None}
        unlimited = "limit" in soql and soql["limit"] is None
        with self.store.read() as conn:
            ds = storage.require(conn, fourfour)
            q = query.build(ds, params, default_limit=None if unlimited else 1000)
            names, columns = query.run(conn, q)
        return query.row_objects(names, query.wire(q, columns))


def _router() -> Router:
    from pipeline.portal import dsmapi, html, resource, views

    router = Router()
    views.routes(router)
    resource.routes(router)
    dsmapi.routes(router)
    html.routes(router)
    return router
