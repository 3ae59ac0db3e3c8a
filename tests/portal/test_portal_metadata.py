"""The local portal keeps a dataset's metadata (issue 14): every field route's `metadata:` block
sets, custom metadata included, accepted through /api/views as Socrata's clients send it and served
back in /api/views/{4x4}.json under Socrata's names, also after the portal is started again."""

from __future__ import annotations

import json

import requests
from portalkit import CASES, ServedPortal

FULL = {
    "name": "Cases",
    "description": "All the cases.",
    "category": "Housing",
    "tags": ["housing", "code"],
    "licenseId": "CC_30_BY",
    "attribution": "City of Hartford",
    "attributionLink": "https://www.hartfordct.gov",
    "metadata": {"rowLabel": "Case", "custom_fields": {"Dataset Information": {"Agency": "L&I"}}},
    "privateMetadata": {"contactEmail": "data@hartfordct.gov"},
}


def test_every_field_is_kept_and_served_under_socratas_names(tmp_path):
    with ServedPortal(tmp_path / "portal.sqlite") as portal:
        ds = portal.create()
        # sodapy's update_metadata: a PUT with a JSON body and no Content-Type.
        r = requests.put(f"{portal.url}/api/views/{ds}.json", data=json.dumps(FULL), auth=portal.auth, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["description"] == "All the cases."
        col = next(c for c in portal.get(f"/api/views/{ds}.json").json()["columns"] if c["fieldName"] == "status")
        r = portal.put(f"/api/views/{ds}/columns/{col['id']}.json", {"name": "State", "description": "Open or not"})
        assert r.status_code == 200 and (r.json()["name"], r.json()["description"]) == ("State", "Open or not")
    with ServedPortal(tmp_path / "portal.sqlite") as again:  # kept in the file
        view = again.get(f"/api/views/{ds}.json").json()
    for key in ("name", "description", "category", "tags", "licenseId", "attribution", "attributionLink"):
        assert view[key] == FULL[key], key
    assert view["license"] == {
        "name": "Creative Commons Attribution 3.0 Unported",
        "logoUrl": "images/licenses/cc30by.png",
        "termsLink": "https://creativecommons.org/licenses/by/3.0/legalcode",
    }
    assert view["metadata"]["rowLabel"] == "Case"
    assert view["metadata"]["custom_fields"] == {"Dataset Information": {"Agency": "L&I"}}
    assert view["metadata"]["rowIdentifier"] == view["rowIdentifierColumnId"]
    assert view["privateMetadata"] == {"contactEmail": "data@hartfordct.gov"}
    status = next(c for c in view["columns"] if c["fieldName"] == "status")
    assert (status["name"], status["description"], status["position"]) == ("State", "Open or not", 2)


def test_a_partial_update_changes_only_the_keys_it_names(portal):
    ds = portal.create()
    assert portal.put(f"/api/views/{ds}.json", FULL).status_code == 200
    before = portal.get(f"/api/views/{ds}.json").json()
    r = portal.put(f"/api/views/{ds}.json", {"tags": ["one"]})
    after = r.json()
    assert after["tags"] == ["one"]
    assert {k: v for k, v in after.items() if k not in ("tags", "viewLastModified")} == {
        k: v for k, v in before.items() if k not in ("tags", "viewLastModified")
    }
    # An empty licenseId takes the license away; a license id the portal does not know is named by itself.
    assert "license" not in portal.put(f"/api/views/{ds}.json", {"licenseId": ""}).json()
    assert portal.put(f"/api/views/{ds}.json", {"licenseId": "MY_OWN"}).json()["license"] == {"name": "MY_OWN"}


def test_private_metadata_is_only_for_signed_in_readers(portal):
    ds = portal.create()
    portal.put(f"/api/views/{ds}.json", FULL)
    anonymous = portal.anonymous()
    public = anonymous.get(f"{portal.url}/api/views/{ds}.json", timeout=30).json()
    assert "privateMetadata" not in public and public["metadata"]["rowLabel"] == "Case"
    listed = anonymous.get(f"{portal.url}/api/views.json", timeout=30).json()
    assert all("privateMetadata" not in v for v in listed)
    assert portal.get(f"/api/views/{ds}.json").json()["privateMetadata"]["contactEmail"] == "data@hartfordct.gov"


def test_public_and_private_through_set_permission(portal):
    ds = portal.create()
    view = portal.get(f"/api/views/{ds}.json").json()
    assert view["grants"] == [{"inherited": False, "type": "viewer", "flags": ["public"]}]
    r = portal.put(f"/api/views/{ds}.json", params={"method": "setPermission", "value": "private"})
    assert r.status_code == 200 and r.json()["grants"] == []
    assert portal.anonymous().get(f"{portal.url}/api/views/{ds}.json", timeout=30).status_code == 403
    portal.put(f"/api/views/{ds}.json", params={"method": "setPermission", "value": "public.read"})
    assert portal.anonymous().get(f"{portal.url}/api/views/{ds}.json", timeout=30).status_code == 200


def test_a_column_position_moves_the_column(portal):
    ds = portal.create()
    columns = portal.get(f"/api/views/{ds}.json").json()["columns"]
    assert [c["fieldName"] for c in columns] == [c["fieldName"] for c in CASES]
    closed = next(c for c in columns if c["fieldName"] == "closed")
    r = portal.put(f"/api/views/{ds}/columns/{closed['id']}.json", {"position": 2})
    assert r.status_code == 200 and r.json()["position"] == 2
    moved = portal.get(f"/api/views/{ds}.json").json()["columns"]
    assert [(c["fieldName"], c["position"]) for c in moved] == [
        ("case_id", 1),
        ("closed", 2),
        ("status", 3),
        ("amount", 4),
        ("opened", 5),
    ]
    assert portal.rows(ds) == []  # the rows table is untouched; reads still work
    bad = portal.put(f"/api/views/{ds}/columns/{closed['id']}.json", {"position": 0})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_column"


def test_metadata_of_the_wrong_shape_is_refused(portal):
    ds = portal.create()
    before = portal.get(f"/api/views/{ds}.json").json()
    for body in (
        {"metadata": "x"},
        {"metadata": {"custom_fields": {"Group": "not an object"}}},
        {"tags": "one"},
        {"licenseId": 5},
    ):
        r = portal.put(f"/api/views/{ds}.json", body)
        assert r.status_code == 400, body
        assert r.json()["error"] is True and r.json()["message"]
    column = before["columns"][0]["id"]
    assert portal.put(f"/api/views/{ds}/columns/{column}.json", {"name": ""}).status_code == 400
    assert portal.get(f"/api/views/{ds}.json").json() == before


def test_a_dataset_created_with_metadata_has_it(portal):
    body = {
        **FULL,
        "columns": [{**c, "description": f"about {c['fieldName']}"} for c in CASES],
        "metadata": {**FULL["metadata"], "rowIdentifier": "case_id"},
    }
    r = portal.post("/api/views.json", body, params={"nbe": "true"})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["license"]["name"] == "Creative Commons Attribution 3.0 Unported"
    assert view["metadata"]["custom_fields"] == FULL["metadata"]["custom_fields"]
    assert view["privateMetadata"] == FULL["privateMetadata"]
    assert [c["description"] for c in view["columns"]][:2] == ["about case_id", "about status"]
    ri = next(c for c in view["columns"] if c["fieldName"] == "case_id")
    assert view["rowIdentifierColumnId"] == ri["id"] == view["metadata"]["rowIdentifier"]
