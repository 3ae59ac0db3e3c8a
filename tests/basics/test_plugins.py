"""Plugins: found by entry point (a real installed example package) or by dotted path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import read_jsonl

from pipeline.basics.plugins import Registry, rule

ROOT = Path(__file__).resolve().parents[2]


def test_installed_plugin_is_listed_with_its_distribution(example_plugin_installed, route_cli):
    result = route_cli("rules")
    line = next(l for l in result.stdout.splitlines() if l.strip().startswith("fix_town"))
    assert "[route-rules-example]" in line
    shown = route_cli("rules", "fix_town").stdout
    assert "fix_town: {column: town, unknown: reject" in shown  # the docstring's YAML example


def test_installed_plugin_runs_by_name(example_plugin_installed, route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: towns
        source:
          csv: {path: data.csv}
        source_transforms:
          - fix_town: {column: town, unknown: reject, towns: [Hartford, West Hartford]}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": "town\n hartford\nW HARTFORD\nGotham\n"},
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out.jsonl") == [{"town": "Hartford"}, {"town": "West Hartford"}]
    assert "1 row rejected" in result.stdout


def test_plugin_options_are_checked_against_its_schema(example_plugin_installed, route_cli, write_route):
    path = write_route(
        """
        name: towns
        source:
          csv: {path: data.csv}
        source_transforms:
          - fix_town: {column: town, unknown: drop}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": "town\nx\n"},
    )
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:5:39: source_transforms[0].fix_town.unknown: 'drop' is not one of: keep, reject"
    )


def _validate_with_module(route_cli, write_route, tmp_path, module: str, code: str):
    """`route validate` of a route using `<module>:fix`, with the module importable from tmp_path."""
    (tmp_path / f"{module}.py").write_text(code)
    sys.path.insert(0, str(tmp_path))
    try:
        path = write_route(
            f"""
            name: plugin
            source:
              csv: {{path: data.csv}}
            source_transforms:
              - {module}:fix: {{}}
            targets:
              - name: out
                deliver: {{jsonl: {{path: out.jsonl}}}}
        """,
            **{"data.csv": "a\n1\n"},
        )
        return path, route_cli("validate", str(path))
    finally:
        sys.path.remove(str(tmp_path))


def test_dotted_path_plugin_that_fails_to_import_is_reported_at_its_line(route_cli, write_route, tmp_path):
    path, result = _validate_with_module(
        route_cli, write_route, tmp_path, "broken_rules", "import not_a_module_anywhere\n"
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:5:5: source_transforms[0].broken_rules:fix: rule 'broken_rules:fix' cannot be used: "
        "cannot import 'broken_rules': ModuleNotFoundError: No module named 'not_a_module_anywhere'"
    )


def test_unmarked_function_is_refused(route_cli, write_route, tmp_path):
    _, result = _validate_with_module(
        route_cli, write_route, tmp_path, "plain_rules", "def fix(chunk, options, ctx):\n    return chunk\n"
    )
    assert result.exit_code == 2
    assert "is not marked as a route component: decorate it with pipeline.api.rule(...)" in result.stderr


def test_a_registry_can_be_built_empty():
    @rule({"type": "object"})
    def noop(chunk, options, ctx):
        return chunk

    registry = Registry()
    assert registry.names("rules") == []
    registry.add("rules", "noop", noop)
    assert registry.names("rules") == ["noop"] and registry.load("rules", "noop") is noop


def test_installed_source_plugin_runs_by_name_with_the_installed_rule(
    example_plugin_installed, route_cli, write_route, tmp_path
):
    path = write_route(
        """
        name: towns
        chunk_rows: 2
        source:
          fixed_width:
            path: towns.txt
            skip_rows: 1
            fields: {code: 4, town: 12, population: 7}
        source_transforms:
          - fix_town: {column: town}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{
            "towns.txt": "COD TOWN        POPULAT\n"
            "001 hartford     121054\n"
            "002 W HARTFORD    64083\n"
            "\n"
            "003 NEW HAVEN   134023 and more\n"
            "004 ansonia\n"
        },
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"code": "001", "town": "Hartford", "population": "121054"},
        {"code": "002", "town": "West Hartford", "population": "64083"},
        {"code": "004", "town": "Ansonia", "population": None},
    ]
    assert "1 row rejected" in result.stdout


def test_installed_source_plugin_options_are_checked_at_their_line(example_plugin_installed, route_cli, write_route):
    path = write_route("""
        name: towns
        source:
          fixed_width: {path: towns.txt, fields: {code: 0}}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """)
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{path}:3:49: source.fixed_width.fields.code: 0 is less than the minimum of 1"
