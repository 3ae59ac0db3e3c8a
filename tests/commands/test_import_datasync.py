"""`route import datasync`: DataSync jobs (tests/datasync/) converted, validated and run against the
local portal, giving the rows DataSync's documented behaviour gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import run_route_cli
from portalkit import SECRET, USER

from pipeline.commands.datasync import import_group

FIXTURES = Path(__file__).resolve().parents[1] / "datasync"
LOGIN = ("--set", f"SOCRATA_USERNAME={USER}", "--set", f"SOCRATA_PASSWORD={SECRET}")


def convert(*args: str):
    result = CliRunner().invoke(import_group, ["datasync", *args], catch_exceptions=False)
    return result.exit_code, result.stdout + result.stderr


def job_copy(tmp_path: Path, folder: str, job: str, dataset: str) -> Path:
    """The fixture folder copied to tmp_path, its job saved for `dataset` (the portal's own 4x4)."""
    shutil.copytree(FIXTURES / folder, tmp_path / folder)
    path = tmp_path / folder / job
    saved = json.loads(path.read_text(encoding="utf-8"))
    saved["datasetID"] = dataset
    path.write_text(json.dumps(saved), encoding="utf-8")
    return path


def validate_and_run(route: Path, *variables: str) -> str:
    checked = run_route_cli("validate", str(route), *LOGIN, *variables)
    assert checked.exit_code == 0, checked.output
    ran = run_route_cli("execute", str(route), *LOGIN, *variables)
    assert ran.exit_code == 0, ran.output + route.read_text()
    return ran.output


PERMITS = [
    {"fieldName": "permit_number", "name": "Permit number", "dataTypeName": "text"},
    {"fieldName": "issued", "name": "Issued", "dataTypeName": "calendar_date"},
    {"fieldName": "inspected_at", "name": "Inspected at", "dataTypeName": "date"},
    {"fieldName": "address", "name": "Address", "dataTypeName": "text"},
    {"fieldName": "fee", "name": "Fee", "dataTypeName": "number"},
]


def test_replace_with_date_formats_skip_and_ignored_column(tmp_path, portal):
    ff = portal.create(PERMITS, row_identifier=None, name="Permits")
    portal.post(f"/resource/{ff}.json", [{"permit_number": "OLD-1", "fee": "1"}])
    job = job_copy(tmp_path, "permits-replace", "permits.sij", ff)
    route = tmp_path / "permits.yaml"
    code, out = convert(str(job), "--domain", portal.url, "--output", str(route))
    assert code == 0, out
    text = route.read_text()
    assert "skip_rows: 2" in text and "drop: [clerk_initials]" in text and "trim: all" in text
    assert 'issued: {type: datetime, formats: ["%m/%d/%Y"]}' in text
    assert 'inspected_at: {type: datetime, formats: ["%m/%d/%Y %I:%M %p"]}' in text
    assert "timezone: America/New_York" in text and "mode: replace" in text
    assert "max_rejects: 0" in text
    assert "trimServerWhitespace" in out  # not carried over, and said so
    validate_and_run(route)
    rows = portal.rows(ff)
    assert [r["permit_number"] for r in rows] == ["BP-24-0101", "BP-24-0102", "BP-24-0103"]
    assert rows[0]["issued"] == "2024-03-15T00:00:00.000"
    assert rows[0]["inspected_at"] == "2024-03-16T13:30:00.000Z"  # 09:30 in New York (EDT)
    assert rows[2]["issued"] == "2024-04-02T00:00:00.000"
    assert rows[2]["inspected_at"] == "2024-04-05T18:15:00.000Z"
    assert "inspected_at" not in rows[1]  # an empty cell is null
    assert rows[0]["address"] == "12 Elm St"  # trimWhitespace
    assert rows[1]["address"] == "400 Main St, Unit 2"
    assert [r["fee"] for r in rows] == ["150.00", "75.50", "1200"]  # numbers as written, as DataSync sent them


INSPECTIONS = [
    {"fieldName": "inspection_id", "name": "Inspection ID", "dataTypeName": "text"},
    {"fieldName": "facility", "name": "Facility", "dataTypeName": "text"},
    {"fieldName": "street", "name": "Street", "dataTypeName": "text"},
    {"fieldName": "city", "name": "City", "dataTypeName": "text"},
    {"fieldName": "state", "name": "State", "dataTypeName": "text"},
    {"fieldName": "zip", "name": "ZIP", "dataTypeName": "text"},
    {"fieldName": "latitude", "name": "Latitude", "dataTypeName": "number"},
    {"fieldName": "longitude", "name": "Longitude", "dataTypeName": "number"},
    {"fieldName": "result", "name": "Result", "dataTypeName": "text"},
    {"fieldName": "inspected", "name": "Inspected", "dataTypeName": "calendar_date"},
    {"fieldName": "location", "name": "Location", "dataTypeName": "location"},
]


def test_upsert_with_synthetic_location_and_set_aside_errors(tmp_path, portal):
    ff = portal.create(INSPECTIONS, row_identifier="inspection_id", name="Inspections")
    portal.post(f"/resource/{ff}.json", [{"inspection_id": "I-1002", "facility": "Elm Deli", "result": "Pending"}])
    job = job_copy(tmp_path, "inspections-upsert", "inspections.sij", ff)
    route = tmp_path / "inspections.yaml"
    code, out = convert(str(job), "--domain", portal.url, "--output", str(route))
    assert code == 0, out
    text = route.read_text()
    assert "delimiter: semicolon" in text and "encoding: cp1252" in text
    assert "mode: upsert" in text and "row_identifier: inspection_id" in text
    assert "into: location" in text and "max_rejects" not in text
    validate_and_run(route)
    rows = {r["inspection_id"]: r for r in portal.rows(ff)}
    assert sorted(rows) == ["I-1001", "I-1002"]  # I-1003's latitude is 'north': set aside, as DataSync would
    assert rows["I-1001"]["facility"] == "Café Lumière"  # windows-1252
    assert rows["I-1002"]["facility"] == "Elm Deli" and rows["I-1002"]["result"] == "Fail"  # updated
    assert rows["I-1001"]["zip"] == "06103"
    assert rows["I-1001"]["inspected"] == "2024-05-02T00:00:00.000"
    location = rows["I-1001"]["location"]
    assert float(location["latitude"]) == 41.7662 and float(location["longitude"]) == -72.6733
    assert json.loads(location["human_address"]) == {
        "address": "10 Pearl St",
        "city": "Hartford",
        "state": "CT",
        "zip": "06103",
    }
    assert "inspector_note" not in rows["I-1001"]
    rejects = list((tmp_path / ".route" / "rejects").glob("*.csv"))
    assert len(rejects) == 1 and "I-1003" in rejects[0].read_text()


CLOSURES = [
    {"fieldName": "closure_id", "name": "Closure ID", "dataTypeName": "text"},
    {"fieldName": "road", "name": "Road", "dataTypeName": "text"},
]


def test_delete_over_soda2_with_config_secrets_never_written(tmp_path, portal):
    ff = portal.create(CLOSURES, row_identifier="closure_id", name="Road closures")
    portal.post(
        f"/resource/{ff}.json",
        [{"closure_id": f"RC-2024-0{n}", "road": f"Route {n}"} for n in (15, 16, 17, 21)],
    )
    job = job_copy(tmp_path, "closures-delete", "closures-delete.sij", ff)
    config = job.parent / "config.json"
    route = tmp_path / "closures.yaml"
    code, out = convert(str(job), "--config", str(config), "--domain", portal.url, "--output", str(route))
    assert code == 0, out
    text = route.read_text()
    for secret in ("not-a-real-password-d5", "not-a-real-app-token-d5", "publisher@example.gov"):
        assert secret not in text and secret not in out
    assert "${SOCRATA_PASSWORD}" in text and "${SOCRATA_APP_TOKEN}" in text
    assert "SOCRATA_APP_TOKEN" in out and "appToken" in out
    assert 'rename: {"Closure ID": closure_id}' in text and "mode: delete" in text
    assert "# DataSync: logDatasetID dslg-2024" in text and "logDatasetID" in out  # not carried over, said so
    output = validate_and_run(route, "--set", "SOCRATA_APP_TOKEN=any-token")
    assert "not-a-real" not in output
    # RC-2023-999 is not there: DataSync ignores a delete miss, and so does the route
    assert [r["closure_id"] for r in portal.rows(ff)] == ["RC-2024-015", "RC-2024-016"]


def test_offline_conversion_finds_timestamps_in_the_data(tmp_path):
    shutil.copytree(FIXTURES / "permits-replace", tmp_path / "job")
    route = tmp_path / "permits.yaml"
    code, out = convert(str(tmp_path / "job" / "permits.sij"), "--offline", "--output", str(route))
    assert code == 0, out
    text = route.read_text()
    assert 'domain: "${SOCRATA_DOMAIN}"' in text and "SOCRATA_DOMAIN" in out
    assert "inspected_at: {type: datetime" in text and "REVIEW" in text
    assert "fee:" not in text.split("cast:")[1].split("targets:")[0]  # numbers are not dates


def test_an_old_binary_job_file_says_what_to_do(tmp_path):
    job = tmp_path / "honolulu.sij"
    job.write_bytes(b"\xac\xed\x00\x05sr\x00#com.socrata.datasync.IntegrationJob" + bytes(range(20)))
    code, out = convert(str(job), "--offline", "--output", str(tmp_path / "r.yaml"))
    assert code == 2
    assert str(job) in out and "DataSync 0.1" in out and "save it" in out
    assert not (tmp_path / "r.yaml").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such DataSync job file"),
        ("{not json", "not valid JSON"),
        (
            '{"datasetID": "abcd-1234", "fileToPublish": "x.csv", "publishMethd": "upsert"}',
            "did you mean 'publishMethod'",
        ),
        ('{"datasetID": "abcd-1234", "fileToPublish": "x.csv", "publishMethod": "merge"}', "'merge' is not one of"),
        ('{"fileToPublish": "x.csv", "publishMethod": "upsert"}', "names no dataset"),
        ('{"datasetID": "Permits", "fileToPublish": "x.csv", "publishMethod": "upsert"}', "is not a dataset id"),
        ('{"sourceSiteDomain": "https://a.gov", "sourceSetID": "abcd-1234", "portMethod": "copy_all"}', "port job"),
        ("[1, 2]", "a JSON object"),
    ],
)
def test_a_job_file_that_cannot_be_read_is_one_message_naming_it(tmp_path, content, message):
    job = tmp_path / "job.sij"
    if content is not None:
        job.write_text(content, encoding="utf-8")
    code, out = convert(str(job), "--offline", "--output", str(tmp_path / "r.yaml"))
    assert code == 2, out
    assert out.count("\n") == 1 and str(job) in out and message in out


