"""`route history` as a new user reads it (issue 13): rows delivered per target, never summed over
targets; rows read as the source's line says; errors cut at a word with "…"; and a route found by
its name from anywhere in the project, or every route under the current folder."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

ROUTE = """\
name: {name}
source:
  csv: {{path: data.csv}}
targets:
  - name: portal
    deliver: {{csv: {{path: out/portal.csv}}}}
  - name: archive
    deliver: {{jsonl: {{path: out/archive.jsonl}}}}
"""
# 8 records, 2 of them ragged (rejected by the source itself)
RAGGED = "id,name\n1,a\n2,b,extra\n3,c\n4\n5,e\n6,f\n7,g\n8,h\n"


def make_route(folder: Path, name: str, data: str = "id,name\n1,a\n2,b\n3,c\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text(data)
    path = folder / f"{name}.yaml"
    path.write_text(ROUTE.format(name=name))
    return path


def history_rows(text: str) -> list[list[str]]:
    """The table's lines after its header, split on runs of two spaces or more."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert re.split(r"\s{2,}", lines[0]) == [
        "run",
        "route",
        "started",
        "status",
        "read",
        "rejected",
        "delivered",
        "error",
    ]
    return [re.split(r"\s{2,}", line) for line in lines[1:]]


def test_delivered_rows_are_shown_per_target_and_read_agrees_with_the_source_line(route_cli, tmp_path):
    path = make_route(tmp_path, "ragged", RAGGED)
    run = route_cli("execute", str(path))
    assert run.exit_code == 0, run.output
    assert "(8 rows read at " in run.stdout.splitlines()[0]
    assert re.search(r"^source\s+csv\s+3\s+8\s+6\s+2\s+0", run.stdout, flags=re.MULTILINE), run.stdout
    history = route_cli("history", str(path))
    assert history.exit_code == 0, history.output
    [row] = history_rows(history.stdout)
    assert row[1:3] == ["ragged", row[2]] and row[3:7] == ["success", "8", "2", "portal 6, archive 6"]
    assert "12" not in row  # never the sum over the two targets
    [run_json] = json.loads(route_cli("history", str(path), "--json").stdout)
    assert run_json["records_read"] == 8
    assert [(t["name"], t["delivered"]) for t in run_json["targets"]] == [("portal", 6), ("archive", 6)]


def test_a_long_error_is_cut_at_a_word_with_an_ellipsis(route_cli, tmp_path):
    folder = tmp_path / "a-folder-with-a-rather-long-name-so-that-the-error-runs-past-the-column"
    path = make_route(folder, "broken")
    (folder / "data.csv").unlink()
    assert route_cli("execute", str(path)).exit_code == 1
    full = json.loads(route_cli("history", str(path), "--json").stdout)[0]["error"]
    assert full.startswith(f"{path}:3: source 'csv': csv source: file not found: data.csv (looked in {folder}")
    [row] = history_rows(route_cli("history", str(path)).stdout)
    shown = row[-1]
    # the route is on the row: its file is named without the folder, and the rest cut after a word
    assert shown.startswith("broken.yaml:3: source 'csv': csv source: file not found: data.csv (looked"), shown
    assert shown.endswith("…") and len(shown) <= 80, shown
    cut = shown[:-1]
    rest = full.replace(str(path), path.name, 1)
    assert rest.startswith(cut) and not rest[len(cut)].isalnum(), (cut, rest)  # a whole word, then "…"


def test_a_route_name_is_found_from_anywhere_in_the_project(route_cli, tmp_path):
    project = tmp_path / "project"
    payroll = make_route(project / "routes" / "payroll", "payroll")
    make_route(project / "routes" / "permits", "permits")
    (project / "routes" / "defaults.yaml").write_text("logs: {keep: 5}\n")
    assert route_cli("execute", str(payroll)).exit_code == 0
    for cwd in (project, project / "routes", project / "routes" / "payroll"):
        result = route_cli("history", "payroll", cwd=cwd)
        assert result.exit_code == 0, (cwd, result.output)
        [row] = history_rows(result.stdout)
        assert row[1] == "payroll" and row[3] == "success", (cwd, row)
    as_json = json.loads(route_cli("history", "payroll", "--json", cwd=project).stdout)
    assert [r["route"] for r in as_json] == ["payroll"]
    # a name no route file under the folder has: where it looked, and why nothing was found
    missing = route_cli("history", "payrol", cwd=project)
    assert missing.exit_code == 0
    assert missing.stdout.strip() == (
        f"no runs of payrol recorded in {project / '.route'} (no route file under {project} is named 'payrol')"
    )


def test_without_a_name_every_route_under_the_folder_is_listed(route_cli, tmp_path):
    first = make_route(tmp_path / "a", "first")
    second = make_route(tmp_path / "b" / "deeper", "second")
    (tmp_path / "b" / "alerts.yaml").write_text("notify:\n  - webhook: {url: 'https://example.org'}\n")
    nothing = route_cli("history", cwd=tmp_path)
    assert nothing.stdout == f"no runs recorded for the 2 routes under {tmp_path}\n"
    for path in (first, second, first):
        assert route_cli("execute", str(path)).exit_code == 0
    result = route_cli("history", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    rows = history_rows(result.stdout)
    assert [r[1] for r in rows] == ["first", "second", "first"]  # newest first, across state folders
    assert all(r[6] == "portal 3, archive 3" for r in rows)
    assert result.stderr == ""  # the skipped alerts.yaml is none of history's business
    limited = history_rows(route_cli("history", "--limit", "2", cwd=tmp_path).stdout)
    assert [r[1] for r in limited] == ["first", "second"]


def test_the_same_name_in_two_folders_says_which_files(route_cli, tmp_path):
    one = make_route(tmp_path / "one", "payroll")
    two = make_route(tmp_path / "two", "payroll")
    result = route_cli("history", "payroll", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == textwrap.dedent(
        f"""\
        error: several route files under {tmp_path} are named 'payroll': {one.relative_to(tmp_path)}, \
{two.relative_to(tmp_path)}; name the one you mean: route history {one.relative_to(tmp_path)}"""
    )
    assert "Traceback" not in result.output
