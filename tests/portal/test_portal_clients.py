"""Socrata's own clients, unchanged, against the served portal: sodapy (http) and socrata-py (https)."""

from __future__ import annotations

import io
import warnings

import pytest
import requests
from requests.adapters import HTTPAdapter

from pipeline.portal import LocalPortal

from .conftest import SECRET, USER

sodapy = pytest.importorskip("sodapy")


def _socrata_py():
    """socrata-py's Socrata and Authorization, even when the test package tests/socrata (which is on
    sys.path under the same name) was imported first: import the installed one, then put back
    whatever `socrata` meant before."""
    import importlib
    import sys
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        site = str(distribution("socrata-py").locate_file(""))
    except PackageNotFoundError:
        pytest.skip("socrata-py is not installed")
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "socrata" or k.startswith("socrata.")}
    sys.path.insert(0, site)
    try:
        top = importlib.import_module("socrata")
        auth = importlib.import_module("socrata.authorization")
        return top.Socrata, auth.Authorization
    finally:
        sys.path.remove(site)
        for k in [k for k in sys.modules if k == "socrata" or k.startswith("socrata.")]:
            sys.modules.pop(k)
        sys.modules.update(saved)


@pytest.fixture
def soda(client):
    """sodapy pointed at the portal through its own session_adapter hook (it defaults to https)."""
    host = client.url.removeprefix("http://")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = sodapy.Socrata(
            host,
            "app-token",
            username=USER,
            password=SECRET,
            session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
        )
    yield c
    c.close()


def test_sodapy_create_publish_upsert_read_replace_delete(client, soda):
    created = soda.create(
        "Inspections",
        description="Food inspections",
        row_identifier="inspection_id",
        columns=[
            {"fieldName": "inspection_id", "name": "Inspection ID", "dataTypeName": "text"},
            {"fieldName": "score", "name": "Score", "dataTypeName": "number"},
            {"fieldName": "inspected", "name": "Inspected", "dataTypeName": "calendar_date"},
        ],
        new_backend=True,
    )
    ff = created["id"]
    assert created["publicationStage"] == "unpublished"
    assert soda.publish(ff)["publicationStage"] == "published"
    meta = soda.get_metadata(ff)
    assert meta["rowIdentifierColumnId"] == meta["columns"][0]["id"]

    result = soda.upsert(
        ff, [{"inspection_id": f"I-{i:04d}", "score": i, "inspected": "2024-03-01"} for i in range(2300)]
    )
    assert result["Rows Created"] == 2300 and result["Errors"] == 0
    page = soda.get(ff, limit=5, offset=10, order="inspection_id")
    assert [r["inspection_id"] for r in page] == [f"I-{i:04d}" for i in range(10, 15)]
    everything = list(soda.get_all(ff))  # pages of the default 1000, no $limit sent
    assert len(everything) == 2300 and everything[0]["score"] == "0"
    assert soda.get(ff, where="score >= 2298", select="inspection_id, score") == [
        {"inspection_id": "I-2298", "score": "2298"},
        {"inspection_id": "I-2299", "score": "2299"},
    ]
    assert soda.get(ff, inspection_id="I-0007")[0]["score"] == "7"
    assert soda.get(ff, content_type="csv", limit=1)[0] == ["inspection_id", "score", "inspected"]

    result = soda.upsert(ff, [{"inspection_id": "I-0001", "score": 99}, {"inspection_id": "I-0002", ":deleted": True}])
    assert (result["Rows Updated"], result["Rows Deleted"]) == (1, 1)
    csv_file = io.StringIO("inspection_id,score\nI-9000,5\n")
    assert soda.upsert(ff, csv_file)["Rows Created"] == 1

    replaced = soda.replace(ff, [{"inspection_id": "R-1", "score": 1}, {"inspection_id": "R-2", "score": 2}])
    assert replaced["Rows Created"] == 2
    soda.delete(ff, row_id="R-1")
    assert soda.get(ff) == [{"inspection_id": "R-2", "score": "2"}]

    updated = soda.update_metadata(ff, {"description": "Updated"})
    assert updated["description"] == "Updated"
    soda.set_permission(ff, "private")
    assert requests.get(f"{client.url}/resource/{ff}.json").status_code == 403
    soda.set_permission(ff, "public")
    assert [d["resource"]["id"] for d in soda.datasets()] == [ff]
    soda.delete(ff)
    assert requests.get(f"{client.url}/api/views/{ff}.json").status_code == 404


