"""End-to-end cases kept as folders under tests/cases/, run by the `route test` machinery.

Each folder holds a route (`NAME.yaml`) and its cases (`NAME.tests/CASE/` with case.yaml, inputs/ and
expected/), as docs/testing-routes.md describes: the rows each target would receive, the rejects,
the unrouted rows, or the message a failing run gives. A new end-to-end check of that shape is a
new case folder, not a new Python function; `route test --update` writes its expected files, to be
checked by hand before they are committed.

Every case runs here exactly as `route test` runs it (the case's own `set:`, no --set), one pytest
id per case; the command itself runs over the whole tree once, and a case with a wrong expected
value must fail, naming the row and the column.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.basics.plugins import Registry
from pipeline.commands.test import find_cases, run_case

CASES = Path(__file__).resolve().parents[1] / "cases"
FOUND = [(route, folder) for route, folders in find_cases((str(CASES),)) for folder in folders]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover()


@pytest.mark.parametrize("route, folder", FOUND, ids=[f"{route.stem}/{folder.name}" for route, folder in FOUND])
def test_case(registry, route, folder):
    outcome = run_case(route, folder, sets={}, registry=registry, update=False)
    assert outcome.status == "ok", f"{route.relative_to(CASES)} {folder.name}:\n" + "\n".join(outcome.lines)


def test_every_case_has_a_description():
    missing = [f"{f.relative_to(CASES)}" for _, f in FOUND if "description:" not in _case_yaml(f)]
    assert not missing, "cases without a description in case.yaml: " + ", ".join(missing)


def _case_yaml(folder: Path) -> str:
    path = folder / "case.yaml"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def test_route_test_passes_on_the_whole_tree(route_cli):
    """The command users run: every route under tests/cases/, its cases listed, exit code 0."""
    result = route_cli("test", str(CASES))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == f"{len(FOUND)} cases: {len(FOUND)} passed"
    assert sum(line.startswith("  ok ") for line in lines) == len(FOUND)
    assert "Traceback" not in result.output


def test_a_wrong_expected_value_fails_naming_the_row_and_the_column(route_cli, registry, tmp_path):
    shutil.copytree(CASES / "text-family", tmp_path / "text-family")
    route = tmp_path / "text-family" / "text-family.yaml"
    folder = tmp_path / "text-family" / "text-family.tests" / "awkward-text"
    expected = folder / "expected" / "out.jsonl"
    text = expected.read_text(encoding="utf-8")
    assert text.count('"phone":"2035550199"') == 1
    expected.write_text(text.replace('"phone":"2035550199"', '"phone":"2035550198"'), encoding="utf-8")

    outcome = run_case(route, folder, sets={}, registry=registry, update=False)
    assert (outcome.status, outcome.lines) == (
        "FAIL",
        [
            "target out (expected/out.jsonl):",
            "  row 2 (source line 4): phone: expected '2035550198', got '2035550199'",
        ],
    )
    result = route_cli("test", str(route))
    assert result.exit_code == 1, result.output
    assert result.stdout.endswith("1 case: 0 passed, 1 failed\n")
    assert "row 2 (source line 4): phone: expected '2035550198', got '2035550199'" in result.stdout
