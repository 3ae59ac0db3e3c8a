"""The Dataset Management API over plain HTTP: revisions, uploads, schemas, apply, atomic replace."""

from __future__ import annotations

import threading
import time

from pipeline.portal import LocalPortal

P = "/api/publishing/v1"
REVISION_LINKS = {"show", "update", "apply", "discard", "create_source", "list_sources", "plan"}
SOURCE_LINKS = {"show", "bytes", "update", "add_to_revision", "initiate", "chunk", "commit", "load", "cancel"}


def fill(template: str, **values) -> str:
    for k, v in values.items():
        template = template.replace("{" + k + "}", str(v))
    return template


def open_revision(client, ff, action="replace"):
    r = client.post(f"{P}/revision/{ff}", {"action": {"type": action, "permission": None}, "metadata": {}})
    assert r.status_code == 201, r.text
    return r.json()


def upload(client, revision, data: bytes, chunk=None, filename="x.csv"):
    """create_source -> initiate -> chunks (last first) -> commit; returns the source answer."""
    r = client.post(
        revision["links"]["create_source"],
        {"source_type": {"type": "upload", "filename": filename}, "parse_options": {}},
    )
    assert r.status_code == 201, r.text
    links = r.json()["links"]
    assert SOURCE_LINKS <= set(links)
    plan = client.post(links["initiate"], {"content_type": "text/csv"}).json()
    size = chunk or plan["preferred_chunk_size"]
    pieces = [(i, o) for i, o in enumerate(range(0, len(data), size))]
    for seq, offset in reversed(pieces):  # out of order, as parallel uploads arrive
        r = client.post(
            fill(links["chunk"], seq_num=seq, byte_offset=offset),
            data[offset : offset + size],
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 200 and r.json()["resource"]["end_byte_offset"] == min(offset + size, len(data))
    r = client.post(fill(links["commit"], seq_num=len(pieces) - 1, byte_offset=len(data)))
    assert r.status_code == 200, r.text
    return r.json()


def apply_and_wait(client, revision, output_schema_id=None):
    body = {"output_schema_id": output_schema_id} if output_schema_id else {}
    r = client.put(revision["links"]["apply"], body)
    assert r.status_code == 200, r.text
    job = r.json()
    for _ in range(200):
        if job["resource"]["finished_at"]:
            return job["resource"]
        time.sleep(0.02)
        job = client.get(job["links"]["show"]).json()
    raise AssertionError("job never finished")


def test_replace_revision_with_chunked_upload(client):
    ff = client.dataset()
    client.post(f"/resource/{ff}.json", [{"case_id": "OLD-1"}, {"case_id": "OLD-2"}])
    rev = open_revision(client, ff)
    assert REVISION_LINKS <= set(rev["links"]) and rev["resource"]["fourfour"] == ff
    assert rev["resource"]["action"]["type"] == "replace" and rev["resource"]["closed_at"] is None
    data = b"case_id,status,amount,opened,closed\n" + b"".join(
        f"N-{i},open,{i}.5,2024-01-{i % 28 + 1:02d},{'true' if i % 2 else 'false'}\n".encode() for i in range(300)
    )
    source = upload(client, rev, data, chunk=1000)
    schema = source["resource"]["schemas"][0]
    assert schema["total_rows"] == 300 and schema["source_id"] == source["resource"]["id"]
    assert [c["field_name"] for c in schema["input_columns"]] == ["case_id", "status", "amount", "opened", "closed"]
    out = schema["output_schemas"][0]
    assert out["completed_at"] and out["finished_at"] and out["error_count"] == 0
    exprs = {c["field_name"]: c["transform"]["transform_expr"] for c in out["output_columns"]}
    assert exprs == {
        "case_id": "`case_id`",
        "status": "`status`",
        "amount": "to_number(`amount`)",
        "opened": "to_floating_timestamp(`opened`)",
        "closed": "to_boolean(`closed`)",
    }
    assert [c["is_primary_key"] for c in out["output_columns"]] == [True, False, False, False, False]

    os_links = source["links"]["input_schema_links"]["output_schema_links"]
    rows_url = fill(os_links["rows"], input_schema_id=schema["id"], output_schema_id=out["id"])
    preview = client.get(rows_url, params={"limit": 2, "offset": 1}).json()
    assert preview[1:] == [
        {"row": [{"ok": "N-1"}, {"ok": "open"}, {"ok": "1.5"}, {"ok": "2024-01-02T00:00:00.000"}, {"ok": True}]},
        {"row": [{"ok": "N-2"}, {"ok": "open"}, {"ok": "2.5"}, {"ok": "2024-01-03T00:00:00.000"}, {"ok": False}]},
    ]
    validate = fill(
        os_links["validate_row_id"],
        input_schema_id=schema["id"],
        output_schema_id=out["id"],
        transform_id=out["output_columns"][0]["transform"]["id"],
    )
    assert client.get(validate).json() == {"valid": True}

    job = apply_and_wait(client, rev, out["id"])
    assert job["status"] == "successful"
    counts = next(e["details"] for e in job["log"] if e["stage"] == "upsert_complete")
    assert counts["Rows Created"] == 300
    rows = client.rows(ff, **{"$limit": 1000})
    assert len(rows) == 300 and rows[0] == {
        "case_id": "N-0",
        "status": "open",
        "amount": "0.5",
        "opened": "2024-01-01T00:00:00.000",
        "closed": False,
    }
    view = client.get(f"/api/views/{ff}.json").json()
    assert view["rowIdentifierColumnId"] == next(c["id"] for c in view["columns"] if c["fieldName"] == "case_id")
    shown = client.get(rev["links"]["show"]).json()["resource"]
    assert shown["closed_at"] and shown["task_sets"][0]["status"] == "successful"


def test_new_dataset_revision_then_transform_and_apply(client):
    r = client.post(f"{P}/revision", {"action": {"type": "update"}, "metadata": {"name": "Fresh", "description": "d"}})
    assert r.status_code == 201
    rev = r.json()
    ff = rev["resource"]["fourfour"]
    assert rev["resource"]["revision_seq"] == 0
    assert client.get(f"/api/views/{ff}.json").json()["name"] == "Fresh"
    source = upload(client, rev, b"Town Name,total,when\nAvon,3,2024-01-01\nBristol,x,2024-02-01\n")
    schema = source["resource"]["schemas"][0]
    guessed = {c["field_name"]: c["guessed_soql_type"] for c in schema["input_columns"]}
    assert guessed == {"Town Name": "text", "total": "text", "when": "calendar_date"}
    # ask for a number where one cell is not a number: that row is an error, left out
    links = source["links"]["input_schema_links"]
    r = client.post(
        fill(links["transform"], input_schema_id=schema["id"]),
        {
            "output_columns": [
                {
                    "field_name": "town",
                    "display_name": "Town",
                    "position": 1,
                    "is_primary_key": True,
                    "transform": {"transform_expr": "`Town Name`"},
                },
                {
                    "field_name": "total",
                    "display_name": "Total",
                    "position": 2,
                    "transform": {"transform_expr": "to_number(`total`)"},
                },
            ]
        },
    )
    assert r.status_code == 201, r.text
    out = r.json()["resource"]
    assert out["error_count"] == 1 and out["completed_at"]
    errors = client.get(r.json()["links"]["schema_errors"]).json()
    assert errors[1]["row"][1]["error"]["input"] == "x"
    csv_errors = client.get(r.json()["links"]["schema_errors"], headers={"Accept": "text/csv"})
    assert "Bristol" in csv_errors.text and "not a valid number" in csv_errors.text
    job = apply_and_wait(client, rev)  # the revision's output schema: the posted one
    assert job["status"] == "successful"
    assert client.rows(ff) == [{"town": "Avon", "total": "3"}]
    view = client.get(f"/api/views/{ff}.json").json()
    assert [(c["fieldName"], c["name"], c["dataTypeName"]) for c in view["columns"]] == [
        ("town", "Town", "text"),
        ("total", "Total", "number"),
    ]
    assert view["publicationStage"] == "published"


def test_update_and_delete_revisions(client):
    ff = client.dataset()
    client.post(f"/resource/{ff}.json", [{"case_id": "A", "status": "old"}, {"case_id": "B", "status": "old"}])
    rev = open_revision(client, ff, "update")
    upload(client, rev, b"case_id,status,ward\nA,new,1\nC,new,2\n")
    assert apply_and_wait(client, rev)["status"] == "successful"
    assert client.rows(ff) == [
        {"case_id": "A", "status": "new", "ward": "1"},
        {"case_id": "B", "status": "old"},
        {"case_id": "C", "status": "new", "ward": "2"},
    ]
    rev = open_revision(client, ff, "delete")
    upload(client, rev, b"case_id\nA\nZ\n")
    job = apply_and_wait(client, rev)
    assert job["status"] == "successful"
    counts = next(e["details"] for e in job["log"] if e["stage"] == "upsert_complete")
    assert counts["Rows Deleted"] == 1 and counts["Errors"] == 1
    assert [r["case_id"] for r in client.rows(ff)] == ["B", "C"]


def test_failed_apply_leaves_old_rows(client):
    ff = client.dataset()
    client.post(f"/resource/{ff}.json", [{"case_id": "KEEP"}])
    rev = open_revision(client, ff)
    upload(client, rev, b"case_id\nX\nX\n")  # repeated row identifier
    job = apply_and_wait(client, rev)
    assert job["status"] == "failure" and "repeated" in job["log"][-1]["details"]["message"]
    assert client.rows(ff) == [{"case_id": "KEEP"}]


def test_slow_job_is_polled_until_done(client):
    ff = client.dataset()
    client.portal.faults.slow_jobs(0.2)
    rev = open_revision(client, ff)
    upload(client, rev, b"case_id\nA\n")
    r = client.put(rev["links"]["apply"], {})
    assert r.json()["resource"]["status"] == "initializing" and r.json()["resource"]["finished_at"] is None
    assert client.rows(ff) == []  # not applied yet: readers see the old rows
    for _ in range(100):
        shown = client.get(r.json()["links"]["show"]).json()["resource"]
        if shown["finished_at"]:
            break
        time.sleep(0.02)
    assert shown["status"] == "successful" and client.rows(ff) == [{"case_id": "A"}]


def test_discard_and_list_revisions(client):
    ff = client.dataset()
    client.post(f"/resource/{ff}.json", [{"case_id": "KEEP"}])
    rev = open_revision(client, ff)
    upload(client, rev, b"case_id\nNEW\n")
    assert client.delete(rev["links"]["discard"]).status_code == 200
    assert client.rows(ff) == [{"case_id": "KEEP"}]
    assert client.put(rev["links"]["apply"], {}).status_code == 400
    second = open_revision(client, ff, "update")
    listed = client.get(f"{P}/revision/{ff}").json()
    assert [x["resource"]["revision_seq"] for x in listed] == [1, 0]
    assert [x["resource"]["revision_seq"] for x in client.get(f"{P}/revision/{ff}?open=true").json()] == [1]
    assert second["resource"]["revision_seq"] == 1


def test_single_request_upload_and_bad_uploads(client):
    ff = client.dataset()
    rev = open_revision(client, ff)
    source = client.post(rev["links"]["create_source"], {"source_type": {"type": "upload", "filename": "a.csv"}}).json()
    r = client.post(source["links"]["bytes"], b"case_id\nZ\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 201 and r.json()["resource"]["schemas"][0]["total_rows"] == 1

    gap = client.post(rev["links"]["create_source"], {"source_type": {"type": "upload", "filename": "b.csv"}}).json()
    client.post(fill(gap["links"]["chunk"], seq_num=0, byte_offset=0), b"case_id\n")
    client.post(fill(gap["links"]["chunk"], seq_num=2, byte_offset=20), b"Q\n")
    r = client.post(fill(gap["links"]["commit"], seq_num=2, byte_offset=22))
    assert r.status_code == 400 and r.json()["key"] == r.json()["code"] and "gap" in r.json()["message"]

    xlsx = client.post(rev["links"]["create_source"], {"source_type": {"type": "upload", "filename": "c.xlsx"}}).json()
    r = client.post(xlsx["links"]["bytes"], b"PK\x03\x04", headers={"Content-Type": "application/vnd.ms-excel"})
    assert r.json()["resource"]["failed_at"] and "CSV" in r.json()["resource"]["failure_details"]["message"]


def test_unknown_transform_fails_its_column(client):
    ff = client.dataset()
    rev = open_revision(client, ff)
    source = upload(client, rev, b"case_id\nA\n")
    schema = source["resource"]["schemas"][0]
    r = client.post(
        fill(source["links"]["input_schema_links"]["transform"], input_schema_id=schema["id"]),
        {"output_columns": [{"field_name": "case_id", "transform": {"transform_expr": "geocode(`case_id`)"}}]},
    )
    column = r.json()["resource"]["output_columns"][0]
    assert column["transform"]["failed_at"] and "geocode" in column["transform"]["failure_details"]["message"]
    assert apply_and_wait(client, rev, r.json()["resource"]["id"])["status"] == "failure"


def test_dsmapi_needs_credentials(client):
    ff = client.dataset()
    r = client.anonymous().post(f"{client.url}{P}/revision/{ff}", json={"action": {"type": "replace"}})
    assert r.status_code == 403 and r.json()["key"] == "authentication_required"


def test_replace_is_atomic_for_readers(tmp_path):
    portal = LocalPortal(tmp_path / "p.sqlite")
    ff = portal.create_dataset(name="x", columns=[{"fieldName": "k"}, {"fieldName": "gen"}], row_identifier="k")
    import requests

    n_old, n_new = 3000, 2000
    with portal.serve() as server:
        requests.post(f"{server.url}/resource/{ff}.json", json=[{"k": str(i), "gen": "old"} for i in range(n_old)])
        seen, stop = [], threading.Event()

        def reader():
            with requests.Session() as s:
                while not stop.is_set():
                    groups = s.get(
                        f"{server.url}/resource/{ff}.json", params={"$select": "gen, count(*) AS n", "$group": "gen"}
                    ).json()
                    rows = s.get(f"{server.url}/resource/{ff}.json", params={"$limit": 10000}).json()
                    seen.append(("groups", tuple(sorted((g["gen"], g["n"]) for g in groups))))
                    seen.append(("rows", (len(rows), tuple(sorted({r["gen"] for r in rows})))))

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            s = requests.Session()
            rev = s.post(f"{server.url}{P}/revision/{ff}", json={"action": {"type": "replace"}}).json()
            src = s.post(
                server.url + rev["links"]["create_source"],
                json={"source_type": {"type": "upload", "filename": "n.csv"}},
            ).json()
            data = ("k,gen\n" + "".join(f"{i},new\n" for i in range(n_new))).encode()
            s.post(server.url + src["links"]["bytes"], data=data, headers={"Content-Type": "text/csv"})
            while len(seen) < 3:
                time.sleep(0.01)
            job = s.put(server.url + rev["links"]["apply"], json={}).json()
            assert job["resource"]["status"] == "successful"
            count = len(seen)
            while len(seen) < count + 3:
                time.sleep(0.01)
        finally:
            stop.set()
            thread.join()
    portal.close()
    allowed = {
        ("groups", (("old", str(n_old)),)),
        ("groups", (("new", str(n_new)),)),
        ("rows", (n_old, ("old",))),
        ("rows", (n_new, ("new",))),
    }
    observed = set(seen)
    assert observed <= allowed, observed - allowed
    assert observed == allowed  # saw the old rows, then the new ones, and nothing in between
