"""Acceptance: route files as DESIGN.md writes them, run with `route execute` on messy CSV files.

Each test writes its input as bytes (encodings, BOMs, CRLF, quoted line breaks, ragged rows), runs
the route through the command, and checks the exact rows every target received and the exact
rejects (stage, step, column, value, reason, source file and line), as a publisher would.

Files whose check is only the rows and rejects (a BOM, latin-1, a glob of exports, TSV, no header,
other quote characters) are `route test` cases in tests/cases/, run by test_cases.py; the tests
here also check what a case cannot: the run's report, the bytes a delivery writes, typed values,
the last good output kept, `route preview`, or data generated and compared with Python's csv module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_csv_rows, read_jsonl


def run(route_cli, path: Path, *args: str, code: int = 0):
    result = route_cli("execute", *args, str(path))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def rejects(state: Path, route: str) -> list[tuple]:
    """(stage, step, target, column, value, reason, source, line) of every reject, in line order."""
    files = sorted((state / "rejects").glob(f"{route}-*.csv"))
    if not files:
        return []
    assert len(files) == 1, files
    rows = read_csv_rows(files[0])
    out = [
        (r["stage"], r["step"], r["target"], r["column"], r["value"], r["reason"], r["source"], int(r["line"]))
        for r in rows
    ]
    return sorted(out, key=lambda r: (r[6], r[7], r[3]))


def report(result) -> dict:
    return json.loads(result.stdout)


# -- cp1252, semicolons, CRLF, ragged rows, quoted delimiters and line breaks ----------------------

CP1252 = (
    "id;town;zip;amount;paid;note\r\n"  # line 1
    "1;Montr\u00e9al;06103;1.234,50;03/15/2024 02:30 PM;\u201cquoted\u201d\r\n"  # 2: “ ” are 0x93 0x94
    '2;caf\u00e9;00501;12;03/16/2024 11:00 AM;"a;b"\r\n'  # 3
    "3;x;1;2\r\n"  # 4: 4 fields
    '4;HARTFORD;06106;abc;03/17/2024 09:00 AM;"multi\r\nline ""q"""\r\n'  # 5-6: bad amount
    "5;y;06120;1;2;3;4;5\r\n"  # 7: 8 fields
    "6;;;;;\r\n"  # 8: only an id
    "7; new haven ;06510;NA;2024-03-10T01:00:00;N/A\r\n"  # 9
).encode("cp1252")


def test_cp1252_semicolons_ragged_rows_and_two_targets(route_cli, write_route, tmp_path):
    assert b"\x93quoted\x94" in CP1252 and b"Montr\xe9al" in CP1252
    path = write_route(
        """
        name: towns
        source:
          csv:
            path: data/towns.csv
            delimiter: ";"
            encoding: cp1252
            null_values: [NA, N/A]
        source_transforms:
          - cast:
              id: integer
              amount: {type: number, thousands: ".", decimal: ","}
              paid: {type: datetime, formats: ["%m/%d/%Y %I:%M %p"], timezone: America/New_York}
          - trim: [town]
          - title: [town]
        targets:
          - name: coded
            when: "zip is not null"
            target_transforms:
              - select: [zip, town, amount, note]
            deliver:
              jsonl: {path: out/coded.jsonl}
          - name: all
            deliver:
              csv: {path: out/all.csv}
    """,
        **{"data/towns.csv": CP1252},
    )
    result = run(route_cli, path, "--json")
    assert read_jsonl(tmp_path / "out/coded.jsonl") == [
        {"zip": "06103", "town": "Montréal", "amount": 1234.5, "note": "\u201cquoted\u201d"},
        {"zip": "00501", "town": "Café", "amount": 12.0, "note": "a;b"},
        {"zip": "06510", "town": "New Haven", "amount": None, "note": None},
    ]
    assert read_csv_rows(tmp_path / "out/all.csv") == [
        {
            "id": "1",
            "town": "Montréal",
            "zip": "06103",
            "amount": "1234.5",
            "paid": "2024-03-15T14:30:00.000000-04:00",
            "note": "\u201cquoted\u201d",
        },
        {
            "id": "2",
            "town": "Café",
            "zip": "00501",
            "amount": "12",
            "paid": "2024-03-16T11:00:00.000000-04:00",
            "note": "a;b",
        },
        {"id": "6", "town": "", "zip": "", "amount": "", "paid": "", "note": ""},
        {
            "id": "7",
            "town": "New Haven",
            "zip": "06510",
            "amount": "",
            "paid": "2024-03-10T01:00:00.000000-05:00",
            "note": "",
        },
    ]
    # the CSV file is UTF-8 and keeps the leading zeros as written
    text = (tmp_path / "out/all.csv").read_bytes().decode("utf-8")
    assert "06103" in text and "00501" in text and "Montréal" in text
    assert rejects(tmp_path / ".route", "towns") == [
        ("source", "csv", "", "", "3;x;1;2", "line 4 has 4 fields, the header has 6", "data/towns.csv", 4),
        ("source_transforms", "cast", "", "amount", "abc", "'abc' is not a number", "data/towns.csv", 5),
        ("source", "csv", "", "", "5;y;06120;1;2;3;4;5", "line 7 has 8 fields, the header has 6", "data/towns.csv", 7),
    ]
    rep = report(result)
    assert (rep["status"], rep["rows_read"], rep["rows_rejected"], rep["rows_delivered"]) == ("success", 5, 3, 7)
    steps = {s["step"]: s for s in rep["steps"]}
    # the source's line of the table adds up like every rule's: in = out + rejected
    assert (steps["csv"]["rows_in"], steps["csv"]["rows_out"], steps["csv"]["rejected"]) == (7, 5, 2)
    assert (steps["cast"]["rows_in"], steps["cast"]["rows_out"], steps["cast"]["rejected"]) == (5, 4, 1)
    assert [(t["name"], t["routed"], t["delivered"]) for t in rep["targets"]] == [("coded", 3, 3), ("all", 4, 4)]


