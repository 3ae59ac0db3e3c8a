"""The excel source's `engine`: openpyxl streaming gives exactly what calamine gives, in bounded chunks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jsonschema
import openpyxl
import pandas as pd
import pytest
from excelkit import make_ctx, make_workbook, read_chunks, report_sheet, rows, save, set_cached_values

from pipeline.basics.dtypes import BOOLEAN, DATE, DATETIME, INTEGER, NUMBER, TEXT
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.sources.excel import OPTIONS_SCHEMA, ExcelSource
from pipeline.sources.excel_stream import choose_engine, sheet_members

ENGINES = ("calamine", "openpyxl")


def both(tmp_path: Path, chunk_rows: int = 50_000, **options) -> list[pd.DataFrame]:
    """The chunks of each engine, checked equal (values, types, row numbers, sources, sizes)."""
    got = {e: read_chunks(tmp_path, chunk_rows, engine=e, **options) for e in ENGINES}
    calamine, streamed = got["calamine"], got["openpyxl"]
    assert [len(c) for c in streamed] == [len(c) for c in calamine]
    for a, b in zip(calamine, streamed):
        pd.testing.assert_frame_equal(a, b)
        assert a.attrs == b.attrs
    return streamed


def one(tmp_path: Path, **options) -> pd.DataFrame:
    return pd.concat(both(tmp_path, **options))


# -- workbooks ------------------------------------------------------------------------------------


def merged_sheet(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["region", "town", "population", None])
    ws.merge_cells("C1:D1")
    ws.append(["North", "Enfield", 42141, 2020])
    ws.append([None, "Suffield", 15752, 2020])
    ws.append([None, "Somers", 10255, 2021])
    ws.merge_cells("A2:A4")
    ws.append(["South", "Milford", 52044, 2020])
    save(wb, tmp_path)


def stacked_sheets(tmp_path):
    wb = openpyxl.Workbook()
    a = wb.active
    a.title = "2023"
    a.append(["id", "amount"])
    a.append([1, 10])
    b = wb.create_sheet("2024")
    b.append(["id", "amount", "note"])
    b.append([2, 12.5, "late"])
    wb.create_sheet("empty")
    save(wb, tmp_path)


def odd_cells(tmp_path):
    """Cells whose Python value differs between the readers before the engine evens them out."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["B2"], ws["C2"], ws["D2"], ws["E2"] = "when", "at", "took", "code"
    ws.append([None, dt.datetime(2024, 1, 6), dt.time(8, 30), dt.timedelta(hours=30), 12345678901])
    ws.append([None, dt.datetime(2024, 1, 7, 12), dt.time(9), dt.timedelta(minutes=5), "#N/A"])
    ws["E4"].data_type = "e"  # an error cell is empty
    ws.append([None, None, None, None, ""])
    ws["H9"].fill = openpyxl.styles.PatternFill("solid", fgColor="FF0000")  # styled, no value
    ws.append([None, dt.date(2024, 1, 8), None, None, 2.5])
    save(wb, tmp_path)


def header_puzzles(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([" name ", "name", None, None, "kept"])
    ws.append(["a", "b", "c", None, None])
    ws.append(["n", "mixed", "when"])
    for value in [3, 2.5, "N/A", dt.date(2024, 3, 1), dt.datetime(2024, 3, 1, 8, 0), True]:
        ws.append([value, value, value])
    save(wb, tmp_path)


@pytest.mark.parametrize(
    "build, options",
    [
        (report_sheet, {"header_row": 3}),
        (report_sheet, {}),
        (report_sheet, {"range": "B3:C5"}),
        (report_sheet, {"range": "A3:B"}),
        (report_sheet, {"range": "C4:F", "header_row": 0}),
        (report_sheet, {"sheet": "Notes", "header_row": 0}),
        (report_sheet, {"sheet": 2}),
        (report_sheet, {"header_row": 3, "chunk_rows": 1}),
        (merged_sheet, {"chunk_rows": 2}),
        (merged_sheet, {"header_row": 0}),
        (stacked_sheets, {"sheets": ["2023", "2024"]}),
        (stacked_sheets, {"sheets": "*", "sheet_column": "year"}),
        (stacked_sheets, {"sheets": [2], "sheet_column": "tab"}),
        (odd_cells, {}),
        (odd_cells, {"skip_rows": 1, "chunk_rows": 1}),
        (header_puzzles, {}),
        (header_puzzles, {"header_row": 3, "chunk_rows": 2}),
    ],
)
def test_both_engines_give_the_same_chunks(tmp_path, build, options):
    build(tmp_path)
    assert len(one(tmp_path, **options)) >= 0


def test_streamed_report_sheet_has_the_expected_rows_and_types(tmp_path):
    report_sheet(tmp_path)
    frame = one(tmp_path, header_row=3)
    assert list(frame.index) == [4, 5, 7]
    assert frame.dtypes.to_dict() == {
        "id": INTEGER,
        "zip": TEXT,
        "issued": DATE,
        "inspected": DATETIME,
        "fee": NUMBER,
        "paid": BOOLEAN,
        "fee_x2": INTEGER,
    }
    assert rows(frame)[2] == [3, "00501", None, None, None, None, None]
    assert frame["zip"].tolist() == ["06103", "06010", "00501"]


def test_streamed_odd_cells_are_typed_as_calamine_types_them(tmp_path):
    odd_cells(tmp_path)
    frame = one(tmp_path)
    assert frame.dtypes.to_dict() == {"when": DATETIME, "at": TEXT, "took": TEXT, "code": NUMBER}
    assert rows(frame) == [
        [pd.Timestamp("2024-01-06"), "08:30:00", "30:00:00", 12345678901.0],
        [pd.Timestamp("2024-01-07 12:00"), "09:00:00", "0:05:00", None],
        [pd.Timestamp("2024-01-08"), None, None, 2.5],
    ]
    assert list(frame.index) == [3, 4, 10]  # the styled H9 moved the last append down


def test_the_acceptance_workbook_reads_the_same(tmp_path):
    make_workbook(tmp_path / "book.xlsx")
    permits = one(tmp_path, sheet="Permits", header_row=3)
    assert permits["due"].dtype == DATE and permits["district"].tolist() == ["North", "North", "South"]
    assert len(one(tmp_path, sheets=["Q1", "Q2"], header_row=3)) == 3
    one(tmp_path, sheets="*", header_row=0, chunk_rows=2)


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"sheet": "Permit"},
            "book.xlsx has no sheet named 'Permit' (did you mean 'Permits'?); the sheets are 'Permits', 'Notes'",
        ),
        ({"sheet": 3}, "book.xlsx has 2 sheet(s), so there is no sheet number 3; the sheets are 'Permits', 'Notes'"),
        ({"header_row": 40}, "book.xlsx: header_row 40 is below the last row (7) of sheet 'Permits'"),
    ],
)
def test_both_engines_give_the_same_messages(tmp_path, options, message):
    report_sheet(tmp_path)
    for engine in ENGINES:
        with pytest.raises(RunFailed) as err:
            read_chunks(tmp_path, engine=engine, **options)
        assert str(err.value) == message


