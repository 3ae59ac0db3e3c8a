"""Factories for the portal tests: a LocalPortal on tmp_path, served on 127.0.0.1, and a client.

Everything goes over real HTTP, and what a test asserts is what a client sees: status codes,
bodies, and rows read back through `GET /resource/{4x4}.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import requests

from pipeline.portal import LocalPortal

USER, SECRET = "writer", "s3cret-Pa55"

CASES = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "status", "name": "Status", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
    {"fieldName": "opened", "name": "Opened", "dataTypeName": "calendar_date"},
    {"fieldName": "closed", "name": "Closed", "dataTypeName": "checkbox"},
]


@dataclass
class Client:
    """A served portal and a keep-alive session with the writer's credentials."""

    portal: LocalPortal
    url: str
    session: requests.Session

    def _url(self, path: str) -> str:
        return self.url + path

    def get(self, path, **kw):
        return self.session.get(self._url(path), **kw)

    def post(self, path, body=None, **kw):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return self.session.post(self._url(path), data=body, **kw)

    def put(self, path, body=None, **kw):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return self.session.put(self._url(path), data=body, **kw)

    def delete(self, path, **kw):
        return self.session.delete(self._url(path), **kw)

    def anonymous(self) -> requests.Session:
        return requests.Session()

    def rows(self, fourfour: str, **params) -> list[dict]:
        params.setdefault("$order", ":id")
        r = self.get(f"/resource/{fourfour}.json", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def dataset(self, columns=None, row_identifier="case_id", name="Cases", **extra) -> str:
        return self.portal.create_dataset(name=name, columns=columns or CASES, row_identifier=row_identifier, **extra)


def _client(portal, server) -> Client:
    session = requests.Session()
    session.auth = (USER, SECRET)
    return Client(portal, server.url, session)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One served portal for a whole module, for tests that only add datasets of their own."""
    p = LocalPortal(tmp_path_factory.mktemp("portal") / "portal.sqlite", users={USER: SECRET})
    with p.serve() as server:
        c = _client(p, server)
        yield c
        c.session.close()
    p.close()


@pytest.fixture
def portal(tmp_path):
    p = LocalPortal(tmp_path / "portal.sqlite", users={USER: SECRET})
    yield p
    p.close()


@pytest.fixture
def client(portal):
    with portal.serve() as server:
        c = _client(portal, server)
        yield c
        c.session.close()
