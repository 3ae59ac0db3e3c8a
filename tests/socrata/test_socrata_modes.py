"""Every mode against the local portal, with and without a row identifier, read back over SODA."""

from __future__ import annotations

import datetime as dt

import pytest
from socratakit import CASES, cases, frame

from pipeline.basics import dtypes as D
from pipeline.basics.errors import DeliveryFailed

NO_RI_LOG = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "event", "name": "Event", "dataTypeName": "text"},
    {"fieldName": "at", "name": "At", "dataTypeName": "date"},
]


def test_upsert_creates_then_updates_and_merges(portal, deliver):
    ds = portal.create(CASES)
    run = deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, cases(3))
    assert (run.result.created, run.result.updated, run.result.delivered) == (3, 0, 3)
    assert portal.rows(ds, **{"$order": "case_id"}) == [
        {"case_id": "C-0001", "amount": "11", "opened": "2024-01-02T09:30:00.000", "closed": False},
        {"case_id": "C-0002", "amount": "12", "opened": "2024-01-03T09:30:00.000", "closed": True},
        {"case_id": "C-0003", "amount": "13", "opened": "2024-01-04T09:30:00.000", "closed": False},
    ]
    # A second run updates by case id; a column the route does not send keeps its value, a null clears.
    update = frame({"case_id": ["C-0002", "C-0004"], "amount": [99.5, None]}, {"amount": D.NUMBER})
    run = deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, update)
    assert (run.result.created, run.result.updated) == (1, 1)
    rows = portal.rows(ds, **{"$order": "case_id"})
    assert rows[1] == {"case_id": "C-0002", "amount": "99.5", "opened": "2024-01-03T09:30:00.000", "closed": True}
    assert rows[3] == {"case_id": "C-0004"}
    assert run.result.details["request_ids"] and run.result.location.endswith(f"/d/{ds}")


def test_upsert_in_many_batches_keeps_the_last_value_of_a_repeated_key(portal, deliver):
    ds = portal.create(CASES)
    # 40 rows in batches of 3, 4 in flight; C-0001 appears in the first and in the last batch.
    first = cases(39)
    again = cases(1, amount=776.0)
    again.index = again.index + 98
    run = deliver(
        {"domain": portal.url, "dataset": ds, "mode": "upsert", "batch_rows": 3, "concurrency": 4},
        first.iloc[:20],
        first.iloc[20:],
        again,
    )
    assert run.result.delivered == 40 and run.result.details["batches"] == 14
    rows = {r["case_id"]: r for r in portal.rows(ds)}
    assert len(rows) == 39 and rows["C-0001"]["amount"] == "777"


def test_upsert_without_row_identifier_needs_system_ids(portal, deliver):
    ds = portal.create(NO_RI_LOG, row_identifier=None)
    with pytest.raises(DeliveryFailed) as err:
        deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, frame({"case_id": ["A"], "event": ["x"]}))
    assert 'mode upsert needs a row identifier, and dataset "Cases"' in str(err.value)
    assert portal.rows(ds) == []
    deliver(
        {"domain": portal.url, "dataset": ds, "mode": "append"}, frame({"case_id": ["A", "B"], "event": ["x", "y"]})
    )
    ids = {r["case_id"]: r[":id"] for r in portal.rows(ds, **{"$select": ":id, case_id"})}
    # With Socrata's row ids in an :id column, upsert updates those rows and delete removes them.
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, frame({":id": [ids["A"]], "event": ["changed"]}))
    deliver({"domain": portal.url, "dataset": ds, "mode": "delete"}, frame({":id": [ids["B"]]}))
    assert portal.rows(ds) == [{"case_id": "A", "event": "changed"}]


def test_append_without_row_identifier_adds_rows_every_run(portal, deliver):
    ds = portal.create(NO_RI_LOG, row_identifier=None)
    events = frame(
        {
            "case_id": ["A", "A"],
            "event": ["opened", "closed"],
            "at": [dt.datetime(2024, 1, 5, 9, 30), dt.datetime(2024, 1, 6, 17, 0)],
        }
    )
    opts = {"domain": portal.url, "dataset": ds, "mode": "append", "timezone": "America/New_York"}
    deliver(opts, events)
    run = deliver(opts, events)
    assert run.result.created == 2
    rows = portal.rows(ds)
    assert len(rows) == 4
    assert rows[0] == {"case_id": "A", "event": "opened", "at": "2024-01-05T14:30:00.000Z"}


