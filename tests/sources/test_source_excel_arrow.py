"""The excel source's fast path (fastexcel straight into Arrow) gives exactly the rows of the
cell-by-cell readers, and steps aside for every sheet where it could not."""

from __future__ import annotations

import datetime as dt
import io
import threading
import zipfile
import zlib
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from excelkit import make_ctx, read_chunks, rows, save

from pipeline.basics.errors import RunFailed
from pipeline.sources import excel_arrow, excel_windows
from pipeline.sources.excel_extent import Extent, scan_sheet, scan_stream
from pipeline.sources.excel_sheet import column_letters
from pipeline.sources.excel_sheet_xml import closed_above
from pipeline.sources.excel_stream import sheet_members
from pipeline.sources.excel_xml import prefetched
from pipeline.sources.excel_zip import member_chunks

pytest.importorskip("fastexcel")


def fast_sheet(path: Path, sheet: str | None = None, header_row: int | None = None):
    """What the fast path makes of a sheet: a Sheet, or None when it steps aside."""
    members = sheet_members(path)
    name = sheet or next(iter(members))
    extent = scan_sheet(path, members[name], quick=True)
    options = {"header_row": header_row} if header_row is not None else {}
    if not excel_arrow.eligible(options, extent):
        return None
    above = closed_above(path, members[name], header_row) if header_row else 0
    return excel_arrow.read_sheet(excel_arrow.open_book(path), name, header_row, extent, 50_000, above)


def same_as_streamed(tmp_path: Path, chunk_rows: int = 50_000, **options) -> list[pd.DataFrame]:
    """The chunks of engine auto and of engine openpyxl, checked equal (values, types, row numbers)."""
    fast = read_chunks(tmp_path, chunk_rows, engine="auto", **options)
    streamed = read_chunks(tmp_path, chunk_rows, engine="openpyxl", **options)
    assert [len(c) for c in fast] == [len(c) for c in streamed]
    for a, b in zip(fast, streamed):
        pd.testing.assert_frame_equal(a, b)
        assert a.attrs == b.attrs
    return fast


