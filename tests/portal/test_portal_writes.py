"""Upsert, replace and delete semantics, with and without a row identifier, and their answers."""

from __future__ import annotations

SUMMARY_KEYS = ["Rows Created", "Rows Updated", "Rows Deleted", "Errors", "By RowIdentifier", "By SID"]


def summary(created=0, updated=0, deleted=0, errors=0, by_ri=0, by_sid=0):
    return dict(zip(SUMMARY_KEYS, (created, updated, deleted, errors, by_ri, by_sid)))


def test_upsert_with_row_identifier_creates_updates_merges_and_deletes(portal):
    ff = portal.create()
    r = portal.post(
        f"/resource/{ff}.json",
        [
            {"case_id": "A-1", "status": "OPEN", "amount": 5},
            {"case_id": "A-2", "status": "OPEN", "amount": 7},
            {"case_id": "A-3", "status": "OPEN"},
        ],
    )
    assert r.status_code == 200 and r.json() == summary(created=3)
    r = portal.post(
        f"/resource/{ff}.json",
        [
            {"case_id": "A-1", "status": "CLOSED"},  # merge: amount keeps 5
            {"case_id": "A-2", "amount": None},  # explicit null clears
            {"case_id": "A-3", ":deleted": True},
            {"case_id": "A-4", "status": "NEW"},
            {"case_id": "A-9", ":deleted": True},
        ],
    )  # nothing to delete: an error, not a 400
    assert r.status_code == 200
    assert r.json() == summary(created=1, updated=2, deleted=1, errors=1, by_ri=3)
    assert portal.rows(ff) == [
        {"case_id": "A-1", "status": "CLOSED", "amount": "5"},
        {"case_id": "A-2", "status": "OPEN"},
        {"case_id": "A-4", "status": "NEW"},
    ]


def test_upsert_is_idempotent(portal):
    ff = portal.create()
    body = [{"case_id": "A-1", "status": "OPEN"}, {"case_id": "A-2", ":deleted": True}]
    portal.post(f"/resource/{ff}.json", body)
    again = portal.post(f"/resource/{ff}.json", body)
    assert again.json() == summary(updated=1, errors=1, by_ri=1)
    assert portal.rows(ff) == [{"case_id": "A-1", "status": "OPEN"}]


def test_deleted_must_be_exactly_true(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "A-1"}])
    r = portal.post(f"/resource/{ff}.json", [{"case_id": "A-1", ":deleted": "true", "status": "kept"}])
    assert r.json()["Rows Deleted"] == 0
    assert portal.rows(ff) == [{"case_id": "A-1", "status": "kept"}]


def test_one_item_array_deletes_by_key(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "A-1"}, {"case_id": "A-2"}])
    r = portal.post(f"/resource/{ff}.json", [["A-1"]])
    assert r.json()["Rows Deleted"] == 1 and portal.rows(ff) == [{"case_id": "A-2"}]


def test_without_row_identifier_rows_append_and_id_updates_or_deletes(portal):
    ff = portal.create(row_identifier=None)
    body = [{"case_id": "A-1", "status": "OPEN"}, {"case_id": "A-1", "status": "OPEN"}]
    assert portal.post(f"/resource/{ff}.json", body).json() == summary(created=2)
    rows = portal.rows(ff, **{"$select": ":id, case_id, status"})
    assert len(rows) == 2 and rows[0][":id"] != rows[1][":id"]
    first, second = rows[0][":id"], rows[1][":id"]
    r = portal.post(
        f"/resource/{ff}.json",
        [
            {":id": first, "status": "CLOSED"},
            {":id": second, ":deleted": True},
            {":id": "row-2222~2222~2222", "status": "x"},
            {":id": None, "case_id": "A-5"},
        ],
    )
    assert r.json() == summary(created=1, updated=1, deleted=1, errors=1, by_sid=2)
    assert portal.rows(ff) == [{"case_id": "A-1", "status": "CLOSED"}, {"case_id": "A-5"}]


def test_snake_case_summary_for_version_2_0_callers(portal):
    ff = portal.create()
    r = portal.post(f"/resource/{ff}?$$version=2.0", [{"case_id": "A-1"}, {"case_id": "Z", ":deleted": True}])
    assert r.json() == {
        "rows_created": 1,
        "rows_updated": 0,
        "rows_deleted": 0,
        "errors": [{"error": "no_such_row_to_delete", "input_index": 1, "primary_key": "Z"}],
    }


def test_body_without_content_type_and_single_object(portal):
    ff = portal.create()
    r = portal.session.post(f"{portal.url}/resource/{ff}.json", data=b'{"case_id": "A-1"}')
    assert r.status_code == 200 and r.json()["Rows Created"] == 1