def test_append_with_row_identifier_is_keyed(portal, deliver):
    ds = portal.create(CASES)
    deliver({"domain": portal.url, "dataset": ds, "mode": "append"}, cases(2))
    run = deliver({"domain": portal.url, "dataset": ds, "mode": "append"}, cases(3))
    assert (run.result.created, run.result.updated) == (1, 2)
    assert len(portal.rows(ds)) == 3


def test_delete_by_row_identifier_and_repeat(portal, deliver):
    ds = portal.create(CASES)
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, cases(5))
    gone = frame({"case_id": ["C-0002", "C-0004", "C-9999"], "note": ["x", "y", "z"]})
    run = deliver({"domain": portal.url, "dataset": ds, "mode": "delete"}, gone)
    assert run.result.deleted == 2 and run.result.details["not_found"] == 1
    assert [r["case_id"] for r in portal.rows(ds, **{"$order": "case_id"})] == ["C-0001", "C-0003", "C-0005"]
    again = deliver({"domain": portal.url, "dataset": ds, "mode": "delete"}, gone)
    assert again.result.deleted == 0 and again.result.details["not_found"] == 3
    assert len(portal.rows(ds)) == 3


@pytest.mark.parametrize("row_identifier", ["case_id", None])
def test_replace_makes_the_dataset_exactly_the_rows(portal, deliver, row_identifier):
    ds = portal.create(CASES, row_identifier=row_identifier)
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert" if row_identifier else "append"}, cases(4))
    new = cases(3, first=3, amount=100.0)
    run = deliver({"domain": portal.url, "dataset": ds, "mode": "replace"}, new.iloc[:2], new.iloc[2:])
    assert (run.result.delivered, run.result.created, run.result.deleted) == (3, 3, 4)
    assert run.result.details["status"] == "successful"
    assert portal.rows(ds, **{"$order": "case_id"}) == [
        {"case_id": "C-0003", "amount": "103", "opened": "2024-01-04T09:30:00.000", "closed": False},
        {"case_id": "C-0004", "amount": "104", "opened": "2024-01-05T09:30:00.000", "closed": True},
        {"case_id": "C-0005", "amount": "105", "opened": "2024-01-06T09:30:00.000", "closed": False},
    ]
    assert not list((run.tmp / ".route" / "tmp").glob("*.csv")), "the spooled CSV is removed"


def test_replace_refuses_to_shrink_or_empty_unless_forced(portal, deliver):
    ds = portal.create(CASES)
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, cases(10))
    opts = {"domain": portal.url, "dataset": ds, "mode": "replace"}
    with pytest.raises(DeliveryFailed) as err:
        deliver(opts, cases(4))
    assert (
        "stopped before replacing: it would shrink the dataset from 10 to 4 rows (60% fewer, more than "
        "max_shrink 50%). Nothing was changed. If this is intended, run again with --force"
    ) in str(err.value)
    with pytest.raises(DeliveryFailed, match="it would empty the dataset"):
        deliver(opts, cases(3).iloc[:0])
    assert len(portal.rows(ds)) == 10
    deliver({**opts, "max_shrink": "70%"}, cases(4))
    assert len(portal.rows(ds)) == 4
    deliver(opts, cases(1), force=True)
    assert len(portal.rows(ds)) == 1


def test_values_that_do_not_convert_are_rejected_with_their_lines(portal, deliver):
    ds = portal.create(CASES)
    chunk = frame(
        {
            "case_id": ["C-1", "C-2", None, "C-4"],
            "amount": ["12.50", "twelve", "3", "4"],
            "opened": ["2024-01-05", "2024-01-06", "2024-01-07", "2024-02-30"],
        }
    )
    run = deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, chunk)
    assert (run.result.delivered, run.result.rejected) == (1, 3)
    assert portal.rows(ds) == [{"case_id": "C-1", "amount": "12.50", "opened": "2024-01-05T00:00:00.000"}]
    lines = run.rejects.splitlines()
    assert (
        'amount,twelve,"not a number (digits, an optional . and exponent; no thousands separators) (for ""Amount"" (amount))",cases.csv,3'
        in lines[1]
    )
    assert "opened,2024-02-30," in lines[2] and ",cases.csv,5," in lines[2]
    assert 'no value for the row identifier ""Case ID"" (case_id)' in lines[3] and ",cases.csv,4," in lines[3]


