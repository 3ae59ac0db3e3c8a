"""Broken routes: one clear `file:line:col: path: message` each, exit code 2, and nothing runs."""

from __future__ import annotations

GOOD_TAIL = """
        targets:
          - name: out
            deliver:
              jsonl: {path: out.jsonl}
"""


def _check(route_cli, path, expected: list[str]):
    result = route_cli("validate", str(path))
    assert result.exit_code == 2, result.output
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert lines == [e.replace("ROUTE", str(path)) for e in expected]
    # execute refuses too, and nothing is written
    result = route_cli("execute", str(path))
    assert result.exit_code == 2
    assert not (path.parent / "out.jsonl").exists()


def test_bad_yaml_points_at_the_line(route_cli, write_route):
    path = write_route("""
        name: t
        source:
          csv: {path: data.csv
        targets: []
    """)
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{path}:4:8: invalid YAML: while parsing a flow mapping (opened on line 3, "
        "column 8), expected ',' or '}', but got ':'"
    )


def test_unknown_rule_gets_a_suggestion(route_cli, write_route):
    path = write_route(
        """
        name: t
        source:
          csv: {path: data.csv}
        source_transforms:
          - trimm: [town]
    """
        + GOOD_TAIL
    )
    _check(
        route_cli,
        path,
        [
            "ROUTE:5:5: source_transforms[0].trimm: unknown rule 'trimm'; did you mean 'trim'? (`route rules` lists the rules)"
        ],
    )


def test_unknown_key_gets_a_suggestion(route_cli, write_route):
    path = write_route(
        """
        name: t
        sorce:
          csv: {path: data.csv}
    """
        + GOOD_TAIL
    )
    _check(
        route_cli,
        path,
        [
            "ROUTE:1:1: missing required key 'source'",
            "ROUTE:2:1: sorce: unknown key 'sorce'; did you mean 'source'?",
        ],
    )


def test_wrong_option_type(route_cli, write_route):
    path = write_route(
        """
        name: t
        chunk_rows: many
        source:
          csv: {path: data.csv}
    """
        + GOOD_TAIL
    )
    _check(route_cli, path, ["ROUTE:2:13: chunk_rows: expected a whole number, got 'many'"])


def test_missing_variable_names_it_and_its_line(route_cli, write_route):
    path = write_route(
        """
        name: t
        source:
          csv: {path: "${DATA_DIR}/data.csv"}
    """
        + GOOD_TAIL
    )
    _check(
        route_cli,
        path,
        [
            "ROUTE:3:16: source.csv.path: variable ${DATA_DIR} is not set: export DATA_DIR=... or pass --set DATA_DIR=..."
        ],
    )


def test_set_provides_a_variable(route_cli, write_route):
    path = write_route(
        """
        name: t
        source:
          csv: {path: "${DATA_DIR}/data.csv"}
    """
        + GOOD_TAIL,
        **{"somewhere__data.csv": "id\n1\n"},
    )
    result = route_cli("validate", str(path), "--set", "DATA_DIR=somewhere")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{path}: ok"


def test_duplicate_keys_name_both_lines(route_cli, write_route):
    path = write_route(
        """
        name: t
        source:
          csv: {path: data.csv}
        name: u
    """
        + GOOD_TAIL
    )
    _check(route_cli, path, ["ROUTE:4:1: name: duplicate key 'name': first defined on line 1; keep one of them"])


def test_every_problem_is_reported_at_once_sorted(route_cli, write_route):
    path = write_route("""
        name: t
        source:
          csvv: {path: data.csv}
        source_transforms:
          - uppr: [a]
        targets:
          - name: out
            deliver:
              jsonl: {path: out.jsonl, colour: red}
    """)
    _check(
        route_cli,
        path,
        [
            "ROUTE:3:3: source.csvv: unknown source 'csvv'; did you mean 'csv'?",
            "ROUTE:5:5: source_transforms[0].uppr: unknown rule 'uppr'; did you mean 'upper'? (`route rules` lists the rules)",
            "ROUTE:9:32: targets[0].deliver.jsonl.colour: unknown key 'colour' (known keys: path, encoding, max_shrink, allow_empty)",
        ],
    )


def test_a_rule_step_with_two_keys(route_cli, write_route):
    path = write_route(
        """
        name: t
        source:
          csv: {path: data.csv}
        source_transforms:
          - trim: [a]
            upper: [b]
    """
        + GOOD_TAIL
    )
    _check(
        route_cli,
        path,
        [
            "ROUTE:6:5: source_transforms[0].upper: a rule is a one-key mapping, but this one has 2 keys (trim, upper); "
            "start a new list item with '-' for each rule"
        ],
    )


def test_missing_route_file(route_cli, tmp_path):
    result = route_cli("execute", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{tmp_path / 'nope.yaml'}:1:1: file not found"


def test_unknown_command_option_is_exit_2(route_cli, tmp_path):
    result = route_cli("execute", "--colour", "x.yaml")
    assert result.exit_code == 2
    assert "No such option '--colour'" in result.stderr


def test_dunder_and_unknown_function_in_expressions_are_refused(route_cli, write_route):
    path = write_route("""
        name: t
        source:
          csv: {path: data.csv}
        source_transforms:
          - filter: "__class__ == 1"
          - derive: {x: "open('/etc/passwd')"}
        targets:
          - name: out
            when: "town.__class__ is null"
            deliver:
              jsonl: {path: out.jsonl}
    """)
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{path}:5:14: source_transforms[0].filter: ")
    assert "__class__" in lines[0]
    assert lines[1].startswith(f"{path}:6:18: source_transforms[1].derive.x: unknown function 'open'")
    assert lines[2].startswith(f"{path}:9:16: targets[0].when: '.' is not allowed")