def test_an_unknown_control_key_names_the_control_file(tmp_path):
    control = tmp_path / "control.json"
    control.write_text('{"action": "Upsert", "csv": {"separator": ",", "trimWhitespce": true}}', encoding="utf-8")
    job = tmp_path / "job.sij"
    job.write_text('{"datasetID": "abcd-1234", "fileToPublish": "x.csv", "publishMethod": "upsert"}', encoding="utf-8")
    code, out = convert(str(job), "--control", str(control), "--offline", "--output", str(tmp_path / "r.yaml"))
    assert code == 2
    assert str(control) in out and "unknown key 'trimWhitespce'" in out and "trimWhitespace" in out


def test_a_soda2_job_without_header_reads_the_dataset_columns_in_order(tmp_path, portal):
    ff = portal.create(CLOSURES, row_identifier="closure_id", name="Road closures")
    (tmp_path / "closures.csv").write_text("RC-1,Route 9\nRC-2,Main St\n", encoding="utf-8")
    job = tmp_path / "closures.sij"
    job.write_text(
        json.dumps(
            {
                "datasetID": ff,
                "fileToPublish": "closures.csv",
                "publishMethod": "upsert",
                "fileToPublishHasHeaderRow": False,
            }
        ),
        encoding="utf-8",
    )
    route = tmp_path / "closures.yaml"
    code, out = convert(str(job), "--domain", portal.url, "--output", str(route))
    assert code == 0, out
    assert "names: [closure_id, road]" in route.read_text()
    validate_and_run(route)
    assert portal.rows(ff) == [{"closure_id": "RC-1", "road": "Route 9"}, {"closure_id": "RC-2", "road": "Main St"}]
    code, out = convert(str(job), "--offline", "--output", str(tmp_path / "offline.yaml"))
    assert code == 2 and "no header row" in out and str(job) in out


