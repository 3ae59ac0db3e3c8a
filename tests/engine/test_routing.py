"""Routing: each row goes to every target whose `when` holds; rows matching none are counted and kept."""

from __future__ import annotations

import json

from conftest import read_csv_rows, read_jsonl

# amount: null in row 7 (line 8), negative in rows 3 and 6; towns repeat so conditions overlap.
DATA = """\
id,town,amount
1,Hartford,250
2,Hartford,40
3,Stamford,-5
4,New Haven,120
5,Stamford,10
6,Hartford,-1
7,Hartford,
8,Norwalk,0
"""

THREE_TARGETS = """
    name: three
    chunk_rows: 3
    source:
      csv: {path: data.csv}
    source_transforms:
      - cast: {id: integer, amount: number}
    routing:
      unrouted: out/unrouted.csv
    targets:
      - name: big
        when: "amount >= 100"
        deliver: {jsonl: {path: out/big.jsonl}}
      - name: hartford
        when: "town == 'Hartford'"
        target_transforms:
          - select: [id, amount]
        deliver: {csv: {path: out/hartford.csv}}
      - name: refunds
        when: "amount < 0"
        deliver: {jsonl: {path: out/refunds.jsonl}}
"""


def test_three_targets_get_exactly_the_rows_their_conditions_select(route_cli, write_route, tmp_path):
    path = write_route(THREE_TARGETS, **{"data.csv": DATA})
    result = route_cli("execute", "--json", str(path))
    assert result.exit_code == 0, result.output
    # big: amount >= 100 (rows 1 and 4); a null amount is not >= 100
    assert read_jsonl(tmp_path / "out/big.jsonl") == [
        {"id": 1, "town": "Hartford", "amount": 250.0},
        {"id": 4, "town": "New Haven", "amount": 120.0},
    ]
    # hartford overlaps big (row 1) and refunds (row 6), and takes the null-amount row 7
    assert read_csv_rows(tmp_path / "out/hartford.csv") == [
        {"id": "1", "amount": "250"},
        {"id": "2", "amount": "40"},
        {"id": "6", "amount": "-1"},
        {"id": "7", "amount": ""},
    ]
    assert [r["id"] for r in read_jsonl(tmp_path / "out/refunds.jsonl")] == [3, 6]
    # rows 5 (Stamford, 10) and 8 (Norwalk, 0) match no target
    assert read_csv_rows(tmp_path / "out/unrouted.csv") == [
        {"id": "5", "town": "Stamford", "amount": "10"},
        {"id": "8", "town": "Norwalk", "amount": "0"},
    ]
    report = json.loads(result.stdout)
    assert report["rows_read"] == 8 and report["rows_unrouted"] == 2
    assert report["unrouted_file"] == str(tmp_path / "out/unrouted.csv")
    routed = {t["name"]: (t["routed"], t["delivered"]) for t in report["targets"]}
    assert routed == {"big": (2, 2), "hartford": (4, 4), "refunds": (2, 2)}


def test_summary_says_how_many_rows_matched_no_target(route_cli, write_route):
    path = write_route(THREE_TARGETS, **{"data.csv": DATA})
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    assert "2 rows matched no target" in result.stdout


def test_a_target_without_when_takes_every_row_so_nothing_is_unrouted(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: all
        source:
          csv: {path: data.csv}
        routing:
          unrouted: out/unrouted.csv
        targets:
          - name: nothing
            when: "town == 'Nowhere'"
            deliver: {jsonl: {path: out/nothing.jsonl}}
          - name: everything
            deliver: {jsonl: {path: out/all.jsonl}}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", "--json", str(path))
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(tmp_path / "out/all.jsonl")] == [str(i) for i in range(1, 9)]
    assert read_jsonl(tmp_path / "out/nothing.jsonl") == []
    report = json.loads(result.stdout)
    assert report["rows_unrouted"] == 0 and report["unrouted_file"] == ""
    assert not (tmp_path / "out/unrouted.csv").exists()


def test_unrouted_rows_are_counted_even_without_a_file(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: counted
        source:
          csv: {path: data.csv}
        targets:
          - name: hartford
            when: "town == 'Hartford'"
            deliver: {jsonl: {path: out/h.jsonl}}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", "--json", str(path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rows_unrouted"] == 4 and report["unrouted_file"] == ""


def test_an_unrouted_file_from_an_earlier_run_does_not_outlive_it(route_cli, write_route, tmp_path):
    path = write_route(THREE_TARGETS, **{"data.csv": DATA})
    assert route_cli("execute", str(path)).exit_code == 0
    assert (tmp_path / "out/unrouted.csv").exists()
    (tmp_path / "data.csv").write_text("id,town,amount\n1,Hartford,5\n")
    result = route_cli("execute", "--force", str(path))  # far fewer rows: past the replace guard
    assert result.exit_code == 0, result.output
    assert "matched no target" not in result.stdout
    assert not (tmp_path / "out/unrouted.csv").exists()


def test_a_dry_run_writes_no_unrouted_file(route_cli, write_route, tmp_path):
    path = write_route(THREE_TARGETS, **{"data.csv": DATA})
    result = route_cli("execute", "--dry-run", "--json", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows_unrouted"] == 2
    assert not (tmp_path / "out").exists()


def test_a_when_on_an_unknown_column_is_an_error_naming_the_line(route_cli, write_route):
    path = write_route(
        """
        name: badwhen
        source:
          csv: {path: data.csv}
        targets:
          - name: x
            when: "tonw == 'Hartford'"
            deliver: {jsonl: {path: out/x.jsonl}}
    """,
        **{"data.csv": DATA},
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 2  # caught from the CSV header, before a row is read
    assert f"{path}:6:12: targets[0].when: unknown column 'tonw'; did you mean 'town'?" in result.stderr
    assert "Traceback" not in result.output


def test_preview_shows_each_targets_own_rows(route_cli, write_route):
    path = write_route(THREE_TARGETS, **{"data.csv": DATA})
    result = route_cli("preview", "--rows", "20", str(path))
    assert result.exit_code == 0, result.output
    sections = _sections(result.stdout)
    assert set(sections) >= {"big", "hartford", "refunds"}
    assert _ids(sections["big"]) == ["1", "4"]
    assert _ids(sections["hartford"]) == ["1", "2", "6", "7"]
    assert _ids(sections["refunds"]) == ["3", "6"]
    # the hartford target's select shows only its own columns
    assert "town" not in sections["hartford"] and "town" in sections["big"]


def _sections(text: str) -> dict[str, str]:
    """The tables `route preview` prints under `target NAME: would deliver (...)`, by target."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("target ") and ": would deliver" in line:
            current = line.split()[1].rstrip(":")
            out[current] = ""
        elif line and not line[0].isspace() and line[0].isalpha():
            current = None
        elif current:
            out[current] += line + "\n"
    return out


def _ids(table: str) -> list[str]:
    """The first data cell (after the line number) of each row of a rich table."""
    ids = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) > 1 and cells[0].isdigit():
            ids.append(cells[1])
    return ids
