"""Dataset metadata over /api/views: create, read, publish, update, columns, delete, and the HTML page."""

from __future__ import annotations

from portalkit import CASES


def test_create_returns_unpublished_view_with_column_ids_and_row_identifier(portal):
    body = {
        "name": "Permits",
        "description": "Building permits",
        "category": "Housing",
        "tags": ["a"],
        "columns": [
            {"fieldName": "permit_no", "name": "Permit No", "dataTypeName": "text"},
            {"fieldName": "issued", "name": "Issued", "dataTypeName": "calendar_date"},
        ],
        "metadata": {"rowIdentifier": "permit_no"},
    }
    r = portal.post("/api/views.json?nbe=true", body)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    view = r.json()
    assert view["publicationStage"] == "unpublished"
    assert [c["fieldName"] for c in view["columns"]] == ["permit_no", "issued"]
    ids = {c["fieldName"]: c["id"] for c in view["columns"]}
    assert isinstance(ids["permit_no"], int)
    assert view["rowIdentifierColumnId"] == ids["permit_no"] == view["metadata"]["rowIdentifier"]
    assert view["tags"] == ["a"] and view["category"] == "Housing"

    published = portal.post(f"/api/views/{view['id']}/publication.json")
    assert published.status_code == 200 and published.json()["publicationStage"] == "published"
    assert published.json()["id"] == view["id"]


def test_view_readable_with_and_without_json_suffix_by_anyone(portal):
    ff = portal.create()
    anon = portal.anonymous()
    for path in (f"/api/views/{ff}.json", f"/api/views/{ff}"):
        r = anon.get(portal.url + path)
        assert r.status_code == 200
        assert r.json()["id"] == ff and r.json()["name"] == "Cases"
        assert [c["dataTypeName"] for c in r.json()["columns"]] == [c["dataTypeName"] for c in CASES]


def test_unknown_view_is_404_with_error_body(portal):
    r = portal.get("/api/views/zzzz-9999.json")
    assert r.status_code == 404
    body = r.json()
    assert body["error"] is True and body["code"] == body["errorCode"] and "zzzz-9999" in body["message"]


def test_create_refuses_unknown_type_and_duplicate_field(portal):
    r = portal.post("/api/views.json", {"name": "x", "columns": [{"fieldName": "a", "dataTypeName": "numbr"}]})
    assert r.status_code == 400 and "numbr" in r.json()["message"]
    r = portal.post("/api/views.json", {"name": "x", "columns": [{"fieldName": "a"}, {"fieldName": "a"}]})
    assert r.status_code == 400 and "'a'" in r.json()["message"]


def test_update_metadata_keeps_what_is_not_given(portal):
    ff = portal.create(description="old")
    r = portal.put(f"/api/views/{ff}.json", {"name": "Cases 2024", "tags": ["x", "y"]})
    assert r.status_code == 200
    view = portal.get(f"/api/views/{ff}.json").json()
    assert view["name"] == "Cases 2024" and view["tags"] == ["x", "y"] and view["description"] == "old"


def test_set_row_identifier_through_metadata_checks_values(portal):
    ff = portal.create(row_identifier=None)
    portal.post(f"/resource/{ff}.json", [{"case_id": "A"}, {"case_id": "A"}])
    r = portal.put(f"/api/views/{ff}.json", {"metadata": {"rowIdentifier": "case_id"}})
    assert r.status_code == 400 and "repeated" in r.json()["message"]
    portal.delete(f"/resource/{ff}/{portal.rows(ff, **{'$select': ':id'})[0][':id']}.json")
    r = portal.put(f"/api/views/{ff}.json", {"metadata": {"rowIdentifier": "case_id"}})
    assert r.status_code == 200
    case_id = next(c["id"] for c in r.json()["columns"] if c["fieldName"] == "case_id")
    assert r.json()["rowIdentifierColumnId"] == case_id


def test_set_permission_private_then_public(portal):
    ff = portal.create()
    anon = portal.anonymous()
    assert portal.put(f"/api/views/{ff}.json?method=setPermission&value=private").status_code == 200
    assert anon.get(f"{portal.url}/api/views/{ff}.json").status_code == 403
    assert anon.get(f"{portal.url}/resource/{ff}.json").status_code == 403
    assert portal.get(f"/resource/{ff}.json").status_code == 200
    assert portal.put(f"/api/views/{ff}.json?method=setPermission&value=public.read").status_code == 200
    assert anon.get(f"{portal.url}/resource/{ff}.json").status_code == 200


def test_add_rename_and_drop_columns(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "A-1", "status": "OPEN"}])
    r = portal.post(f"/api/views/{ff}/columns.json", {"fieldName": "ward", "name": "Ward", "dataTypeName": "number"})
    assert r.status_code == 200 and r.json()["fieldName"] == "ward"
    ward = r.json()["id"]
    assert portal.post(f"/resource/{ff}.json", [{"case_id": "A-1", "ward": 7}]).status_code == 200
    assert portal.rows(ff) == [{"case_id": "A-1", "status": "OPEN", "ward": "7"}]

    r = portal.put(f"/api/views/{ff}/columns/{ward}.json", {"name": "City ward"})
    assert r.status_code == 200 and r.json()["name"] == "City ward"
    r = portal.put(f"/api/views/{ff}/columns/{ward}.json", {"dataTypeName": "text"})
    assert r.status_code == 400

    status = next(c["id"] for c in portal.get(f"/api/views/{ff}.json").json()["columns"] if c["fieldName"] == "status")
    assert portal.delete(f"/api/views/{ff}/columns/{status}.json").status_code == 200
    assert [c["fieldName"] for c in portal.get(f"/api/views/{ff}.json").json()["columns"]] == [
        "case_id",
        "amount",
        "opened",
        "closed",
        "ward",
    ]
    assert portal.rows(ff) == [{"case_id": "A-1", "ward": "7"}]


def test_delete_dataset(portal):
    ff = portal.create()
    r = portal.delete(f"/api/views/{ff}.json")
    assert r.status_code == 200
    assert portal.get(f"/api/views/{ff}.json").status_code == 404
    assert portal.get(f"/resource/{ff}.json").status_code == 404


def test_html_page_lists_datasets_and_shows_columns_and_rows(portal):
    ff = portal.create(name="Cases <2024>")
    portal.post(f"/resource/{ff}.json", [{"case_id": "A-1", "status": "<b>OPEN</b>"}])
    index = portal.anonymous().get(portal.url + "/")
    assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
    assert ff in index.text and "Cases &lt;2024&gt;" in index.text
    page = portal.anonymous().get(f"{portal.url}/d/{ff}")
    assert page.status_code == 200
    assert "Case ID" in page.text and "calendar_date" in page.text and "(row identifier)" in page.text
    assert "&lt;b&gt;OPEN&lt;/b&gt;" in page.text and "<b>OPEN</b>" not in page.text


def test_catalog_lists_public_datasets(portal):
    ff = portal.create()
    r = portal.get("/api/catalog/v1?domains=local")
    assert r.status_code == 200
    assert [x["resource"]["id"] for x in r.json()["results"]] == [ff] and r.json()["resultSetSize"] == 1
