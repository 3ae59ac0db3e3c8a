"""Acceptance for the socrata delivery and source (issue 4), as a publisher uses them: `route execute`
on route files, against the embedded local portal and against a portal served over
http://127.0.0.1 with credentials from ${VAR} (tests/portalkit.py). Rows are read back over SODA.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
import threading
from pathlib import Path

import pytest
import requests
from polling import wait_until
from portalkit import AUTH, AUTH_YAML, KEY_ID, PASSWORD_VAR, ROUTE_ARGS, SECRET, USER, ServedPortal

from pipeline.portal import LocalPortal

TOKEN = "AppTok-acceptance-55rQ"  # an app token, also secret

COLUMNS = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
    {"fieldName": "visits", "name": "Visits", "dataTypeName": "number"},
    {"fieldName": "opened", "name": "Opened", "dataTypeName": "calendar_date"},
    {"fieldName": "closed", "name": "Closed", "dataTypeName": "checkbox"},
    {"fieldName": "spot", "name": "Spot", "dataTypeName": "point"},
    {"fieldName": "note", "name": "Note", "dataTypeName": "text"},
]

CASES = '''\
case_id,amount,visits,opened,closed,lat,lon,note
C-1,12.50,3,2024-01-05 09:30:15,Y,41.7637,-72.6851,first
C-2,7.25,0,2024-02-29,N,,,
C-3,1000000.75,12,2023-12-31 23:59:59,N,41.3083,-72.9279,"comma, ""quoted"""
'''

TYPED = """\
  - cast: {amount: number, visits: integer, opened: datetime, closed: boolean}
  - point: {latitude: lat, longitude: lon, into: spot}
  - drop: [lat, lon]
"""

ROW1 = {
    "case_id": "C-1",
    "amount": "12.5",
    "visits": "3",
    "opened": "2024-01-05T09:30:15.000",
    "closed": True,
    "spot": {"type": "Point", "coordinates": [-72.6851, 41.7637]},
    "note": "first",
}
ROW2 = {"case_id": "C-2", "amount": "7.25", "visits": "0", "opened": "2024-02-29T00:00:00.000", "closed": False}
ROW3 = {
    "case_id": "C-3",
    "amount": "1000000.75",
    "visits": "12",
    "opened": "2023-12-31T23:59:59.000",
    "closed": False,
    "spot": {"type": "Point", "coordinates": [-72.9279, 41.3083]},
    "note": 'comma, "quoted"',
}


class Embedded:
    """The embedded local portal: no domain in the route, data in <state>/portal.sqlite (read back
    by serving that file for a moment)."""

    route_args: tuple = ()

    def __init__(self, state: Path):
        self.path = state / "portal.sqlite"
        state.mkdir(parents=True, exist_ok=True)

    def create(self, columns=COLUMNS, row_identifier="case_id", name="Cases") -> str:
        portal = LocalPortal(self.path)
        try:
            return portal.create_dataset(name=name, columns=columns, row_identifier=row_identifier)
        finally:
            portal.close()

    def target(self, dataset: str) -> str:
        return f"dataset: {dataset}\n"

    def rows(self, dataset: str, **params) -> list[dict]:
        with ServedPortal(self.path) as served:
            return served.rows(dataset, **params)


@pytest.fixture(params=["embedded", "served"])
def where(request, tmp_path):
    """The embedded portal, or the `portal` fixture (served over http://127.0.0.1, the route's auth
    from ${PORTAL_PW})."""
    return Embedded(tmp_path / ".route") if request.param == "embedded" else request.getfixturevalue("portal")


def indent(text: str, n: int) -> str:
    return textwrap.indent(text, " " * n)


def route(
    name: str,
    target: str,
    mode: str,
    *,
    source: str = "csv: {path: cases.csv}",
    transforms: str = TYPED,
    extra: str = "",
    target_transforms: str = "",
) -> str:
    """A route file: the source, the typing rules, and one socrata target."""
    tt = f"    target_transforms:\n{indent(target_transforms, 6)}" if target_transforms else ""
    return (
        f"name: {name}\nsource:\n  {source}\n"
        + (f"source_transforms:\n{transforms}" if transforms else "")
        + f"targets:\n  - name: portal\n{tt}    deliver:\n      socrata:\n"
        + indent(target + f"mode: {mode}\nbackoff: 0.01\n" + extra, 8)
    )


def execute(route_cli, path: Path, where, *args: str):
    return route_cli("execute", *args, *where.route_args, str(path))


def flat(text: str) -> str:
    """Output with line breaks and runs of spaces as single spaces (a terminal may wrap)."""
    return " ".join(text.split())


# -- every mode, with and without a row identifier, embedded and served -----------------------------


def test_upsert_with_row_identifier_creates_updates_merges_and_clears(where, route_cli, write_route):
    ds = where.create(COLUMNS)
    path = write_route(route("cases", where.target(ds), "upsert"), **{"cases.csv": CASES})
    first = execute(route_cli, path, where)
    assert first.exit_code == 0, first.output
    assert "success" in first.output
    assert where.rows(ds) == [ROW1, ROW2, ROW3]

    # C-1 loses its note (an empty cell is null, which clears it), C-2 changes, C-4 is new.
    path.parent.joinpath("cases.csv").write_text(
        "case_id,amount,visits,opened,closed,lat,lon,note\n"
        "C-2,8.75,1,2024-03-01 12:00,Y,41.5,-72.5,second\n"
        "C-1,12.50,3,2024-01-05 09:30:15,Y,41.7637,-72.6851,\n"
        "C-4,0.5,,,,,,new\n"
    )
    second = execute(route_cli, path, where, "--json")
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    target = report["targets"][0]
    assert (report["status"], target["created"], target["updated"], target["delivered"]) == ("success", 1, 2, 3)
    assert where.rows(ds) == [
        {k: v for k, v in ROW1.items() if k != "note"},
        {
            "case_id": "C-2",
            "amount": "8.75",
            "visits": "1",
            "opened": "2024-03-01T12:00:00.000",
            "closed": True,
            "spot": {"type": "Point", "coordinates": [-72.5, 41.5]},
            "note": "second",
        },
        ROW3,
        {"case_id": "C-4", "amount": "0.5", "note": "new"},
    ]


def test_upsert_of_only_some_columns_keeps_the_others(where, route_cli, write_route):
    ds = where.create(COLUMNS)
    path = write_route(route("cases", where.target(ds), "upsert"), **{"cases.csv": CASES})
    assert execute(route_cli, path, where).exit_code == 0
    path2 = write_route(
        route("notes", where.target(ds), "upsert", source="csv: {path: notes.csv}", transforms=""),
        name="notes.yaml",
        **{"notes.csv": "case_id,note\nC-2,called back\n"},
    )
    result = execute(route_cli, path2, where)
    assert result.exit_code == 0, result.output
    assert where.rows(ds) == [ROW1, {**ROW2, "note": "called back"}, ROW3]


def test_upsert_without_row_identifier_stops_before_writing(where, route_cli, write_route):
    ds = where.create(COLUMNS, row_identifier=None)
    path = write_route(route("cases", where.target(ds), "upsert"), **{"cases.csv": CASES})
    result = execute(route_cli, path, where)
    assert result.exit_code == 1, result.output
    assert "mode upsert needs a row identifier" in result.output
    assert "Traceback" not in result.output
    assert where.rows(ds) == []


def test_append_without_row_identifier_adds_the_rows_on_every_run(where, route_cli, write_route):
    ds = where.create(COLUMNS, row_identifier=None)
    path = write_route(route("cases", where.target(ds), "append"), **{"cases.csv": CASES})
    for _ in range(2):
        result = execute(route_cli, path, where)
        assert result.exit_code == 0, result.output
    assert where.rows(ds) == [ROW1, ROW2, ROW3, ROW1, ROW2, ROW3]


def test_append_with_row_identifier_is_keyed(where, route_cli, write_route):
    ds = where.create(COLUMNS)
    path = write_route(route("cases", where.target(ds), "append"), **{"cases.csv": CASES})
    for _ in range(2):
        result = execute(route_cli, path, where)
        assert result.exit_code == 0, result.output
    assert where.rows(ds) == [ROW1, ROW2, ROW3]


def test_socrata_row_ids_update_and_delete_a_dataset_without_row_identifier(where, route_cli, write_route, tmp_path):
    ds = where.create(COLUMNS, row_identifier=None)
    path = write_route(route("cases", where.target(ds), "append"), **{"cases.csv": CASES})
    assert execute(route_cli, path, where).exit_code == 0
    ids = [r[":id"] for r in where.rows(ds, **{"$select": ":id"})]
    (tmp_path / "ids.csv").write_text(f":id,note\n{ids[1]},found\n")
    up = write_route(
        route("by-id", where.target(ds), "upsert", source="csv: {path: ids.csv}", transforms=""), name="up.yaml"
    )
    result = execute(route_cli, up, where)
    assert result.exit_code == 0, result.output
    (tmp_path / "gone.csv").write_text(f":id\n{ids[0]}\n{ids[2]}\n")
    rm = write_route(
        route("rm-by-id", where.target(ds), "delete", source="csv: {path: gone.csv}", transforms=""), name="rm.yaml"
    )
    result = execute(route_cli, rm, where)
    assert result.exit_code == 0, result.output
    assert where.rows(ds, **{"$select": ":id, *"}) == [{":id": ids[1], **ROW2, "note": "found"}]


def test_delete_by_row_identifier_counts_misses_and_can_be_repeated(where, route_cli, write_route):
    ds = where.create(COLUMNS)
    load = write_route(route("cases", where.target(ds), "upsert"), **{"cases.csv": CASES})
    assert execute(route_cli, load, where).exit_code == 0
    rm = write_route(
        route("closed", where.target(ds), "delete", source="csv: {path: closed.csv}", transforms=""),
        name="rm.yaml",
        **{"closed.csv": "case_id,reason\nC-1,paid\nC-9,unknown\nC-3,paid\n"},
    )
    first = execute(route_cli, rm, where, "--json")
    assert first.exit_code == 0, first.output
    target = json.loads(first.stdout)["targets"][0]
    assert (target["deleted"], target["details"]["not_found"]) == (2, 1)
    assert where.rows(ds) == [ROW2]
    again = execute(route_cli, rm, where)
    assert again.exit_code == 0, again.output
    assert where.rows(ds) == [ROW2]


def test_delete_without_row_identifier_or_row_ids_stops_before_writing(where, route_cli, write_route):
    ds = where.create(COLUMNS, row_identifier=None)
    load = write_route(route("cases", where.target(ds), "append"), **{"cases.csv": CASES})
    assert execute(route_cli, load, where).exit_code == 0
    rm = write_route(
        route("closed", where.target(ds), "delete", source="csv: {path: closed.csv}", transforms=""),
        name="rm.yaml",
        **{"closed.csv": "case_id\nC-1\n"},
    )
    result = execute(route_cli, rm, where)
    assert result.exit_code == 1, result.output
    assert "row identifier" in result.output and "Traceback" not in result.output
    assert where.rows(ds) == [ROW1, ROW2, ROW3]


@pytest.mark.parametrize("row_identifier", ["case_id", None])
def test_replace_makes_the_dataset_exactly_the_rows(where, route_cli, write_route, row_identifier):
    ds = where.create(COLUMNS, row_identifier=row_identifier)
    load = write_route(route("cases", where.target(ds), "append"), **{"cases.csv": CASES})
    assert execute(route_cli, load, where).exit_code == 0
    path = write_route(
        route("snapshot", where.target(ds), "replace", source="csv: {path: snap.csv}"),
        name="snap.yaml",
        **{
            "snap.csv": "case_id,amount,visits,opened,closed,lat,lon,note\n"
            "C-3,1000000.75,12,2023-12-31 23:59:59,N,41.3083,-72.9279,"
            '"comma, ""quoted"""\n'
            "C-5,-3.5,7,2024-06-30 00:00:01,Y,,,\n"
        },
    )
    result = execute(route_cli, path, where, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "success" and report["targets"][0]["delivered"] == 2
    assert where.rows(ds) == [
        ROW3,
        {"case_id": "C-5", "amount": "-3.5", "visits": "7", "opened": "2024-06-30T00:00:01.000", "closed": True},
    ]


def test_a_number_row_identifier_is_one_key_however_the_chunk_spells_it(where, route_cli, write_route):
    ds = where.create(
        [
            {"fieldName": "id", "name": "ID", "dataTypeName": "number"},
            {"fieldName": "v", "name": "V", "dataTypeName": "text"},
        ],
        row_identifier="id",
    )
    first = write_route(
        route("ids", where.target(ds), "upsert", transforms="  - cast: {id: number}\n"),
        **{"cases.csv": "id,v\n1,a\n2,b\n10,c\n"},
    )
    assert execute(route_cli, first, where).exit_code == 0
    # 2.5 makes the chunk fractional, so without care 10 would go as 10.0: another key on the portal.
    first.parent.joinpath("cases.csv").write_text("id,v\n2.5,new\n10,changed\n")
    dry = execute(route_cli, first, where, "--dry-run")
    # the plan's row for the target: target, delivery, rows, then create 1, update 1, delete 0
    assert any(
        line.split()[:2] == ["portal", "socrata"] and line.split()[3:6] == ["1", "1", "0"]
        for line in dry.stdout.splitlines()
    ), dry.output
    assert execute(route_cli, first, where).exit_code == 0
    assert sorted(where.rows(ds), key=lambda r: float(r["id"])) == [
        {"id": "1", "v": "a"},
        {"id": "2", "v": "b"},
        {"id": "2.5", "v": "new"},
        {"id": "10", "v": "changed"},
    ]
    gone = write_route(
        route("gone", where.target(ds), "delete", source="csv: {path: gone.csv}", transforms=""),
        name="gone.yaml",
        **{"gone.csv": "id\n10.0\n2.50\n"},
    )
    result = execute(route_cli, gone, where, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["targets"][0]["deleted"] == 2
    assert sorted(where.rows(ds), key=lambda r: float(r["id"])) == [{"id": "1", "v": "a"}, {"id": "2", "v": "b"}]


def test_every_wire_type_through_a_route(where, route_cli, write_route):
    columns = [
        {"fieldName": "id", "name": "ID", "dataTypeName": "number"},
        {"fieldName": "price", "name": "Price", "dataTypeName": "money"},
        {"fieldName": "ratio", "name": "Ratio", "dataTypeName": "double"},
        {"fieldName": "seen", "name": "Seen", "dataTypeName": "date"},
        {"fieldName": "day", "name": "Day", "dataTypeName": "calendar_date"},
        {"fieldName": "ok", "name": "OK", "dataTypeName": "checkbox"},
        {"fieldName": "place", "name": "Place", "dataTypeName": "location"},
        {"fieldName": "link", "name": "Link", "dataTypeName": "url"},
        {"fieldName": "zip", "name": "ZIP", "dataTypeName": "text"},
    ]
    ds = where.create(columns, row_identifier="id")
    data = (
        "id,price,ratio,seen,day,ok,place,link,zip\n"
        '1,7.90,0.125,2024-07-01 08:00:00,2024-07-01,true,"12 Elm St (41.76, -72.68)",'
        "Portal (https://data.ct.gov),06103\n"
    )
    transforms = (
        "  - cast: {id: integer, ratio: number, ok: boolean, day: date,\n"
        "          seen: {type: datetime, timezone: America/New_York}}\n"
    )
    for mode in ("upsert", "replace"):
        path = write_route(
            route("types", where.target(ds), mode, transforms=transforms, extra="max_shrink: 100%\n"),
            **{"cases.csv": data},
        )
        result = execute(route_cli, path, where)
        assert result.exit_code == 0, result.output
        rows = where.rows(ds)
        assert len(rows) == 1
        row = rows[0]
        place = row.pop("place")
        assert row == {
            "id": "1",
            "price": "7.90",
            "ratio": 0.125,
            "seen": "2024-07-01T12:00:00.000Z",
            "day": "2024-07-01T00:00:00.000",
            "ok": True,
            "link": {"url": "https://data.ct.gov", "description": "Portal"},
            "zip": "06103",
        }, mode
        assert (place["latitude"], place["longitude"]) == ("41.76", "-72.68")
        assert json.loads(place["human_address"])["address"] == "12 Elm St"


# -- faults -------------------------------------------------------------------------------------------

N_ROWS = 23


def many_cases(n=N_ROWS, amount=0) -> str:
    return "case_id,amount\n" + "".join(f"K-{i:04d},{i + amount}\n" for i in range(1, n + 1))


def expected(n=N_ROWS, amount=0) -> list[dict]:
    return [{"case_id": f"K-{i:04d}", "amount": str(i + amount)} for i in range(1, n + 1)]


SMALL = [
    {"fieldName": "case_id", "name": "Case ID", "dataTypeName": "text"},
    {"fieldName": "amount", "name": "Amount", "dataTypeName": "number"},
]
SMALL_TYPED = "  - cast: {amount: integer}\n"


def small_route(portal, ds, mode, extra="batch_rows: 5\nconcurrency: 2\n", data="cases.csv"):
    return route(
        "faults", portal.target(ds), mode, source=f"csv: {{path: {data}}}", transforms=SMALL_TYPED, extra=extra
    )


FAULTS = {
    "500-twice": lambda f: f.fail(2, status=500, times=2),
    "503": lambda f: f.fail(1, status=503),
    "429-retry-after": lambda f: f.throttle(2, retry_after=1),
    "drop-before-commit": lambda f: f.drop(2),
    "drop-after-commit": lambda f: f.drop(2, after_commit=True),
    "delay": lambda f: f.delay(1, seconds=0.3).delay(3, seconds=0.3),
}


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_upsert_with_faults_ends_with_exactly_the_rows(portal, route_cli, write_route, fault):
    ds = portal.create(SMALL)
    FAULTS[fault](portal.faults)
    path = write_route(small_route(portal, ds, "upsert"), **{"cases.csv": many_cases()})
    result = execute(route_cli, path, portal)
    assert result.exit_code == 0, result.output
    assert portal.faults.fired
    assert sorted(portal.rows(ds), key=lambda r: r["case_id"]) == expected()


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_delete_with_faults_ends_with_exactly_the_rows(portal, route_cli, write_route, fault):
    ds = portal.create(SMALL)
    load = write_route(small_route(portal, ds, "upsert"), **{"cases.csv": many_cases()})
    assert execute(route_cli, load, portal).exit_code == 0
    FAULTS[fault](portal.faults)
    gone = "case_id\n" + "".join(f"K-{i:04d}\n" for i in range(1, N_ROWS + 1, 2))
    rm = write_route(
        route(
            "rm",
            portal.target(ds),
            "delete",
            source="csv: {path: gone.csv}",
            transforms="",
            extra="batch_rows: 3\nconcurrency: 2\n",
        ),
        name="rm.yaml",
        **{"gone.csv": gone},
    )
    result = execute(route_cli, rm, portal)
    assert result.exit_code == 0, result.output
    assert portal.faults.fired
    assert sorted(portal.rows(ds), key=lambda r: r["case_id"]) == [r for i, r in enumerate(expected()) if i % 2]


@pytest.mark.parametrize(
    "fault",
    [
        lambda f: f.fail(1, status=500, times=2),
        lambda f: f.throttle(2, retry_after=1),
        lambda f: f.drop(3),
        lambda f: f.drop(3, after_commit=True),
        lambda f: f.drop(1, after_commit=True, path="/api/publishing/v1/revision/"),
        lambda f: f.delay(2, seconds=0.3),
    ],
    ids=["500-open", "429-source", "drop-upload", "drop-after-upload", "drop-after-open", "delay"],
)
def test_replace_with_faults_ends_with_exactly_the_new_rows(portal, route_cli, write_route, fault):
    ds = portal.create(SMALL)
    load = write_route(small_route(portal, ds, "upsert"), **{"cases.csv": many_cases()})
    assert execute(route_cli, load, portal).exit_code == 0
    fault(portal.faults)
    snap = write_route(
        small_route(portal, ds, "replace", extra="", data="snap.csv"),
        name="snap.yaml",
        **{"snap.csv": many_cases(20, amount=100)},
    )
    result = execute(route_cli, snap, portal)
    assert result.exit_code == 0, result.output
    assert portal.faults.fired
    assert sorted(portal.rows(ds), key=lambda r: r["case_id"]) == expected(20, amount=100)


def test_a_replace_the_portal_keeps_refusing_leaves_the_old_rows(portal, route_cli, write_route):
    ds = portal.create(SMALL)
    load = write_route(small_route(portal, ds, "upsert"), **{"cases.csv": many_cases()})
    assert execute(route_cli, load, portal).exit_code == 0
    portal.faults.fail(1, status=500, times=None, path="/api/publishing/v1/source/")
    snap = write_route(
        small_route(portal, ds, "replace", extra="retries: 1\n", data="snap.csv"),
        name="snap.yaml",
        **{"snap.csv": many_cases(20, amount=100)},
    )
    result = execute(route_cli, snap, portal, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "failed" and "keeps its old rows" in report["error"]
    assert sorted(portal.rows(ds), key=lambda r: r["case_id"]) == expected()


def test_an_upsert_that_gives_up_is_partial_and_safe_to_repeat(portal, route_cli, write_route):
    ds = portal.create(SMALL)
    portal.faults.fail(3, status=500, times=None)
    path = write_route(
        small_route(portal, ds, "upsert", extra="batch_rows: 5\nconcurrency: 1\nretries: 2\n"),
        **{"cases.csv": many_cases(20)},
    )
    result = execute(route_cli, path, portal, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "partial" and report["targets"][0]["delivered"] == 10
    assert "gave up after 3 attempts; last: HTTP 500" in report["error"]
    assert "Arrived for certain: 10 rows (rows at lines 2-11 of " in report["error"]
    assert "Mode upsert is safe to repeat" in report["error"]
    portal.faults.clear()
    portal.faults.fail(3, status=500, times=None)
    table = execute(route_cli, path, portal)
    assert table.exit_code == 1 and "PARTIAL" in table.output and "success" not in table.output.lower()
    portal.faults.clear()
    assert execute(route_cli, path, portal).exit_code == 0
    assert portal.rows(ds, **{"$order": "case_id"}) == expected(20)


def test_an_append_is_retried_when_the_portal_certainly_did_not_take_it(portal, route_cli, write_route):
    ds = portal.create(SMALL, row_identifier=None)
    portal.faults.fail(1, status=503).throttle(3, retry_after=1)
    path = write_route(
        small_route(portal, ds, "append", extra="batch_rows: 5\nconcurrency: 1\n"), **{"cases.csv": many_cases(15)}
    )
    result = execute(route_cli, path, portal)
    assert result.exit_code == 0, result.output
    assert len(portal.faults.fired) == 2
    assert portal.rows(ds) == expected(15)


def test_a_timeout_resends_an_upsert_but_stops_an_append(portal, route_cli, write_route):
    ds = portal.create(SMALL)
    portal.faults.delay(2, seconds=0.6)
    path = write_route(
        small_route(portal, ds, "upsert", extra="batch_rows: 5\nconcurrency: 1\ntimeout: 0.25\n"),
        **{"cases.csv": many_cases()},
    )
    result = execute(route_cli, path, portal)
    assert result.exit_code == 0, result.output
    assert portal.rows(ds, **{"$order": "case_id"}) == expected()

    log = portal.create(SMALL, row_identifier=None, name="Log")
    portal.faults.delay(2, seconds=0.6)
    path = write_route(
        small_route(portal, log, "append", extra="batch_rows: 5\nconcurrency: 1\ntimeout: 0.25\n"),
        name="log.yaml",
        **{"cases.csv": many_cases(15)},
    )
    result = execute(route_cli, path, portal)
    assert result.exit_code == 1
    assert "PARTIAL" in result.output
    assert "May or may not have arrived: 5 rows (rows at lines 7-11 of " in result.output
    assert "Not sent: 5 rows." in result.output


@pytest.mark.parametrize(
    "fault",
    [lambda f: f.drop(2, after_commit=True), lambda f: f.fail(2, status=500), lambda f: f.drop(2)],
    ids=["drop-after-commit", "500", "drop"],
)
def test_append_with_an_unknown_outcome_fails_naming_the_lines(portal, route_cli, write_route, fault):
    ds = portal.create(SMALL, row_identifier=None)
    fault(portal.faults)
    path = write_route(
        small_route(portal, ds, "append", extra="batch_rows: 5\nconcurrency: 1\n"), **{"cases.csv": many_cases(20)}
    )
    table = execute(route_cli, path, portal)
    assert table.exit_code == 1
    assert "success" not in table.output.lower()
    assert "PARTIAL" in table.output, table.output
    assert "Arrived for certain: 5 rows (rows at lines 2-6 of " in table.output
    assert "May or may not have arrived: 5 rows (rows at lines 7-11 of " in table.output
    assert "check the dataset for them first" in table.output
    assert "Not sent: 10 rows." in table.output
    committed = portal.rows(ds)
    assert committed[:5] == expected(5)
    assert committed[5:] in ([], expected(10)[5:])  # the uncertain batch: there or not, never twice


def test_append_failing_at_the_last_batch_is_partial_not_failed(portal, route_cli, write_route):
    ds = portal.create(SMALL, row_identifier=None)
    portal.faults.drop(4, after_commit=True)
    path = write_route(
        small_route(portal, ds, "append", extra="batch_rows: 5\nconcurrency: 1\n"), **{"cases.csv": many_cases(20)}
    )
    result = execute(route_cli, path, portal, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["targets"][0]["delivered"] == 15
    assert report["status"] == "partial", report
    assert "May or may not have arrived: 5 rows (rows at lines 17-21 of " in report["error"]


def test_a_replace_the_portal_refuses_to_apply_keeps_the_old_rows_and_says_why(portal, route_cli, write_route):
    ds = portal.create(SMALL)
    load = write_route(small_route(portal, ds, "upsert"), **{"cases.csv": many_cases(10)})
    assert execute(route_cli, load, portal).exit_code == 0
    snap = write_route(
        small_route(portal, ds, "replace", data="snap.csv"),
        name="snap.yaml",
        **{"snap.csv": many_cases(10) + "K-0003,33\n"},
    )
    result = execute(route_cli, snap, portal)
    assert result.exit_code == 1
    assert "The row identifier column has repeated values. The dataset keeps its old rows." in result.output
    assert result.output.count("keeps its old rows") == 1 and "{'" not in result.output
    assert portal.rows(ds, **{"$order": "case_id"}) == expected(10)


def test_history_records_per_target_counts_and_revision_or_request_ids(portal, route_cli, write_route, tmp_path):
    ds = portal.create(SMALL)
    up = write_route(small_route(portal, ds, "upsert"), **{"cases.csv": many_cases(10)})
    assert execute(route_cli, up, portal).exit_code == 0
    snap = write_route(
        small_route(portal, ds, "replace", data="snap.csv"), name="snap.yaml", **{"snap.csv": many_cases(8)}
    )
    assert execute(route_cli, snap, portal).exit_code == 0
    with sqlite3.connect(tmp_path / ".route" / "history.sqlite") as conn:
        reports = [json.loads(r) for (r,) in conn.execute("SELECT report FROM runs ORDER BY started")]
    first, second = (r["targets"][0] for r in reports)
    assert (first["created"], first["updated"], first["delivered"]) == (10, 0, 10)
    assert len(first["details"]["request_ids"]) == 2 and all(first["details"]["request_ids"])
    assert (second["created"], second["deleted"], second["delivered"]) == (8, 10, 8)
    assert second["details"]["revision"] is not None and second["details"]["status"] == "successful"


def creating_route(portal, extra=""):
    return route(
        "mk",
        portal.target(),
        "upsert",
        transforms=SMALL_TYPED,
        extra="row_identifier: case_id\ncreate: {name: Made}\n" + extra,
    )


def test_creating_a_dataset_is_never_resent_blindly_and_says_what_to_check(portal, route_cli, write_route):
    path = write_route(creating_route(portal), **{"cases.csv": many_cases(10)})
    portal.faults.drop(1, after_commit=True, path="/api/views")
    result = execute(route_cli, path, portal)
    assert result.exit_code == 1
    assert 'socrata upsert to dataset "Made" (to be created): creating dataset "Made": ' in result.output
    assert 'If a dataset named "Made" now exists (unpublished) on http://127.0.0.1:' in flat(result.output)
    assert [d["name"] for d in portal.local.datasets()] == ["Made"]  # made once, not twice


def test_a_dataset_created_but_not_published_is_published_by_the_next_run(portal, route_cli, write_route):
    path = write_route(creating_route(portal, "retries: 1\n"), **{"cases.csv": many_cases(10)})
    portal.faults.fail(1, status=500, times=None, path="/api/views/")  # publishing fails
    result = execute(route_cli, path, portal)
    assert result.exit_code == 1 and "publishing dataset" in result.output
    portal.faults.clear()
    result = execute(route_cli, path, portal)
    assert result.exit_code == 0, result.output
    made = portal.local.datasets()
    assert [(d["name"], d["publicationStage"], d["rowCount"]) for d in made] == [("Made", "published", 10)]
    assert portal.rows(made[0]["id"]) == expected(10)


# -- mismatches and credentials: stop before any write, say what to do, never show a secret ------------


def assert_no_secret(outputs: list[str], state: Path, secrets=(SECRET, TOKEN)) -> None:
    for secret in secrets:
        for text in outputs:
            assert secret not in text
        for f in state.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f
        # history.sqlite as SQLite sees it, too (the WAL may hold recent pages)
    db = state / "history.sqlite"
    if db.exists():
        with sqlite3.connect(db) as conn:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                dump = repr(conn.execute(f'SELECT * FROM "{table}"').fetchall())
                for secret in secrets:
                    assert secret not in dump, table


MISFIT = """\
case_id,amount,opened,colour,size
C-1,12.50,2024-01-05,red,L
C-2,lots,2024-01-06,blue,M
"""


def test_column_mismatches_stop_before_any_write_and_name_everything(portal, route_cli, write_route, tmp_path):
    ds = portal.create(COLUMNS)
    writes = portal.writes
    transforms = "  - cast: {amount: number, opened: boolean}\n  - rename: {case_id: ref}\n"
    text = route("misfit", portal.target(ds), "upsert", transforms=transforms).replace(
        'password: "${PORTAL_PW}"}', 'password: "${PORTAL_PW}", app_token: "${APP_TOKEN}"}'
    )
    path = write_route(text, **{"cases.csv": MISFIT})
    table = route_cli("execute", *ROUTE_ARGS, "--set", f"APP_TOKEN={TOKEN}", str(path))
    report = route_cli("execute", "--json", *ROUTE_ARGS, "--set", f"APP_TOKEN={TOKEN}", str(path))
    assert table.exit_code == 1 and report.exit_code == 1, table.output
    out = table.output
    assert "the route's output does not fit the dataset, so nothing was sent" in out
    assert "column 'colour' is not in dataset \"Cases\"" in out and "column 'size'" in out
    assert "column 'ref' is not in dataset" in out
    assert "the route has no column for it; every row must carry it in mode upsert" in out
    assert "route column 'opened' is boolean, which cannot go to \"Opened\" (opened)" in out
    assert "Traceback" not in out
    assert json.loads(report.stdout)["status"] == "failed"
    assert portal.writes == writes, "nothing was written"
    assert portal.rows(ds) == []
    history = route_cli("history", str(path))
    history_json = route_cli("history", "--json", str(path))
    assert list((tmp_path / ".route" / "rejects").glob("misfit-*.csv")), "the 'lots' row went to rejects"
    assert list((tmp_path / ".route" / "logs").rglob("*")), "a run log was written"
    assert_no_secret([table.output, report.output, history.output, history_json.output], tmp_path / ".route")


@pytest.mark.parametrize(
    "auth",
    [
        AUTH_YAML,
        AUTH_YAML.replace(f"username: {USER}", "username: somebody"),
        f'auth: {{api_key_id: {KEY_ID}, api_key_secret: "${{{PASSWORD_VAR}}}", app_token: "${{APP_TOKEN}}"}}',
    ],
    ids=["wrong-password", "unknown-user", "wrong-api-key"],
)
def test_bad_credentials_stop_before_any_write_and_never_show_the_secret(
    portal, route_cli, write_route, tmp_path, auth
):
    ds = portal.create(COLUMNS)
    wrong = "Wr0ng-" + SECRET[::-1]
    writes = portal.writes
    text = route("creds", portal.target(ds), "upsert").replace(AUTH_YAML, auth)
    path = write_route(text, **{"cases.csv": CASES + "C-4,not a number,1,,,,,\n"})
    args = ("--set", f"{PASSWORD_VAR}={wrong}", "--set", f"APP_TOKEN={TOKEN}", str(path))
    table = route_cli("execute", *args)
    report = route_cli("execute", "--json", *args)
    assert table.exit_code == 1 and report.exit_code == 1
    assert "refused the credentials (HTTP 401)" in table.output
    assert "Check auth.username and auth.password (or auth.api_key_id and auth.api_key_secret)" in table.output
    assert "success" not in table.output.lower() and "Traceback" not in table.output
    assert json.loads(report.stdout)["status"] == "failed"
    assert portal.writes == writes and portal.rows(ds) == []
    history = route_cli("history", "--json", str(path))
    assert_no_secret([table.output, report.output, history.output], tmp_path / ".route", secrets=(wrong, TOKEN))


def test_a_good_secret_never_shows_either(portal, route_cli, write_route, tmp_path):
    ds = portal.create(COLUMNS)
    path = write_route(route("good", portal.target(ds), "upsert"), **{"cases.csv": CASES + "C-4,lots,1,,,,,\n"})
    table = execute(route_cli, path, portal)
    report = execute(route_cli, path, portal, "--json")
    assert table.exit_code == 0 and report.exit_code == 0, table.output
    assert list((tmp_path / ".route" / "rejects").glob("good-*.csv"))
    history = route_cli("history", "--json", str(path))
    assert_no_secret([table.output, report.output, history.output], tmp_path / ".route", secrets=(SECRET,))


def test_the_embedded_portal_takes_the_routes_credentials_and_keeps_them_secret(route_cli, write_route, tmp_path):
    embedded = Embedded(tmp_path / ".route")
    ds = embedded.create()
    text = route("emb", embedded.target(ds) + 'auth: {username: me, password: "${PORTAL_PW}"}\n', "upsert")
    path = write_route(text, **{"cases.csv": CASES + "C-4,lots,1,,,,,\n"})
    table = route_cli("execute", *ROUTE_ARGS, str(path))
    report = route_cli("execute", "--json", *ROUTE_ARGS, str(path))
    assert table.exit_code == 0 and report.exit_code == 0, table.output
    assert embedded.rows(ds) == [ROW1, ROW2, ROW3]
    history = route_cli("history", "--json", str(path))
    assert_no_secret([table.output, report.output, history.output], tmp_path / ".route", secrets=(SECRET,))


def test_a_missing_dataset_on_the_embedded_portal_is_named_by_its_file_not_a_port(route_cli, write_route, tmp_path):
    path = write_route(route("lost", "dataset: zzzz-9999\n", "upsert"), **{"cases.csv": CASES})
    result = route_cli("execute", str(path))
    assert result.exit_code == 1
    text = flat(result.output)
    assert f"dataset zzzz-9999 was not found on the local portal in {tmp_path / '.route' / 'portal.sqlite'}" in text
    assert "127.0.0.1" not in result.output


# -- dry run, max_shrink --------------------------------------------------------------------------------


def test_dry_run_reports_creates_updates_deletes_and_writes_nothing(portal, route_cli, write_route):
    ds = portal.create(SMALL)
    load = write_route(small_route(portal, ds, "upsert"), **{"cases.csv": many_cases(10)})
    assert execute(route_cli, load, portal).exit_code == 0
    writes = portal.writes
    # 14 rows: 10 updates, 3 new, and one whose amount the delivery cannot convert (no cast here).
    up = write_route(
        route("up", portal.target(ds), "upsert", source="csv: {path: up.csv}", transforms=""),
        name="up.yaml",
        **{"up.csv": many_cases(13) + "K-0099,x\n"},
    )
    result = execute(route_cli, up, portal, "--dry-run")
    assert result.exit_code == 0, result.output
    # the plan's row for the target: target, delivery, rows, then create, update, delete, reject
    assert any(
        line.split()[:2] == ["portal", "socrata"] and line.split()[3:7] == ["3", "10", "0", "1"]
        for line in result.stdout.splitlines()
    ), result.output
    assert "Dry run: nothing was delivered" in result.stdout

    rm = write_route(
        route("rm", portal.target(ds), "delete", source="csv: {path: gone.csv}", transforms=""),
        name="rm.yaml",
        **{"gone.csv": "case_id\nK-0001\nK-0002\nK-0404\n"},
    )
    result = execute(route_cli, rm, portal, "--dry-run", "--json")
    details = json.loads(result.stdout)["targets"][0]["details"]
    assert (details["delete"], details["not_found"]) == (2, 1)

    snap = write_route(
        small_route(portal, ds, "replace", data="snap.csv"), name="snap.yaml", **{"snap.csv": many_cases(3)}
    )
    result = execute(route_cli, snap, portal, "--dry-run", "--json")
    assert result.exit_code == 0
    details = json.loads(result.stdout)["targets"][0]["details"]
    assert (details["create"], details["update"], details["delete"]) == (0, 3, 7)
    assert "would stop before replacing: it would shrink the dataset from 10 to 3 rows" in details["stop"]
    assert portal.writes == writes
    assert portal.rows(ds, **{"$order": "case_id"}) == expected(10)


@pytest.mark.parametrize("keep, stops", [(5, False), (4, True), (0, True)])
def test_replace_that_shrinks_too_much_stops_unless_forced(where, route_cli, write_route, keep, stops):
    ds = where.create(SMALL)
    load = write_route(
        route("load", where.target(ds), "upsert", transforms=SMALL_TYPED), **{"cases.csv": many_cases(10)}
    )
    assert execute(route_cli, load, where).exit_code == 0
    snap = write_route(
        route("snap", where.target(ds), "replace", source="csv: {path: snap.csv}", transforms=SMALL_TYPED),
        name="snap.yaml",
        **{"snap.csv": many_cases(keep)},
    )
    result = execute(route_cli, snap, where)
    if not stops:
        assert result.exit_code == 0, result.output
        assert where.rows(ds) == expected(keep)
        return
    assert result.exit_code == 1
    assert "stopped before replacing" in result.output and "--force" in result.output
    assert "Nothing was changed" in result.output
    assert where.rows(ds) == expected(10)
    forced = execute(route_cli, snap, where, "--force")
    assert forced.exit_code == 0, forced.output
    assert where.rows(ds) == expected(keep)


# -- port job -----------------------------------------------------------------------------------------

PORT_COLUMNS = [
    {"fieldName": "id", "name": "ID", "dataTypeName": "number"},
    {"fieldName": "town", "name": "Town", "dataTypeName": "text"},
    {"fieldName": "price", "name": "Price", "dataTypeName": "money"},
    {"fieldName": "sold", "name": "Sold", "dataTypeName": "calendar_date"},
    {"fieldName": "recorded", "name": "Recorded", "dataTypeName": "date"},
    {"fieldName": "residential", "name": "Residential", "dataTypeName": "checkbox"},
    {"fieldName": "spot", "name": "Spot", "dataTypeName": "point"},
]


def test_port_job_between_two_served_portals(portal, route_cli, write_route, tmp_path):
    source = portal
    with ServedPortal(tmp_path / "b" / "portal.sqlite") as dest:
        src = source.create(PORT_COLUMNS, row_identifier="id", name="Sales")
        rows = [
            {
                "id": i,
                "town": ["Hartford", "Avon", None][i % 3],
                "price": f"{1000 * i}.50",
                "sold": f"2024-01-{i % 28 + 1:02d}T10:15:00",
                "recorded": f"2024-02-01T0{i % 10}:00:00Z",
                "residential": i % 2 == 0,
                "spot": f"POINT (-72.{i:03d} 41.5)",
            }
            for i in range(1, 2501)
        ]
        r = source.post(f"/resource/{src}.json", rows)
        assert r.status_code == 200, r.text
        dst = dest.create(PORT_COLUMNS, row_identifier="id", name="Sales copy")
        text = (
            f"name: port\nsource:\n  socrata:\n    domain: {source.url}\n    dataset: {src}\n"
            f'    where: "id <= 2400"\n    page_rows: 1000\n'
            f"    {AUTH_YAML}\n"
            f"targets:\n  - name: copy\n    deliver:\n      socrata:\n" + indent(dest.target(dst) + "mode: upsert\n", 8)
        )
        path = write_route(text)
        result = route_cli("execute", *ROUTE_ARGS, str(path))
        assert result.exit_code == 0, result.output
        want = source.rows(src, **{"$where": "id <= 2400"})
        # Numbers travel as float64 (route's number type): money loses its trailing zero, the same amount.
        want = [{**w, "price": w["price"].rstrip("0")} for w in want]
        got = dest.rows(dst)
        assert len(got) == 2400
        assert got == want


@pytest.mark.parametrize("mode", ["upsert", "replace"])
def test_a_port_job_copies_numbers_exactly_as_the_source_shows_them(portal, route_cli, write_route, mode):
    """A number column holding both whole and fractional values: each value is copied as it reads
    (7 stays "7", not "7.0" because its page also holds 2.5)."""
    cols = [
        {"fieldName": "id", "name": "ID", "dataTypeName": "text"},
        {"fieldName": "n", "name": "N", "dataTypeName": "number"},
        {"fieldName": "d", "name": "D", "dataTypeName": "double"},
    ]
    src = portal.create(cols, row_identifier="id", name="Src")
    dst = portal.create(cols, row_identifier="id", name="Dst")
    r = portal.post(
        f"/resource/{src}.json",
        [
            {"id": "a", "n": 7, "d": 7},
            {"id": "b", "n": 2.5, "d": 2.5},
            {"id": "c", "n": -3, "d": 0.1},
            {"id": "d", "n": "1000000", "d": 1e20},
        ],
    )
    assert r.status_code == 200, r.text
    text = (
        f"name: copy\nsource:\n  socrata:\n    domain: {portal.url}\n    dataset: {src}\n"
        f"    {AUTH_YAML}\n"
        f"targets:\n  - name: copy\n    deliver:\n      socrata:\n"
        + indent(portal.target(dst) + f"mode: {mode}\nmax_shrink: 100%\n", 8)
    )
    result = execute(route_cli, write_route(text), portal)
    assert result.exit_code == 0, result.output
    assert portal.rows(dst) == portal.rows(src)


# -- atomicity: a replace never shows a mix to a reader ---------------------------------------------------


def test_a_reader_never_sees_a_mix_during_a_route_replace(portal, route_cli, write_route):
    ds = portal.create(SMALL)
    n = 3000
    load = write_route(small_route(portal, ds, "upsert", extra="batch_rows: 5000\n"), **{"cases.csv": many_cases(n)})
    assert execute(route_cli, load, portal).exit_code == 0
    portal.faults.slow_jobs(0.3)  # the apply takes a while, so the reader sees it happen
    seen, problems, stop = [], [], threading.Event()

    def read():
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    rows = s.get(
                        f"{portal.url}/resource/{ds}.json", params={"$limit": "100000"}, auth=AUTH, timeout=30
                    ).json()
                except Exception as exc:  # noqa: BLE001 (a failed read is a finding, not a crash)
                    problems.append(repr(exc))
                    return
                amounts = {int(r["amount"]) - int(r["case_id"][2:]) for r in rows}
                seen.append(amounts)
                if len(amounts) != 1 or len(rows) != n:
                    problems.append((len(rows), sorted(amounts)[:5]))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        wait_until(lambda: seen or not reader.is_alive(), what="the reader reads the old rows")
        snap = write_route(
            small_route(portal, ds, "replace", extra="", data="snap.csv"),
            name="snap.yaml",
            **{"snap.csv": many_cases(n, amount=1000)},
        )
        result = execute(route_cli, snap, portal)
        after = len(seen)
        wait_until(lambda: len(seen) >= after + 2 or not reader.is_alive(), what="the reader reads the new rows")
    finally:
        stop.set()
        reader.join()
    assert result.exit_code == 0, result.output
    assert not problems, problems[:3]
    assert seen[0] == {0} and seen[-1] == {1000}, "the reader saw the old rows, then the new ones"
    assert sorted(portal.rows(ds), key=lambda r: r["case_id"]) == expected(n, amount=1000)
