"""Acceptance: broken routes and broken data give one clear message each, the right exit code, and
no traceback, whether run in-process or as the real `route` command.

tests/route/test_route_errors.py has the basic cases (bad YAML, unknown rule or key, chunk_rows of the
wrong type, missing ${VAR}, duplicate keys, dunder names); this file adds the rest a publisher
meets: wrong option types inside rules and sources, expression syntax, unknown columns at run time.
A run that fails on its data (a missing file or folder, a glob matching nothing, another encoding,
an unclosed quote) is a `route test` case with expected/error.txt in tests/cases/, run by
test_cases.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROUTE = Path(sys.executable).parent / "route"
TAIL = """
        targets:
          - name: out
            deliver:
              jsonl: {path: out.jsonl}
"""
DATA = b"id,town,amount\n1,Hartford,10\n2,New Haven,20\n"
DATA_JSONL = b'{"id": "1", "town": "Hartford", "amount": "10"}\n{"id": "2", "town": "New Haven", "amount": "20"}\n'


def invalid(route_cli, path: Path, expected: list[str], history: bool = True) -> None:
    """validate and execute both print exactly `expected` (ROUTE = the file) and exit 2; nothing runs."""
    for command in ("validate", "execute"):
        result = route_cli(command, str(path))
        assert result.exit_code == 2, result.output
        assert [l for l in result.stderr.splitlines() if l.strip()] == [
            e.replace("ROUTE", str(path)) for e in expected
        ], command
        assert "Traceback" not in result.output
    assert not (path.parent / "out.jsonl").exists()
    if history:  # nothing ran, so nothing is recorded
        result = route_cli("history", str(path), "--json")
        assert (result.exit_code, json.loads(result.stdout or "null")) == (0, []), result.output


def failed(route_cli, path: Path, expected: str) -> None:
    """execute exits 1 with exactly one error line, `expected` (ROUTE = the file); the last good
    output is still there."""
    out = path.parent / "out.jsonl"
    out.write_text('{"last": "good"}\n')
    result = route_cli("execute", str(path))
    assert result.exit_code == 1, result.output
    errors = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert errors == ["error: " + expected.replace("ROUTE", str(path))]
    assert "Traceback" not in result.output
    assert out.read_text() == '{"last": "good"}\n'


# -- the route is invalid: exit 2, file:line:col ----------------------------------------------------


def test_wrong_option_types_inside_sources_rules_and_deliveries(route_cli, write_route):
    path = write_route("""
        name: t
        source:
          csv: {path: data.csv, header_row: first}
        source_transforms:
          - cast: {id: integr}
          - trim: 5
          - fill: [a]
          - filter: 5
          - rename: {a: [b]}
        targets:
          - name: out
            deliver:
              jsonl: {path: out.jsonl, encoding: 8}
    """)
    invalid(
        route_cli,
        path,
        [
            "ROUTE:3:37: source.csv.header_row: expected a whole number, got 'first'",
            "ROUTE:5:16: source_transforms[0].cast.id: 'integr' is not one of: text, integer, number, boolean, date, "
            "datetime; did you mean 'integer'?",
            "ROUTE:6:11: source_transforms[1].trim: expected a text or a list, got 5",
            "ROUTE:7:11: source_transforms[2].fill: expected a mapping, got a list",
            "ROUTE:8:13: source_transforms[3].filter: expected a text, got 5",
            "ROUTE:9:17: source_transforms[4].rename.a: expected a text, got a list",
            "ROUTE:13:42: targets[0].deliver.jsonl.encoding: expected a text, got 8",
        ],
    )


def test_source_options_that_contradict_each_other(route_cli, write_route):
    path = write_route(
        """
        name: t
        source:
          csv: {path: data.csv, delimiter: ";;", encoding: utf-9}
    """
        + TAIL
    )
    invalid(
        route_cli,
        path,
        [
            "ROUTE:3:36: source.csv.delimiter: delimiter must be one character (or tab, comma, semicolon, pipe, space), "
            "not ';;'",
        ],
    )
    path = write_route(
        """
        name: t
        source:
          csv: {path: data.csv, encoding: utf-9, names: [a, b]}
    """
        + TAIL
    )
    invalid(
        route_cli,
        path,
        [
            "ROUTE:3:35: source.csv.encoding: unknown encoding 'utf-9'; use a Python codec name such as utf-8, cp1252, "
            "latin-1 or utf-16",
        ],
    )


@pytest.mark.parametrize(
    "expression, col, message",
    [
        ("id >> 2", 18, "expected a value (a column, a literal or a function call) but found '>'"),
        ("upper(town", 24, "expected ')' to close the '(' at column 6 but found the end of the expression"),
        ("concat(town, )", 27, "expected a value (a column, a literal or a function call) but found ')'"),
        ("'unterminated", 14, "text starting here is not closed: add the closing '"),
        ("town in ('a', 'b')", 22, "expected a list like [1, 2] after 'in' but found '('"),
        ("id = 1", 17, "'=' is not an operator here: use '==' to compare values"),
        ("id is nul", 20, "expected 'null' after 'is' but found 'nul'; compare values with == or !="),
        ("if(id > 1, 'a')", 14, "if() takes 3 arguments, not 2: if(condition, a, b)"),
        (
            "matches(town, '(')",
            28,
            "the second argument of matches() is not a valid regular expression (RE2 syntax): missing ): (",
        ),
        ("id == 1; import os", 21, "unexpected character ';'"),
        (
            "__import__('os').system('ls')",
            14,
            "names starting with '__' are not allowed ('__import__'); a column with "
            "this name must be written in backticks: `__import__`",
        ),
        (
            "town.__class__",
            18,
            "'.' is not allowed: expressions have no attribute access; write a column whose name "
            "holds a dot in backticks, like `a.b`",
        ),
        (
            "__class__",
            14,
            "names starting with '__' are not allowed ('__class__'); a column with this name must be "
            "written in backticks: `__class__`",
        ),
        (
            "eval('1')",
            14,
            "unknown function 'eval'; the functions are: abs, ceil, coalesce, concat, contains, day, "
            "endswith, floor, hour, if, length, lower, ltrim, matches, minute, month, nullif, quarter, "
            "replace, round, rtrim, startswith, substr, title, to_date, to_datetime, to_number, to_text, "
            "today, trim, upper, weekday, year",
        ),
        (
            "lambda: 1",
            14,
            "'lambda' is not allowed here: expressions cannot define functions; a column with this name "
            "must be written in backticks: `lambda`",
        ),
    ],
)
def test_bad_expressions_point_at_the_character(route_cli, write_route, expression, col, message):
    quoted = expression.replace('"', '\\"')
    path = write_route(
        f"""
        name: t
        source:
          csv: {{path: data.csv}}
        source_transforms:
          - filter: "{quoted}"
    """
        + TAIL
    )
    invalid(route_cli, path, [f"ROUTE:5:{col}: source_transforms[0].filter: {message}"])


def test_bad_yaml_says_what_to_do(route_cli, write_route, tmp_path):
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("name: t\nsource:\n\tcsv: {path: data.csv}\n")
    invalid(
        route_cli,
        tabs,
        [
            "ROUTE:3:1: invalid YAML: while scanning for the next token, found character '\\t' "
            "that cannot start any token; indent with spaces, not tabs"
        ],
    )
    indent = tmp_path / "indent.yaml"
    indent.write_text("name: t\nsource:\n  csv: {path: data.csv}\n targets: []\n")
    invalid(
        route_cli,
        indent,
        [
            "ROUTE:4:2: invalid YAML: while parsing a block mapping (opened on line 1, column 1), "
            "expected <block end>, but found '<block mapping start>'; check the indentation of "
            "this line against the lines above"
        ],
    )
    quote = tmp_path / "quote.yaml"
    quote.write_text('name: t\nsource:\n  csv: {path: "data.csv}\ntargets: []\n')
    invalid(
        route_cli,
        quote,
        [
            "ROUTE:5:1: invalid YAML: while scanning a quoted scalar (opened on line 3, column 15), "
            "found unexpected end of stream"
        ],
    )


def test_a_missing_variable_in_a_target_names_it_and_its_column(route_cli, write_route):
    path = write_route("""
        name: t
        source:
          csv: {path: data.csv}
        targets:
          - name: out
            deliver:
              jsonl: {path: "out/${RUN_DATE}.jsonl"}
    """)
    invalid(
        route_cli,
        path,
        [
            "ROUTE:7:26: targets[0].deliver.jsonl.path: variable ${RUN_DATE} is not set: "
            "export RUN_DATE=... or pass --set RUN_DATE=..."
        ],
        history=False,
    )


def test_history_of_a_route_whose_output_path_has_an_unset_variable(route_cli, write_route):
    path = write_route("""
        name: t
        source:
          csv: {path: data.csv}
        targets:
          - name: out
            deliver:
              jsonl: {path: "out/${RUN_DATE}.jsonl"}
    """)
    result = route_cli("history", str(path), "--json")
    assert "internal error" not in result.output
    assert (result.exit_code, json.loads(result.stdout or "null")) == (0, [])


# -- the run fails: exit 1, the route line, the file, row or column at fault ------------------------


@pytest.mark.parametrize(
    "step, expected",
    [
        (
            "- rename: {twn: town_name}",
            "ROUTE:5:14: source_transforms[0].rename.twn: unknown column 'twn'; did you mean 'town'? "
            "(columns here: id, town, amount)",
        ),
        (
            "- select: [id, amount, towns]",
            "ROUTE:5:26: source_transforms[0].select[2]: unknown column 'towns'; did you mean 'town'? "
            "(columns here: id, town, amount)",
        ),
        (
            "- cast: {amout: number}",
            "ROUTE:5:12: source_transforms[0].cast.amout: unknown column 'amout'; did you mean 'amount'? "
            "(columns here: id, town, amount)",
        ),
        (
            '- filter: "amout > 5"',
            "ROUTE:5:14: source_transforms[0].filter: unknown column 'amout'; did you mean 'amount'? "
            "(columns here: id, town, amount)",
        ),
    ],
)
def test_an_unknown_column_is_caught_before_a_row_is_read(route_cli, write_route, step, expected):
    """The CSV header gives the columns, so validate and execute both name the misspelt one at
    its line and column, and nothing runs."""
    path = write_route(
        f"""
        name: t
        source:
          csv: {{path: data.csv}}
        source_transforms:
          {step}
    """
        + TAIL,
        **{"data.csv": DATA},
    )
    invalid(route_cli, path, [expected])


@pytest.mark.parametrize(
    "step, line, message",
    [
        (
            "- rename: {twn: town_name}",
            5,
            "rule 'rename': rename: no column 'twn' in the data; did you mean 'town'? (columns: id, town, amount)",
        ),
        (
            "- select: [id, amount, towns]",
            5,
            "rule 'select': select: no column 'towns' in the data; did you mean 'town'? (columns: id, town, amount)",
        ),
        (
            "- cast: {amout: number}",
            5,
            "rule 'cast': cast: no column 'amout' in the data; did you mean 'amount'? (columns: id, town, amount)",
        ),
        (
            '- filter: "amout > 5"',
            5,
            "rule 'filter': \"amout > 5\" at column 1: unknown column 'amout'; did you mean 'amount'?",
        ),
    ],
)
def test_an_unknown_column_at_run_time(route_cli, write_route, step, line, message):
    """A JSON Lines source says its columns only as it reads them: the rule names the missing one."""
    path = write_route(
        f"""
        name: t
        source:
          json: {{path: data.jsonl}}
        source_transforms:
          {step}
    """
        + TAIL,
        **{"data.jsonl": DATA_JSONL},
    )
    failed(route_cli, path, f"ROUTE:{line}: {message}")


def test_a_failed_run_is_in_the_history_with_its_message(route_cli, write_route):
    path = write_route(
        """
        name: hist
        source:
          json: {path: data.jsonl}
        source_transforms:
          - select: [towns]
    """
        + TAIL,
        **{"data.jsonl": DATA_JSONL},
    )
    assert route_cli("execute", str(path)).exit_code == 1
    result = route_cli("history", str(path), "--json")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)
    assert [r["status"] for r in runs] == ["failed"]
    assert "no column 'towns' in the data; did you mean 'town'?" in runs[0]["error"]


# -- the real command: no traceback reaches the terminal --------------------------------------------


def _route(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROUTE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(ROUTE.parent), "HOME": str(cwd), "LANG": "C.UTF-8"},
    )


def test_the_real_command_prints_messages_not_tracebacks(tmp_path):
    (tmp_path / "data.csv").write_bytes("id,town\n1,Montr\xe9al\n".encode("latin-1"))
    (tmp_path / "bad-yaml.yaml").write_text("name: t\nsource:\n  csv: {path: data.csv\n")
    (tmp_path / "dunder.yaml").write_text(
        "name: t\nsource:\n  csv: {path: data.csv}\nsource_transforms:\n"
        '  - filter: "town.__class__ is null"\n  - trimm: [town]\n' + TAIL.replace("        ", "")
    )
    (tmp_path / "encoding.yaml").write_text(
        "name: t\nsource:\n  csv: {path: data.csv}\n" + TAIL.replace("        ", "")
    )

    result = _route("validate", "bad-yaml.yaml", "dunder.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.splitlines() == [
        "bad-yaml.yaml:4:1: invalid YAML: while parsing a flow mapping (opened on line 3, column 8), "
        "expected ',' or '}', but got '<stream end>'",
        "dunder.yaml:5:18: source_transforms[0].filter: '.' is not allowed: expressions have no attribute access; "
        "write a column whose name holds a dot in backticks, like `a.b`",
        "dunder.yaml:6:5: source_transforms[1].trimm: unknown rule 'trimm'; did you mean 'trim'? "
        "(`route rules` lists the rules)",
    ]

    result = _route("execute", "encoding.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.splitlines()[-1] == (
        "error: encoding.yaml:3: source 'csv': data.csv: line 2, byte offset 15 (0xe9) is not valid utf-8; if the "
        "file was saved by Excel or another Windows program, set encoding: cp1252 (or latin-1)"
    )

    result = _route("execute", "--set", "X=1", "missing.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (2, "missing.yaml:1:1: file not found")
