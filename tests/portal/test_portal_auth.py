"""Who may do what: Basic auth (user or API key), app tokens, private datasets, refusals."""

from __future__ import annotations

import base64
import logging

from portalkit import KEY_ID, KEY_SECRET, SECRET, USER, ServedPortal


def test_writes_need_credentials(portal):
    ff = portal.create()
    anon = portal.anonymous()
    r = anon.post(f"{portal.url}/resource/{ff}.json", data='[{"case_id": "A"}]')
    assert r.status_code == 403
    assert r.json() == {
        "code": "authentication_required",
        "errorCode": "authentication_required",
        "error": True,
        "message": "You must be logged in to access this resource",
        "data": {},
    }
    for auth in ((USER, "wrong"), ("nobody", SECRET)):
        r = anon.post(f"{portal.url}/resource/{ff}.json", data='[{"case_id": "A"}]', auth=auth)
        assert r.status_code == 401 and r.json()["error"] is True and r.json()["code"] == r.json()["errorCode"]
    for method, path in (
        ("PUT", f"/resource/{ff}.json"),
        ("DELETE", f"/resource/{ff}/A.json"),
        ("POST", "/api/views.json"),
        ("PUT", f"/api/views/{ff}.json"),
        ("DELETE", f"/api/views/{ff}.json"),
        ("POST", f"/api/publishing/v1/revision/{ff}"),
    ):
        assert anon.request(method, portal.url + path, data="{}").status_code == 403, (method, path)
    assert portal.rows(ff) == []


def test_api_key_id_and_secret_work_like_a_user(portal):
    ff = portal.create(columns=[{"fieldName": "a"}], row_identifier=None)
    anon = portal.anonymous()
    url = f"{portal.url}/resource/{ff}.json"
    assert anon.post(url, data='[{"a": "1"}]', auth=(KEY_ID, KEY_SECRET)).status_code == 200
    token = base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
    assert anon.post(url, data='[{"a": "2"}]', headers={"Authorization": "Basic " + token}).status_code == 200
    assert anon.post(url, data='[{"a": "3"}]', headers={"Authorization": "OAuth " + KEY_SECRET}).status_code == 200
    assert anon.post(url, data='[{"a": "4"}]', headers={"Authorization": "Basic !!!"}).status_code == 401


def test_app_tokens_are_accepted(portal):
    ff = portal.create()
    r = portal.post(f"/resource/{ff}.json?$$app_token=abc", [{"case_id": "A"}], headers={"X-App-token": "abc"})
    assert r.status_code == 200
    anon = portal.anonymous()
    assert anon.get(f"{portal.url}/resource/{ff}.json?$$app_token=abc").json() == [{"case_id": "A"}]
    assert anon.get(f"{portal.url}/resource/{ff}.json", headers={"X-App-Token": "abc"}).status_code == 200


def test_private_datasets_need_credentials_to_read(portal):
    ff = portal.create(private=True)
    portal.post(f"/resource/{ff}.json", [{"case_id": "A"}])
    anon = portal.anonymous()
    for path in (f"/resource/{ff}.json", f"/resource/{ff}/A.json", f"/api/views/{ff}.json", f"/d/{ff}"):
        assert anon.get(portal.url + path).status_code == 403, path
        assert anon.get(portal.url + path, auth=(USER, "nope")).status_code == 401, path
    assert portal.get(f"/resource/{ff}.json").json() == [{"case_id": "A"}]
    assert ff not in anon.get(portal.url + "/").text
    assert ff in portal.get("/").text


def test_wrong_credentials_on_a_public_read_are_refused(portal):
    ff = portal.create()
    assert portal.anonymous().get(f"{portal.url}/resource/{ff}.json", auth=(USER, "nope")).status_code == 401


def test_a_portal_without_users_is_open(tmp_path):
    with ServedPortal(tmp_path / "p.sqlite", users={}) as portal:
        ff = portal.create(columns=[{"fieldName": "a"}], row_identifier=None)
        anon = portal.anonymous()
        assert anon.post(f"{portal.url}/resource/{ff}.json", data='[{"a": "1"}]').status_code == 200
        assert (
            anon.post(f"{portal.url}/resource/{ff}.json", data='[{"a": "1"}]', auth=("any", "thing")).status_code == 200
        )


def test_users_can_be_added_while_serving(portal):
    ff = portal.create()
    late = portal.anonymous()
    late.auth = ("late", "pw-late")
    assert late.post(f"{portal.url}/resource/{ff}.json", data="[]").status_code == 401
    portal.local.add_user("late", "pw-late")
    assert late.post(f"{portal.url}/resource/{ff}.json", data="[]").status_code == 200


def test_secrets_never_reach_the_log(portal, caplog):
    caplog.set_level(logging.DEBUG)
    ff = portal.create()
    portal.post(f"/resource/{ff}.json?$$app_token=tok-visible-nowhere", [{"case_id": "A"}])
    portal.anonymous().post(f"{portal.url}/resource/{ff}.json", data="[]", auth=(USER, "wrong-pass-xyz"))
    portal.get(f"/resource/{ff}.json?$$app_token=tok-visible-nowhere")
    portal_records = [r for r in caplog.records if r.name.startswith("pipeline.portal")]
    assert portal_records  # the portal does log requests (method and path)
    text = "".join(r.getMessage() for r in portal_records)
    assert SECRET not in text and "wrong-pass-xyz" not in text and "tok-visible-nowhere" not in text
    r = portal.anonymous().post(f"{portal.url}/resource/{ff}.json", data="[]", auth=(USER, "wrong-pass-xyz"))
    assert "wrong-pass-xyz" not in r.text and USER not in r.text