def test_sodapy_sees_refusals_as_http_errors(client, soda):
    ff = client.dataset()
    with pytest.raises(requests.exceptions.HTTPError, match="maltyped"):
        soda.upsert(ff, [{"case_id": "A", "amount": "lots"}])
    with pytest.raises(requests.exceptions.HTTPError, match="401"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bad = sodapy.Socrata(
                client.url.removeprefix("http://"),
                None,
                username=USER,
                password="wrong",
                session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
            )
        bad.upsert(ff, [{"case_id": "A"}])


@pytest.fixture
def tls(tmp_path):
    portal = LocalPortal(tmp_path / "portal.sqlite", users={USER: SECRET})
    with portal.serve(tls=True) as server:
        yield portal, server
    portal.close()


def _publishing(server):
    Socrata, Authorization = _socrata_py()
    auth = Authorization(server.domain, username=USER, password=SECRET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auth.live_dangerously()  # the certificate is self-signed
    return Socrata(auth)


def _read(server, ff, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return requests.get(f"{server.url}/resource/{ff}.json", params=params, verify=False, auth=(USER, SECRET)).json()


def test_socrata_py_creates_a_dataset_from_csv(tls):
    portal, server = tls
    assert server.url.startswith("https://")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        publishing = _publishing(server)
        (rev, output) = publishing.create(name="Weather", description="Daily").csv(
            io.BytesIO(b"station,celsius,day\nA,11.5,2024-05-01\nB,9,2024-05-02\n"), "weather.csv"
        )
        assert output.attributes["error_count"] == 0
        assert [r["station"] for r in output.rows()] == [{"ok": "A"}, {"ok": "B"}]
        job = rev.apply(output_schema=output).wait_for_finish()
    assert job.attributes["status"] == "successful"
    ff = rev.attributes["fourfour"]
    assert _read(server, ff) == [
        {"station": "A", "celsius": "11.5", "day": "2024-05-01T00:00:00.000"},
        {"station": "B", "celsius": "9", "day": "2024-05-02T00:00:00.000"},
    ]
    assert portal.view(ff)["name"] == "Weather"


def test_socrata_py_replace_revision_with_a_changed_schema(tls):
    portal, server = tls
    ff = portal.create_dataset(
        name="Cases",
        columns=[{"fieldName": "case_id", "dataTypeName": "text"}, {"fieldName": "amount", "dataTypeName": "number"}],
        row_identifier="case_id",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        publishing = _publishing(server)
        requests.post(
            f"{server.url}/resource/{ff}.json",
            json=[{"case_id": "OLD", "amount": 1}],
            auth=(USER, SECRET),
            verify=False,
        )
        view = publishing.views.lookup(ff)
        rev = view.revisions.create_replace_revision(metadata={"description": "replaced by socrata-py"})
        source = rev.create_upload("cases.csv").csv(io.BytesIO(b"case_id,amount,note\nN-1,5,hello\nN-2,6.25,\n"))
        output = source.get_latest_input_schema().get_latest_output_schema()
        output = output.change_column_metadata("note", "display_name").to("Note").run().wait_for_finish()
        assert output.validate_row_id("case_id") is True
        job = rev.apply(output_schema=output).wait_for_finish()
        assert job.attributes["status"] == "successful"
        assert [r.attributes["revision_seq"] for r in view.revisions.list()] == [0]
    assert _read(server, ff) == [
        {"case_id": "N-1", "amount": "5", "note": "hello"},
        {"case_id": "N-2", "amount": "6.25"},
    ]
    meta = portal.view(ff)
    assert meta["description"] == "replaced by socrata-py"
    assert [(c["fieldName"], c["name"]) for c in meta["columns"]][-1] == ("note", "Note")


def test_socrata_py_update_and_delete_revisions(tls):
    portal, server = tls
    ff = portal.create_dataset(
        name="Cases",
        columns=[{"fieldName": "case_id", "dataTypeName": "text"}, {"fieldName": "status", "dataTypeName": "text"}],
        row_identifier="case_id",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        publishing = _publishing(server)
        view = publishing.views.lookup(ff)
        for kind, data in (
            ("update", b"case_id,status\nA,open\nB,open\n"),
            ("update", b"case_id,status\nB,closed\n"),
            ("delete", b"case_id\nA\n"),
        ):
            rev = getattr(view.revisions, f"create_{kind}_revision")()
            source = rev.create_upload("x.csv").csv(io.BytesIO(data))
            output = source.get_latest_input_schema().get_latest_output_schema().wait_for_finish()
            assert rev.apply(output_schema=output).wait_for_finish().attributes["status"] == "successful"
    assert _read(server, ff) == [{"case_id": "B", "status": "closed"}]


def test_tls_with_the_generated_or_given_certificate(tmp_path):
    import shutil

    portal = LocalPortal(tmp_path / "portal.sqlite")
    with portal.serve(tls=True) as server:
        assert requests.get(server.url + "/", verify=server.cert_path).status_code == 200
        cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
        shutil.copy(server.cert_path, cert)
        shutil.copy(server.cert_path.replace(".crt", ".key"), key)
    with portal.serve(cert=str(cert), key=str(key)) as server:
        assert server.url.startswith("https://")
        assert requests.get(server.url + "/api/views.json", verify=str(cert)).json() == []
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            requests.get(server.url + "/")
    portal.close()
