"""The Dataset Management API over plain HTTP: revisions, uploads, schemas, apply, atomic replace."""

from __future__ import annotations

import re
import threading
import time

from polling import wait_until

from pipeline.portal import storage

P = "/api/publishing/v1"
REVISION_LINKS = {"show", "update", "apply", "discard", "create_source", "list_sources", "plan"}
SOURCE_LINKS = {"show", "bytes", "update", "add_to_revision", "initiate", "chunk", "commit", "load", "cancel"}


def fill(template: str, **values) -> str:
    for k, v in values.items():
        template = template.replace("{" + k + "}", str(v))
    return template


def open_revision(portal, ff, action="replace"):
    r = portal.post(f"{P}/revision/{ff}", {"action": {"type": action, "permission": None}, "metadata": {}})
    assert r.status_code == 201, r.text
    return r.json()


def upload(portal, revision, data: bytes, chunk=None, filename="x.csv"):
    """create_source -> initiate -> chunks (last first) -> commit; returns the source answer."""
    r = portal.post(
        revision["links"]["create_source"],
        {"source_type": {"type": "upload", "filename": filename}, "parse_options": {}},
    )
    assert r.status_code == 201, r.text
    links = r.json()["links"]
    assert SOURCE_LINKS <= set(links)
    plan = portal.post(links["initiate"], {"content_type": "text/csv"}).json()
    size = chunk or plan["preferred_chunk_size"]
    pieces = [(i, o) for i, o in enumerate(range(0, len(data), size))]
    for seq, offset in reversed(pieces):  # out of order, as parallel uploads arrive
        r = portal.post(
            fill(links["chunk"], seq_num=seq, byte_offset=offset),
            data[offset : offset + size],
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 200 and r.json()["resource"]["end_byte_offset"] == min(offset + size, len(data))
    r = portal.post(fill(links["commit"], seq_num=len(pieces) - 1, byte_offset=len(data)))
    assert r.status_code == 200, r.text
    return r.json()


def converted(portal, show: str) -> dict:
    """The output schema at `show` once its rows are converted: the portal converts them behind
    the answer that made the schema, as Socrata does, and says so with completed_at."""
    found: dict = {}

    def done() -> bool:
        found.update(portal.get(show).json()["resource"])
        return bool(found.get("completed_at"))

    wait_until(done, what="the output schema's rows to be converted")
    return found


def apply_and_wait(portal, revision, output_schema_id=None):
    body = {"output_schema_id": output_schema_id} if output_schema_id else {}
    r = portal.put(revision["links"]["apply"], body)
    assert r.status_code == 200, r.text
    job = r.json()
    for _ in range(200):
        if job["resource"]["finished_at"]:
            return job["resource"]
        time.sleep(0.02)
        job = portal.get(job["links"]["show"]).json()
    raise AssertionError("job never finished")


def test_replace_revision_with_chunked_upload(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "OLD-1"}, {"case_id": "OLD-2"}])
    rev = open_revision(portal, ff)
    assert REVISION_LINKS <= set(rev["links"]) and rev["resource"]["fourfour"] == ff
    assert rev["resource"]["action"]["type"] == "replace" and rev["resource"]["closed_at"] is None
    data = b"case_id,status,amount,opened,closed\n" + b"".join(
        f"N-{i},open,{i}.5,2024-01-{i % 28 + 1:02d},{'true' if i % 2 else 'false'}\n".encode() for i in range(300)
    )
    source = upload(portal, rev, data, chunk=1000)
    schema = source["resource"]["schemas"][0]
    assert schema["total_rows"] == 300 and schema["source_id"] == source["resource"]["id"]
    assert [c["field_name"] for c in schema["input_columns"]] == ["case_id", "status", "amount", "opened", "closed"]
    out = schema["output_schemas"][0]
    assert not out["completed_at"] or out["error_count"] == 0  # converted behind the answer
    os_links = source["links"]["input_schema_links"]["output_schema_links"]
    out = converted(portal, fill(os_links["show"], input_schema_id=schema["id"], output_schema_id=out["id"]))
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

    rows_url = fill(os_links["rows"], input_schema_id=schema["id"], output_schema_id=out["id"])
    preview = portal.get(rows_url, params={"limit": 2, "offset": 1}).json()
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
    assert portal.get(validate).json() == {"valid": True}

    job = apply_and_wait(portal, rev, out["id"])
    assert job["status"] == "successful"
    counts = next(e["details"] for e in job["log"] if e["stage"] == "upsert_complete")
    assert counts["Rows Created"] == 300
    rows = portal.rows(ff, **{"$limit": 1000})
    assert len(rows) == 300 and rows[0] == {
        "case_id": "N-0",
        "status": "open",
        "amount": "0.5",
        "opened": "2024-01-01T00:00:00.000",
        "closed": False,
    }
    view = portal.get(f"/api/views/{ff}.json").json()
    assert view["rowIdentifierColumnId"] == next(c["id"] for c in view["columns"] if c["fieldName"] == "case_id")
    shown = portal.get(rev["links"]["show"]).json()["resource"]
    assert shown["closed_at"] and shown["task_sets"][0]["status"] == "successful"


