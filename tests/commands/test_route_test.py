"""`route test`: cases beside a route, compared with expected files; --update; nothing delivered."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.commands import test as routetest

EXAMPLE = Path(__file__).resolve().parents[2] / "routes" / "payroll"


def route_test(*args: str, cwd: Path | None = None):
    """`route test ARGS` as a user runs it; (exit code, what they see)."""
    old = os.getcwd()
    if cwd:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(routetest.test_command, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture
def payroll(tmp_path) -> Path:
    """A copy of the example route with its test cases (never the example itself)."""
    shutil.copytree(EXAMPLE, tmp_path / "payroll", ignore=shutil.ignore_patterns(".route", "out"))
    return tmp_path / "payroll"


def test_the_example_passes(payroll):
    code, out = route_test(str(payroll / "payroll.yaml"))
    assert code == 0, out
    assert "  ok       basic\n" in out and "  ok       fiscal-year\n" in out
    assert out.endswith("2 cases: 2 passed\n")


def test_the_example_passes_from_its_folder_and_delivers_nothing(payroll):
    code, out = route_test(".", cwd=payroll)
    assert code == 0, out
    assert not (payroll / "out").exists() and not (payroll / ".route").exists()


def test_one_changed_value_fails_with_a_diff_naming_row_column_and_values(payroll):
    expected = payroll / "payroll.tests/basic/expected/published.csv"
    expected.write_text(expected.read_text().replace("2980.1,2024", "2980.2,2024"))
    code, out = route_test(str(payroll / "payroll.yaml"))
    assert code == 1
    assert out.splitlines()[1:5] == [
        "  FAIL     basic",
        "           target published (expected/published.csv):",
        "             row 2 (source line 3): gross: expected '2980.2', got '2980.1'",
        "  ok       fiscal-year",
    ]
    assert out.endswith("2 cases: 1 passed, 1 failed\n")


def test_missing_extra_and_renamed_columns_and_rows_are_named(payroll):
    expected = payroll / "payroll.tests/basic/expected/archive.csv"
    lines = expected.read_text().splitlines()
    lines[0] = lines[0].replace("fiscal_year", "fy")
    del lines[3]  # the third row (O'Brien, source line 4)
    expected.write_text("\n".join(lines) + "\n")
    code, out = route_test(str(payroll / "payroll.tests/basic"))
    assert code == 1
    assert "target archive (expected/archive.csv):\n" in out
    assert "columns: missing fy; unexpected fiscal_year\n" in out
    assert "rows: expected 4, got 5\n" in out
    assert "unexpected row 3 (source line 4): employee_id='00019', name=\"O'Brien, Pat\"" in out


def test_update_rewrites_only_what_differs_and_then_passes(payroll):
    case = payroll / "payroll.tests/basic/expected"
    published = case / "published.csv"
    good = published.read_text()
    published.write_text(good.replace("3050.75", "3050.70"))
    archive_before = (case / "archive.csv").read_text()
    (case / "rejects.csv").unlink()
    code, out = route_test("--update", str(payroll / "payroll.yaml"))
    assert code == 0, out
    assert "  updated  basic: wrote expected/published.csv, wrote expected/rejects.csv\n" in out
    assert published.read_text() == good
    assert (case / "archive.csv").read_text() == archive_before
    assert route_test(str(payroll / "payroll.yaml"))[0] == 0


def test_update_writes_the_expected_files_of_a_new_case(payroll):
    new = payroll / "payroll.tests/new/inputs"
    new.mkdir(parents=True)
    (new / "payroll.csv").write_text(
        "EMP_ID,Name,Department,Pay Date,Gross,Town,ZIP\n00042,Ann,Audit,09/01/2024,1.50,Hartford,06103\n"
    )
    code, out = route_test(str(payroll / "payroll.tests/new"))
    assert code == 1
    assert "target published: no expected file; create expected/published.csv (`route test --update` writes it)" in out
    code, out = route_test("--update", str(payroll / "payroll.tests/new"))
    assert code == 0, out
    assert (payroll / "payroll.tests/new/expected/published.csv").read_text() == (
        "employee_id,name,department,pay_date,gross,fiscal_year,town,zip\n"
        "00042,Ann,Audit,2024-09-01,1.5,2025,Hartford,06103\n"
    )
    assert not (payroll / "payroll.tests/new/expected/rejects.csv").exists()


def test_values_compare_in_canonical_form(payroll):
    """3105.00 is the number 3105; dates may be written with a time of midnight in JSONL."""
    case = payroll / "payroll.tests/basic/expected"
    text = (case / "published.csv").read_text().replace(",3105,", ",3105.00,")
    (case / "published.csv").write_text(text)
    (case / "archive.csv").unlink()
    (case / "archive.jsonl").write_text(
        textwrap.dedent("""\
        {"employee_id": "00017", "name": "Ada Lovelace", "department": "Revenue Services", "pay_date": "2024-06-14", "gross": 3210.55, "town": "Hartford", "zip": "06103", "fiscal_year": 2024, "payment_id": "00017-2024-06-14"}
        {"employee_id": "00018", "name": "Grace Hopper", "department": "Transportation", "pay_date": "2024-06-28", "gross": 2980.10, "town": "New Haven", "zip": "06510", "fiscal_year": 2024.0, "payment_id": "00018-2024-06-28"}
        {"employee_id": "00019", "name": "O'Brien, Pat", "department": "Public Health", "pay_date": "2024-07-12", "gross": 3105, "town": "Bridgeport", "zip": "06604", "fiscal_year": "2025", "payment_id": "00019-2024-07-12"}
        {"employee_id": "00022", "name": "Dorothy Vaughan", "department": "Public Health", "pay_date": "2024-08-09", "gross": null, "town": "Waterbury", "zip": "06702", "fiscal_year": 2025, "payment_id": "00022-2024-08-09"}
        {"employee_id": "00023", "name": "Edsger Dijkstra", "department": "Energy & Environment", "pay_date": "2024-08-23", "gross": 3050.75, "town": "Norwalk", "zip": "06850", "fiscal_year": 2025, "payment_id": "00023-2024-08-23"}
    """)
    )
    code, out = route_test(str(payroll / "payroll.tests/basic"))
    assert code == 0, out
    # in JSONL a null is not an empty text
    (case / "archive.jsonl").write_text((case / "archive.jsonl").read_text().replace('"gross": null', '"gross": ""'))
    code, out = route_test(str(payroll / "payroll.tests/basic"))
    assert code == 1
    assert "row 4 (source line 7): gross: expected '', got null" in out


def test_unexpected_rejects_are_listed(payroll):
    (payroll / "payroll.tests/basic/expected/rejects.csv").unlink()
    code, out = route_test(str(payroll / "payroll.tests/basic"))
    assert code == 1
    assert "rejects: 1 row, but there is no expected/rejects.csv (absent means none)" in out
    assert "value='13/09/2024'" in out


def test_a_rejects_file_compares_only_the_columns_it_has(payroll):
    (payroll / "payroll.tests/basic/expected/rejects.csv").write_text("line,column\n6,pay_date\n")
    assert route_test(str(payroll / "payroll.tests/basic"))[0] == 0
    (payroll / "payroll.tests/basic/expected/rejects.csv").write_text("line,colour\n6,pay_date\n")
    code, out = route_test(str(payroll / "payroll.tests/basic"))
    assert code == 2
    assert "rejects.csv: unknown column 'colour'" in out


def test_an_expected_failure(payroll):
    case = payroll / "payroll.tests/broken"
    (case / "inputs").mkdir(parents=True)
    (case / "inputs/payroll.csv").write_text("a,b\n1,2\n")
    code, out = route_test(str(case))
    assert code == 1
    line = (payroll / "payroll.yaml").read_text().splitlines().index(
        '  - rename: {EMP_ID: employee_id, Name: name, Department: department, "Pay Date": pay_date,'
    ) + 1
    assert f"the run failed: payroll.yaml:{line}: rule 'rename': rename: no column 'EMP_ID' in the data" in out
    (case / "expected").mkdir()
    (case / "expected/error.txt").write_text("no column 'EMP_ID'\n")
    assert route_test(str(case))[0] == 0


def test_routing_and_unrouted_rows_are_compared(write_route, tmp_path):
    route = write_route(
        """
        name: split
        source:
          csv: {path: "${DATA_DIR}/today.csv"}
        targets:
          - name: north
            when: "region == 'N'"
            deliver: {csv: {path: out/north.csv}}
          - name: south
            when: "region == 'S'"
            deliver:
              pipeline.deliveries.socrata:SocrataDelivery: {domain: "https://data.example.gov", dataset: abcd-1234, mode: upsert,
                        auth: {username: "${PORTAL_USER}", password: "${PORTAL_PASSWORD}"}}
    """,
        **{
            "route.tests/one/inputs/today.csv": "id,region\n1,N\n2,S\n3,E\n4,N\n",
            "route.tests/one/expected/north.csv": "id,region\n1,N\n4,N\n",
            "route.tests/one/expected/south.jsonl": '{"id": "2", "region": "S"}\n',
            "route.tests/one/expected/unrouted.csv": "id,region\n3,E\n",
        },
    )
    code, out = route_test(str(route))
    # the portal is never contacted, and its unset credentials (like the source's folder) do not matter
    assert code == 0, out
    (tmp_path / "route.tests/one/expected/unrouted.csv").unlink()
    code, out = route_test(str(route))
    assert code == 1
    assert "unrouted rows: 1 row, but there is no expected/unrouted.csv (absent means none)" in out
    assert not (tmp_path / "out").exists()


def test_case_yaml_sets_variables_and_replaces_the_source(write_route, tmp_path):
    route = write_route(
        """
        name: vars
        source:
          pipeline.sources.sql:SqlSource: {url: "postgresql://nobody@127.0.0.1:1/none", query: "select 1"}
        source_transforms:
          - filter: "amount >= ${MIN}"
        targets:
          - name: out
            deliver: {jsonl: {path: out/rows.jsonl}}
    """,
        **{
            "route.tests/min/case.yaml": """
            set: {MIN: "10"}
            source:
              csv: {path: inputs/rows.tsv, delimiter: "\\t"}
            """,
            "route.tests/min/inputs/rows.tsv": "id\tamount\n1\t5\n2\t15\n",
            "route.tests/min/expected/out.csv": "id,amount\n2,15\n",
        },
    )
    code, out = route_test(str(route))
    assert code == 0, out


def test_a_variable_a_rule_uses_must_be_set(write_route):
    route = write_route(
        """
        name: needs
        source:
          csv: {path: data.csv}
        source_transforms:
          - filter: "amount >= ${MIN}"
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"route.tests/a/inputs/data.csv": "amount\n1\n"},
    )
    code, out = route_test(str(route))
    assert code == 2
    assert f"{route}:5:24: source_transforms[0].filter: variable ${{MIN}} is not set" in out
    code, out = route_test("--set", "MIN=0", "--update", str(route))
    assert code == 0, out


