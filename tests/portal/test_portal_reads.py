"""SODA reads: URL forms, SoQL clauses, paging, system fields, null omission, CSV, single rows."""

from __future__ import annotations

import csv
import io

import pytest

ROWS = [
    {"case_id": "A-1", "status": "OPEN", "amount": "10.50", "opened": "2024-01-05T09:30:00", "closed": False},
    {"case_id": "A-2", "status": "CLOSED", "amount": 3, "opened": "2024-02-01", "closed": True},
    {"case_id": "B-1", "status": "OPEN", "amount": 250, "opened": "2023-12-31T23:59:59.5"},
    {"case_id": "B-2", "status": "O'Brien", "amount": None},
]


@pytest.fixture
def cases(shared_portal):
    ff = shared_portal.create()
    assert shared_portal.post(f"/resource/{ff}.json", ROWS).status_code == 200
    return ff


def ids(rows):
    return [r["case_id"] for r in rows]


def test_rows_come_back_in_wire_format_with_nulls_omitted(shared_portal, cases):
    rows = shared_portal.anonymous().get(f"{shared_portal.url}/resource/{cases}.json").json()
    assert rows == [
        {"case_id": "A-1", "status": "OPEN", "amount": "10.50", "opened": "2024-01-05T09:30:00.000", "closed": False},
        {"case_id": "A-2", "status": "CLOSED", "amount": "3", "opened": "2024-02-01T00:00:00.000", "closed": True},
        {"case_id": "B-1", "status": "OPEN", "amount": "250", "opened": "2023-12-31T23:59:59.500"},
        {"case_id": "B-2", "status": "O'Brien"},
    ]


def test_url_forms_and_headers(shared_portal, cases):
    plain = shared_portal.get(f"/resource/{cases}?$$version=2.0&$$app_token=tok")
    assert plain.status_code == 200 and ids(plain.json()) == ["A-1", "A-2", "B-1", "B-2"]
    r = shared_portal.get(f"/resource/{cases}.json", headers={"X-App-Token": "tok"})
    assert r.headers["X-SODA2-Fields"] == '["case_id","status","amount","opened","closed"]'
    assert r.headers["X-SODA2-Types"] == '["text","text","number","floating_timestamp","boolean"]'
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"


def test_csv_output(shared_portal, cases):
    r = shared_portal.get(f"/resource/{cases}.csv", params={"$order": "case_id"})
    assert r.headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0] == ["case_id", "status", "amount", "opened", "closed"]
    assert table[1] == ["A-1", "OPEN", "10.50", "2024-01-05T09:30:00.000", "false"]
    assert table[4] == ["B-2", "O'Brien", "", "", ""]


@pytest.mark.parametrize(
    "where, expected",
    [
        ("amount > 5", ["A-1", "B-1"]),
        ("amount >= 3 AND status = 'OPEN'", ["A-1", "B-1"]),
        ("status = 'CLOSED' or amount = 250", ["A-2", "B-1"]),
        ("not (status = 'OPEN')", ["A-2", "B-2"]),
        ("amount is null", ["B-2"]),
        ("amount IS NOT NULL and closed = true", ["A-2"]),
        ("case_id in ('A-2', 'B-2', 'Z')", ["A-2", "B-2"]),
        ("case_id not in ('A-2')", ["A-1", "B-1", "B-2"]),
        ("case_id like 'B-%'", ["B-1", "B-2"]),
        ("status like 'open'", []),
        ("opened between '2024-01-01' and '2024-12-31'", ["A-1", "A-2"]),
        ("opened < '2024-01-01T00:00:00'", ["B-1"]),
        ("amount not between 4 and 100", ["A-2", "B-1"]),
        ("status = 'O''Brien'", ["B-2"]),
        ("upper(status) = 'OPEN' and starts_with(case_id, 'A')", ["A-1"]),
        ("`amount` * 2 > 20", ["A-1", "B-1"]),
    ],
)
def test_where(shared_portal, cases, where, expected):
    assert ids(shared_portal.rows(cases, **{"$where": where})) == expected


def test_field_equality_filters_are_typed_and_anded(shared_portal, cases):
    assert ids(shared_portal.rows(cases, status="OPEN")) == ["A-1", "B-1"]
    assert ids(shared_portal.rows(cases, status="OPEN", amount="250")) == ["B-1"]
    assert ids(shared_portal.rows(cases, amount="10.5")) == ["A-1"]
    r = shared_portal.get(f"/resource/{cases}.json", params={"nope": "1"})
    assert r.status_code == 400 and r.json()["code"] == "query.soql.no-such-column"


