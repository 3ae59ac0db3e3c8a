"""End to end through `route execute`: the example routes against the embedded local portal, and
failures as a publisher sees them (exit codes, messages, no secrets in output or history)."""

from __future__ import annotations

import re
import shutil
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from portalkit import USER, ServedPortal
from socratakit import CASES

ROUTES = Path(__file__).resolve().parents[2] / "routes"


def registered(group: str, name: str) -> bool:
    return any(ep.name == name for ep in entry_points(group=group))


def spelled(text: str) -> str:
    """Route text with component names that are not (yet) registered spelled as module references."""
    if not registered("route.deliveries", "socrata"):
        text = re.sub(r"^(\s*)socrata:", r"\1pipeline.deliveries.socrata:SocrataDelivery:", text, flags=re.MULTILINE)
    if not registered("route.rules", "point"):
        text = re.sub(r"^(\s*- )point:", r"\1transforms.geo:point:", text, flags=re.MULTILINE)
    return text


@pytest.fixture
def examples(tmp_path):
    folder = tmp_path / "cases"
    shutil.copytree(ROUTES / "cases", folder, ignore=shutil.ignore_patterns(".route"))
    for route in folder.glob("*.yaml"):
        route.write_text(spelled(route.read_text()))
    return folder


def local_rows(folder: Path, name: str) -> list[dict]:
    """The rows of the local portal's dataset `name`, read over SODA as any client would."""
    with ServedPortal(folder / ".route" / "portal.sqlite") as portal:
        ds = next(d for d in portal.local.datasets() if d["name"] == name)
        return portal.rows(ds["id"])


def test_the_case_examples_run_as_they_stand(examples, route_cli):
    upsert = route_cli("execute", str(examples / "cases-upsert.yaml"))
    assert upsert.exit_code == 0, upsert.output
    assert "11" in upsert.output
    rows = local_rows(examples, "Code enforcement cases")
    assert len(rows) == 11 and rows[0]["case_id"] == "CE-1001"
    assert rows[0]["location"] == {"type": "Point", "coordinates": [-72.6851, 41.7637]}
    assert rows[0]["opened"] == "2024-01-05T09:30:00.000" and rows[0]["closed"] is False
    rejects = next((examples / ".route" / "rejects").glob("cases-upsert-*.csv")).read_text()
    assert "not known" in rejects and ",13," in rejects

    again = route_cli("execute", str(examples / "cases-upsert.yaml"))
    assert again.exit_code == upsert.exit_code
    assert len(local_rows(examples, "Code enforcement cases")) == 11

    delete = route_cli("execute", str(examples / "cases-delete.yaml"))
    assert delete.exit_code == 0, delete.output
    ids = [r["case_id"] for r in local_rows(examples, "Code enforcement cases")]
    assert ids == ["CE-1001", "CE-1003", "CE-1004", "CE-1006", "CE-1007", "CE-1009", "CE-1010"]

    replace = route_cli("execute", str(examples / "cases-replace.yaml"))
    assert replace.exit_code == 0, replace.output
    assert len(local_rows(examples, "Open code enforcement cases")) == 7

    for _ in range(2):
        append = route_cli("execute", str(examples / "cases-append.yaml"))
        assert append.exit_code == 0, append.output
    events = local_rows(examples, "Code enforcement case events")
    assert len(events) == 12 and events[0]["happened_at"] == "2024-01-05T14:30:00.000Z"


def test_dry_run_prints_what_would_happen(examples, route_cli):
    dry = route_cli("execute", "--dry-run", str(examples / "cases-upsert.yaml"))
    # the plan's row for the target: rows, create, update, delete, reject, and what it would do
    assert any(
        line.split()[:7] == ["portal", "socrata", "11", "11", "0", "0", "0"]
        and line.rstrip().endswith('upsert into a new dataset "Code enforcement cases" on the local portal')
        for line in dry.stdout.splitlines()
    ), dry.output
    assert 'portal would create the dataset "Code enforcement cases", row identifier case_id:' in dry.stdout
    assert not (examples / ".route" / "datasets.json").exists()


def test_bad_credentials_fail_with_exit_1_and_no_secret_anywhere(tmp_path, portal, route_cli, monkeypatch):
    wrong = "Wr0ng-pa55word-xyz"
    monkeypatch.setenv("PORTAL_PASSWORD", wrong)
    ds = portal.create(CASES)
    (tmp_path / "rows.csv").write_text("case_id,amount\nC-1,5\n")
    route = tmp_path / "bad.yaml"
    route.write_text(
        spelled(
            textwrap.dedent(f"""\
        name: bad-credentials
        source:
          csv: {{path: rows.csv}}
        targets:
          - name: portal
            deliver:
              socrata:
                domain: {portal.url}
                dataset: {ds}
                mode: upsert
                auth: {{username: {USER}, password: "${{PORTAL_PASSWORD}}"}}
        """)
        )
    )
    result = route_cli("execute", str(route))
    assert result.exit_code == 1
    assert "refused the credentials (HTTP 401)" in result.output
    assert wrong not in result.output
    for f in (tmp_path / ".route").rglob("*"):
        if f.is_file():
            assert wrong.encode() not in f.read_bytes(), f
    history = route_cli("history", str(route))
    assert wrong not in history.output
    assert portal.rows(ds) == []
