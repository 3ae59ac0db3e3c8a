"""End-to-end runs of routes through `route execute`: rows, rejects, routing, failures, history."""

from __future__ import annotations

import json

from conftest import read_csv_rows, read_jsonl

DATA = """\
id,town,amount,when
1, Hartford ,10.5,2024-01-05
2,New Haven,-3,2024-02-10
3,Stamford,abc,2024-03-15
4,Hartford,7,2024-04-20
5,,2,2024-05-25
"""


def test_rows_flow_through_rules_to_two_targets(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: flow
        source:
          csv: {path: data.csv}
        source_transforms:
          - trim: [town]
          - cast: {id: integer, amount: number, when: date}
          - derive: {big: "amount > 5"}
        targets:
          - name: hartford
            when: "town == 'Hartford'"
            deliver:
              jsonl: {path: out/hartford.jsonl}
          - name: rest
            when: "town != 'Hartford'"
            target_transforms:
              - select: [id, town]
            deliver:
              csv: {path: out/rest.csv}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out/hartford.jsonl") == [
        {"id": 1, "town": "Hartford", "amount": 10.5, "when": "2024-01-05", "big": True},
        {"id": 4, "town": "Hartford", "amount": 7.0, "when": "2024-04-20", "big": True},
    ]
    assert read_csv_rows(tmp_path / "out/rest.csv") == [{"id": "2", "town": "New Haven"}]
    # row 3 rejected by cast (line 4 of the file); row 5 has a null town: matches no target
    rejects = next((tmp_path / ".route/rejects").glob("flow-*.csv"))
    rows = read_csv_rows(rejects)
    assert [(r["step"], r["column"], r["value"], r["line"]) for r in rows] == [("cast", "amount", "abc", "4")]
    assert "1 row matched no target" in result.stdout
    assert "1 row rejected" in result.stdout