def test_an_upload_is_read_back_in_byte_order_without_sorting_it_in_memory(portal):
    # Chunks arrive in any order and are read back by offset, through an index: sorted instead,
    # every chunk of the upload went through a temporary b-tree (held in memory when the store
    # kept temporary tables there: 6 GB in the portal's process for a 10M-row replace).
    from pipeline.portal.uploads import CHUNKS_IN_ORDER

    with portal.local.store.read() as conn:
        plan = conn.execute("EXPLAIN QUERY PLAN " + CHUNKS_IN_ORDER, (1,)).fetchall()
    assert [row[-1] for row in plan if "TEMP B-TREE" in row[-1]] == [], plan


def test_new_dataset_revision_then_transform_and_apply(portal):
    r = portal.post(f"{P}/revision", {"action": {"type": "update"}, "metadata": {"name": "Fresh", "description": "d"}})
    assert r.status_code == 201
    rev = r.json()
    ff = rev["resource"]["fourfour"]
    assert rev["resource"]["revision_seq"] == 0
    assert portal.get(f"/api/views/{ff}.json").json()["name"] == "Fresh"
    source = upload(portal, rev, b"Town Name,total,when\nAvon,3,2024-01-01\nBristol,x,2024-02-01\n")
    schema = source["resource"]["schemas"][0]
    guessed = {c["field_name"]: c["guessed_soql_type"] for c in schema["input_columns"]}
    # field names are made from the headers as Socrata makes them; the header is the display name
    assert guessed == {"town_name": "text", "total": "text", "when": "calendar_date"}
    assert [c["display_name"] for c in schema["input_columns"]] == ["Town Name", "total", "when"]
    # ask for a number where one cell is not a number: that row is an error, left out
    links = source["links"]["input_schema_links"]
    r = portal.post(
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
    out = converted(portal, r.json()["links"]["show"])
    assert out["error_count"] == 1 and out["completed_at"]
    errors = portal.get(r.json()["links"]["schema_errors"]).json()
    assert errors[1]["row"][1]["error"]["input"] == "x"
    csv_errors = portal.get(r.json()["links"]["schema_errors"], headers={"Accept": "text/csv"})
    assert "Bristol" in csv_errors.text and "Unable to convert" in csv_errors.text  # Socrata's wording
    job = apply_and_wait(portal, rev)  # the revision's output schema: the posted one
    assert job["status"] == "successful"
    assert portal.rows(ff) == [{"town": "Avon", "total": "3"}]
    view = portal.get(f"/api/views/{ff}.json").json()
    assert [(c["fieldName"], c["name"], c["dataTypeName"]) for c in view["columns"]] == [
        ("town", "Town", "text"),
        ("total", "Total", "number"),
    ]
    assert view["publicationStage"] == "published"


def test_update_and_delete_revisions(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "A", "status": "old"}, {"case_id": "B", "status": "old"}])
    rev = open_revision(portal, ff, "update")
    upload(portal, rev, b"case_id,status,ward\nA,new,1\nC,new,2\n")
    assert apply_and_wait(portal, rev)["status"] == "successful"
    assert portal.rows(ff) == [
        {"case_id": "A", "status": "new", "ward": "1"},
        {"case_id": "B", "status": "old"},
        {"case_id": "C", "status": "new", "ward": "2"},
    ]
    rev = open_revision(portal, ff, "delete")
    upload(portal, rev, b"case_id\nA\nZ\n")
    job = apply_and_wait(portal, rev)
    assert job["status"] == "successful"
    counts = next(e["details"] for e in job["log"] if e["stage"] == "upsert_complete")
    assert counts["Rows Deleted"] == 1 and counts["Errors"] == 1
    assert [r["case_id"] for r in portal.rows(ff)] == ["B", "C"]


