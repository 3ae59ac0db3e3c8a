"""The schema for editors (schemas/route.schema.json, `route schema`): loaded with jsonschema as an
editor would load it, it flags the mistakes `route validate` flags and passes what it passes."""

from __future__ import annotations

import copy
import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from pipeline.basics.plugins import KIND_WORD, KINDS, Registry
from pipeline.commands.schema import schema_command
from pipeline.route.editorschema import MAPPING_DEF, builtin_schema_text, is_builtin
from pipeline.route.files import find_route_files

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schemas" / "route.schema.json"
REGENERATE = "python -m pipeline.commands.schema --builtin --output schemas/route.schema.json"


class EditorLoader(yaml.SafeLoader):
    """YAML 1.2, as yaml-language-server reads a file: only true and false are booleans, so a
    notify target's `on:` is the key "on" (route's own loader reads it either way)."""


EditorLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
EditorLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load(text: str):
    return yaml.load(textwrap.dedent(text), EditorLoader)


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def errors(validator, data) -> list[tuple[str, str]]:
    """(path in the route, message) of every error, as an editor lists them."""
    found = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [("/".join(map(str, e.absolute_path)), e.message) for e in found]


# jsonschema's words for a key that is neither a component's name nor a Python path (VS Code says
# "Property trimm is not allowed.")
UNKNOWN = "'{}' does not match any of the regexes: ':'"

ROUTE = """\
    name: payroll
    source:
      csv: {path: payroll.csv, delimiter: semicolon}
    source_transforms:
      - trim: [department]
      - trim: {columns: all, collapse: true}
      - cast: {gross: number, pay_date: {type: date, formats: ["%m/%d/%Y"]}}
      - filter: "gross >= 0"
      - dedupe: {keys: [id], keep: last}
      - label: towns fixed
        my_agency.rules:fix_town: {column: town}
    targets:
      - name: portal
        when: "gross > 0"
        deliver:
          socrata: {dataset: abcd-1234, mode: upsert, row_identifier: id, auth: {password: "${PASSWORD}"}}
      - name: archive
        deliver: {jsonl: {path: out/payroll.jsonl}}
    notify:
      webhook: {url: "${HOOK_URL}"}
      on: [failure]
    """


def with_change(path: tuple, value) -> dict:
    data = load(ROUTE)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def test_the_committed_schema_is_generated_from_the_builtin_components():
    assert builtin_schema_text() == COMMITTED.read_text(encoding="utf-8"), (
        f"schemas/route.schema.json is out of step with the components' schemas: run `{REGENERATE}`"
    )


def test_a_good_route_with_shorthands_labels_variables_and_python_paths_is_clean(validator):
    assert errors(validator, load(ROUTE)) == []


def test_an_unknown_rule_is_flagged(validator):
    data = with_change(("source_transforms", 0), {"trimm": ["department"]})
    assert errors(validator, data) == [("source_transforms/0", UNKNOWN.format("trimm"))]


def test_an_unknown_option_of_a_known_rule_is_flagged(validator):
    data = with_change(("source_transforms", 1), {"trim": {"columns": "all", "colapse": True}})
    assert errors(validator, data) == [
        ("source_transforms/1/trim", "Additional properties are not allowed ('colapse' was unexpected)")
    ]


def test_a_wrong_option_type_is_flagged(validator):
    data = with_change(("source_transforms", 1), {"trim": {"columns": "all", "collapse": "yes"}})
    assert errors(validator, data) == [("source_transforms/1/trim/collapse", "'yes' is not of type 'boolean'")]
    data = with_change(("source_transforms", 3), {"filter": 12})  # the shorthand takes text
    assert errors(validator, data) == [("source_transforms/3/filter", "12 is not of type 'string'")]
    data = with_change(("targets", 0, "deliver", "socrata", "mode"), "upsrt")
    assert errors(validator, data) == [
        ("targets/0/deliver/socrata/mode", "'upsrt' is not one of ['replace', 'append', 'upsert', 'delete', 'sync']")
    ]


def test_an_unknown_source_or_delivery_is_flagged(validator):
    data = with_change(("source",), {"cvs": {"path": "payroll.csv"}})
    assert errors(validator, data) == [("source", UNKNOWN.format("cvs"))]
    data = with_change(("targets", 1, "deliver"), {"jsonll": {"path": "out/p.jsonl"}})
    assert errors(validator, data) == [("targets/1/deliver", UNKNOWN.format("jsonll"))]
    data = with_change(("source", "csv", "delimter"), ";")
    assert errors(validator, data) == [
        ("source/csv", "Additional properties are not allowed ('delimter' was unexpected)")
    ]


def test_a_rule_left_empty_is_flagged_as_route_validate_flags_it(validator):
    # `- dedupe:` is `dedupe: {keys: null}` (its shorthand): "expected a list, got nothing"
    data = with_change(("source_transforms", 4), {"dedupe": None})
    assert errors(validator, data) == [("source_transforms/4/dedupe", "None is not of type 'array'")]


