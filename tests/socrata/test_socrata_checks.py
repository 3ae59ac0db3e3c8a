"""Mismatches and refusals stop the run before any write, in words a publisher understands, and no
secret shows anywhere."""

from __future__ import annotations

import logging

import pytest
from portalkit import SECRET, USER
from socratakit import CASES, cases, frame

from pipeline.basics.errors import DeliveryFailed, OptionError
from pipeline.deliveries.socrata import SocrataDelivery
from pipeline.socrata.options import check_delivery


def test_every_column_problem_at_once_and_nothing_sent(portal, deliver):
    ds = portal.create(CASES)
    writes = portal.faults.writes
    chunk = frame({"opened": [True], "amount": [1.0], "colour": ["red"], "shape": ["round"]})
    with pytest.raises(DeliveryFailed) as err:
        deliver({"domain": portal.url, "dataset": ds, "mode": "upsert"}, chunk)
    assert str(err.value) == (
        f"route.yaml:14: target 'portal': socrata upsert to dataset \"Cases\" ({ds}): the route's output does "
        "not fit the dataset, so nothing was sent:\n"
        f'  - column \'colour\' is not in dataset "Cases" ({ds}); its columns are "Case ID" (case_id), '
        '"Amount" (amount), "Opened" (opened), "Closed" (closed). Map it with `columns:` or drop it with select/drop\n'
        f'  - column \'shape\' is not in dataset "Cases" ({ds}); its columns are "Case ID" (case_id), '
        '"Amount" (amount), "Opened" (opened), "Closed" (closed). Map it with `columns:` or drop it with select/drop\n'
        f'  - the row identifier of dataset "Cases" ({ds}) is "Case ID" (case_id), and the route has no column '
        "for it; every row must carry it in mode upsert\n"
        "  - route column 'opened' is boolean, which cannot go to \"Opened\" (opened), a floating timestamp "
        "column: cast it to date or datetime"
    )
    assert portal.faults.writes == writes
    assert portal.rows(ds) == []


def test_bad_credentials_stop_before_any_write_and_never_show_the_secret(portal, deliver, caplog):
    ds = portal.create(CASES)
    writes = portal.faults.writes
    wrong = "n0t-the-Right-0ne"
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryFailed) as err:
        deliver(
            {
                "domain": portal.url,
                "dataset": ds,
                "mode": "upsert",
                "auth": {"username": USER, "password": wrong, "app_token": "tok-123-secret"},
            },
            cases(3),
        )
    text = str(err.value)
    assert "the portal on http://127.0.0.1" in text and "refused the credentials (HTTP 401)" in text
    assert "Check auth.username and auth.password (or auth.api_key_id and auth.api_key_secret)" in text
    assert portal.faults.writes == writes and portal.rows(ds) == []
    for where in (text, caplog.text):
        assert wrong not in where and "tok-123-secret" not in where and SECRET not in where


def test_reading_a_private_dataset_without_credentials(portal, deliver):
    ds = portal.local.create_dataset(
        name="Private", columns=[{"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"}], private=True
    )
    with pytest.raises(DeliveryFailed) as err:
        deliver({"domain": portal.url, "dataset": ds, "mode": "upsert", "auth": {}}, cases(1)[["case_id"]])
    assert "(HTTP 403)" in str(err.value) or "(HTTP 401)" in str(err.value)


def test_a_dataset_that_does_not_exist(portal, deliver):
    with pytest.raises(DeliveryFailed) as err:
        deliver({"domain": portal.url, "dataset": "zzzz-9999", "mode": "upsert"}, cases(1))
    assert "dataset zzzz-9999 was not found on http://127.0.0.1" in str(err.value)
    assert "add `create:` to the delivery so route creates it" in str(err.value)


def test_a_wrong_row_identifier_option(portal, deliver):
    ds = portal.create(CASES)
    with pytest.raises(
        DeliveryFailed,
        match=r"row_identifier is 'amount', but the row identifier of dataset "
        r"\"Cases\" \(.{9}\) is \"Case ID\" \(case_id\)",
    ):
        deliver({"domain": portal.url, "dataset": ds, "mode": "upsert", "row_identifier": "amount"}, cases(2))


