"""`route preview` stops at a failing step and exits as `execute` would (issue 13): 1 when a step
fails at run time, with the steps before it drawn and none after; 2 for a route that does not
check; and it writes nothing, showing its rejected rows instead."""

from __future__ import annotations

DATA = """\
id,town,amount
1, Hartford ,10
2,New Haven,1
3,Stamford,x
"""

FAILS_AT_FILTER = """
name: pv
source:
  csv: {path: data.csv}
source_transforms:
  - trim: [town]
  - filter: "amount > 5"
  - upper: [town]
targets:
  - name: out
    deliver: {jsonl: {path: out.jsonl}}
"""


def test_a_failing_step_ends_the_preview_there_with_exit_1(route_cli, write_route, tmp_path):
    path = write_route(FAILS_AT_FILTER, **{"data.csv": DATA})
    result = route_cli("preview", str(path))
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "source csv (line 3)" in out and "source_transforms[0] trim (line 5)" in out
    assert "Hartford" in out and "Stamford" in out  # the rows the steps before the failure gave
    assert out.rstrip().endswith("source_transforms[1] filter (line 6): failed")
    assert "source_transforms[2] upper" not in out and "would deliver" not in out
    assert result.stderr.startswith(f"error: {path}:6: rule 'filter'")
    assert "column 'amount' holds 'x' (line 4), which is not a number" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / ".route").exists() and not (tmp_path / "out.jsonl").exists()


def test_an_invalid_route_exits_2_and_draws_nothing(route_cli, write_route):
    path = write_route(FAILS_AT_FILTER.replace("upper: [town]", "uper: [town]"), **{"data.csv": DATA})
    result = route_cli("preview", str(path))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert f"{path}:7:5: source_transforms[2].uper: unknown rule 'uper'" in result.stderr
    assert "did you mean 'upper'?" in result.stderr


def test_a_preview_shows_its_rejected_rows_and_writes_no_rejects_file(route_cli, write_route, tmp_path):
    path = write_route(FAILS_AT_FILTER.replace('filter: "amount > 5"', "cast: {amount: number}"), **{"data.csv": DATA})
    result = route_cli("preview", str(path))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "source_transforms[2] upper (line 7)" in out and "HARTFORD" in out
    assert "target out: would deliver (jsonl)" in out
    assert "1 row rejected (a preview writes no rejects file):" in out
    assert any(
        line.split()[:6] == ["4", "data.csv", "cast", "amount", "x", "'x'"]
        and line.rstrip().endswith("is not a number")
        for line in out.splitlines()
    ), out
    assert result.stderr == ""
    assert not (tmp_path / ".route").exists() and not (tmp_path / "out.jsonl").exists()