def test_csv_upsert_and_replace(portal):
    ff = portal.create()
    csv_body = (
        "case_id,status,amount,opened,closed,:deleted\n"
        'A-1,"OPEN, waiting",1.5,2024-01-05,true,false\n'
        'A-2,"say ""hi""",,03/26/2014 10:38:01 PM,,\n'
    )
    r = portal.post(f"/resource/{ff}.json", csv_body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json()["Rows Created"] == 2
    assert portal.rows(ff) == [
        {
            "case_id": "A-1",
            "status": "OPEN, waiting",
            "amount": "1.5",
            "opened": "2024-01-05T00:00:00.000",
            "closed": True,
        },
        {"case_id": "A-2", "status": 'say "hi"', "opened": "2014-03-26T22:38:01.000"},
    ]
    r = portal.post(f"/resource/{ff}.json", "case_id,:deleted\nA-1,true\n", headers={"Content-Type": "text/csv"})
    assert r.json()["Rows Deleted"] == 1
    r = portal.put(f"/resource/{ff}.json", "case_id,amount\nB-1,2\nB-2,x\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 400 and '"x"' in r.json()["message"]
    assert [x["case_id"] for x in portal.rows(ff)] == ["A-2"]


def test_replace_makes_the_dataset_exactly_the_payload(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": f"A-{i}"} for i in range(5)])
    r = portal.put(
        f"/resource/{ff}.json",
        [{"case_id": "B-1", "status": "x"}, {"case_id": "B-2"}, {"case_id": "B-3", ":deleted": True}],
    )
    assert r.status_code == 200 and r.json() == summary(created=2)
    assert portal.rows(ff) == [{"case_id": "B-1", "status": "x"}, {"case_id": "B-2"}]
    assert portal.put(f"/resource/{ff}.json", []).json()["Rows Created"] == 0
    assert portal.rows(ff) == []


def test_replace_gives_new_internal_ids(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "A"}])
    before = portal.rows(ff, **{"$select": ":id"})[0][":id"]
    portal.put(f"/resource/{ff}.json", [{"case_id": "A"}])
    assert portal.rows(ff, **{"$select": ":id"})[0][":id"] != before


def test_delete_one_row(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "A-1"}, {"case_id": "A-2"}])
    r = portal.delete(f"/resource/{ff}/A-1.json")
    assert r.status_code == 200 and r.json() == [{"typ": "delete", "id": "A-1"}]
    assert portal.rows(ff) == [{"case_id": "A-2"}]
    r = portal.delete(f"/resource/{ff}/A-1.json")
    assert r.status_code == 404 and r.json()["code"] == "soda.row.not-found"

    nori = portal.create(row_identifier=None)
    portal.post(f"/resource/{nori}.json", [{"case_id": "x"}])
    row_id = portal.rows(nori, **{"$select": ":id"})[0][":id"]
    assert portal.delete(f"/resource/{nori}/{row_id}.json").status_code == 200
    assert portal.rows(nori) == []


def test_a_request_that_fails_writes_nothing(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "A-1", "status": "OPEN"}])
    bad = [{"case_id": "A-1", "status": "CLOSED"}, {"case_id": "A-2"}, {"case_id": "A-3", "amount": "ten"}]
    r = portal.post(f"/resource/{ff}.json", bad)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == body["errorCode"] == "soda.column.maltyped" and body["error"] is True
    assert body["data"] == {"field": "amount", "expected": "number", "got": "ten"}
    assert portal.rows(ff) == [{"case_id": "A-1", "status": "OPEN"}]


def test_whole_request_refusals(portal):
    ff = portal.create()
    cases = [
        ([{"case_id": "A", "colour": "red"}], "soda.row.column-not-found", "colour"),
        ([{"status": "no key"}], "soda.row.primary-key-nonexistent-or-null", "case_id"),
        (["not an object"], "soda.row.upsert-row-not-an-object", "Row 0"),
        ("[{", "req.body.malformed-json", "JSON"),
    ]
    for body, code, word in cases:
        r = portal.post(f"/resource/{ff}.json", body)
        assert r.status_code == 400, body
        assert r.json()["code"] == code and word in r.json()["message"]
    assert portal.rows(ff) == []


def test_upsert_rows_with_different_fields_in_one_request(portal):
    ff = portal.create()
    r = portal.post(
        f"/resource/{ff}.json",
        [
            {"case_id": "A", "status": "s"},
            {"case_id": "B", "amount": 1},
            {"case_id": "A", "amount": 2},
            {"case_id": "B", ":deleted": True},
        ],
    )
    assert r.json() == summary(created=2, updated=1, deleted=1, by_ri=2)
    assert portal.rows(ff) == [{"case_id": "A", "status": "s", "amount": "2"}]


def test_unknown_dataset_is_404(portal):
    assert portal.post("/resource/zzzz-zzzz.json", [{"a": 1}]).status_code == 404


def test_concurrent_writers_lose_nothing(portal, tmp_path):
    import threading

    import requests

    from pipeline.portal import LocalPortal

    keyed = portal.create()
    appended = portal.create(row_identifier=None)
    errors = []

    def writer(n):
        with requests.Session() as s:
            s.auth = portal.auth
            for batch in range(5):
                body = [{"case_id": f"{n}-{batch}-{i}", "status": "x"} for i in range(50)]
                for ff in (keyed, appended):
                    r = s.post(f"{portal.url}/resource/{ff}.json", json=body)
                    if r.status_code != 200:
                        errors.append(r.text)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    # another process-like writer: a second portal object on the same file, writing directly
    other = LocalPortal(portal.data)
    for i in range(3):
        other.create_dataset(name=f"side {i}", columns=[{"fieldName": "a"}])
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    for ff in (keyed, appended):
        count = portal.rows(ff, **{"$select": "count(*)", "$order": None})[0]["count"]
        assert count == str(4 * 5 * 50)
    assert len(portal.get("/api/views.json").json()) == 5


def test_python_rows_helper(portal):
    local = portal.local  # LocalPortal's own helpers, without HTTP
    ff = local.create_dataset(name="x", columns=[{"fieldName": "n", "dataTypeName": "number"}])
    with local.store.write() as conn:
        from pipeline.portal import rows
        from pipeline.portal.storage import require
        from pipeline.portal.wire import now_fixed

        ds = require(conn, ff)
        rows.apply(conn, ds, rows.prepare(ds, rows.batch_from_json(b'[{"n": 1}, {"n": 2}, {"n": 3}]')), now_fixed())
    assert local.rows(ff, where="n > 1", order="n DESC") == [{"n": "3"}, {"n": "2"}]
    assert len(local.rows(ff, limit=None)) == 3
    assert local.view(ff)["rowCount"] == 3