def test_an_unreachable_portal_is_retried_then_explained(deliver):
    with pytest.raises(DeliveryFailed) as err:
        deliver({"domain": "http://127.0.0.1:9", "dataset": "abcd-1234", "mode": "upsert", "retries": 1}, cases(1))
    assert "could not connect to 127.0.0.1:9" in str(err.value) and "gave up after 2 attempts" in str(err.value)


@pytest.mark.parametrize(
    "options, path, message",
    [
        ({"domain": "http://data.ct.gov", "dataset": "abcd-1234"}, ("domain",), "uses plain http: use https://"),
        ({"domain": "https://data.ct.gov/resource", "dataset": "abcd-1234"}, ("domain",), "has a path"),
        ({"dataset": "ABCD-1234"}, ("dataset",), "is not a dataset id: it has the form abcd-1234"),
        ({}, ("dataset",), "give `dataset` (the 4x4 id of the dataset), or `create: {name: ...}`"),
        ({"dataset": "abcd-1234", "timezone": "Mars/Olympus"}, ("timezone",), "unknown time zone 'Mars/Olympus'"),
        ({"dataset": "abcd-1234", "auth": {"username": "u"}}, ("auth",), "auth.username needs auth.password"),
        ({"dataset": "abcd-1234", "columns": {"a": "Case ID"}}, ("columns", "a"), "is not a Socrata field name"),
    ],
)
def test_options_checked_when_planned(options, path, message):
    with pytest.raises(OptionError) as err:
        check_delivery({"mode": "upsert", **options})
    assert err.value.path == path and message in str(err.value)


def test_loopback_http_and_bare_hosts_are_accepted():
    assert (
        check_delivery({"mode": "upsert", "dataset": "abcd-1234", "domain": "data.ct.gov/"})["domain"]
        == "https://data.ct.gov"
    )
    assert (
        check_delivery({"mode": "upsert", "dataset": "abcd-1234", "domain": "http://localhost:8000"})["domain"]
        == "http://localhost:8000"
    )
    assert check_delivery({"mode": "upsert", "dataset": "abcd-1234"})["domain"] == "local"
    assert check_delivery({"mode": "replace", "dataset": "abcd-1234", "max_shrink": "25%"})["max_shrink"] == 0.25


def test_secrets_are_registered_for_masking(tmp_path):
    from pipeline.basics.context import RunContext, StepContext

    run = RunContext(route_name="r", route_file=tmp_path / "r.yaml", state_dir=tmp_path, run_id="1")
    SocrataDelivery(
        {
            "mode": "upsert",
            "dataset": "abcd-1234",
            "auth": {"api_key_id": "kid", "api_key_secret": "ks3cret", "app_token": "tok"},
        },
        StepContext(run=run, stage="deliver", step="socrata"),
    )
    assert {"ks3cret", "tok"} <= run.secrets and run.mask("x ks3cret y") == "x *** y"


@pytest.mark.parametrize(
    "status, code, message, expected",
    [
        (
            403,
            "permission_denied",
            "",
            "the account in auth has no permission to change dataset abcd-1234 on https://x.gov (HTTP 403)",
        ),
        (403, "authentication_required", "You must be logged in", "requires credentials for dataset abcd-1234"),
        (400, "", "Cannot modify a derived view", "is a derived or synced view and cannot be written"),
        (
            400,
            "soda.row.column-not-found",
            "One or more rows expected column 'x'",
            "map route columns to the dataset's field names with `columns:`",
        ),
        (400, "soda.column.maltyped", "for field 'f' we expected 'number'", "cast the column in target_transforms"),
        (409, "", "", "is busy with another change (HTTP 409)"),
        (413, "", "", "lower `batch_rows`"),
    ],
)
def test_refusals_are_translated_into_what_to_do(status, code, message, expected):
    from pipeline.socrata.errors import explain

    text = explain(status, code, message, what="upsert", dataset="abcd-1234", domain="https://x.gov")
    assert expected in text
    if message:
        assert text.endswith(f"The portal said: {message}")