def test_failed_apply_leaves_old_rows(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "KEEP"}])
    rev = open_revision(portal, ff)
    upload(portal, rev, b"case_id\nX\nX\n")  # repeated row identifier
    job = apply_and_wait(portal, rev)
    assert job["status"] == "failure" and "repeated" in job["log"][-1]["details"]["message"]
    assert portal.rows(ff) == [{"case_id": "KEEP"}]


def test_slow_job_is_polled_until_done(portal):
    ff = portal.create()
    portal.faults.slow_jobs(0.2)
    rev = open_revision(portal, ff)
    upload(portal, rev, b"case_id\nA\n")
    r = portal.put(rev["links"]["apply"], {})
    assert r.json()["resource"]["status"] == "initializing" and r.json()["resource"]["finished_at"] is None
    assert portal.rows(ff) == []  # not applied yet: readers see the old rows
    show = r.json()["links"]["show"]
    wait_until(lambda: portal.get(show).json()["resource"]["finished_at"], what="the slow job finishes")
    shown = portal.get(show).json()["resource"]
    assert shown["status"] == "successful" and portal.rows(ff) == [{"case_id": "A"}]


def test_commit_answers_before_the_rows_are_converted(portal):
    # as on Socrata: the commit's answer has the input schema and the proposed output schema, whose
    # rows are converted behind it; a client polls completed_at, and an apply waits for it
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "OLD"}])
    portal.faults.slow_jobs(0.5)
    rev = open_revision(portal, ff)
    source = upload(portal, rev, b"case_id,status\nA,open\nB,closed\n")
    schema = source["resource"]["schemas"][0]
    assert schema["total_rows"] == 2
    out = schema["output_schemas"][0]
    assert out["completed_at"] is None and out["finished_at"] is None
    os_links = source["links"]["input_schema_links"]["output_schema_links"]
    show = fill(os_links["show"], input_schema_id=schema["id"], output_schema_id=out["id"])
    assert portal.get(show).json()["resource"]["completed_at"] is None  # still converting
    r = portal.put(rev["links"]["apply"], {})
    assert r.status_code == 200 and r.json()["resource"]["finished_at"] is None  # waits in its job
    assert portal.rows(ff) == [{"case_id": "OLD"}]
    assert converted(portal, show)["error_count"] == 0
    job_show = r.json()["links"]["show"]
    wait_until(lambda: portal.get(job_show).json()["resource"]["finished_at"], what="the apply to finish")
    assert portal.get(job_show).json()["resource"]["status"] == "successful"
    assert sorted(r["case_id"] for r in portal.rows(ff)) == ["A", "B"]


def test_discarding_a_revision_stops_its_conversion(portal, caplog):
    ff = portal.create()
    portal.faults.slow_jobs(0.3)
    rev = open_revision(portal, ff)
    upload(portal, rev, b"case_id\n" + b"".join(b"C-%d\n" % i for i in range(1000)))
    assert portal.delete(rev["links"]["discard"]).status_code == 200
    portal.local.jobs.wait()  # the conversion, due after the discard, makes nothing and fails nothing
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    with portal.local.store.read() as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        datasets = {ds.table for ds in storage.all_datasets(conn)}
    assert {t for t in tables if re.fullmatch(r"r\d+", t)} == datasets  # no converted rows left behind


def test_discard_and_list_revisions(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "KEEP"}])
    rev = open_revision(portal, ff)
    upload(portal, rev, b"case_id\nNEW\n")
    assert portal.delete(rev["links"]["discard"]).status_code == 200
    assert portal.rows(ff) == [{"case_id": "KEEP"}]
    assert portal.put(rev["links"]["apply"], {}).status_code == 400
    second = open_revision(portal, ff, "update")
    listed = portal.get(f"{P}/revision/{ff}").json()
    assert [x["resource"]["revision_seq"] for x in listed] == [1, 0]
    assert [x["resource"]["revision_seq"] for x in portal.get(f"{P}/revision/{ff}?open=true").json()] == [1]
    assert second["resource"]["revision_seq"] == 1


