"""Every example route in routes/ validates, and the ones on the embedded defaults run as they stand."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "routes").glob("*/*.yaml"))
CREDENTIALS = [
    "--set",
    "SOCRATA_USERNAME=u",
    "--set",
    "SOCRATA_PASSWORD=p",
    "--set",
    "SOCRATA_KEY_ID=k",
    "--set",
    "SOCRATA_KEY_SECRET=s",
    "--set",
    "SOCRATA_APP_TOKEN=t",
    "--set",
    "CT_PERMITS_DATASET=abcd-1234",
]
RUNNABLE = ["payroll/payroll.yaml", "cases/cases-upsert.yaml", "permits-xlsx/permits.yaml", "sales-sqlite/sales.yaml"]


@pytest.mark.parametrize("route", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_validates(route_cli, route):
    result = route_cli("validate", str(route), *CREDENTIALS)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("route", RUNNABLE)
def test_example_runs_as_it_stands(route_cli, route, tmp_path):
    folder = ROOT / "routes" / route.split("/")[0]
    copy = tmp_path / folder.name
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".route", "out"))
    result = route_cli("execute", str(copy / route.split("/")[1]))
    assert result.exit_code == 0, result.output
    assert "success" in result.stdout
