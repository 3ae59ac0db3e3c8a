"""`route execute --dry-run` as a new user reads it (issue 13): a plan per target as tables, the
columns of a dataset it would create, the first rejected rows with why, and nothing written but
the run's line in the history; `--json` stays one JSON document."""

from __future__ import annotations

import json
import re
from pathlib import Path

DATA = """\
EMP_ID,Pay Date,Gross
00017,01/15/2024,"1,200.50"
00018,01/15/2024,980
00019,13/45/2024,700
00020,02/15/2024,1500
"""

ROUTE = """
name: payroll
source:
  csv: {path: payroll.csv}
source_transforms:
  - rename: {EMP_ID: employee_id, "Pay Date": pay_date, Gross: gross}
  - cast:
      pay_date: {type: date, formats: ["%m/%d/%Y"]}
      gross: {type: number, thousands: ","}
  - derive: {payment_id: "concat(employee_id, '-', to_text(pay_date))"}
targets:
  - name: portal
    deliver:
      socrata:
        mode: upsert
        row_identifier: payment_id
        create: {name: State payroll}
  - name: archive
    deliver:
      csv: {path: out/payroll.csv}
"""

FILES_ONLY = """
name: files
source:
  csv: {path: payroll.csv}
source_transforms:
  - cast: {Gross: {type: number, thousands: ","}}
targets:
  - name: archive
    deliver:
      csv: {path: out/payroll.csv}
  - name: published
    when: "Gross > 1000"
    deliver:
      jsonl: {path: out/payroll.jsonl}
"""


def row(text: str, *cells: str) -> bool:
    """Does a line of `text` hold these cells, in order, separated by table spacing?"""
    pattern = r"^\s*" + r"\s+".join(re.escape(c) for c in cells) + r"\s*$"
    return re.search(pattern, text, flags=re.MULTILINE) is not None


def state_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_dry_run_prints_a_plan_per_target_and_the_dataset_it_would_create(route_cli, write_route, tmp_path):
    path = write_route(ROUTE, **{"payroll.csv": DATA})
    result = route_cli("execute", "--dry-run", str(path))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "What each target would do (nothing was delivered):" in out
    assert row(out, "target", "delivery", "rows", "create", "update", "delete", "reject", "would")
    assert row(
        out, *"portal socrata 3 3 0 0 0".split(), 'upsert into a new dataset "State payroll" on the local portal'
    )
    assert row(out, *"archive csv 3 - - - 0".split(), f"write 3 rows to {tmp_path / 'out' / 'payroll.csv'}")
    # the dataset `create:` would make, a column per row with its type
    assert 'portal would create the dataset "State payroll", row identifier payment_id:' in out
    assert row(out, "column", "type")
    for column, kind in [
        ("employee_id", "text"),
        ("pay_date", "calendar_date"),
        ("gross", "number"),
        ("payment_id", "text"),
    ]:
        assert row(out, column, kind), column
    # the rejected row is shown with its line and why, since no rejects file is written
    assert "1 row rejected (a dry run writes no rejects file):" in out
    assert row(out, "line", "source", "step", "target", "column", "value", "reason")
    reason = "'13/45/2024' matches none of the formats %m/%d/%Y, ISO 8601"
    assert row(out, *"4 payroll.csv cast pay_date 13/45/2024".split(), reason)
    assert "{'" not in out and "would:" not in out  # no Python dicts, no run-on "would:" lines
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / ".route" / "rejects").exists()
    assert not (tmp_path / ".route" / "logs").exists()
    assert not (tmp_path / ".route" / "datasets.json").exists()