def test_single_request_upload_and_bad_uploads(portal):
    ff = portal.create()
    rev = open_revision(portal, ff)
    source = portal.post(rev["links"]["create_source"], {"source_type": {"type": "upload", "filename": "a.csv"}}).json()
    r = portal.post(source["links"]["bytes"], b"case_id\nZ\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 201 and r.json()["resource"]["schemas"][0]["total_rows"] == 1

    gap = portal.post(rev["links"]["create_source"], {"source_type": {"type": "upload", "filename": "b.csv"}}).json()
    portal.post(fill(gap["links"]["chunk"], seq_num=0, byte_offset=0), b"case_id\n")
    portal.post(fill(gap["links"]["chunk"], seq_num=2, byte_offset=20), b"Q\n")
    r = portal.post(fill(gap["links"]["commit"], seq_num=2, byte_offset=22))
    assert r.status_code == 400 and r.json()["key"] == r.json()["code"] and "gap" in r.json()["message"]

    xlsx = portal.post(rev["links"]["create_source"], {"source_type": {"type": "upload", "filename": "c.xlsx"}}).json()
    r = portal.post(xlsx["links"]["bytes"], b"PK\x03\x04", headers={"Content-Type": "application/vnd.ms-excel"})
    # Excel uploads are read (as Socrata reads them); a broken workbook fails the source, saying so
    assert r.json()["resource"]["failed_at"] and "Excel" in r.json()["resource"]["failure_details"]["message"]


def test_unknown_transform_fails_its_column(portal):
    ff = portal.create()
    rev = open_revision(portal, ff)
    source = upload(portal, rev, b"case_id\nA\n")
    schema = source["resource"]["schemas"][0]
    r = portal.post(
        fill(source["links"]["input_schema_links"]["transform"], input_schema_id=schema["id"]),
        {"output_columns": [{"field_name": "case_id", "transform": {"transform_expr": "geocode(`case_id`)"}}]},
    )
    column = converted(portal, r.json()["links"]["show"])["output_columns"][0]
    assert column["transform"]["failed_at"] and "geocode" in column["transform"]["failure_details"]["message"]
    assert apply_and_wait(portal, rev, r.json()["resource"]["id"])["status"] == "failure"


def test_dsmapi_needs_credentials(portal):
    ff = portal.create()
    r = portal.anonymous().post(f"{portal.url}{P}/revision/{ff}", json={"action": {"type": "replace"}})
    assert r.status_code == 403 and r.json()["key"] == "authentication_required"


def test_replace_is_atomic_for_readers(portal):
    ff = portal.create(columns=[{"fieldName": "k"}, {"fieldName": "gen"}], row_identifier="k", name="x")
    n_old, n_new = 3000, 2000
    portal.post(f"/resource/{ff}.json", [{"k": str(i), "gen": "old"} for i in range(n_old)])
    seen, stop = [], threading.Event()

    def reader():
        with portal.anonymous() as s:
            while not stop.is_set():
                groups = s.get(
                    f"{portal.url}/resource/{ff}.json", params={"$select": "gen, count(*) AS n", "$group": "gen"}
                ).json()
                rows = s.get(f"{portal.url}/resource/{ff}.json", params={"$limit": 10000}).json()
                seen.append(("groups", tuple(sorted((g["gen"], g["n"]) for g in groups))))
                seen.append(("rows", (len(rows), tuple(sorted({r["gen"] for r in rows})))))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        rev = portal.post(f"{P}/revision/{ff}", {"action": {"type": "replace"}}).json()
        src = portal.post(rev["links"]["create_source"], {"source_type": {"type": "upload", "filename": "n.csv"}})
        data = ("k,gen\n" + "".join(f"{i},new\n" for i in range(n_new))).encode()
        portal.post(src.json()["links"]["bytes"], data, headers={"Content-Type": "text/csv"})
        wait_until(lambda: len(seen) >= 3 or not thread.is_alive(), what="the reader reads the old rows")
        job = apply_and_wait(portal, rev)  # applied once the upload's rows are converted
        assert job["status"] == "successful"
        count = len(seen)
        wait_until(lambda: len(seen) >= count + 3 or not thread.is_alive(), what="the reader reads the new rows")
    finally:
        stop.set()
        thread.join()
    allowed = {
        ("groups", (("old", str(n_old)),)),
        ("groups", (("new", str(n_new)),)),
        ("rows", (n_old, ("old",))),
        ("rows", (n_new, ("new",))),
    }
    observed = set(seen)
    assert observed <= allowed, observed - allowed
    assert observed == allowed  # saw the old rows, then the new ones, and nothing in between
