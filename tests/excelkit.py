"""Workbooks for the Excel tests: written with openpyxl, with formula results cached as Excel does,
and the excel source read in chunks the way the executor reads it."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd

from pipeline.basics.context import RunContext, StepContext
from pipeline.sources.excel import ExcelSource


def make_ctx(tmp_path: Path, chunk_rows: int = 50_000) -> StepContext:
    run = RunContext(
        route_name="test",
        route_file=tmp_path / "route.yaml",
        state_dir=tmp_path / ".route",
        run_id="1",
        chunk_rows=chunk_rows,
    )
    return StepContext(run=run, stage="source", step="excel")


def read_chunks(tmp_path: Path, chunk_rows: int = 50_000, **options) -> list[pd.DataFrame]:
    options.setdefault("path", "book.xlsx")
    return list(ExcelSource(options, make_ctx(tmp_path, chunk_rows)).chunks())


def read(tmp_path: Path, **options) -> pd.DataFrame:
    chunks = read_chunks(tmp_path, **options)
    frame = pd.concat(chunks)
    frame.attrs = chunks[0].attrs
    return frame


def rows(frame: pd.DataFrame) -> list[list]:
    """Cell values as plain Python, None for null."""
    return [[None if pd.isna(v) else v for v in rec] for rec in frame.astype(object).itertuples(index=False)]


def save(wb: openpyxl.Workbook, tmp_path: Path, name: str = "book.xlsx") -> Path:
    path = tmp_path / name
    wb.save(path)
    return path


def set_cached_values(path: Path, sheet_no: int, values: dict[str, object]) -> None:
    """Write the cached result of formula cells, as Excel would when it saves (openpyxl does not)."""
    member = f"xl/worksheets/sheet{sheet_no}.xml"
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    xml = parts[member].decode()
    for ref, value in values.items():
        kind = ' t="str"' if isinstance(value, str) else ""
        xml, n = re.subn(
            rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*/>', rf'<c r="{ref}"\1{kind}><f>\2</f><v>{value}</v>', xml
        )
        assert n == 1, ref
    parts[member] = xml.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)


def make_workbook(path: Path) -> Path:
    """A clerk's workbook: a cover sheet, a report-style sheet, two quarters to stack, a summary."""
    wb = openpyxl.Workbook()
    wb.active.title = "Cover"
    wb.active["A1"] = "Building permits: read me first"
    ws = wb.create_sheet("Permits")
    ws["A1"] = "Building permits, 2024"
    ws.merge_cells("A1:K1")  # a merged title over the table
    ws.append([])  # row 2: empty
    ws.append(
        ["permit", "zip", "district", "issued", "inspected", "fee", "units", "paid", "fee_x2", "due", "code"]
    )  # row 3: the header
    ws.append(
        [
            "P-001",
            "06103",
            "North",
            dt.date(2024, 1, 5),
            dt.datetime(2024, 1, 6, 9, 30),
            120.5,
            3,
            True,
            "=F4*2",
            "=D4+30",
            '=B4&"-"&A4',
        ]
    )
    ws.append(
        [
            "P-002",
            "06010",
            None,
            dt.date(2024, 2, 1),
            dt.datetime(2024, 2, 2, 14, 0, 15),
            80,
            12,
            False,
            "=F5*2",
            "=D5+30",
            '=B5&"-"&A5',
        ]
    )
    ws.merge_cells("C4:C5")  # one district for two permits
    ws.append([])  # row 6: empty
    ws.append(["P-003", "00501", "South", dt.date(2024, 3, 9), None, 0.25, None, None, "=F7*2", "=D7+30", '=B7&"-"&A7'])
    for row in (4, 5, 7):
        ws[f"J{row}"].number_format = "yyyy-mm-dd"  # a formula whose result is a date
    for name, rows in (
        ("Q1", [["P-101", "06103", 10], [], ["P-102", "06902", 20.5]]),
        ("Q2", [["P-201", 30, "06010"]]),
    ):
        q = wb.create_sheet(name)
        q["A1"] = f"Quarter {name[1]}"
        q.merge_cells("A1:C1")
        q.append([])
        q.append(["permit", "zip", "fee"] if name == "Q1" else ["permit", "fee", "zip"])  # other order
        for r in rows:
            q.append(r)
    wb.create_sheet("Summary")["B1"] = "=SUM(Permits!F4:F7)"
    wb.save(path)
    set_cached_values(
        path,
        2,
        {
            "I4": 241,
            "I5": 160,
            "I7": 0.5,
            "J4": 45326,
            "J5": 45353,
            "J7": 45390,
            "K4": "06103-P-001",
            "K5": "06010-P-002",
            "K7": "00501-P-003",
        },
    )
    return path


def report_sheet(tmp_path: Path) -> Path:
    """A merged title, a header on row 3, typed cells, formulas with and without cached values."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Permits"
    ws["A1"] = "Building permits, 2024"
    ws.merge_cells("A1:G1")
    ws.append([])
    ws.append(["id", "zip", "issued", "inspected", "fee", "paid", "fee_x2"])
    ws.append([1, "06103", dt.date(2024, 1, 5), dt.datetime(2024, 1, 6, 9, 30), 120.5, True, "=E4*2"])
    ws.append([2, "06010", dt.date(2024, 2, 1), dt.datetime(2024, 2, 2, 14, 0, 15), 80, False, "=E5*2"])
    ws.append([])
    ws.append([3, "00501", None, None, None, None, "=E7*2"])
    wb.create_sheet("Notes")["A1"] = "about"
    path = save(wb, tmp_path)
    set_cached_values(path, 1, {"G4": 241, "G5": 160})  # G7 keeps no cached value
    return path
