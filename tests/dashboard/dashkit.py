"""Fixtures of the dashboard tests: a project of real routes with real history (run with `route execute`), and a dashboard on it.

- payroll: the example route (routes/payroll), one row rejected for its date, delivered
- broken: 120 rows, every one rejected (two reasons), so the run fails and the route is failing
- slow: waits in its rule until the test creates the file `go` (to be seen running), then delivers
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import run_route_cli

from pipeline.ops.dashboard.app import Dashboard, DashboardServer
from pipeline.ops.dashboard.state import DashboardState

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"

BROKEN = """\
name: broken
schedule: "0 6 * * *"
source:
  csv: {path: broken.csv}
source_transforms:
  - cast: {n: integer, d: date}
targets:
  - name: out
    deliver:
      csv: {path: out/broken.csv}
"""

SLOW = """\
name: slow
source:
  csv: {{path: slow.csv}}
source_transforms:
  - unattended_plugins:record: {{wait_for: "{go}", started: "{started}"}}
targets:
  - name: archive
    deliver:
      csv: {{path: out/slow.csv}}
"""


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(
        ROOT / "routes" / "payroll", root / "payroll", ignore=shutil.ignore_patterns(".route", "out", "*.tests")
    )
    (root / "broken").mkdir()
    lines = ["n,d"] + [f"x{i},2024-01-01" if i % 2 else f"{i},not-a-date-{i}" for i in range(120)]
    (root / "broken" / "broken.csv").write_text("\n".join(lines) + "\n")
    (root / "broken" / "broken.yaml").write_text(BROKEN)
    (root / "slow").mkdir()
    (root / "slow" / "slow.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    (root / "slow" / "slow.yaml").write_text(SLOW.format(go=root / "slow" / "go", started=root / "slow" / "started"))
    assert run_route_cli("execute", "-q", str(root / "payroll" / "payroll.yaml")).exit_code == 0
    assert run_route_cli("execute", "-q", str(root / "broken" / "broken.yaml")).exit_code == 1
    return root


@pytest.fixture
def dashboard(project):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    with DashboardServer(Dashboard(DashboardState([project], variables=env)), "127.0.0.1", 0) as server:
        yield server
