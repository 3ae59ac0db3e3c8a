"""Upserts of thousands of rows: the bulk paths (multi-row statements and a remainder, all-null
columns written as NULL, calendar dates checked over the whole column) keep every value as sent."""

from __future__ import annotations

ROWS = 2_345  # 36 statements of 64 rows and a remainder of 41


def cases(n: int, **fields) -> list[dict]:
    return [{"case_id": f"C-{i:05d}", **{k: v(i) if callable(v) else v for k, v in fields.items()}} for i in range(n)]


def test_a_big_upsert_keeps_every_value_and_a_second_one_merges(portal):
    ff = portal.create()
    body = cases(
        ROWS, status=None, amount=lambda i: [7, 7.5, "7.90", None][i % 4], opened=lambda i: f"2024-02-{i % 29 + 1:02d}"
    )
    r = portal.post(f"/resource/{ff}.json", body)
    assert r.status_code == 200, r.text
    assert r.json()["Rows Created"] == ROWS
    rows = portal.rows(ff)
    assert len(rows) == ROWS
    assert rows[0] == {"case_id": "C-00000", "amount": "7", "opened": "2024-02-01T00:00:00.000"}
    assert rows[1]["amount"] == "7.5" and rows[2]["amount"] == "7.90" and "amount" not in rows[3]
    assert rows[28]["opened"] == "2024-02-29T00:00:00.000"  # a leap day
    # all null now: clears the amount of every row; the status it leaves out keeps its value
    again = cases(ROWS, amount=None)
    again[5]["status"] = "OPEN"
    r = portal.post(f"/resource/{ff}.json", again)
    assert r.json()["Rows Updated"] == ROWS
    rows = portal.rows(ff)
    assert all("amount" not in row for row in rows)
    assert rows[5]["status"] == "OPEN" and rows[0]["opened"] == "2024-02-01T00:00:00.000"


def test_calendar_dates_in_several_forms_and_nulls_in_one_big_column(portal):
    ff = portal.create()
    forms = ["2024-03-01", "2024-03-01T09", "2024-03-01T09:30", "2024-03-01T09:30:05.5", None]
    r = portal.post(f"/resource/{ff}.json", cases(1_500, opened=lambda i: forms[i % 5]))
    assert r.status_code == 200, r.text
    got = [row.get("opened") for row in portal.rows(ff)[:5]]
    assert got == [
        "2024-03-01T00:00:00.000",
        "2024-03-01T09:00:00.000",
        "2024-03-01T09:30:00.000",
        "2024-03-01T09:30:05.500",
        None,
    ]


def test_a_day_its_month_does_not_have_is_refused_in_a_big_column_too(portal):
    ff = portal.create()
    body = cases(1_500, opened="2023-01-31")
    body[700]["opened"] = "2023-02-29"
    r = portal.post(f"/resource/{ff}.json", body)
    assert r.status_code == 400
    assert r.json()["code"] == "soda.column.maltyped" and r.json()["data"]["got"] == "2023-02-29"
    assert portal.count(ff) == 0


def test_rows_listing_their_fields_in_other_orders_keep_each_value_in_its_field_and_get_ids_in_order(portal):
    ff = portal.create()
    body = cases(ROWS, status=lambda i: f"S{i}", amount=lambda i: i, opened="2024-02-01")
    for i in range(0, ROWS, 3):  # every third row lists its fields backwards
        body[i] = dict(reversed(list(body[i].items())))
    r = portal.post(f"/resource/{ff}.json", body)
    assert r.status_code == 200, r.text
    rows = portal.rows(ff, **{"$select": ":id, case_id, status, amount, opened"})
    assert [row["case_id"] for row in rows] == [f"C-{i:05d}" for i in range(ROWS)]  # in :id order
    assert all(row["status"] == f"S{i}" and row["amount"] == str(i) for i, row in enumerate(rows))
    assert all(row["opened"] == "2024-02-01T00:00:00.000" for row in rows)
    ids = [row[":id"] for row in rows]
    assert len(set(ids)) == ROWS
    # updates keep their row ids; new keys (a full statement's worth and a remainder) get new ones
    more = cases(ROWS + 100, status="again")
    r = portal.post(f"/resource/{ff}.json", more)
    assert r.json()["Rows Updated"] == ROWS and r.json()["Rows Created"] == 100
    after = portal.rows(ff, **{"$select": ":id, case_id, status, amount"})
    assert [row[":id"] for row in after[:ROWS]] == ids
    assert [row["case_id"] for row in after[ROWS:]] == [f"C-{i:05d}" for i in range(ROWS, ROWS + 100)]
    assert len({row[":id"] for row in after}) == ROWS + 100
    assert all(row["status"] == "again" for row in after) and after[7]["amount"] == "7"


def test_rows_with_no_fields_at_all_are_refused_for_their_missing_row_identifier(portal):
    from pipeline.portal import behaviour

    ff = portal.create()
    r = portal.post(f"/resource/{ff}.json", [{}, {}])
    assert r.status_code == 400, r.text
    assert r.json()["code"] == behaviour.MISSING_KEY_CODE
    assert portal.count(ff) == 0


def test_rows_of_one_size_that_name_other_fields_change_only_the_fields_each_names(portal):
    """Every row has three fields, but not the same three: each row sets what it names and leaves
    the rest as it was (no value lands in another row's field)."""
    ff = portal.create()
    assert portal.post(f"/resource/{ff}.json", cases(ROWS, status="old", amount=1)).status_code == 200
    body = [
        {"case_id": f"C-{i:05d}", "status": f"S{i}"} if i % 2 else {"case_id": f"C-{i:05d}", "amount": i}
        for i in range(ROWS)
    ]
    for row in body:
        row["opened"] = "2024-02-01"
    r = portal.post(f"/resource/{ff}.json", body)
    assert r.status_code == 200, r.text
    assert r.json()["Rows Updated"] == ROWS
    rows = portal.rows(ff, **{"$select": "case_id, status, amount, opened"})
    assert all(row["opened"] == "2024-02-01T00:00:00.000" for row in rows)
    assert all(
        (row["status"], row["amount"]) == ((f"S{i}", "1") if i % 2 else ("old", str(i))) for i, row in enumerate(rows)
    )
