"""Matching route columns to a dataset: every problem at once, in words a publisher knows."""

from __future__ import annotations

from pipeline.socrata.columns import creation_columns, match
from pipeline.socrata.views import parse_view

VIEW = {
    "id": "abcd-1234",
    "name": "Cases",
    "rowIdentifierColumnId": 1,
    "columns": [
        {"id": 1, "fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
        {"id": 2, "fieldName": "opened", "name": "Opened On", "dataTypeName": "calendar_date"},
        {"id": 3, "fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
        {"id": 4, "fieldName": ":id", "name": "Row id", "dataTypeName": "row_identifier"},
    ],
}


def test_the_view_is_read_with_its_row_identifier_and_without_system_columns():
    ds = parse_view(VIEW)
    assert ds.row_identifier == "case_id"
    assert [c.field for c in ds.columns] == ["case_id", "opened", "amount"]


def test_columns_match_by_field_display_name_and_spelling():
    ds = parse_view(VIEW)
    m = match({"Case ID": "text", "opened_on": "date", "amount": "number"}, ds, mode="upsert")
    assert m.problems == []
    assert [(t.column, t.field) for t in m.targets] == [
        ("Case ID", "case_id"),
        ("opened_on", "opened"),
        ("amount", "amount"),
    ]
    assert m.key.field == "case_id"


def test_every_problem_is_reported_at_once_with_display_names():
    ds = parse_view(VIEW)
    m = match(
        {"opened": "boolean", "amount": "number", "colour": "text"}, ds, mode="upsert", explicit={"ghost": "amount"}
    )
    text = "\n".join(m.problems)
    assert len(m.problems) == 4, text
    assert "`columns:` maps 'ghost', which is not a column of the route's output" in text
    assert "column 'colour' is not in dataset \"Cases\" (abcd-1234)" in text
    assert (
        "route column 'opened' is boolean, which cannot go to \"Opened On\" (opened), a floating timestamp column"
        in text
    )
    assert (
        'the row identifier of dataset "Cases" (abcd-1234) is "Case ID" (case_id), and the route has no column for it'
        in text
    )


def test_row_identifier_option_is_checked_against_the_dataset():
    ds = parse_view(VIEW)
    m = match({"case_id": "text"}, ds, mode="upsert", row_identifier="amount")
    assert m.problems == [
        'row_identifier is \'amount\', but the row identifier of dataset "Cases" (abcd-1234) is "Case ID" (case_id)'
    ]
    assert match({"case_id": "text"}, ds, mode="upsert", row_identifier="Case ID").problems == []


def test_replace_needs_every_column_and_delete_only_the_key():
    ds = parse_view(VIEW)
    m = match({"case_id": "text"}, ds, mode="replace")
    assert m.problems and '"Opened On" (opened), "Amount" (amount)' in m.problems[0]
    d = match({"case_id": "text", "whatever": "text"}, ds, mode="delete")
    assert d.problems == [] and d.ignored == ["whatever"] and [t.field for t in d.targets] == ["case_id"]


def test_without_a_row_identifier_upsert_needs_system_ids():
    view = dict(VIEW, rowIdentifierColumnId=None)
    ds = parse_view(view)
    assert "mode upsert needs a row identifier" in match({"amount": "number"}, ds, mode="upsert").problems[0]
    assert match({":id": "text", "amount": "number"}, ds, mode="upsert").problems == []
    assert match({"amount": "number"}, ds, mode="append").problems == []


def test_creation_columns_from_route_types():
    cols = creation_columns(
        {"Case ID": "text", "n": "integer", "ok": "boolean", "at": "datetime", "when": "datetime", "where": "text"},
        {"where": "point"},
        {},
        {"when"},
    )
    assert [(c.field, c.name, c.type) for c in cols] == [
        ("case_id", "Case ID", "text"),
        ("n", "n", "number"),
        ("ok", "ok", "checkbox"),
        ("at", "at", "calendar_date"),
        ("when", "when", "date"),
        ("where", "where", "point"),
    ]
