"""The excel source on workbooks written here with openpyxl: exact rows, types, row numbers, messages."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import jsonschema
import openpyxl
import pandas as pd
import pytest
from excelkit import make_ctx, read, read_chunks, report_sheet, rows, save, set_cached_values

from pipeline.basics.context import RunContext, StepContext
from pipeline.basics.dtypes import BOOLEAN, DATE, DATETIME, INTEGER, NUMBER, TEXT
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import spec_of
from pipeline.sources.excel import OPTIONS_SCHEMA, ExcelSource
from pipeline.sources.excel_sheet import column_index, column_letters, parse_range


@pytest.fixture
def permits(tmp_path):
    """A report-style sheet: a merged title, a header on row 3, typed cells, a formula, an empty row."""
    return report_sheet(tmp_path)


def test_header_on_row_3_gives_typed_rows_indexed_by_excel_row(tmp_path, permits):
    frame = read(tmp_path, header_row=3)
    assert list(frame.columns) == ["id", "zip", "issued", "inspected", "fee", "paid", "fee_x2"]
    assert list(frame.index) == [4, 5, 7]  # row 6 is empty and skipped
    assert frame.dtypes.to_dict() == {
        "id": INTEGER,
        "zip": TEXT,
        "issued": DATE,
        "inspected": DATETIME,
        "fee": NUMBER,
        "paid": BOOLEAN,
        "fee_x2": INTEGER,
    }
    assert rows(frame) == [
        [1, "06103", dt.date(2024, 1, 5), pd.Timestamp("2024-01-06 09:30"), 120.5, True, 241],
        [2, "06010", dt.date(2024, 2, 1), pd.Timestamp("2024-02-02 14:00:15"), 80.0, False, 160],
        [3, "00501", None, None, None, None, None],  # a formula without a cached value is empty
    ]
    assert frame.attrs["source"] == "book.xlsx[Permits]"


def test_header_is_found_below_empty_rows(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["B3"], ws["C3"] = "town", "count"
    ws["B4"], ws["C4"] = "Hartford", 3
    save(wb, tmp_path)
    frame = read(tmp_path)
    assert list(frame.columns) == ["town", "count"]
    assert list(frame.index) == [4]
    assert rows(frame) == [["Hartford", 3]]


def test_merged_cells_take_the_top_left_value(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["region", "town", "population", None])
    ws.merge_cells("C1:D1")  # one header over two columns
    ws.append(["North", "Enfield", 42141, 2020])
    ws.append([None, "Suffield", 15752, 2020])
    ws.append([None, "Somers", 10255, 2021])
    ws.merge_cells("A2:A4")
    ws.append(["South", "Milford", 52044, 2020])
    save(wb, tmp_path)
    frame = read(tmp_path, chunk_rows=2)  # the merged range crosses a chunk boundary
    assert list(frame.columns) == ["region", "town", "population", "population_2"]
    assert rows(frame) == [
        ["North", "Enfield", 42141, 2020],
        ["North", "Suffield", 15752, 2020],
        ["North", "Somers", 10255, 2021],
        ["South", "Milford", 52044, 2020],
    ]


def test_several_sheets_are_stacked_with_the_sheet_name(tmp_path):
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
    frame = read(tmp_path, sheets=["2023", "2024"])
    assert list(frame.columns) == ["sheet", "id", "amount", "note"]
    assert frame.dtypes.to_dict() == {"sheet": TEXT, "id": INTEGER, "amount": NUMBER, "note": TEXT}
    assert rows(frame) == [["2023", 1, 10.0, None], ["2024", 2, 12.5, "late"]]
    assert list(frame.index) == [2, 2]
    every = read(tmp_path, sheets="*", sheet_column="year")
    assert list(every["year"]) == ["2023", "2024"]
    by_position = read(tmp_path, sheets=[2], sheet_column="tab")
    assert rows(by_position) == [["2024", 2, 12.5, "late"]]


def test_sheet_by_name_and_by_position(tmp_path, permits):
    assert rows(read(tmp_path, sheet="Notes", header_row=0)) == [["about"]]
    assert rows(read(tmp_path, sheet=2, header_row=0)) == [["about"]]


def test_a_missing_sheet_names_the_sheets_that_exist(tmp_path, permits):
    with pytest.raises(RunFailed) as err:
        read(tmp_path, sheet="Permit")
    assert str(err.value) == (
        "book.xlsx has no sheet named 'Permit' (did you mean 'Permits'?); the sheets are 'Permits', 'Notes'"
    )
    with pytest.raises(RunFailed) as err:
        read(tmp_path, sheet=3)
    assert str(err.value) == (
        "book.xlsx has 2 sheet(s), so there is no sheet number 3; the sheets are 'Permits', 'Notes'"
    )


def test_a_number_that_is_a_sheet_name_gets_a_hint(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "2024"
    save(wb, tmp_path)
    with pytest.raises(RunFailed, match=r"write it in quotes: sheet: \"2024\""):
        read(tmp_path, sheet=2024)


def test_range_limits_rows_and_columns(tmp_path, permits):
    frame = read(tmp_path, range="B3:C5")
    assert list(frame.columns) == ["zip", "issued"]
    assert rows(frame) == [["06103", dt.date(2024, 1, 5)], ["06010", dt.date(2024, 2, 1)]]
    open_ended = read(tmp_path, range="A3:B")
    assert rows(open_ended) == [[1, "06103"], [2, "06010"], [3, "00501"]]


def test_skip_rows_drops_lines_under_the_header(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["station", "rain"])
    ws.append(["name", "mm"])
    ws.append(["Bradley", 12.5])
    save(wb, tmp_path)
    frame = read(tmp_path, skip_rows=1)
    assert rows(frame) == [["Bradley", 12.5]]
    assert list(frame.index) == [3]
    assert frame["rain"].dtype == NUMBER


def test_no_header_names_columns_by_letter(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["B1"], ws["C1"] = "x", 1
    save(wb, tmp_path)
    frame = read(tmp_path, header_row=0)
    assert list(frame.columns) == ["B", "C"]
    assert rows(frame) == [["x", 1]]


def test_mixed_columns_become_text_written_as_a_person_would(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["code"])
    for value in [3, 2.5, "N/A", dt.date(2024, 3, 1), dt.datetime(2024, 3, 1, 8, 0), True, 12345678901]:
        ws.append([value])
    save(wb, tmp_path)
    frame = read(tmp_path)
    assert frame["code"].dtype == TEXT
    assert list(frame["code"]) == ["3", "2.5", "N/A", "2024-03-01", "2024-03-01T08:00:00", "true", "12345678901"]


def test_types_are_the_same_in_every_chunk(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["n", "mixed", "when"])
    ws.append([1, 1, dt.date(2024, 1, 1)])
    ws.append([2, 2, dt.date(2024, 1, 2)])
    ws.append([3.5, "three", dt.datetime(2024, 1, 3, 12, 0)])
    save(wb, tmp_path)
    chunks = read_chunks(tmp_path, chunk_rows=2)
    assert [len(c) for c in chunks] == [2, 1]
    for chunk in chunks:
        assert chunk.dtypes.to_dict() == {"n": NUMBER, "mixed": TEXT, "when": DATETIME}
    assert list(pd.concat(chunks)["mixed"]) == ["1", "2", "three"]


def test_headers_duplicated_missing_or_unused(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([" name ", "name", None, None, "kept"])
    ws.append(["a", "b", "c", None, None])
    ws["F3"] = None
    save(wb, tmp_path)
    frame = read(tmp_path)
    assert list(frame.columns) == ["name", "name_2", "C", "kept"]
    assert rows(frame) == [["a", "b", "c", None]]


def test_a_sheet_with_a_header_only_gives_an_empty_typed_chunk(tmp_path):
    wb = openpyxl.Workbook()
    wb.active.append(["id", "name"])
    save(wb, tmp_path)
    chunks = read_chunks(tmp_path)
    assert len(chunks) == 1 and len(chunks[0]) == 0
    assert chunks[0].dtypes.to_dict() == {"id": TEXT, "name": TEXT}


def test_chunks_are_bounded_and_rows_exact(tmp_path):
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append(["i", "label"])
    for i in range(1, 1001):
        ws.append([i, f"row {i}"] if i % 100 else [None, None])  # every 100th row empty
    save(wb, tmp_path)
    chunks = read_chunks(tmp_path, chunk_rows=128)
    assert all(len(c) <= 128 for c in chunks)
    frame = pd.concat(chunks)
    assert len(frame) == 990
    assert frame["i"].tolist() == [i for i in range(1, 1001) if i % 100]
    assert list(frame.index) == [i + 1 for i in range(1, 1001) if i % 100]


@pytest.mark.parametrize(
    "options, message, path",
    [
        (
            {"path": "data.csv"},
            "'data.csv' is not a workbook (.xlsx, .xlsm, .xlsb, .xls, .ods); use the csv source for text files",
            ("path",),
        ),
        ({"path": "b.xlsx", "sheet": "a", "sheets": ["b"]}, "give either sheet or sheets, not both", ("sheets",)),
        (
            {"path": "b.xlsx", "range": "3A:B"},
            "range '3A:B' is not a cell range such as A3:H500 (or A3:H, or B:F)",
            ("range",),
        ),
        ({"path": "b.xlsx", "range": "C5:A1"}, "range 'C5:A1' ends before it starts", ("range",)),
    ],
)
def test_bad_options_are_reported_at_their_key(tmp_path, options, message, path):
    with pytest.raises(OptionError) as err:
        ExcelSource(options, make_ctx(tmp_path))
    assert str(err.value) == message
    assert err.value.path == path


def test_a_missing_file_or_a_broken_workbook_fails_the_run(tmp_path):
    with pytest.raises(RunFailed, match=r"^nope.xlsx: no such file \("):
        read(tmp_path, path="nope.xlsx")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(RunFailed, match=r"^broken.xlsx: cannot read the workbook: "):
        read(tmp_path, path="broken.xlsx")


def test_header_row_below_the_data(tmp_path, permits):
    with pytest.raises(RunFailed, match=r"header_row 40 is below the last row \(7\) of sheet 'Permits'"):
        read(tmp_path, header_row=40)


def test_columns_for_planning(tmp_path, permits):
    src = ExcelSource({"path": "book.xlsx", "header_row": 3}, make_ctx(tmp_path))
    assert src.columns() == ["id", "zip", "issued", "inspected", "fee", "paid", "fee_x2"]


def test_spec_and_schema():
    assert spec_of(ExcelSource).kind == "sources"
    jsonschema.validate({"path": "a.xlsx", "sheets": ["x", 2], "header_row": 3, "range": "A3:H"}, OPTIONS_SCHEMA)
    with pytest.raises(jsonschema.ValidationError, match="0 is less than the minimum of 1"):
        jsonschema.validate({"path": "a.xlsx", "sheet": 0}, OPTIONS_SCHEMA)


def test_cell_references():
    assert [column_letters(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    assert [column_index(s) for s in ("A", "Z", "AA", "ZZ", "AAA")] == [0, 25, 26, 701, 702]
    w = parse_range("b2:d10")
    assert (w.row_lo, w.row_hi, w.col_lo, w.col_hi) == (1, 9, 1, 3)


def test_an_opendocument_spreadsheet(tmp_path):
    """.ods is read by the same reader (merged cells are not reported for .ods)."""
    cell = '<table:table-cell office:value-type="{t}"{v}><text:p>{p}</text:p></table:table-cell>'
    header = "".join(cell.format(t="string", v="", p=p) for p in ("town", "zip", "since", "n"))
    data = (
        cell.format(t="string", v="", p="Hartford")
        + cell.format(t="string", v="", p="06103")
        + cell.format(t="date", v=' office:date-value="2024-01-05"', p="2024-01-05")
        + cell.format(t="float", v=' office:value="3"', p="3")
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body>'
        f'<office:spreadsheet><table:table table:name="Towns"><table:table-row>{header}</table:table-row>'
        f"<table:table-row>{data}</table:table-row></table:table></office:spreadsheet></office:body>"
        "</office:document-content>"
    )
    with zipfile.ZipFile(tmp_path / "towns.ods", "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", content)
        z.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            "</manifest:manifest>",
        )
    frame = read(tmp_path, path="towns.ods", sheet="Towns")
    assert frame.dtypes.to_dict() == {"town": TEXT, "zip": TEXT, "since": DATE, "n": INTEGER}
    assert rows(frame) == [["Hartford", "06103", dt.date(2024, 1, 5), 3]]


def _mixed_book(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["n", "when", "code", "flag"])
    values = [
        (1, dt.date(2024, 3, 1), 3, True),
        (2, dt.datetime(2024, 3, 1, 8, 0), 2.5, None),
        (None, None, None, None),  # an empty row inside the data
        (3, dt.date(2024, 3, 2), "N/A", False),
        (4.5, dt.datetime(2024, 3, 2, 9, 15, 30), dt.date(2024, 3, 1), True),
        (5, "soon", True, False),
    ]
    for row in values:
        ws.append(list(row))
    save(wb, tmp_path)


@pytest.mark.parametrize("sub_rows", [1, 2, 3, 8192])
@pytest.mark.parametrize("chunk_rows", [1, 2, 50_000])
def test_values_and_types_do_not_depend_on_how_rows_are_cut(tmp_path, monkeypatch, sub_rows, chunk_rows):
    """Rows are typed a few thousand at a time (SUB_ROWS) and joined into a chunk: wherever the
    cuts fall, every chunk has the sheet's types and a mixed column reads as a person wrote it."""
    from pipeline.sources import excel_sheet

    monkeypatch.setattr(excel_sheet, "SUB_ROWS", sub_rows)
    _mixed_book(tmp_path)
    chunks = read_chunks(tmp_path, chunk_rows=chunk_rows)
    for chunk in chunks:
        assert chunk.dtypes.to_dict() == {"n": NUMBER, "when": TEXT, "code": TEXT, "flag": BOOLEAN}
    frame = pd.concat(chunks)
    assert list(frame.index) == [2, 3, 5, 6, 7]
    assert rows(frame) == [
        [1.0, "2024-03-01", "3", True],
        [2.0, "2024-03-01T08:00:00", "2.5", None],
        [3.0, "2024-03-02", "N/A", False],
        [4.5, "2024-03-02T09:15:30", "2024-03-01", True],
        [5.0, "soon", "true", False],
    ]


def test_a_column_of_dates_and_date_times_is_typed_in_one_pass():
    """Typing is vectorised: a column's kind from its cells' types, its values converted by pyarrow."""
    import numpy as np
    import pyarrow as pa

    from pipeline.sources import excel_cells as cells

    values = np.array([dt.date(2024, 1, 5), "", dt.datetime(2024, 1, 6, 9, 30, 0, 5), None], dtype=object)
    kind, arr, empty = cells.convert(values)
    assert kind == cells.DATETIME and arr.type == pa.timestamp("us")
    assert arr.to_pylist() == [dt.datetime(2024, 1, 5), None, dt.datetime(2024, 1, 6, 9, 30, 0, 5), None]
    assert empty.tolist() == [False, True, False, True]
    kind, arr, empty = cells.convert(np.array([3.0, "", 2**60, 4], dtype=object))
    assert kind == cells.FLOAT and empty.tolist() == [False, True, False, False]  # 2**60 is past 2**53
    kind, arr, empty = cells.convert(np.array(["", ""], dtype=object))
    assert kind == cells.NULL and empty.tolist() == [True, True]
    kind, arr, _ = cells.convert(np.array([1.0, True], dtype=object))
    assert kind == cells.TEXT and arr.to_pylist() == ["1", "true"]
