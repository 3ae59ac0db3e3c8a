"""Folder commands skip the YAML files of a folder that are not routes, and say so in one line
(issue 13): a notification config, a stray `case.yaml`, a CI file, YAML with no source or targets
are neither run nor reported as broken routes; a file named on the command line is always a route."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETS = ["--set", "SOCRATA_APP_TOKEN=x", "--set", "SOCRATA_USERNAME=x", "--set", "SOCRATA_PASSWORD=x"]
SETS += ["--set", "CT_PERMITS_DATASET=abcd-1234", "--set", "SOCRATA_KEY_ID=x", "--set", "SOCRATA_KEY_SECRET=x"]
NOT_ROUTES = {
    "notify.yaml": "notify:\n  - webhook: {url: 'https://hooks.example.org/route'}\n    on: [failure]\n",
    "payroll/case.yaml": "description: a case kept beside its route\nsource:\n  csv: {path: inputs/b.csv}\n",
    "ci.yml": "- run: route validate routes/\n",
    "empty.yaml": "",
}
NOTE = (
    "note: skipped 4 YAML files that are not route files: {r}/ci.yml (not a mapping of route settings), "
    "{r}/empty.yaml (empty), {r}/notify.yaml (no source or targets), "
    "{r}/payroll/case.yaml (the options of a `route test` case)"
)


@pytest.fixture
def routes(tmp_path) -> Path:
    """A copy of the repository's routes/ folder (without state or outputs), with YAML that is not a route."""
    shutil.copytree(REPO / "routes", tmp_path / "routes", ignore=shutil.ignore_patterns(".route", "out", "__pycache__"))
    folder = tmp_path / "routes"
    for name, text in NOT_ROUTES.items():
        (folder / name).write_text(text)
    return folder


def test_validate_skips_what_is_not_a_route_with_one_note(route_cli, routes, tmp_path):
    result = route_cli("validate", "routes", *SETS, cwd=tmp_path)
    assert result.stderr.splitlines()[0] == NOTE.format(r="routes")
    for name in ("payroll/payroll.yaml", "cases/cases-upsert.yaml", "sales-sqlite/sales.yaml"):
        assert f"routes/{name}: ok" in result.stdout, result.output
    for name in NOT_ROUTES:
        assert f"routes/{name}:" not in result.output  # neither validated nor reported as broken
    assert result.output.count("note: skipped") == 1


def test_status_and_schedule_list_the_routes_only(route_cli, routes, tmp_path):
    status = route_cli("status", "routes", cwd=tmp_path)
    assert status.exit_code == 0, status.output
    assert status.stderr.strip() == NOTE.format(r="routes")
    names = [line.split()[0] for line in status.stdout.splitlines()[1:-1]]
    assert names == [
        "cases-append",
        "cases-delete",
        "cases-replace",
        "cases-upsert",
        "ct-permits-upsert",
        "ct-sales-port",
        "payroll",
        "permits-xlsx",
        "sales-sqlite",
    ]
    cron = route_cli("schedule", "--print", "cron", "routes", cwd=tmp_path)
    assert cron.exit_code == 0, cron.output
    assert cron.stderr.strip() == NOTE.format(r="routes")
    assert "ct-permits-upsert (routes/ct-data/permits-upsert.yaml)" in cron.stdout
    assert "notify" not in cron.stdout and "case.yaml" not in cron.stdout and "ci.yml" not in cron.stdout


def test_execute_a_folder_runs_its_routes_and_notes_the_rest(route_cli, tmp_path):
    (tmp_path / "data.csv").write_text("id\n1\n2\n")
    (tmp_path / "copy.yaml").write_text(
        "name: copy\nschedule: '* * * * *'\nsource:\n  csv: {path: data.csv}\n"
        "targets:\n  - name: out\n    deliver: {csv: {path: out.csv}}\n"
    )
    (tmp_path / "alerts.yaml").write_text("notify: {webhook: {url: 'https://hooks.example.org'}}\n")
    result = route_cli("execute", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == (
        f"note: skipped a YAML file that is not a route file: {tmp_path / 'alerts.yaml'} (no source or targets)"
    )
    assert [line.strip('"') for line in (tmp_path / "out.csv").read_text().splitlines()] == ["id", "1", "2"]
    # the scheduler skips it too, and says so once
    once = route_cli("schedule", "--once", str(tmp_path))
    assert once.exit_code == 0, once.output
    assert once.stderr.count("note: skipped a YAML file that is not a route file") == 1


def test_a_file_named_on_the_command_line_is_always_a_route(route_cli, tmp_path):
    (tmp_path / "alerts.yaml").write_text("notify: {webhook: {url: 'https://hooks.example.org'}}\n")
    named = route_cli("validate", str(tmp_path / "alerts.yaml"))
    assert named.exit_code == 2
    assert f"{tmp_path / 'alerts.yaml'}:1:1: missing required key" in named.stderr
    folder = route_cli("validate", str(tmp_path))
    assert folder.exit_code == 2
    assert folder.stderr.splitlines() == [
        f"note: skipped a YAML file that is not a route file: {tmp_path / 'alerts.yaml'} (no source or targets)",
        f"error: {tmp_path}: no route files (*.yaml) here",
    ]


def test_a_route_with_a_misspelt_key_is_still_reported(route_cli, tmp_path):
    (tmp_path / "typo.yaml").write_text("name: typo\nsource:\n  csv: {path: d.csv}\ntarget: []\n")
    result = route_cli("validate", str(tmp_path))
    assert result.exit_code == 2
    assert "note:" not in result.stderr
    assert f"{tmp_path / 'typo.yaml'}:4:1: target: unknown key 'target'; did you mean 'targets'?" in result.stderr