def test_a_dry_run_writes_nothing_but_its_history_line(route_cli, write_route, tmp_path):
    path = write_route(FILES_ONLY, **{"payroll.csv": DATA.replace('"1,200.50"', "lots")})
    result = route_cli("execute", "--dry-run", str(path))
    assert result.exit_code == 0, result.output
    assert row(result.stdout, *"archive csv 3 - - - 0".split(), f"write 3 rows to {tmp_path / 'out/payroll.csv'}")
    assert row(result.stdout, *"published jsonl 1 - - - 0".split(), f"write 1 row to {tmp_path / 'out/payroll.jsonl'}")
    assert result.stdout.rstrip().endswith(
        "Dry run: nothing was delivered, and nothing written but the run's line in `route history` "
        "(no data, rejects, log or report file)."
    )
    assert {name.split("-")[0] for name in state_files(tmp_path / ".route")} == {"history.sqlite"}
    assert state_files(tmp_path) == sorted(
        ["payroll.csv", "route.yaml"] + [f".route/{name}" for name in state_files(tmp_path / ".route")]
    )
    history = route_cli("history", str(path))
    assert history.exit_code == 0, history.output
    assert row(history.stdout, "run", "route", "started", "status", "read", "rejected", "delivered", "error")
    assert re.search(r"files\s+\S+\s+dry-run\s+4\s+1\s+-\s*$", history.stdout, flags=re.MULTILINE), history.stdout


def test_a_dry_run_with_many_rejects_shows_the_first_five(route_cli, write_route, tmp_path):
    bad = "EMP_ID,Pay Date,Gross\n" + "".join(f"{i:05},01/15/2024,x{i}\n" for i in range(1, 8))
    path = write_route(FILES_ONLY, **{"payroll.csv": bad})
    result = route_cli("execute", "--dry-run", str(path))
    assert result.exit_code == 1, result.output  # every row rejected: the run fails, as a real one would
    assert "7 rows rejected (a dry run writes no rejects file); the first 5:" in result.stdout
    shown = [
        n
        for n in range(2, 9)
        if row(result.stdout, str(n), *f"payroll.csv cast Gross x{n - 1} 'x{n - 1}' is not a number".split())
    ]
    assert shown == [2, 3, 4, 5, 6]
    assert "every row was rejected (7 rows); nothing is delivered" in result.stderr
    assert not (tmp_path / ".route" / "rejects").exists()


def test_a_dry_run_of_an_existing_dataset_counts_updates_and_names_it(route_cli, write_route, tmp_path):
    path = write_route(ROUTE, **{"payroll.csv": DATA})
    first = route_cli("execute", str(path))
    assert first.exit_code == 0, first.output
    (tmp_path / "payroll.csv").write_text(DATA + "00021,03/15/2024,10\n")
    dataset = json.loads((tmp_path / ".route" / "datasets.json").read_text())
    ids = [v for v in json.dumps(dataset).split('"') if re.fullmatch(r"[a-z0-9]{4}-[a-z0-9]{4}", v)]
    assert ids, dataset
    result = route_cli("execute", "--dry-run", str(path))
    assert result.exit_code == 0, result.output
    would = f'upsert into "State payroll" ({ids[0]}) on the local portal'
    assert row(result.stdout, *"portal socrata 4 1 3 0 0".split(), would)
    assert "would create the dataset" not in result.stdout
    # the real run's rejects file is there; the dry run added none
    assert len(list((tmp_path / ".route" / "rejects").glob("payroll-*.csv"))) == 1


def test_a_dry_run_with_json_is_one_json_document_with_the_first_rejects(route_cli, write_route, tmp_path):
    path = write_route(FILES_ONLY, **{"payroll.csv": DATA.replace('"1,200.50"', "lots")})
    result = route_cli("execute", "--dry-run", "--json", str(path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "dry-run" and report["rejects_file"] == ""
    assert (report["records_read"], report["rows_rejected"]) == (4, 1)
    assert report["first_rejects"] == [
        {
            "stage": "source_transforms",
            "step": "cast",
            "target": "",
            "column": "Gross",
            "value": "lots",
            "reason": "'lots' is not a number",
            "source": "payroll.csv",
            "line": "2",
        }
    ]
    assert [t["details"] for t in report["targets"]] == [{"would_write": 3}, {"would_write": 1}]
    assert not (tmp_path / ".route" / "rejects").exists()
