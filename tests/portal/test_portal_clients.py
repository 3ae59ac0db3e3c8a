"""Socrata's own clients, unchanged, against the served portal: sodapy (http) and socrata-py (https)."""

from __future__ import annotations

import io
import warnings

import pytest
import requests
from portalkit import SECRET, USER, ServedPortal
from requests.adapters import HTTPAdapter

from pipeline.portal import LocalPortal

sodapy = pytest.importorskip("sodapy")
socrata_py = pytest.importorskip("socrata.authorization")  # socrata-py


@pytest.fixture
def soda(portal):
    """sodapy pointed at the portal through its own session_adapter hook (it defaults to https)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = sodapy.Socrata(
            portal.domain,
            "app-token",
            username=USER,
            password=SECRET,
            session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
        )
    yield c
    c.close()


def test_sodapy_create_publish_upsert_read_replace_delete(portal, soda):
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
    assert requests.get(f"{portal.url}/resource/{ff}.json").status_code == 403
    soda.set_permission(ff, "public")
    assert [d["resource"]["id"] for d in soda.datasets()] == [ff]
    soda.delete(ff)
    assert requests.get(f"{portal.url}/api/views/{ff}.json").status_code == 404


def test_sodapy_sees_refusals_as_http_errors(portal, soda):
    ff = portal.create()
    with pytest.raises(requests.exceptions.HTTPError, match="maltyped"):
        soda.upsert(ff, [{"case_id": "A", "amount": "lots"}])
    with pytest.raises(requests.exceptions.HTTPError, match="401"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bad = sodapy.Socrata(
                portal.domain,
                None,
                username=USER,
                password="wrong",
                session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
            )
        bad.upsert(ff, [{"case_id": "A"}])


@pytest.fixture
def tls(tmp_path):
    """A portal served over https with a self-signed certificate."""
    with ServedPortal(tmp_path / "tls" / "portal.sqlite", tls=True) as served:
        yield served


def _publishing(portal):
    from socrata import Socrata
    from socrata.authorization import Authorization

    auth = Authorization(portal.domain, username=USER, password=SECRET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auth.live_dangerously()  # the certificate is self-signed
    return Socrata(auth)


def test_socrata_py_creates_a_dataset_from_csv(tls):
    assert tls.url.startswith("https://")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        publishing = _publishing(tls)
        (rev, output) = publishing.create(name="Weather", description="Daily").csv(
            io.BytesIO(b"station,celsius,day\nA,11.5,2024-05-01\nB,9,2024-05-02\n"), "weather.csv"
        )
        assert output.attributes["error_count"] == 0
        assert [r["station"] for r in output.rows()] == [{"ok": "A"}, {"ok": "B"}]
        job = rev.apply(output_schema=output).wait_for_finish()
    assert job.attributes["status"] == "successful"
    ff = rev.attributes["fourfour"]
    assert tls.rows(ff) == [
        {"station": "A", "celsius": "11.5", "day": "2024-05-01T00:00:00.000"},
        {"station": "B", "celsius": "9", "day": "2024-05-02T00:00:00.000"},
    ]
    assert tls.local.view(ff)["name"] == "Weather"


def test_socrata_py_replace_revision_with_a_changed_schema(tls):
    ff = tls.create(
        columns=[{"fieldName": "case_id", "dataTypeName": "text"}, {"fieldName": "amount", "dataTypeName": "number"}],
        row_identifier="case_id",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        publishing = _publishing(tls)
        tls.post(f"/resource/{ff}.json", [{"case_id": "OLD", "amount": 1}])
        view = publishing.views.lookup(ff)
        rev = view.revisions.create_replace_revision(metadata={"description": "replaced by socrata-py"})
        source = rev.create_upload("cases.csv").csv(io.BytesIO(b"case_id,amount,note\nN-1,5,hello\nN-2,6.25,\n"))
        output = source.get_latest_input_schema().get_latest_output_schema()
        output = output.change_column_metadata("note", "display_name").to("Note").run().wait_for_finish()
        assert output.validate_row_id("case_id") is True
        job = rev.apply(output_schema=output).wait_for_finish()
        assert job.attributes["status"] == "successful"
        assert [r.attributes["revision_seq"] for r in view.revisions.list()] == [0]
    assert tls.rows(ff) == [
        {"case_id": "N-1", "amount": "5", "note": "hello"},
        {"case_id": "N-2", "amount": "6.25"},
    ]
    meta = tls.local.view(ff)
    assert meta["description"] == "replaced by socrata-py"
    assert [(c["fieldName"], c["name"]) for c in meta["columns"]][-1] == ("note", "Note")


def test_socrata_py_update_and_delete_revisions(tls):
    ff = tls.create(
        columns=[{"fieldName": "case_id", "dataTypeName": "text"}, {"fieldName": "status", "dataTypeName": "text"}],
        row_identifier="case_id",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        publishing = _publishing(tls)
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
    assert tls.rows(ff) == [{"case_id": "B", "status": "closed"}]


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
