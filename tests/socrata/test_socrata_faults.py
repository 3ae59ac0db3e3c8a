"""Faults injected by the portal: keyed writes still end with exactly the rows; appends say what
they cannot know."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from socratakit import cases, frame

from pipeline.basics.errors import DeliveryFailed

NO_RI = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
]


def expected_cases(n, amount=10.0):
    return [{"case_id": f"C-{i:04d}", "amount": f"{amount + i:g}"} for i in range(1, n + 1)]


def upsert_opts(portal, ds, **more):
    return {"domain": portal.url, "dataset": ds, "mode": "upsert", "batch_rows": 5, "concurrency": 2, **more}


@pytest.mark.parametrize(
    "fault",
    [
        lambda f: f.fail(2, status=500, times=2),
        lambda f: f.fail(1, status=503),
        lambda f: f.drop(3),
        lambda f: f.drop(2, after_commit=True),
        lambda f: f.drop(1, after_commit=True, times=3),
    ],
    ids=["500-twice", "503", "drop-before-commit", "drop-after-commit", "three-drops-after-commit"],
)
def test_upsert_ends_with_exactly_the_rows(portal, deliver, fault):
    ds = portal.create(NO_RI + [], row_identifier="case_id")
    fault(portal.faults)
    run = deliver(upsert_opts(portal, ds), cases(23)[["case_id", "amount"]])
    assert portal.faults.fired, "the fault was injected"
    assert run.result.delivered == 23
    assert portal.rows(ds, **{"$order": "case_id"}) == expected_cases(23)


def test_429_waits_as_long_as_retry_after_says_not_the_back_off(portal, deliver, caplog):
    ds = portal.create(NO_RI, row_identifier="case_id")
    portal.faults.throttle(1, retry_after=1)  # the portal says "Retry-After: 1"
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="route.test"):
        deliver(upsert_opts(portal, ds, concurrency=1, backoff=30), cases(5)[["case_id", "amount"]])
    assert 1.0 <= time.perf_counter() - start < 5, "Retry-After was honoured instead of the 30 s back-off"
    assert re.search(r"HTTP 429 \(Too many requests\); retrying in 1\.[01] s \(attempt 2 of 6\)", caplog.text)
    assert portal.rows(ds, **{"$order": "case_id"}) == expected_cases(5)


def test_a_slow_answer_times_out_and_the_upsert_is_sent_again(portal, deliver):
    ds = portal.create(NO_RI, row_identifier="case_id")
    portal.faults.delay(1, seconds=0.6)
    run = deliver(upsert_opts(portal, ds, timeout=0.25, concurrency=1), cases(5)[["case_id", "amount"]])
    assert run.result.delivered == 5
    assert portal.rows(ds, **{"$order": "case_id"}) == expected_cases(5)


def test_delete_is_repeated_safely_after_a_drop_after_commit(portal, deliver):
    ds = portal.create(NO_RI, row_identifier="case_id")
    deliver(upsert_opts(portal, ds), cases(10)[["case_id", "amount"]])
    portal.faults.drop(1, after_commit=True)
    run = deliver({"domain": portal.url, "dataset": ds, "mode": "delete"}, frame({"case_id": ["C-0001", "C-0002"]}))
    assert run.result.delivered == 2
    assert [r["case_id"] for r in portal.rows(ds, **{"$order": "case_id"})] == [f"C-{i:04d}" for i in range(3, 11)]


def test_giving_up_on_an_upsert_says_what_arrived_and_that_it_is_safe_to_repeat(portal, deliver):
    ds = portal.create(NO_RI, row_identifier="case_id")
    portal.faults.fail(3, status=500, times=None)
    with pytest.raises(DeliveryFailed) as err:
        deliver(upsert_opts(portal, ds, concurrency=1, retries=2), cases(20)[["case_id", "amount"]])
    text = str(err.value)
    assert "gave up after 3 attempts; last: HTTP 500" in text
    assert "Arrived for certain: 10 rows (rows at lines 2-11 of cases.csv)." in text
    # "Not sent" is the executor's to say, once it has counted every row
    assert "Mode upsert is safe to repeat: run the route again once the cause is fixed." in text
    assert err.value.delivered == 10 and err.value.uncertain == 0
    portal.faults.clear()
    deliver(upsert_opts(portal, ds), cases(20)[["case_id", "amount"]])
    assert portal.rows(ds, **{"$order": "case_id"}) == expected_cases(20)


def test_append_with_unknown_outcome_is_not_resent_and_names_the_lines(portal, deliver):
    ds = portal.create(NO_RI, row_identifier=None)
    portal.faults.drop(2, after_commit=True)
    with pytest.raises(DeliveryFailed) as err:
        deliver(
            {"domain": portal.url, "dataset": ds, "mode": "append", "batch_rows": 5, "concurrency": 1},
            cases(20)[["case_id", "amount"]],
        )
    text = str(err.value)
    assert "append of rows at lines 7-11 of cases.csv to dataset" in text
    assert "may or may not have applied it" in text
    assert "Arrived for certain: 5 rows (rows at lines 2-6 of cases.csv)." in text
    assert (
        "May or may not have arrived: 5 rows (rows at lines 7-11 of cases.csv); an append cannot be "
        "repeated safely: sending them again could duplicate them, so check the dataset for them first."
    ) in text
    assert "run the route again with --resume" in text
    assert (err.value.delivered, err.value.uncertain) == (5, 5)
    # The portal did commit that batch: exactly the rows of lines 2-11 are there, once each.
    assert portal.rows(ds, **{"$order": "case_id"}) == expected_cases(10)


@pytest.mark.parametrize("fault", [lambda f: f.fail(2, status=500), lambda f: f.drop(2)], ids=["500", "drop"])
def test_append_stops_on_500_and_drops_too(portal, deliver, fault):
    ds = portal.create(NO_RI, row_identifier=None)
    fault(portal.faults)
    with pytest.raises(DeliveryFailed, match="May or may not have arrived: 5 rows"):
        deliver(
            {"domain": portal.url, "dataset": ds, "mode": "append", "batch_rows": 5, "concurrency": 1},
            cases(10)[["case_id", "amount"]],
        )
    assert len(portal.rows(ds)) == 5


def test_append_retries_what_the_portal_did_not_take(portal, deliver):
    ds = portal.create(NO_RI, row_identifier=None)
    portal.faults.fail(1, status=503).fail(2, status=503)
    deliver(
        {"domain": portal.url, "dataset": ds, "mode": "append", "batch_rows": 5, "concurrency": 1},
        cases(12)[["case_id", "amount"]],
    )
    assert portal.rows(ds, **{"$order": "case_id"}) == expected_cases(12)


@pytest.mark.parametrize(
    "fault",
    [
        lambda f: f.fail(1, status=500, times=2),  # opening the revision
        lambda f: f.drop(3, after_commit=True),  # the upload
        lambda f: f.fail(4, status=503),
        lambda f: f.fail(1, status=503, path="/api/publishing/v1/revision/"),
        lambda f: f.drop(1, after_commit=True, path="/api/publishing/v1/revision/"),
        lambda f: f.drop(3, after_commit=True, path="/api/publishing/v1/revision/"),  # the apply: looked up, not resent
        lambda f: f.fail(3, status=500, path="/api/publishing/v1/revision/"),  # the apply: not taken, sent again
    ],
    ids=[
        "500-open",
        "drop-upload",
        "503",
        "503-revision",
        "drop-after-commit-revision",
        "drop-after-commit-apply",
        "500-apply",
    ],
)
def test_replace_ends_with_exactly_the_new_rows(portal, deliver, fault):
    ds = portal.create(NO_RI, row_identifier="case_id")
    deliver(upsert_opts(portal, ds), cases(6)[["case_id", "amount"]])
    fault(portal.faults)
    deliver({"domain": portal.url, "dataset": ds, "mode": "replace"}, cases(5, amount=50.0)[["case_id", "amount"]])
    assert portal.faults.fired
    assert portal.rows(ds, **{"$order": "case_id"}) == expected_cases(5, amount=50.0)


def test_a_replace_that_fails_leaves_the_old_rows(portal, deliver):
    ds = portal.create(NO_RI, row_identifier="case_id")
    deliver(upsert_opts(portal, ds), cases(6)[["case_id", "amount"]])
    portal.faults.fail(1, status=500, times=None, path="/api/publishing/v1/source/")
    with pytest.raises(DeliveryFailed) as err:
        deliver({"domain": portal.url, "dataset": ds, "mode": "replace", "retries": 1}, cases(5)[["case_id", "amount"]])
    assert "The dataset keeps its old rows." in str(err.value)
    assert portal.rows(ds, **{"$order": "case_id"}) == expected_cases(6)


def test_retry_after_forms():
    from pipeline.http import retry_after_seconds

    assert retry_after_seconds("2") == 2.0 and retry_after_seconds("0.25") == 0.25
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert 0 <= retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") < 1  # a date in the past: now


def test_scattered_uncertain_lines_are_all_listed_in_a_file(portal, deliver):
    ds = portal.create(NO_RI, row_identifier=None)
    rows = cases(60)[["case_id", "amount"]]
    rows = rows[rows.index % 2 == 0]  # every other source line: 30 one-line ranges
    portal.faults.drop(1, after_commit=True)
    with pytest.raises(DeliveryFailed) as err:
        deliver({"domain": portal.url, "dataset": ds, "mode": "append", "batch_rows": 30}, rows)
    text = str(err.value)
    assert "rows at lines 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, and 18 more ranges of cases.csv" in text
    path = text.split("Every one of those lines is listed in ")[1].split(". ")[0]
    assert Path(path).read_text().split() == [str(n) for n in range(2, 62, 2)]