def test_select_aliases_aggregates_group_having_order(shared_portal, cases):
    assert shared_portal.rows(cases, **{"$select": "case_id AS id, amount", "$where": "amount > 200"}) == [
        {"id": "B-1", "amount": "250"}
    ]
    total = shared_portal.rows(
        cases, **{"$select": "count(*), sum(amount), min(amount), max(opened), avg(amount)", "$order": None}
    )
    assert total == [
        {
            "count": "4",
            "sum_amount": "263.5",
            "min_amount": "3",
            "max_opened": "2024-02-01T00:00:00.000",
            "avg_amount": "87.83333333333333",
        }
    ]
    grouped = shared_portal.rows(
        cases,
        **{"$select": "status, count(*) AS n", "$group": "status", "$order": "n DESC, status", "$having": "n >= 1"},
    )
    assert grouped == [{"status": "OPEN", "n": "2"}, {"status": "CLOSED", "n": "1"}, {"status": "O'Brien", "n": "1"}]


def test_order_limit_offset_and_default_limit(shared_portal):
    ff = shared_portal.create(columns=[{"fieldName": "n", "dataTypeName": "number"}], row_identifier=None)
    shared_portal.post(f"/resource/{ff}.json", [{"n": i} for i in range(2500)])
    first = shared_portal.get(f"/resource/{ff}.json").json()
    assert len(first) == 1000 and first[0] == {"n": "0"}
    page = shared_portal.rows(ff, **{"$order": "n DESC", "$limit": 3, "$offset": 10})
    assert page == [{"n": "2489"}, {"n": "2488"}, {"n": "2487"}]
    everything = []
    offset = 0
    while True:
        batch = shared_portal.rows(ff, **{"$limit": 1000, "$offset": offset})
        everything += batch
        if len(batch) < 1000:
            break
        offset += 1000
    assert [int(r["n"]) for r in everything] == list(range(2500))


def test_system_fields_on_request(shared_portal, cases):
    rows = shared_portal.rows(cases, **{"$select": ":*, *", "$limit": 1})
    row = rows[0]
    assert list(row)[:3] == [":id", ":created_at", ":updated_at"]
    assert row[":id"].startswith("row-") and row[":created_at"].endswith("Z")
    legacy = shared_portal.get(f"/resource/{cases}.json?$$exclude_system_fields=false&$limit=1").json()[0]
    assert legacy[":id"] == row[":id"]
    assert shared_portal.rows(cases, **{"$where": f":id = '{row[':id']}'"}) == [
        {k: v for k, v in row.items() if not k.startswith(":")}
    ]
    ordered = shared_portal.rows(cases, **{"$select": ":id, case_id", "$order": ":id DESC"})
    assert ids(ordered) == ["B-2", "B-1", "A-2", "A-1"]


def test_query_parameter_with_a_whole_statement(shared_portal, cases):
    rows = shared_portal.rows(
        cases, **{"$query": "SELECT case_id, amount WHERE amount > 5 ORDER BY amount DESC LIMIT 1", "$order": None}
    )
    assert rows == [{"case_id": "B-1", "amount": "250"}]


def test_full_text_search(shared_portal, cases):
    assert ids(shared_portal.rows(cases, **{"$q": "brien"})) == ["B-2"]


def test_single_row_by_row_identifier_and_by_internal_id(shared_portal, cases):
    r = shared_portal.anonymous().get(f"{shared_portal.url}/resource/{cases}/A-2.json")
    assert r.status_code == 200 and r.json() == {
        "case_id": "A-2",
        "status": "CLOSED",
        "amount": "3",
        "opened": "2024-02-01T00:00:00.000",
        "closed": True,
    }
    row_id = shared_portal.rows(cases, **{"$select": ":id", "$where": "case_id = 'B-1'"})[0][":id"]
    assert shared_portal.get(f"/resource/{cases}/{row_id}.json").json()["case_id"] == "B-1"
    missing = shared_portal.get(f"/resource/{cases}/NOPE.json")
    assert missing.status_code == 404 and missing.json()["code"] == "soda.row.not-found"


@pytest.mark.parametrize(
    "params, word",
    [
        ({"$where": "amount >"}, "$where"),
        ({"$where": "amount = 'lots'"}, "lots"),
        ({"$select": "nosuch"}, "nosuch"),
        ({"$limit": "-1"}, "$limit"),
        ({"$order": "amount sideways"}, "$order"),
        ({"$select": "frobnicate(amount)"}, "frobnicate"),
    ],
)
def test_bad_queries_are_400_with_the_reason(shared_portal, cases, params, word):
    r = shared_portal.get(f"/resource/{cases}.json", params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["error"] is True and word in body["message"] and body["code"].startswith("query.")


def test_geojson_output(shared_portal):
    ff = shared_portal.create(
        columns=[{"fieldName": "name", "dataTypeName": "text"}, {"fieldName": "where", "dataTypeName": "point"}],
        row_identifier=None,
    )
    shared_portal.post(f"/resource/{ff}.json", [{"name": "x", "where": "POINT (-72.5 41.7)"}])
    r = shared_portal.get(f"/resource/{ff}.geojson")
    assert r.headers["Content-Type"].startswith("application/vnd.geo+json")
    feature = r.json()["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [-72.5, 41.7]}
    assert feature["properties"] == {"name": "x"}