def test_leading_zero_codes_survive_every_output_and_only_cast_types(route_cli, write_route, tmp_path):
    data = b"code,fips,n\n06103,09003,007\n00501,00001,0\n"
    path = write_route(
        """
        name: zeros
        source:
          csv: {path: codes.csv}
        source_transforms:
          - cast: {n: integer}
        targets:
          - name: j
            deliver: {jsonl: {path: out.jsonl}}
          - name: c
            deliver: {csv: {path: out.csv}}
    """,
        **{"codes.csv": data},
    )
    run(route_cli, path)
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"code": "06103", "fips": "09003", "n": 7},
        {"code": "00501", "fips": "00001", "n": 0},
    ]
    assert read_csv_rows(tmp_path / "out.csv") == [
        {"code": "06103", "fips": "09003", "n": "7"},
        {"code": "00501", "fips": "00001", "n": "0"},
    ]
    raw = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert '"code":"06103"' in raw and '"n":7' in raw


# -- casts: formats, time zones, and a reject naming row, column, value and reason ------------------

CASTS = (
    b"id,count,active,opened,clock_in\n"
    b"1,12,yes,03/15/2024,03/15/2024 02:30 PM\n"  # 2: good
    b"2,1.5,no,03/16/2024,\n"  # 3: not a whole number
    b"3,7,maybe,,\n"  # 4: not a boolean
    b"4,8,n,13/45/2024,\n"  # 5: no format fits
    b"5,9,Y,2024-02-30,\n"  # 6: no such day
    b"6,10,0,1/2/24,03/10/2024 02:30 AM\n"  # 7: skipped by the DST change
    b"7,11,T,2024-01-05,2024-11-03T01:30:00\n"  # 8: repeated hour: the earlier one
    b"8, 12.0 ,f,,2024-06-01T12:00:00Z\n"  # 9: an offset keeps its instant
    b"9,,,,\n"  # 10: empty is null, not an error
)


def test_casts_with_formats_and_time_zone(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: casts
        source:
          csv: {path: casts.csv}
        source_transforms:
          - cast:
              id: integer
              count: integer
              active: boolean
              opened: {type: date, formats: ["%m/%d/%Y", "%m/%d/%y"]}
              clock_in: {type: datetime, formats: ["%m/%d/%Y %I:%M %p"], timezone: America/New_York}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"casts.csv": CASTS},
    )
    run(route_cli, path)
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"id": 1, "count": 12, "active": True, "opened": "2024-03-15", "clock_in": "2024-03-15T14:30:00.000000-04:00"},
        {"id": 7, "count": 11, "active": True, "opened": "2024-01-05", "clock_in": "2024-11-03T01:30:00.000000-04:00"},
        {"id": 8, "count": 12, "active": False, "opened": None, "clock_in": "2024-06-01T08:00:00.000000-04:00"},
        {"id": 9, "count": None, "active": None, "opened": None, "clock_in": None},
    ]
    cast = ("source_transforms", "cast", "")
    assert rejects(tmp_path / ".route", "casts") == [
        cast + ("count", "1.5", "'1.5' is not a whole number", "casts.csv", 3),
        cast
        + (
            "active",
            "maybe",
            "'maybe' is not a boolean (true: true, yes, y, t, 1; false: false, no, n, f, 0)",
            "casts.csv",
            4,
        ),
        cast
        + (
            "opened",
            "13/45/2024",
            "'13/45/2024' matches none of the formats %m/%d/%Y, %m/%d/%y, ISO 8601",
            "casts.csv",
            5,
        ),
        cast + ("opened", "2024-02-30", "'2024-02-30' is not a valid date: that month has no such day", "casts.csv", 6),
        cast
        + (
            "clock_in",
            "03/10/2024 02:30 AM",
            "'03/10/2024 02:30 AM' does not exist in America/New_York "
            "(clocks skip that hour at the daylight-saving change)",
            "casts.csv",
            7,
        ),
    ]