def typed_book(tmp_path: Path, above: list | None = None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    for row in above or []:
        ws.append(row)
    ws.append(["id", "amount", "big", "day", "stamp", "ok", "name", "zip", "nothing"])
    for i in range(1, 41):
        ws.append(
            [
                i,
                None if i % 7 == 0 else i * 1.25 - 20,
                2**52 + i,
                dt.date(1965 + i, 1 + i % 12, 1 + i % 28),
                dt.datetime(2024, 1, 1, i % 24, i, i, 1000 * i) if i % 3 else dt.datetime(2024, 2, i % 28 + 1),
                i % 2 == 0,
                None if i % 5 == 0 else f"name {i}",
                f"{6000 + i:05d}",
                None,
            ]
        )
        if i % 9 == 0:
            ws.append([])  # an empty row: left out, the row numbers go on
    return save(wb, tmp_path)


def test_a_typed_sheet_is_read_by_the_fast_path_with_the_same_rows_and_types(tmp_path):
    path = typed_book(tmp_path)
    assert fast_sheet(path) is not None
    frame = pd.concat(same_as_streamed(tmp_path))
    assert list(frame.columns) == ["id", "amount", "big", "day", "stamp", "ok", "name", "zip", "nothing"]
    assert rows(frame.head(2)) == [
        [
            1,
            -18.75,
            2**52 + 1,
            dt.date(1966, 2, 2),
            pd.Timestamp(2024, 1, 1, 1, 1, 1, 1000),
            False,
            "name 1",
            "06001",
            None,
        ],
        [
            2,
            -17.5,
            2**52 + 2,
            dt.date(1967, 3, 3),
            pd.Timestamp(2024, 1, 1, 2, 2, 2, 2000),
            True,
            "name 2",
            "06002",
            None,
        ],
    ]
    assert frame.index[8:10].tolist() == [10, 12]  # row 11 is empty


@pytest.mark.parametrize("chunk_rows", [1, 7, 50_000])
def test_chunks_are_cut_as_the_cell_by_cell_reader_cuts_them(tmp_path, chunk_rows):
    typed_book(tmp_path)
    assert sum(len(c) for c in same_as_streamed(tmp_path, chunk_rows)) == 40


def test_the_header_is_found_below_a_title_and_empty_rows(tmp_path):
    path = typed_book(tmp_path, above=[[], [], []])
    assert fast_sheet(path) is not None
    assert same_as_streamed(tmp_path)[0].index[0] == 5


def test_a_header_row_under_a_title(tmp_path):
    path = typed_book(tmp_path, above=[["Sales, 2024"], []])
    assert fast_sheet(path, header_row=3) is not None
    assert fast_sheet(path) is None  # the title is the first row: the cell-by-cell reader decides
    assert same_as_streamed(tmp_path, header_row=3)[0].index[0] == 4


def declining(tmp_path: Path, header: list, cells: list) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    for row in cells:
        ws.append(row)
    return save(wb, tmp_path)


@pytest.mark.parametrize(
    "header, cells",
    [
        (["a", "b"], [[1, "x"], ["y", 2.5]]),  # mixed columns: text, written as a person would
        (["a", "b"], [[dt.time(8, 30), 1]]),  # a time of day: text
        (["a", "b"], [[dt.timedelta(hours=30), 1]]),  # a duration: text
        (["a", "b"], [[True, 1], [2, 1]]),  # booleans and numbers
        (["a", None, "c"], [[1, 2, 3]]),  # a header cell left empty: named by its letter
        (["a", "a", "a_2"], [[1, 2, 3]]),  # repeated names
        ([" a ", "b"], [[1, 2]]),  # padded name
        ([1.5, 2], [[1, 2]]),  # numbers as names
    ],
    ids=["mixed", "time", "duration", "bool-number", "empty-header", "repeated", "padded", "numbers"],
)
def test_sheets_the_fast_path_cannot_type_exactly_are_read_cell_by_cell(tmp_path, header, cells):
    path = declining(tmp_path, header, cells)
    assert fast_sheet(path) is None
    same_as_streamed(tmp_path)


def test_merged_cells_and_error_cells_are_read_cell_by_cell(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["region", "town", "n"])
    ws.append(["North", "Enfield", 1])
    ws.append([None, "Suffield", 2])
    ws.merge_cells("A2:A3")
    save(wb, tmp_path)
    assert fast_sheet(tmp_path / "book.xlsx") is None
    assert rows(pd.concat(same_as_streamed(tmp_path))) == [["North", "Enfield", 1], ["North", "Suffield", 2]]


def test_a_stray_far_cell_deep_in_a_long_sheet_is_still_found(tmp_path):
    """The quick scan only checks most of the sheet's cells: one outside its box is decoded."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(["id", "name"])
    for i in range(30_000):  # about 1.5 MB of XML: several buffers after the first
        ws.append([i, f"n{i}"])
    ws["XFD1048576"] = "x"
    path = save(wb, tmp_path)
    member = sheet_members(path)["Data"]
    with zipfile.ZipFile(path) as z:
        xml = z.read(member)
    assert xml.rindex(b'<c r="XFD1048576"') > 1 << 20
    exact, quick = scan_sheet(path, member), scan_sheet(path, member, quick=True)
    assert exact.last == (1_048_575, 16_383) and quick.cells >= exact.cells
    with pytest.raises(RunFailed, match="has a cell as far as XFD1048576"):
        read_chunks(tmp_path, engine="calamine")


def test_a_fast_read_keeps_the_source_label_and_the_sheet_column(tmp_path):
    wb = openpyxl.Workbook()
    a = wb.active
    a.title = "2023"
    a.append(["id", "amount"])
    a.append([1, 10])
    b = wb.create_sheet("2024")
    b.append(["id", "amount", "note"])
    b.append([2, 20.5, "late"])
    path = save(wb, tmp_path)
    assert fast_sheet(path, "2023") is not None and fast_sheet(path, "2024") is not None
    frame = pd.concat(same_as_streamed(tmp_path, sheets="*"))
    assert rows(frame) == [["2023", 1, 10.0, None], ["2024", 2, 20.5, "late"]]
    assert make_ctx(tmp_path).run.chunk_rows == 50_000


def test_a_row_written_out_of_order_far_down_the_xml_is_not_missed(tmp_path):
    """The header is the first filled row, wherever its row is written in the sheet's XML."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append([])
    ws.append(["id", "name"])
    for i in range(30_000):
        ws.append([i, f"n{i}"])
    path = save(wb, tmp_path)
    member = sheet_members(path)["Data"]
    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    title = b'<row r="1"><c r="A1" t="inlineStr"><is><t>Sales</t></is></c></row>'
    parts[member] = parts[member].replace(b"</sheetData>", title + b"</sheetData>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    assert fast_sheet(path) is None
    frame = pd.concat(read_chunks(tmp_path))
    assert list(frame.columns) == ["Sales", "B"] and frame.index[0] == 2
    assert rows(frame.head(1)) == [["id", "name"]]


def test_the_scan_s_reading_thread_hands_over_every_piece_and_error_and_stops_with_its_reader():
    assert list(prefetched(iter([b"a", b"b", b"c"]), depth=1)) == [b"a", b"b", b"c"]

    def broken():
        yield b"a"
        raise zipfile.BadZipFile("Bad CRC-32 for file 'xl/worksheets/sheet1.xml'")

    with pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"):
        list(prefetched(broken()))
    made = []

    def endless():
        while True:
            made.append(1)
            yield b"x"

    pieces = prefetched(endless(), depth=2)
    assert next(pieces) == b"x"
    pieces.close()  # the thread stops: it makes no more than the queue holds
    assert len(made) <= 5
    assert not [t for t in threading.enumerate() if t.name == "xml-prefetch"]


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_a_sheet_s_xml_is_inflated_exactly_in_bounded_pieces_and_damage_is_refused(tmp_path, method):
    path = tmp_path / "book.xlsx"
    xml = b"<sheetData>" + b"<!--" + b" " * 3_000_000 + b"-->" + b'<c r="A1"><v>1</v></c>' * 50_000 + b"</sheetData>"
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr("xl/worksheets/sheet1.xml", xml)
    pieces = list(member_chunks(path, "xl/worksheets/sheet1.xml"))
    assert b"".join(pieces) == xml and max(map(len, pieces)) <= 1 << 18
    data = bytearray(path.read_bytes())
    at = data.index(b"<v>1</v>") if method == zipfile.ZIP_STORED else len(data) // 2
    data[at + 3] ^= 0x01
    path.write_bytes(data)
    with pytest.raises((zipfile.BadZipFile, zlib.error)):
        b"".join(member_chunks(path, "xl/worksheets/sheet1.xml"))
    with pytest.raises(KeyError):
        list(member_chunks(path, "xl/worksheets/sheet9.xml"))


def test_sheets_are_counted_as_excel_counts_them_chart_sheets_and_hidden_ones_too(tmp_path):
    from openpyxl.chart import BarChart, Reference

    wb = openpyxl.Workbook()
    data = wb.active
    data.title = "Data"
    data.append(["a", "b"])
    data.append([1, 2])
    chart = wb.create_chartsheet("Chart")
    bars = BarChart()
    bars.add_data(Reference(data, min_col=1, min_row=1, max_row=2))
    chart.add_chart(bars)
    hidden = wb.create_sheet("Hidden")
    hidden.append(["x"])
    hidden.append([7])
    hidden.sheet_state = "hidden"
    wb.move_sheet("Chart", offset=-1)
    path = save(wb, tmp_path)
    assert fast_sheet(path, "Hidden") is not None
    assert rows(pd.concat(same_as_streamed(tmp_path, sheet=3))) == [[7]]
    assert rows(pd.concat(same_as_streamed(tmp_path, sheet=2))) == [[1, 2]]
    assert rows(pd.concat(same_as_streamed(tmp_path, sheets="*"))) == [["Data", 1, 2, None], ["Hidden", None, None, 7]]


def test_the_sheet_scanned_is_the_sheet_read_when_a_chart_sheet_comes_first(tmp_path):
    """sheet: 2 is the second sheet counting chart sheets, for the scan as for calamine."""
    from openpyxl.chart import BarChart, Reference

    wb = openpyxl.Workbook()
    data = wb.active
    data.title = "Data"
    data.append(["a"])
    data.append([1])
    data["XFD1048576"] = "x"
    small = wb.create_sheet("Small")
    small.append(["b"])
    small.append([2])
    chart = wb.create_chartsheet("Chart")
    bars = BarChart()
    bars.add_data(Reference(small, min_col=1, min_row=1, max_row=2))
    chart.add_chart(bars)
    wb.move_sheet("Chart", offset=-2)
    save(wb, tmp_path)
    with pytest.raises(RunFailed, match="sheet 'Data' has a cell as far as XFD1048576"):
        read_chunks(tmp_path, engine="calamine", sheet=2)
    assert rows(pd.concat(same_as_streamed(tmp_path, sheet=3))) == [[2]]


def sheet_xml(columns: int, rows: int, extra: str = "") -> bytes:
    cells = "".join(
        f'<row r="{r}">' + "".join(f'<c r="{column_letters(c)}{r}"><v>{c}</v></c>' for c in range(columns)) + "</row>"
        for r in range(1, rows + 1)
    )
    return f"<worksheet><sheetData>{cells}{extra}</sheetData></worksheet>".encode()


@pytest.mark.parametrize(
    "columns, rows, extra, box",
    [
        (13, 8_000, "", (999_999, 24)),
        (40, 3_000, "", (199_999, 104)),
        (300, 400, "", (29_999, 702)),
        (800, 150, "", (0, 0)),  # wider than every box: every cell decoded
        (13, 8_000, '<row r="500000"><c r="B500000"><v>1</v></c></row>', (999_999, 24)),
        (40, 3_000, '<row r="250000"><c r="A250000"><v>1</v></c></row>', (199_999, 104)),
        (40, 3_000, '<row r="9"><c r="ZZZ9"><v>1</v></c></row>', (199_999, 104)),
        (13, 8_000, '<row r="9"><c t="n" r="C9"><v>1</v></c></row>', (999_999, 24)),
    ],
    ids=["narrow", "wide", "wider", "widest", "far-row", "far-row-wide", "far-column", "irregular"],
)
def test_the_quick_scan_never_says_less_than_the_exact_one(columns, rows, extra, box):
    """A quick scan's grid is at least the exact grid (over calamine's limit, the engine choice
    scans again, exactly, for the message)."""
    xml = sheet_xml(columns, rows, extra)
    assert len(xml) > 3 << 18  # several buffers
    exact = scan_stream(io.BytesIO(xml), Extent())
    quick = scan_stream(io.BytesIO(xml), Extent(), quick=True)
    assert (quick.first, quick.box, quick.irregular) == (exact.first, box, exact.irregular)
    assert quick.cells >= exact.cells
    assert quick.bounded == (box != (0, 0))