def test_invalid_cases_and_paths_exit_2(write_route, tmp_path):
    route = write_route(
        """
        name: inv
        source:
          csv: {path: data.csv}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{
            "route.tests/a/case.yaml": "sorce: {}\n",
            "route.tests/b/expected/typo.csv": "x\n1\n",
            "route.tests/b/inputs/data.csv": "x\n1\n",
        },
    )
    code, out = route_test(str(route))
    assert code == 2
    assert f"{tmp_path}/route.tests/a/case.yaml:1:1: sorce: unknown key 'sorce'" in out
    assert (
        "typo.csv: not an expected file of this route; name it <target>.csv or <target>.jsonl for a target (out)" in out
    )
    assert out.endswith("2 cases: 0 passed, 2 invalid\n")
    code, out = route_test(str(tmp_path / "nothing.yaml"))
    assert code == 2 and "nothing.yaml: no such file or folder" in out
    (tmp_path / "lonely.yaml").write_text("name: lonely\n")
    code, out = route_test(str(tmp_path / "lonely.yaml"))
    assert code == 2 and "lonely.yaml: no test cases; create" in out
    assert "Traceback" not in out


def test_integers_beyond_a_float_compare_exactly(route_cli, tmp_path):
    """2**53 + 1 and 2**63 - 1 are whole numbers a float cannot hold: expected files still match them."""
    (tmp_path / "big.yaml").write_text(
        "name: big\nsource: {csv: {path: ids.csv}}\nsource_transforms:\n  - cast: {id: integer}\n"
        "targets:\n  - name: out\n    deliver: {jsonl: {path: out.jsonl}}\n"
    )
    case = tmp_path / "big.tests" / "huge"
    (case / "inputs").mkdir(parents=True)
    (case / "expected").mkdir()
    (case / "inputs" / "ids.csv").write_text("id\n9007199254740993\n9223372036854775807\n")
    (case / "expected" / "out.csv").write_text("id\n9007199254740993\n9223372036854775807\n")
    result = route_cli("test", str(tmp_path / "big.yaml"))
    assert result.exit_code == 0, result.output
    (case / "expected" / "out.csv").write_text("id\n9007199254740992\n9223372036854775807\n")
    result = route_cli("test", str(tmp_path / "big.yaml"))
    assert result.exit_code == 1
    assert "id: expected '9007199254740992', got '9007199254740993'" in result.stdout
