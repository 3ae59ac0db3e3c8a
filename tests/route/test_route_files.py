"""Folder commands find route files at any depth, and say which YAML files they skipped (issue 13)."""

from __future__ import annotations

from pathlib import Path

from pipeline.route.files import find_route_files

REPO = Path(__file__).resolve().parents[2]
ROUTE = (
    "name: {name}\nsource:\n  csv: {{path: d.csv}}\ntargets:\n  - name: out\n    deliver: {{csv: {{path: o.csv}}}}\n"
)


def test_a_folder_is_searched_at_any_depth_skipping_state_tests_and_non_routes(tmp_path):
    for rel in ("a.yaml", "deep/er/b.yml", ".route/hidden.yaml", "c.tests/case/case.yaml"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ROUTE.format(name=path.stem))
    (tmp_path / "defaults.yaml").write_text("state: .route\n")
    files = find_route_files([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.yaml", "deep/er/b.yml"]


def test_the_commands_of_the_readme_work_on_the_repository_routes_folder(route_cli):
    result = route_cli(
        "validate",
        str(REPO / "routes"),
        "--set",
        "SOCRATA_APP_TOKEN=x",
        "--set",
        "SOCRATA_USERNAME=x",
        "--set",
        "SOCRATA_PASSWORD=x",
    )
    assert "no route files" not in result.output
    for name in ("payroll.yaml", "permits.yaml", "sales.yaml", "cases-append.yaml", "sales-port.yaml"):
        assert f"{name}: ok" in result.stdout, result.output
    status = route_cli("status", "--json", str(REPO / "routes"))
    assert status.exit_code == 0, status.output
    assert "payroll" in status.stdout and "cases-upsert" in status.stdout
