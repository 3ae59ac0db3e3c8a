"""Columns checked before the run: a misspelt column anywhere in a route is named by `route validate`
(and by `route execute` before a row is read) at its file, line and column, with the nearest name."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import read_jsonl

DATA = "id,facility,result,town,amount,inspected\n1,Cafe,Pass,Hartford,10,2024-01-02\n"

TEN_TYPOS = """\
name: typos
source: {csv: {path: data.csv}}
source_transforms:
  - rename: {facilty: facility_name}
  - trim: [facilty]
  - cast: {amout: number}
  - filter: "reslt == 'Pass'"
  - derive: {total: "amount * 2 + amont"}
  - lookup: {column: twn, table: {values: {a: b}}}
  - select: [id, facility, result, town, amount, total, inspected, extra]
targets:
  - name: out
    when: "towne == 'Hartford'"
    target_transforms:
      - drop: [inspectd]
      - upper: [resul]
    deliver: {csv: {path: out.csv}}
"""

COLUMNS = "(columns here: id, facility, result, town, amount, inspected)"
AFTER_DERIVE = "(columns here: id, facility, result, town, amount, inspected, total)"
AFTER_SELECT = "(columns here: id, facility, result, town, amount, total, inspected, extra)"
EXPECTED = [
    f"4:14: source_transforms[0].rename.facilty: unknown column 'facilty'; did you mean 'facility'? {COLUMNS}",
    f"5:12: source_transforms[1].trim[0]: unknown column 'facilty'; did you mean 'facility'? {COLUMNS}",
    f"6:12: source_transforms[2].cast.amout: unknown column 'amout'; did you mean 'amount'? {COLUMNS}",
    f"7:14: source_transforms[3].filter: unknown column 'reslt'; did you mean 'result'? {COLUMNS}",
    f"8:35: source_transforms[4].derive.total: unknown column 'amont'; did you mean 'amount'? {COLUMNS}",
    f"9:22: source_transforms[5].lookup.column: unknown column 'twn'; did you mean 'town'? {AFTER_DERIVE}",
    f"10:68: source_transforms[6].select[7]: unknown column 'extra' {AFTER_DERIVE}",
    f"13:12: targets[0].when: unknown column 'towne'; did you mean 'town'? {AFTER_SELECT}",
    f"15:16: targets[0].target_transforms[0].drop[0]: unknown column 'inspectd'; did you mean 'inspected'? {AFTER_SELECT}",
    f"16:17: targets[0].target_transforms[1].upper[0]: unknown column 'resul'; did you mean 'result'? {AFTER_SELECT}",
]


def errors(result, path) -> list[str]:
    return [line.removeprefix(f"{path}:") for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("command", ["validate", "execute"])
def test_ten_misspelt_columns_give_ten_errors_at_their_place_before_any_row_is_read(
    route_cli, write_route, tmp_path, command
):
    path = write_route(TEN_TYPOS, **{"data.csv": DATA})
    result = route_cli(command, str(path))
    assert result.exit_code == 2, result.output
    assert errors(result, path) == EXPECTED
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / ".route" / "rejects").exists()
    assert "no runs" in route_cli("history", str(path)).stdout  # nothing ran


def test_a_route_whose_columns_are_right_is_ok(route_cli, write_route):
    path = write_route(
        """\
        name: fine
        source: {csv: {path: data.csv}}
        source_transforms:
          - rename: {facility: facility_name}
          - derive: {twice: "amount * 2", label: "concat(facility_name, ' ', twice)"}
          - regex_extract: {column: inspected, pattern: '^(?P<year>\\d{4})-(?P<month>\\d{2})'}
          - unpivot: {columns: [year, month], name: part, value: number}
        targets:
          - name: out
            when: "part == 'year' and town is not null"
            target_transforms:
              - select: [id, facility_name, label, part, number]
            deliver: {jsonl: {path: out.jsonl}}
        """,
        **{"data.csv": "id,facility,result,town,amount,inspected\n1,Cafe,Pass,Hartford,10,2024-01-02\n"},
    )
    result = route_cli("validate", str(path))
    assert result.exit_code == 0, result.output
    assert route_cli("execute", str(path)).exit_code == 0
    assert read_jsonl(path.parent / "out.jsonl") == [
        {"id": "1", "facility_name": "Cafe", "label": "Cafe 20", "part": "year", "number": "2024"}
    ]


def test_a_column_a_rule_drops_is_unknown_after_it(route_cli, write_route):
    path = write_route(
        """\
        name: dropped
        source: {csv: {path: data.csv}}
        source_transforms:
          - drop: [town]
          - upper: [town]
        targets:
          - name: out
            deliver: {csv: {path: out.csv}}
        """,
        **{"data.csv": "id,town\n1,Avon\n"},
    )
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    assert errors(result, path) == ["5:13: source_transforms[1].upper[0]: unknown column 'town' (columns here: id)"]


def test_columns_made_from_data_stop_the_check_until_a_select(route_cli, write_route):
    """A pivot without `names` makes a column per value found: what follows cannot be checked, so
    nothing is reported, until a select says the columns again."""
    path = write_route(
        """\
        name: pivoted
        source: {csv: {path: data.csv}}
        source_transforms:
          - pivot: {index: [town], name: year, value: total}
          - upper: ["2024"]
          - select: [town, "2024"]
          - lower: [twn]
        targets:
          - name: out
            deliver: {csv: {path: out.csv}}
        """,
        **{"data.csv": "town,year,total\nAvon,2024,3\n"},
    )
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    assert errors(result, path) == [
        "7:13: source_transforms[3].lower[0]: unknown column 'twn'; did you mean 'town'? (columns here: town, 2024)"
    ]


def test_a_plugin_rule_declares_its_columns_through_the_public_api(example_plugin_installed, route_cli, write_route):
    path = write_route(
        """\
        name: towns
        source: {csv: {path: data.csv}}
        source_transforms:
          - fix_town: {column: twn}
        targets:
          - name: out
            deliver: {csv: {path: out.csv}}
        """,
        **{"data.csv": "id,town\n1,Avon\n"},
    )
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    assert errors(result, path) == [
        "4:24: source_transforms[0].fix_town.column: unknown column 'twn'; did you mean 'town'? (columns here: id, town)"
    ]


def test_a_rule_that_declares_nothing_is_never_a_false_alarm(route_cli, write_route, tmp_path):
    """A rule without a column declaration (an older plugin) may make any column: nothing after it
    is checked, and the route runs."""
    path = write_route(
        """\
        name: undeclared
        source: {csv: {path: data.csv}}
        source_transforms:
          - plugins_for_tests:add_flag: {}
          - upper: [flag]
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
        """,
        **{"data.csv": "id\n1\n"},
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": "1", "flag": "Y"}]


def test_a_missing_source_file_is_a_validation_error_and_a_failed_run(route_cli, write_route):
    path = write_route(
        """\
        name: missing
        source: {csv: {path: dat.csv}}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
        """
    )
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    assert errors(result, path) == [
        f"2:22: source.csv.path: csv source: file not found: dat.csv (looked in {path.parent})"
    ]
    run = route_cli("execute", str(path))  # a file that has not arrived yet is a failed run, as always
    assert run.exit_code == 1
    assert "file not found: dat.csv" in run.stderr


def test_a_database_tables_columns_are_checked_unless_offline(route_cli, write_route, tmp_path):
    with sqlite3.connect(tmp_path / "sales.db") as conn:
        conn.execute("CREATE TABLE sales (id INTEGER, town TEXT, amount REAL)")
    path = write_route(
        """\
        name: sales
        source: {sql: {url: "sqlite:///sales.db", table: sales}}
        source_transforms:
          - upper: [twn]
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
        """
    )
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    assert errors(result, path) == [
        "4:13: source_transforms[0].upper[0]: unknown column 'twn'; did you mean 'town'? (columns here: id, town, amount)"
    ]
    assert route_cli("validate", "--offline", str(path)).exit_code == 0  # no database asked