def test_column_overrides_give_a_column_its_own_format_and_zone(tmp_path):
    (tmp_path / "x.csv").write_text("id,seen,noted\n1,2024.03.05 17:00,x\n", encoding="utf-8")
    control = tmp_path / "control.json"
    control.write_text(
        json.dumps(
            {
                "action": "Upsert",
                "csv": {
                    "timezone": "UTC",
                    "floatingTimestampFormat": "ISO8601",
                    "overrides": {"seen": {"timestampFormat": ["yyyy.MM.dd HH:mm"], "timezone": "US/Pacific"}},
                },
            }
        ),
        encoding="utf-8",
    )
    job = tmp_path / "x.sij"
    job.write_text('{"datasetID": "abcd-1234", "fileToPublish": "x.csv", "publishMethod": "upsert"}', encoding="utf-8")
    code, out = convert(str(job), "--control", str(control), "--offline", "--output", str(tmp_path / "x.yaml"))
    assert code == 0, out
    text = (tmp_path / "x.yaml").read_text()
    assert 'seen: {type: datetime, formats: ["%Y.%m.%d %H:%M"], timezone: US/Pacific}' in text
    assert "noted:" not in text


@pytest.mark.parametrize(
    "joda, strptime",
    [
        ("MM/dd/yyyy", "%m/%d/%Y"),
        ("dd-MMM-yy", "%d-%b-%y"),
        ("yyyy-MM-dd'T'HH:mm:ssZ", "%Y-%m-%dT%H:%M:%S%z"),
        ("EEEE, MMMM d, yyyy h:mm a", "%A, %B %d, %Y %I:%M %p"),
        ("HH:mm:ss.SSS", None),  # fractions of a second: no strptime directive the cast reads
        ("yyyy-MM-dd z", None),  # zone names are output-only in Joda too
    ],
)
def test_joda_formats_become_strptime_formats(joda, strptime):
    from pipeline.commands.datasync.timestamps import strptime_format

    assert strptime_format(joda) == strptime
