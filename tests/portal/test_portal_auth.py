"""Who may do what: Basic auth (user or API key), app tokens, private datasets, refusals."""

from __future__ import annotations

import base64
import logging

import requests

from pipeline.portal import LocalPortal

from .conftest import SECRET, USER


def test_writes_need_credentials(client):
    ff = client.dataset()
    anon = client.anonymous()
    r = anon.post(f"{client.url}/resource/{ff}.json", data='[{"case_id": "A"}]')
    assert r.status_code == 403
    assert r.json() == {
        "code": "authentication_required",
        "errorCode": "authentication_required",
        "error": True,
        "message": "You must be logged in to access this resource",
        "data": {},
    }
    for auth in ((USER, "wrong"), ("nobody", SECRET)):
        r = anon.post(f"{client.url}/resource/{ff}.json", data='[{"case_id": "A"}]', auth=auth)
        assert r.status_code == 401 and r.json()["error"] is True and r.json()["code"] == r.json()["errorCode"]
    for method, path in (
        ("PUT", f"/resource/{ff}.json"),
        ("DELETE", f"/resource/{ff}/A.json"),
        ("POST", "/api/views.json"),
        ("PUT", f"/api/views/{ff}.json"),
        ("DELETE", f"/api/views/{ff}.json"),
        ("POST", f"/api/publishing/v1/revision/{ff}"),
    ):
        assert anon.request(method, client.url + path, data="{}").status_code == 403, (method, path)
    assert client.rows(ff) == []


def test_api_key_id_and_secret_work_like_a_user(tmp_path):
    portal = LocalPortal(tmp_path / "p.sqlite", users={"key-id-123": "key-secret-456"})
    ff = portal.create_dataset(name="x", columns=[{"fieldName": "a"}])
    with portal.serve() as server:
        r = requests.post(
            f"{server.url}/resource/{ff}.json", data='[{"a": "1"}]', auth=("key-id-123", "key-secret-456")
        )
        assert r.status_code == 200
        token = base64.b64encode(b"key-id-123:key-secret-456").decode()
        r = requests.post(
            f"{server.url}/resource/{ff}.json", data='[{"a": "2"}]', headers={"Authorization": "Basic " + token}
        )
        assert r.status_code == 200
        r = requests.post(
            f"{server.url}/resource/{ff}.json", data='[{"a": "3"}]', headers={"Authorization": "OAuth key-secret-456"}
        )
        assert r.status_code == 200
        r = requests.post(
            f"{server.url}/resource/{ff}.json", data='[{"a": "4"}]', headers={"Authorization": "Basic !!!"}
        )
        assert r.status_code == 401
    portal.close()


def test_app_tokens_are_accepted(client):
    ff = client.dataset()
    r = client.post(f"/resource/{ff}.json?$$app_token=abc", [{"case_id": "A"}], headers={"X-App-token": "abc"})
    assert r.status_code == 200
    anon = client.anonymous()
    assert anon.get(f"{client.url}/resource/{ff}.json?$$app_token=abc").json() == [{"case_id": "A"}]
    assert anon.get(f"{client.url}/resource/{ff}.json", headers={"X-App-Token": "abc"}).status_code == 200


def test_private_datasets_need_credentials_to_read(client):
    ff = client.dataset(private=True)
    client.post(f"/resource/{ff}.json", [{"case_id": "A"}])
    anon = client.anonymous()
    for path in (f"/resource/{ff}.json", f"/resource/{ff}/A.json", f"/api/views/{ff}.json", f"/d/{ff}"):
        assert anon.get(client.url + path).status_code == 403, path
        assert anon.get(client.url + path, auth=(USER, "nope")).status_code == 401, path
    assert client.get(f"/resource/{ff}.json").json() == [{"case_id": "A"}]
    assert ff not in anon.get(client.url + "/").text
    assert ff in client.get("/").text


def test_wrong_credentials_on_a_public_read_are_refused(client):
    ff = client.dataset()
    assert client.anonymous().get(f"{client.url}/resource/{ff}.json", auth=(USER, "nope")).status_code == 401


def test_a_portal_without_users_is_open(tmp_path):
    portal = LocalPortal(tmp_path / "p.sqlite")
    ff = portal.create_dataset(name="x", columns=[{"fieldName": "a"}])
    with portal.serve() as server:
        assert requests.post(f"{server.url}/resource/{ff}.json", data='[{"a": "1"}]').status_code == 200
        assert (
            requests.post(f"{server.url}/resource/{ff}.json", data='[{"a": "1"}]', auth=("any", "thing")).status_code
            == 200
        )
    portal.close()


def test_users_can_be_added_while_serving(client):
    ff = client.dataset()
    late = requests.Session()
    late.auth = ("late", "pw-late")
    assert late.post(f"{client.url}/resource/{ff}.json", data="[]").status_code == 401
    client.portal.add_user("late", "pw-late")
    assert late.post(f"{client.url}/resource/{ff}.json", data="[]").status_code == 200


def test_secrets_never_reach_the_log(client, caplog):
    caplog.set_level(logging.DEBUG)
    ff = client.dataset()
    client.post(f"/resource/{ff}.json?$$app_token=tok-visible-nowhere", [{"case_id": "A"}])
    client.anonymous().post(f"{client.url}/resource/{ff}.json", data="[]", auth=(USER, "wrong-pass-xyz"))
    client.get(f"/resource/{ff}.json?$$app_token=tok-visible-nowhere")
    portal_records = [r for r in caplog.records if r.name.startswith("pipeline.portal")]
    assert portal_records  # the portal does log requests (method and path)
    text = "".join(r.getMessage() for r in portal_records)
    assert SECRET not in text and "wrong-pass-xyz" not in text and "tok-visible-nowhere" not in text
    r = client.anonymous().post(f"{client.url}/resource/{ff}.json", data="[]", auth=(USER, "wrong-pass-xyz"))
    assert "wrong-pass-xyz" not in r.text and USER not in r.text