def test_two_rules_in_one_list_item_are_flagged(validator):
    data = with_change(("source_transforms", 0), {"trim": ["a"], "upper": ["b"]})
    assert errors(validator, data) == [
        ("source_transforms/0", "{'trim': ['a'], 'upper': ['b']} has too many properties")
    ]


def test_the_structure_is_checked_as_before(validator):
    data = load(ROUTE)
    del data["targets"]
    data["on_error"] = {"max_rejects": -1}
    assert [path for path, _ in errors(validator, data)] == ["", "on_error/max_rejects"]


def test_every_builtin_component_appears_with_its_description(schema):
    registry = Registry.discover()
    for kind in KINDS:
        listed = schema["$defs"][MAPPING_DEF[kind]]["properties"]
        builtins = [e.name for e in registry.entries(kind) if is_builtin(e)]
        assert builtins and sorted(set(listed) - {"label"}) == builtins, KIND_WORD[kind]
        for name in builtins:
            doc = registry.load(kind, name).__doc__ or ""
            assert listed[name]["description"] and listed[name]["description"].split()[:3] == doc.split()[:3]
            assert f"{KIND_WORD[kind]}.{name}" in schema["$defs"]
    # the options keep their own descriptions, for hover
    path = schema["$defs"]["source.csv"]["properties"]["path"]
    assert path["description"].startswith("a file, or a glob (data/*.csv); relative to the route file")
    assert "fix_town" not in json.dumps(schema)  # the example plugin is installed, but not built in


def test_the_repository_routes_are_clean(validator):
    routes = find_route_files([ROOT / "routes"])
    assert len(routes) >= 8
    for route in routes:
        assert errors(validator, load(route.read_text(encoding="utf-8"))) == [], route


def doc_examples():
    """Every YAML example in the docs that is a route or part of one, with where it is."""
    for path in sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            where = f"{path.relative_to(ROOT)}:{text[: match.start()].count(chr(10)) + 2}"
            try:
                yield where, yaml.load(match.group(1), EditorLoader)
            except yaml.YAMLError:
                continue  # a sketch with `...` in it, not an example to copy


def test_the_routes_and_route_parts_in_the_docs_are_clean(schema):
    # a part of a route: nothing is required
    partial = copy.deepcopy(schema)
    partial["required"] = []
    partial["$defs"]["target"]["required"] = []
    validator = jsonschema.Draft202012Validator(partial)
    route_keys, target_keys = set(schema["properties"]), set(schema["$defs"]["target"]["properties"])
    checked = 0
    for where, data in doc_examples():
        if isinstance(data, dict) and data and set(data) <= route_keys:
            route = data
        elif isinstance(data, dict) and data and set(data) <= target_keys:
            route = {"targets": [data]}
        elif isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
            route = {"source_transforms": data}
        else:
            continue  # defaults.yaml, a test case
        assert errors(validator, route) == [], where
        checked += 1
    assert checked >= 20


def test_route_schema_prints_the_installed_components_plugins_included(tmp_path):
    result = CliRunner().invoke(schema_command, [], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    installed = json.loads(result.stdout)
    assert "fix_town" in installed["$defs"]["step"]["properties"]  # the example plugin's rule
    assert "fixed_width" in installed["$defs"]["source"]["properties"]
    markdown = installed["$defs"]["step"]["properties"]["fix_town"]["markdownDescription"]
    assert markdown.endswith("_From the route-rules-example package._")
    validator = jsonschema.Draft202012Validator(installed)
    plugin_route = with_change(("source_transforms", 0), {"fix_town": "town"})
    assert errors(validator, plugin_route) == []
    assert errors(validator, with_change(("source_transforms", 0), {"fix_town": {"colum": "town"}})) != []


def test_route_schema_output_writes_the_file(tmp_path):
    out = tmp_path / "editor" / "route.schema.json"
    result = CliRunner().invoke(schema_command, ["--builtin", "--output", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote {out}: route files with ")
    assert out.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")
    assert list(out.parent.iterdir()) == [out]


def test_route_schema_says_when_it_cannot_write(tmp_path):
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "route.schema.json"
    result = CliRunner().invoke(schema_command, ["--output", str(out)], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: --output {out}: cannot write it: ")
    assert "Traceback" not in result.output


def test_a_plugin_component_still_passes_the_run_time_check(route_cli, write_route):
    """The structural schema checked at run time stays open: a plugin's rule is as good as a built-in."""
    route = write_route(
        """
        name: towns
        source: {csv: {path: towns.csv}}
        source_transforms:
          - fix_town: town
        targets:
          - name: out
            deliver: {jsonl: {path: out/towns.jsonl}}
        """,
        **{"towns.csv": "town\nW. Hartford\n"},
    )
    result = route_cli("validate", str(route))
    assert result.exit_code == 0, result.output