def test_json_report_counts(route_cli, write_route):
    path = write_route(
        """
        name: counts
        source:
          csv: {path: data.csv}
        source_transforms:
          - cast: {amount: number}
          - filter: "amount > 0"
        targets:
          - name: out
            deliver:
              jsonl: {path: out.jsonl}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", "--json", str(path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "success"
    assert report["rows_read"] == 5 and report["rows_rejected"] == 1 and report["rows_delivered"] == 3
    steps = {s["step"]: s for s in report["steps"]}
    assert (steps["cast"]["rows_in"], steps["cast"]["rejected"], steps["cast"]["rows_out"]) == (5, 1, 4)
    assert (steps["filter"]["rows_in"], steps["filter"]["dropped"], steps["filter"]["rows_out"]) == (4, 1, 3)


def test_limit_reads_only_the_first_rows(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: lim
        source:
          csv: {path: data.csv}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", "--limit", "2", str(path))
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["1", "2"]


def test_small_chunks_give_the_same_rows(route_cli, write_route, tmp_path):
    rows = "".join(f"{i},town{i % 7},{i}\n" for i in range(1, 1001))
    path = write_route(
        """
        name: chunks
        chunk_rows: 64
        source:
          csv: {path: data.csv}
        source_transforms:
          - tests_count_chunks_placeholder
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """.replace("          - tests_count_chunks_placeholder", "          - plugins_for_tests:count_chunks: {}"),
        **{"data.csv": "id,town,n\n" + rows},
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in out] == [str(i) for i in range(1, 1001)]
    assert out[-1]["chunk_no"] == str((1000 + 63) // 64)


def test_a_failing_step_names_route_line_and_rows_and_keeps_the_old_file(route_cli, write_route, tmp_path):
    (tmp_path / "out.jsonl").write_text('{"old": true}\n')
    path = write_route(
        """
        name: boom
        source:
          csv: {path: data.csv}
        source_transforms:
          - plugins_for_tests:explode: {at_line: 4}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 1
    assert (
        f"{path}:5: rule 'plugins_for_tests:explode' failed (rows at lines 2-6 of data.csv): "
        "ZeroDivisionError: division by zero" in result.stderr
    )
    assert "Traceback" not in result.output
    assert (tmp_path / "out.jsonl").read_text() == '{"old": true}\n'
    assert not list(tmp_path.glob(".out.jsonl.*"))


def test_too_many_rejects_fails_the_run_and_delivers_nothing(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: strict
        source:
          csv: {path: data.csv}
        source_transforms:
          - cast: {amount: integer}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
        on_error:
          max_rejects: 1
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 1
    assert "2 rows were rejected, more than on_error.max_rejects allows (1)" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_a_refused_commit_is_not_success(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: refused
        source:
          csv: {path: data.csv}
        targets:
          - name: file
            deliver: {jsonl: {path: out.jsonl}}
          - name: portal
            deliver:
              plugins_for_tests:Refusing: {}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", "--json", str(path))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    # Remote targets commit first; once one has failed, no local file is replaced.
    assert report["status"] == "failed"
    assert [(t["name"], t["status"]) for t in report["targets"]] == [("file", "untouched"), ("portal", "failed")]
    assert "the portal refused the commit (403)" in report["error"]
    assert not (tmp_path / "out.jsonl").exists()


def test_history_records_runs(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: hist
        source:
          csv: {path: data.csv}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": DATA},
    )
    assert route_cli("execute", str(path)).exit_code == 0
    (tmp_path / "data.csv").unlink()
    assert route_cli("execute", str(path)).exit_code == 1
    result = route_cli("history", str(path), "--json")
    runs = json.loads(result.stdout)
    assert [r["status"] for r in runs] == ["failed", "success"]
    assert runs[1]["rows_read"] == 5 and runs[1]["rows_delivered"] == 5
    assert "data.csv" in runs[0]["error"]
    result = route_cli("history", str(path), "--status", "success", "--json")
    assert len(json.loads(result.stdout)) == 1


def test_dry_run_writes_nothing(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: dry
        source:
          csv: {path: data.csv}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", "--dry-run", str(path))
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was delivered, and nothing written but the run's line in `route history`" in result.stdout
    assert not (tmp_path / "out.jsonl").exists()
    # the history's own file is all there is in the state folder (tests/engine/test_dry_run.py has more)
    assert {p.name.split("-")[0] for p in (tmp_path / ".route").iterdir()} == {"history.sqlite"}


def test_preview_shows_each_step(route_cli, write_route):
    path = write_route(
        """
        name: prev
        source:
          csv: {path: data.csv}
        source_transforms:
          - label: clean towns
            trim: [town]
          - cast: {amount: number}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("preview", "--rows", "2", str(path))
    assert result.exit_code == 0, result.output
    assert "source_transforms[0] clean towns" in result.stdout
    assert "target out: would deliver (jsonl)" in result.stdout
    assert "Hartford" in result.stdout and "New Haven" in result.stdout


def test_a_run_leaves_the_collector_as_it_found_it(route_cli, write_route):
    # A run freezes the objects made at import out of its full collections; a process that runs
    # routes one after another (the scheduler, the dashboard) must collect what each run left, so
    # every run, good or failed, thaws them again.
    import gc

    path = write_route(
        """
        name: thaw
        source:
          csv: {path: data.csv}
        source_transforms:
          - cast: {id: integer}
        targets:
          - name: out
            deliver:
              csv: {path: out/rows.csv}
        on_error: {max_rejects: 1}
    """,
        **{"data.csv": DATA},
    )
    assert route_cli("execute", str(path)).exit_code == 0  # one row rejected: allowed
    assert gc.get_freeze_count() == 0
    (path.parent / "data.csv").write_text("id\nnot a number\nnor this\n")
    failed = route_cli("execute", str(path))  # two rows rejected: the run fails while it reads
    assert failed.exit_code != 0 and "more than on_error.max_rejects allows (1)" in failed.output
    assert gc.get_freeze_count() == 0
