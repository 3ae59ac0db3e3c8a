"""Dry runs count what would happen and write nothing; `create:` makes the dataset once."""

from __future__ import annotations

import json

import pytest
from socratakit import CASES, cases, frame

from pipeline.basics import dtypes as D
from pipeline.basics.errors import DeliveryFailed


def test_dry_run_upsert_counts_creates_updates_and_rejects(portal, deliver):
    ds = portal.create(CASES)
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, cases(5))
    writes = portal.faults.writes
    chunk = cases(4, first=4)
    chunk["amount"] = chunk["amount"].astype(D.TEXT)
    chunk.loc[6, "amount"] = "lots"
    dup = cases(1, first=7)
    dup.index = dup.index + 50
    run = deliver(
        {"domain": portal.url, "dataset": ds, "mode": "upsert"}, chunk, dup.astype({"amount": D.TEXT}), dry_run=True
    )
    d = run.result.details
    assert (d["dry_run"], d["create"], d["update"], d["delete"], d["reject"]) == (True, 2, 2, 0, 1)
    assert run.result.delivered == 0
    assert portal.faults.writes == writes and len(portal.rows(ds)) == 5


def test_dry_run_delete_and_replace(portal, deliver):
    ds = portal.create(CASES)
    deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, cases(10))
    writes = portal.faults.writes
    gone = frame({"case_id": ["C-0001", "C-0002", "C-0002", "C-0404"]})
    d = deliver({"domain": portal.url, "dataset": ds, "mode": "delete"}, gone, dry_run=True).result.details
    assert (d["delete"], d["not_found"]) == (2, 2)
    d = deliver(
        {"domain": portal.url, "dataset": ds, "mode": "replace"}, cases(3, first=9), dry_run=True
    ).result.details
    assert (d["create"], d["update"], d["delete"], d["rows_after"]) == (1, 2, 8, 3)
    assert "would stop before replacing: it would shrink the dataset from 10 to 3 rows" in d["stop"]
    assert portal.faults.writes == writes and len(portal.rows(ds)) == 10


def test_create_makes_the_dataset_once_and_records_it(portal, deliver, tmp_path):
    chunk = frame(
        {
            "Case ID": ["A-1", "A-2"],
            "Amount": [1.5, 2.0],
            "Closed": [True, False],
            "Opened": [None, None],
            "Where": ["POINT (-72.6 41.7)", None],
        },
        {"Opened": D.DATE},
    )
    opts = {
        "domain": portal.url,
        "mode": "upsert",
        "row_identifier": "Case ID",
        "create": {
            "name": "Made by route",
            "description": "test",
            "category": "Testing",
            "tags": ["a", "b"],
            "types": {"Where": "point"},
        },
    }
    first = deliver(opts, chunk)
    ds = first.result.details["dataset"]
    view = portal.local.view(ds)
    assert (view["name"], view["description"], view["category"], view["tags"]) == (
        "Made by route",
        "test",
        "Testing",
        ["a", "b"],
    )
    assert [
        (c["fieldName"], c["name"], c["dataTypeName"]) for c in view["columns"] if not c["fieldName"].startswith(":")
    ] == [
        ("case_id", "Case ID", "text"),
        ("amount", "Amount", "number"),
        ("closed", "Closed", "checkbox"),
        ("opened", "Opened", "calendar_date"),
        ("where", "Where", "point"),
    ]
    ri = next(c for c in view["columns"] if c["id"] == view["rowIdentifierColumnId"])
    assert ri["fieldName"] == "case_id"
    assert view.get("publicationStage", "published") == "published"
    recorded = json.loads((tmp_path / ".route" / "datasets.json").read_text())
    assert recorded == {portal.url: {"test-route/portal": {"id": ds, "name": "Made by route"}}}
    second = deliver(
        opts,
        frame(
            {"Case ID": ["A-2"], "Amount": [9.0], "Closed": [True], "Opened": [None], "Where": [None]},
            {"Opened": D.DATE},
        ),
    )
    assert second.result.details["dataset"] == ds and second.result.updated == 1
    assert len(portal.local.datasets()) == 1
    rows = portal.rows(ds)
    assert rows[0] == {
        "case_id": "A-1",
        "amount": "1.5",
        "closed": True,
        "where": {"type": "Point", "coordinates": [-72.6, 41.7]},
    }
    assert rows[1] == {"case_id": "A-2", "amount": "9", "closed": True}


def test_dry_run_with_create_describes_the_dataset_and_creates_nothing(portal, deliver):
    run = deliver(
        {"domain": portal.url, "mode": "upsert", "row_identifier": "case_id", "create": {"name": "Not yet"}},
        cases(3),
        dry_run=True,
    )
    d = run.result.details
    assert d["would_create_dataset"] == {
        "name": "Not yet",
        "row_identifier": "case_id",
        "columns": {"case_id": "text", "amount": "number", "opened": "calendar_date", "closed": "checkbox"},
    }
    assert (d["create"], d["update"]) == (3, 0)
    assert portal.local.datasets() == []


def test_delete_finds_the_dataset_another_route_created_by_name(portal, deliver):
    deliver(
        {"domain": portal.url, "mode": "upsert", "row_identifier": "case_id", "create": {"name": "Cases"}},
        cases(4),
        route_name="cases-upsert",
    )
    run = deliver(
        {"domain": portal.url, "mode": "delete", "create": {"name": "Cases"}},
        frame({"case_id": ["C-0001"]}),
        route_name="cases-delete",
    )
    assert run.result.deleted == 1
    with pytest.raises(DeliveryFailed, match='no dataset named "Other" was created by a route here yet'):
        deliver(
            {"domain": portal.url, "mode": "delete", "create": {"name": "Other"}},
            frame({"case_id": ["x"]}),
            route_name="other",
        )