def test_a_broken_workbook_fails_the_run_with_openpyxl_too(tmp_path):
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(RunFailed, match=r"^broken.xlsx: cannot read the workbook: "):
        read_chunks(tmp_path, path="broken.xlsx", engine="openpyxl")


def test_engine_option(tmp_path):
    jsonschema.validate({"path": "a.xlsx", "engine": "openpyxl"}, OPTIONS_SCHEMA)
    with pytest.raises(jsonschema.ValidationError, match="'pandas' is not one of"):
        jsonschema.validate({"path": "a.xlsx", "engine": "pandas"}, OPTIONS_SCHEMA)
    with pytest.raises(OptionError) as err:
        ExcelSource({"path": "towns.ods", "engine": "openpyxl"}, make_ctx(tmp_path))
    assert str(err.value) == (
        "engine openpyxl reads .xlsx and .xlsm workbooks only, not 'towns.ods': use engine calamine (or auto)"
    )
    assert err.value.path == ("engine",)


def test_auto_streams_only_a_sheet_whose_xml_is_large(tmp_path):
    report_sheet(tmp_path)
    book = tmp_path / "book.xlsx"
    assert sheet_members(book) == {"Permits": "xl/worksheets/sheet1.xml", "Notes": "xl/worksheets/sheet2.xml"}
    assert choose_engine(book, ["Permits"]) == "calamine"
    assert choose_engine(book, ["Permits"], threshold=100) == "openpyxl"
    assert choose_engine(book, ["Notes"], threshold=10_000) == "calamine"
    assert choose_engine(tmp_path / "towns.ods", ["x"], threshold=0) == "calamine"
    pd.testing.assert_frame_equal(pd.concat(read_chunks(tmp_path, header_row=3)), one(tmp_path, header_row=3))


def test_a_large_sheet_streams_in_bounded_chunks(tmp_path):
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append(["i", "code", "day", "amount", "note"])
    for i in range(1, 20_001):
        ws.append(
            [
                i,
                f"{i % 1000:05d}",
                dt.date(2020, 1, 1) + dt.timedelta(days=i % 900),
                i / 4,
                None if i % 3 else f"note {i}",
            ]
            if i % 500
            else []
        )  # every 500th row empty
    save(wb, tmp_path)
    calamine = read_chunks(tmp_path, 1_000, engine="calamine")
    source = ExcelSource({"path": "book.xlsx", "engine": "openpyxl"}, make_ctx(tmp_path, 1_000))
    assert source.columns() == ["i", "code", "day", "amount", "note"]
    surveyed = source._sheets[0]
    assert surveyed.rows == 19_960 and surveyed.blocks == []  # the first pass kept types, not rows
    streamed = list(source.chunks())
    assert all(len(c) <= 1_000 for c in streamed) and len(streamed) == len(calamine) == 20
    frame = pd.concat(streamed)
    pd.testing.assert_frame_equal(frame, pd.concat(calamine))
    assert len(frame) == 19_960 and frame.index[-1] == 20_000
    assert frame.dtypes.to_dict() == {"i": INTEGER, "code": TEXT, "day": DATE, "amount": NUMBER, "note": TEXT}
    assert source._book is None  # the workbook is closed once read