# -- text rules, fill, replace, filter, derive and routing with `when` ------------------------------

PAYROLL = (
    b"EMP_ID,Name,Dept,Pay Date,Gross,Status\n"
    b'101,  ada LOVELACE ,eng,03/01/2024,"1,200.50",Active\n'  # 2
    b"102,grace hopper,,03/15/2024,800,N/A\n"  # 3: no dept
    b"103,ALAN TURING,Eng ,07/01/2024,-20,active\n"  # 4: negative: filtered out
    b"104,edsger dijkstra,ops,08/15/2023,950,?\n"  # 5
    b"105,barbara liskov,OPS,12/31/2024,,inactive\n"  # 6: no gross: null fails the filter
    b"106,ken thompson,legal,01/15/2025,3000,ACTIVE\n"  # 7: in no target's `when`
)


def test_text_rules_fill_replace_filter_derive_and_when(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: payroll
        source:
          csv: {path: payroll.csv}
        source_transforms:
          - rename: {EMP_ID: employee_id, "Pay Date": pay_date, Gross: gross, Name: name, Dept: dept,
                     Status: status}
          - trim: [name, dept]
          - title: [name]
          - lower: [dept]
          - upper: [status]
          - replace: {status: {"N/A": null, "?": null}, dept: {ops: operations}}
          - fill: {dept: unassigned, status: UNKNOWN}
          - cast:
              employee_id: integer
              pay_date: {type: date, formats: ["%m/%d/%Y"]}
              gross: {type: number, thousands: ","}
          - filter: "gross >= 0"
          - derive:
              fiscal_year: "if(month(pay_date) >= 7, year(pay_date) + 1, year(pay_date))"
              pioneer: "startswith(name, 'Ada') or contains(name, 'Hop')"
              band: "if(gross >= 1000, 'high', 'low')"
              tag: "concat(dept, '-', employee_id)"
        targets:
          - name: engineering
            when: "dept == 'eng' and fiscal_year >= 2024"
            target_transforms:
              - select: [employee_id, name, gross, fiscal_year, band, pioneer]
            deliver:
              jsonl: {path: out/eng.jsonl}
          - name: operations
            when: "dept in ['operations', 'unassigned']"
            target_transforms:
              - select: [employee_id, name, dept, status, tag, pioneer]
            deliver:
              csv: {path: out/ops.csv}
    """,
        **{"payroll.csv": PAYROLL},
    )
    result = run(route_cli, path, "--json")
    assert read_jsonl(tmp_path / "out/eng.jsonl") == [
        {
            "employee_id": 101,
            "name": "Ada Lovelace",
            "gross": 1200.5,
            "fiscal_year": 2024,
            "band": "high",
            "pioneer": True,
        },
    ]
    assert read_csv_rows(tmp_path / "out/ops.csv") == [
        {
            "employee_id": "102",
            "name": "Grace Hopper",
            "dept": "unassigned",
            "status": "UNKNOWN",
            "tag": "unassigned-102",
            "pioneer": "true",
        },
        {
            "employee_id": "104",
            "name": "Edsger Dijkstra",
            "dept": "operations",
            "status": "UNKNOWN",
            "tag": "operations-104",
            "pioneer": "false",
        },
    ]
    assert rejects(tmp_path / ".route", "payroll") == []
    rep = report(result)
    assert (rep["rows_read"], rep["rows_rejected"], rep["rows_unrouted"], rep["rows_delivered"]) == (6, 0, 1, 3)
    steps = {s["step"]: s for s in rep["steps"]}
    assert (steps["filter"]["rows_in"], steps["filter"]["dropped"], steps["filter"]["rows_out"]) == (6, 2, 4)


def test_too_many_rejects_fail_the_run_and_keep_the_last_good_file(route_cli, write_route, tmp_path):
    (tmp_path / "out.jsonl").write_text('{"last": "good"}\n')
    path = write_route(
        """
        name: strict
        source:
          csv: {path: casts.csv}
        source_transforms:
          - cast: {count: integer, active: boolean}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
        on_error:
          max_rejects: 1
    """,
        **{"casts.csv": CASTS},
    )
    result = run(route_cli, path, code=1)
    assert "rows were rejected, more than on_error.max_rejects allows (1)" in result.output
    assert (tmp_path / "out.jsonl").read_text() == '{"last": "good"}\n'
    assert len(rejects(tmp_path / ".route", "strict")) >= 2


def _preview_lines(text: str, title: str) -> list[str]:
    """The line numbers in the first column of the table printed under `title` by `route preview`."""
    lines, inside = [], False
    for row in text.splitlines():
        if row.startswith(title):
            inside = True
        elif inside and row and row[0].isalpha():
            break
        elif inside:
            cells = [c.strip() for c in row.strip("│ ").split("│")]
            if len(cells) > 1 and cells[0].isdigit():
                lines.append(cells[0])
    return lines


def test_preview_shows_the_rows_as_read_then_after_each_step(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: towns
        source:
          csv: {path: towns.csv, delimiter: ";", encoding: cp1252, null_values: [NA, N/A]}
        source_transforms:
          - cast: {amount: {type: number, thousands: ".", decimal: ","}}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"towns.csv": CP1252},
    )
    result = route_cli("preview", "--rows", "10", str(path))
    assert result.exit_code == 0, result.output
    # the source's own rows come first, with their lines: a wrong header_row or encoding shows here
    assert _preview_lines(result.stdout, "source csv (line 3)") == ["2", "3", "5", "8", "9"]
    assert "Montréal" in result.stdout and "1.234,50" in result.stdout and "\u201cquoted\u201d" in result.stdout
    assert _preview_lines(result.stdout, "source_transforms[0] cast (line 5)") == ["2", "3", "8", "9"]
    assert _preview_lines(result.stdout, "target out: would deliver (jsonl)") == ["2", "3", "8", "9"]
    assert "3 rows rejected" in result.stdout
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("engine", ["pyarrow", "python"])
def test_random_messy_file_matches_pythons_csv_module_in_small_chunks(route_cli, write_route, tmp_path, engine):
    """Thousands of records with quoted commas, quotes and line breaks, blank lines and ragged rows,
    read in chunks of 97 rows: every row and every reject line agrees with Python's csv module."""
    import csv
    import io
    import random

    rnd = random.Random(20240601)
    pieces = ["a", "b c", ",", '"', "\n", "\r\n", "é", "06", " ", "x,y", "ü"]
    out = io.StringIO(newline="")
    out.write("id,code,text\r\n")
    for i in range(1, 3001):
        r = rnd.random()
        if r < 0.02:
            out.write("\r\n")  # a blank line
        if r < 0.04:
            out.write(f"{i},{i:05d}\r\n")  # too few fields
        elif r < 0.06:
            out.write(f"{i},{i:05d},t,extra\r\n")  # too many
        else:
            text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 6)))
            out.write(f'{i},{i:05d},"{text.replace(chr(34), chr(34) * 2)}"\r\n')
    data = out.getvalue()

    expected_rows, expected_rejects = [], []
    reader = csv.reader(io.StringIO(data, newline=""))
    next(reader)
    last = reader.line_num
    for record in reader:
        start, last = last + 1, reader.line_num
        if not record:
            continue
        if len(record) != 3:
            expected_rejects.append(
                (
                    "source",
                    "csv",
                    "",
                    "",
                    ",".join(record),
                    f"line {start} has {len(record)} fields, the header has 3",
                    "messy.csv",
                    start,
                )
            )
        else:
            expected_rows.append({"id": record[0], "code": record[1], "text": record[2] or None})

    path = write_route(
        f"""
        name: messy
        source:
          csv: {{path: messy.csv, engine: {engine}}}
        targets:
          - name: out
            deliver: {{jsonl: {{path: out.jsonl}}}}
    """,
        **{"messy.csv": data.encode("utf-8")},
    )
    run(route_cli, path, "--chunk-rows", "97")
    assert read_jsonl(tmp_path / "out.jsonl") == expected_rows
    assert rejects(tmp_path / ".route", "messy") == expected_rejects
    assert len(expected_rejects) > 50 and any("\n" in (r["text"] or "") for r in expected_rows)