def test_every_socrata_type_round_trips(portal, deliver):
    columns = [
        {"fieldName": "id", "name": "ID", "dataTypeName": "number"},
        {"fieldName": "price", "name": "Price", "dataTypeName": "money"},
        {"fieldName": "ratio", "name": "Ratio", "dataTypeName": "double"},
        {"fieldName": "at", "name": "At", "dataTypeName": "date"},
        {"fieldName": "spot", "name": "Spot", "dataTypeName": "point"},
        {"fieldName": "area", "name": "Area", "dataTypeName": "polygon"},
        {"fieldName": "place", "name": "Place", "dataTypeName": "location"},
        {"fieldName": "link", "name": "Link", "dataTypeName": "url"},
    ]
    ds = portal.create(columns, row_identifier="id")
    chunk = frame(
        {
            "id": [1],
            "price": ["7.90"],
            "ratio": [0.25],
            "at": [dt.datetime(2024, 7, 1, 12, 0, tzinfo=dt.UTC)],
            "spot": ["POINT (-72.68 41.76)"],
            "area": ['{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}'],
            "place": ["12 Elm St (41.76, -72.68)"],
            "link": ["Portal (https://data.ct.gov)"],
        },
        {"at": D.datetime_dtype("America/New_York")},
    )
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, chunk)
    row = portal.rows(ds)[0]
    assert row["price"] == "7.90" and row["ratio"] == 0.25 and row["at"] == "2024-07-01T12:00:00.000Z"
    assert row["spot"] == {"type": "Point", "coordinates": [-72.68, 41.76]}
    assert row["area"]["type"] == "Polygon"
    assert (row["place"]["latitude"], row["place"]["longitude"]) == ("41.76", "-72.68")
    assert row["link"] == {"url": "https://data.ct.gov", "description": "Portal"}
    # The same rows through a replace (CSV upload) read back the same.
    deliver({"domain": portal.url, "dataset": ds, "mode": "replace"}, chunk)
    assert portal.rows(ds)[0] == row


def test_columns_map_and_display_names(portal, deliver):
    ds = portal.create(CASES)
    chunk = frame({"Case ID": ["C-1"], "total": [5.0]})
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert", "columns": {"total": "amount"}}, chunk)
    assert portal.rows(ds) == [{"case_id": "C-1", "amount": "5"}]


def test_rows_the_portal_refuses_one_by_one_fail_the_run_naming_them(portal, deliver):
    ds = portal.create(NO_RI_LOG, row_identifier=None)
    deliver({"domain": portal.url, "dataset": ds, "mode": "append"}, frame({"case_id": ["A"], "event": ["x"]}))
    real = portal.rows(ds, **{"$select": ":id"})[0][":id"]
    # An update of a row id that does not exist is a row error (no_such_row_to_update), not a 400.
    chunk = frame({":id": [real, "row-zzzz~zzzz~zzzz"], "event": ["ok", "lost"]}, first_line=7)
    with pytest.raises(DeliveryFailed) as err:
        deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, chunk)
    text = str(err.value)
    assert "the portal refused 1 row(s) one by one" in text
    assert err.value.delivered == 1
    assert portal.rows(ds) == [{"case_id": "A", "event": "ok"}]


def test_a_target_that_gets_no_chunk_at_all(portal, deliver):
    ds = portal.create(CASES)
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, cases(3))
    run = deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, open_columns=[])
    assert run.result.delivered == 0 and len(portal.rows(ds)) == 3
    with pytest.raises(DeliveryFailed, match="it would empty the dataset"):
        deliver({"domain": portal.url, "dataset": ds, "mode": "replace"}, open_columns=[])
    deliver({"domain": portal.url, "dataset": ds, "mode": "replace"}, open_columns=[], force=True)
    assert portal.rows(ds) == []
