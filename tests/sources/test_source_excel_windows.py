"""The excel source reads a large .xlsx sheet a window at a time (excel_windows.py) and gives exactly
the rows, values, types, row numbers and chunks the openpyxl engine gives, and it declines every
sheet a window could read otherwise than the whole sheet.

The workbooks are written here as XML strings (openpyxl would take a minute to write them), each
with more than WINDOW_BYTES of sheet XML, so each is read in two to four windows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sqlite3
import zipfile
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import pandas as pd
import pytest
from excelkit import make_ctx, read_chunks, rows
from killkit import execute, held_for, kill_when, start

from pipeline.basics.errors import RunFailed
from pipeline.sources import excel_windows
from pipeline.sources.excel import ExcelSource
from pipeline.sources.excel_extent import scan_sheet
from pipeline.sources.excel_sheet import column_letters
from pipeline.sources.excel_sheet_xml import SheetXml
from pipeline.sources.excel_spool import SPOOL_MEMORY, BlockSpool
from pipeline.sources.excel_stream import sheet_members

pytest.importorskip("fastexcel")

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DATE, STAMP = 1, 2  # the cellXfs of a date (numFmtId 14) and a date-time (numFmtId 22)
LARGE_TABLE = 1 << 20  # a shared strings table of more than this is large next to a window (2 MiB)
EPOCH = {False: dt.datetime(1899, 12, 30), True: dt.datetime(1904, 1, 1)}


# -- a tiny .xlsx writer -------------------------------------------------------------------------------


class Empty:
    """A formatted cell without a value: `<c r="B7" s="1"/>`, which every reader skips."""


EMPTY = Empty()


@dataclass
class Writer:
    """Cells and rows as sheet XML; text inline (t="inlineStr") or in a shared strings table."""

    shared: bool = False
    date1904: bool = False
    prefix: str = ""  # an element prefix bound to the main namespace: "x:" writes <x:row>, <x:c>
    strings: dict[str, int] = field(default_factory=dict)

    def cell(self, ref: str, value) -> str:
        p = self.prefix
        if value is None:
            return ""
        if value is EMPTY:
            return f'<{p}c r="{ref}" s="{DATE}"/>'
        if isinstance(value, bool):
            return f'<{p}c r="{ref}" t="b"><{p}v>{int(value)}</{p}v></{p}c>'
        if isinstance(value, (int, float)):
            return f'<{p}c r="{ref}"><{p}v>{value!r}</{p}v></{p}c>'
        if isinstance(value, dt.datetime):
            return f'<{p}c r="{ref}" s="{STAMP}"><{p}v>{self.serial(value)!r}</{p}v></{p}c>'
        if isinstance(value, dt.date):
            return f'<{p}c r="{ref}" s="{DATE}"><{p}v>{self.serial(value)}</{p}v></{p}c>'
        if self.shared:
            index = self.strings.setdefault(value, len(self.strings))
            return f'<{p}c r="{ref}" t="s"><{p}v>{index}</{p}v></{p}c>'
        return f'<{p}c r="{ref}" t="inlineStr"><{p}is>{text(value, p)}</{p}is></{p}c>'

    def serial(self, value: dt.date) -> int | float:
        if not isinstance(value, dt.datetime):
            return (value - EPOCH[self.date1904].date()).days
        return (value - EPOCH[self.date1904]) / dt.timedelta(days=1)

    def row(self, r: int, values: list) -> str:
        """Row `r` (from 1) of `values`, one a column from A; None writes no cell."""
        p = self.prefix
        cells = "".join(self.cell(f"{column_letters(c)}{r}", v) for c, v in enumerate(values))
        return f'<{p}row r="{r}" spans="1:{len(values)}">{cells}</{p}row>'

    def sheet(self, rows: Iterable[str]) -> str:
        p = self.prefix
        ns = f'xmlns:{p[:-1]}="{MAIN}"' if p else f'xmlns="{MAIN}"'
        return (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<{p}worksheet {ns} xmlns:r="{DOC_RELS}">'
            f'<{p}dimension ref="A1"/><{p}sheetViews><{p}sheetView workbookViewId="0"/></{p}sheetViews>'
            f'<{p}sheetFormatPr defaultRowHeight="15"/><{p}sheetData>{"".join(rows)}</{p}sheetData>'
            f'<{p}pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
            f"</{p}worksheet>"
        )

    def table(self) -> str | None:
        """The shared strings part, with a few strings written in rich-text runs."""
        if not self.shared:
            return None
        items = []
        for s, i in self.strings.items():
            if i % 10 == 3 and len(s) > 4:
                items.append(f"<si><r><rPr><b/></rPr>{text(s[:3])}</r><r>{text(s[3:])}</r></si>")
            else:
                items.append(f"<si>{text(s)}</si>")
        n = len(items)
        return f'<sst xmlns="{MAIN}" count="{n}" uniqueCount="{n}">{"".join(items)}</sst>'


def text(value: str, p: str = "") -> str:
    keep = ' xml:space="preserve"' if value != value.strip() else ""
    return f"<{p}t{keep}>{escape(value)}</{p}t>"


STYLES = (
    f'<styleSheet xmlns="{MAIN}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>'
    '</fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="22" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)


def write_book(path: Path, sheets: dict[str, str], writer: Writer) -> Path:
    """A workbook of `sheets` (name -> sheet XML), with the writer's shared strings and date system."""
    table = writer.table()
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = [("/xl/workbook.xml", f"{ct}.sheet.main+xml"), ("/xl/styles.xml", f"{ct}.styles+xml")]
    overrides += [(f"/xl/worksheets/sheet{i}.xml", f"{ct}.worksheet+xml") for i in range(1, len(sheets) + 1)]
    rels = [(f"rId{i}", "worksheet", f"worksheets/sheet{i}.xml") for i in range(1, len(sheets) + 1)]
    rels.append((f"rId{len(sheets) + 1}", "styles", "styles.xml"))
    if table is not None:
        overrides.append(("/xl/sharedStrings.xml", f"{ct}.sharedStrings+xml"))
        rels.append((f"rId{len(sheets) + 2}", "sharedStrings", "sharedStrings.xml"))
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            + "".join(f'<Override PartName="{n}" ContentType="{t}"/>' for n, t in overrides)
            + "</Types>"
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{PKG_RELS}"><Relationship Id="rId1" '
            f'Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{MAIN}" xmlns:r="{DOC_RELS}">'
            + ('<workbookPr date1904="1"/>' if writer.date1904 else "<workbookPr/>")
            + "<sheets>"
            + "".join(f'<sheet name="{n}" sheetId="{i}" r:id="rId{i}"/>' for i, n in enumerate(sheets, 1))
            + "</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PKG_RELS}">'
            + "".join(f'<Relationship Id="{i}" Type="{DOC_RELS}/{t}" Target="{g}"/>' for i, t, g in rels)
            + "</Relationships>"
        ),
        "xl/styles.xml": STYLES,
        **{f"xl/worksheets/sheet{i}.xml": xml for i, xml in enumerate(sheets.values(), 1)},
    }
    if table is not None:
        parts["xl/sharedStrings.xml"] = table
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, data in parts.items():
            z.writestr(name, data.encode())
    return path


# -- the sheets ----------------------------------------------------------------------------------------

HEADER = ["id", "amount", "day", "stamp", "name", "note", "zip", "qty", "ok", "late", "blank"]
NOTES = [
    "Permit {i}: new roof at {n} Main Street, inspected and closed without remarks",
    'Café & "Bistro" <b>not a tag</b> </row> 東京 ✓ {i}',
    "  padded note {i}  ",
    "two lines {i}\nsecond line at {n} Elm Road",
]


def permit(i: int, count: int, pad: int = 0) -> list:
    """The values of data row `i` (from 1) of a sheet of `count` rows: every kind of cell."""
    note = NOTES[0] if i % 11 else NOTES[1 + i // 11 % 3]
    return [
        i,
        None if i % 7 == 0 else i * 1.25 - 20.5,
        dt.date(1990, 1, 1) + dt.timedelta(days=i % 12_000),
        dt.datetime(2020, 1, 1, 8) + dt.timedelta(seconds=i * 3_671),
        None if i % 5 == 0 else f"name {i}",
        note.format(i=i, n=i * 7 % 9_999) + "." * pad,
        f"{6000 + i % 900:05d}",
        None if i % 3 == 0 else i % 50,
        i % 2 == 0,
        i / 4 if i > count * 0.8 else None,  # empty in the first windows, numbers in the last
        None,
    ]


def permit_rows(w: Writer, count: int, top: int = 1, pad: int = 0, values=permit) -> list[str]:
    """The header at row `top`, then `count` data rows, some left out, some formatted but empty."""
    out = [w.row(top, HEADER)]
    for i in range(1, count + 1):
        r = top + i
        if i % 997 == 0:
            continue  # no row at all
        if i % 1_499 == 0:
            out.append(f'<{w.prefix}row r="{r}" ht="20" customHeight="1"/>')  # a row of formatting only
        elif i % 613 == 0:
            out.append(w.row(r, [EMPTY] * len(HEADER)))  # formatted cells, no value
        else:
            out.append(w.row(r, values(i, count, pad)))
    return out


def book(folder: Path, rows: list[str], w: Writer, name: str = "Data") -> Path:
    return write_book(folder / "book.xlsx", {name: w.sheet(rows)}, w)


def xml_size(path: Path, sheet: str = "Data") -> int:
    with zipfile.ZipFile(path) as z:
        return z.getinfo(sheet_members(path)[sheet]).file_size


def windows(path: Path, sheet: str = "Data") -> list[int]:
    """The first row (from 1) of each window excel_windows cuts the sheet's XML into."""
    xml = SheetXml(path, sheet_members(path)[sheet], excel_windows.WINDOW_BYTES)
    return [xml.first_row(part) for part in xml.windows()]


def windowed(path: Path, sheet: str = "Data", header_row: int | None = None, chunk_rows: int = 50_000):
    """What excel_windows makes of the sheet: a Sheet, or None when it declines."""
    member = sheet_members(path)[sheet]
    extent = scan_sheet(path, member, quick=True)
    assert extent.xml_bytes > excel_windows.WINDOW_BYTES
    folder = path.parent / "spool"
    spool = BlockSpool(folder)
    try:
        return excel_windows.read_sheet(path, sheet, member, header_row, extent, chunk_rows, spool)
    finally:
        spool.remove()
        assert not list(folder.glob("excel-*"))  # nor is the workbook of its windows left


def same_as_streamed(folder: Path, chunk_rows: int = 50_000, **options) -> list[pd.DataFrame]:
    """The chunks of engine auto and of engine openpyxl, checked equal frame by frame (rows, values,
    dtypes, row numbers, attrs); no spool file is left once they are read."""
    fast = read_chunks(folder, chunk_rows, engine="auto", **options)
    streamed = read_chunks(folder, chunk_rows, engine="openpyxl", **options)
    same_chunks(fast, streamed)
    assert not spooled(folder)
    return fast


def same_chunks(got: list[pd.DataFrame], want: list[pd.DataFrame]) -> None:
    """assert_frame_equal on each pair of chunks, in fewer calls: each chunk's size, row numbers,
    columns, dtypes and attrs, then the values of all of them at once."""
    assert [len(c) for c in got] == [len(c) for c in want]
    for a, b in zip(got, want):
        assert a.index.equals(b.index) and a.index.dtype == b.index.dtype
        assert a.dtypes.to_dict() == b.dtypes.to_dict() and list(a.columns) == list(b.columns)
        assert a.attrs == b.attrs
    pd.testing.assert_frame_equal(pd.concat(got), pd.concat(want))


def spooled(folder: Path) -> list[Path]:
    """The files the source left under <state>/tmp: spooled blocks, the workbook of the windows."""
    return sorted((folder / ".route" / "tmp").glob("excel-*"))


def no_placeholder(frame: pd.DataFrame) -> bool:
    """No text of the frame holds the private-use character a window's strings were once left as."""
    text_ = frame.select_dtypes(include="string")
    return not any(text_[c].str.contains("\ue000", regex=False).any() for c in text_)


def first_frame(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    frame = pd.concat(chunks)
    frame.attrs = chunks[0].attrs
    return frame


def row_number(xml: str) -> int | None:
    m = re.match(r'<(?:\w+:)?row r="(\d+)"', xml)
    return int(m.group(1)) if m else None


def renumber(xml: str, number: int) -> str:
    """Row XML `xml` moved to row `number`: the row's r= and its cells' references."""
    return re.sub(r'(\br="[A-Z]{0,3})\d+"', rf'\g<1>{number}"', xml)


def in_order(rows: list[str]) -> list[str]:
    """The rows sorted by their row numbers, as Excel would write them."""
    return sorted(rows, key=lambda x: row_number(x) or 0)


# -- inline strings: every kind of cell, chunks of every size ------------------------------------------


@pytest.fixture(scope="module")
def inline_book(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inline")
    w = Writer()
    path = book(folder, permit_rows(w, 9_000, pad=260), w)
    assert len(windows(path)) >= 3
    return path


@pytest.mark.parametrize("chunk_rows", [50_000, 3_000, 7])
def test_an_inline_strings_sheet_is_read_a_window_at_a_time_with_the_chunks_of_openpyxl(inline_book, chunk_rows):
    sheet = windowed(inline_book, chunk_rows=chunk_rows)
    assert sheet is not None and sheet.names == HEADER
    chunks = same_as_streamed(inline_book.parent, chunk_rows)
    same_chunks(read_chunks(inline_book.parent, chunk_rows, engine="calamine"), chunks)
    frame = first_frame(chunks)
    assert frame.attrs == {"source": "book.xlsx[Data]"}
    assert len(frame) == sheet.rows == 9_000 - 9 - 6 - 14  # rows left out, of formatting, of formatted cells
    assert frame.dtypes.astype(str).to_dict() == {
        "id": "int64[pyarrow]",
        "amount": "double[pyarrow]",
        "day": "date32[day][pyarrow]",
        "stamp": "timestamp[us][pyarrow]",
        "name": "string[pyarrow]",
        "note": "string[pyarrow]",
        "zip": "string[pyarrow]",
        "qty": "int64[pyarrow]",
        "ok": "bool[pyarrow]",
        "late": "double[pyarrow]",
        "blank": "string[pyarrow]",
    }
    # each row is at its Excel row number, with the values written there
    assert frame.index.is_monotonic_increasing and frame.index[0] == 2 and frame.index[-1] == 9_001
    assert not {998, 614, 1_500} & set(frame.index)  # left out, formatted cells only, a formatting row
    expected = {i + 1: permit(i, 9_000, pad=260) for i in (1, 11, 22, 33, 4_600, 7_501, 9_000)}
    for r, values in expected.items():
        values[3] = pd.Timestamp(values[3])
        assert rows(frame.loc[[r]])[0] == values, r
    if chunk_rows < 9_000:  # blocks of chunk_rows rows of the sheet, counted from the row under the header
        for chunk in chunks:
            block = (chunk.index[0] - 2) // chunk_rows
            assert ((chunk.index - 2) // chunk_rows == block).all()


# -- shared strings: a small table and a large one -----------------------------------------------------


def repeated(i: int, count: int, pad: int = 0) -> list:
    """permit's values with few distinct strings: a small shared strings table."""
    values = permit(i, count, pad)
    values[4] = None if i % 5 == 0 else f"name {i % 300}"
    values[5] = NOTES[i % 4].format(i=i % 40, n=i % 40 * 7)
    return values


@pytest.fixture(scope="module", params=["small-table", "large-table"])
def shared_book(tmp_path_factory, request) -> Path:
    folder = tmp_path_factory.mktemp(request.param)
    w = Writer(shared=True)
    values = repeated if request.param == "small-table" else permit
    path = book(folder, permit_rows(w, 9_000, values=values), w)
    with zipfile.ZipFile(path) as z:
        table = z.getinfo("xl/sharedStrings.xml").file_size
    assert (table > LARGE_TABLE) == (request.param == "large-table")
    assert len(windows(path)) >= 2
    return path


def test_a_shared_strings_sheet_gives_every_string_in_every_window(shared_book):
    assert windowed(shared_book) is not None
    frame = first_frame(same_as_streamed(shared_book.parent))
    assert no_placeholder(frame)
    values = repeated if "small" in shared_book.parent.name else permit
    want = [values(r - 1, 9_000) for r in frame.index]
    assert frame["name"].tolist() == [v[4] if v[4] is not None else pd.NA for v in want]
    assert frame["note"].tolist() == [v[5] for v in want]  # some written in rich-text runs
    assert frame["zip"].tolist() == [v[6] for v in want]


# -- a column's kind changes from one window to the next -----------------------------------------------


def changing(switch: int):
    """permit's values, with zip, qty, day and ok of another kind from the sheet row `switch` on."""

    def values(i: int, count: int, pad: int = 0) -> list:
        v = permit(i, count, pad)
        if i + 1 < switch:
            v[6] = 6000 + i % 900  # zip: numbers
        else:
            v[2] = dt.datetime.combine(v[2], dt.time(12, 30))  # day: date-times after dates
            v[7] = None if v[7] is None else v[7] + 0.5  # qty: fractions after whole numbers
            v[8] = "yes" if v[8] else "no"  # ok: text after booleans
        return v

    return values


def test_a_column_of_numbers_in_the_first_windows_and_text_in_the_last_is_text(tmp_path):
    w = Writer()
    path = book(tmp_path, permit_rows(w, 7_000, pad=260, values=changing(10**9)), w)
    switch = windows(path)[-1]  # the last window's first row
    w = Writer()
    path = book(tmp_path, permit_rows(w, 7_000, pad=260, values=changing(switch)), w)
    assert windows(path)[-1] == switch and switch > 2  # the other kinds start the last window
    assert windowed(path) is not None
    frame = first_frame(same_as_streamed(tmp_path, 1_000))
    assert frame.dtypes.astype(str)[["zip", "qty", "day", "ok"]].tolist() == [
        "string[pyarrow]",
        "double[pyarrow]",
        "timestamp[us][pyarrow]",
        "string[pyarrow]",
    ]
    assert rows(frame.loc[[2, switch + 1], ["zip", "qty", "day", "ok"]]) == [
        ["6001", 1.0, pd.Timestamp(1990, 1, 2), "false"],
        [
            f"{6000 + switch % 900:05d}",
            (switch % 50) + 0.5 if switch % 3 else None,
            pd.Timestamp(dt.date(1990, 1, 1) + dt.timedelta(days=switch)) + pd.Timedelta("12:30:00"),
            "no" if switch % 2 else "yes",
        ],
    ]


# -- sheets a window could read otherwise: declined, and read whole ------------------------------------


def base_rows(w: Writer) -> list[str]:
    return permit_rows(w, 5_000, pad=260)


@pytest.fixture(scope="module")
def last_window(tmp_path_factory) -> int:
    """The first row of the last of base_rows' windows."""
    w = Writer()
    found = windows(book(tmp_path_factory.mktemp("base"), base_rows(w), w))
    assert len(found) >= 2
    return found[-1]


def place(rows_: list[str], number: int) -> int:
    """The place in `rows_` of the row numbered `number`."""
    return next(k for k, xml in enumerate(rows_) if row_number(xml) == number)


def text_in_amount(rows_: list[str], at: int, value: str) -> None:
    rows_[at] = re.sub(
        r'<c r="B(\d+)"><v>[^<]*</v></c>', rf'<c r="B\1" t="inlineStr"><is><t>{value}</t></is></c>', rows_[at]
    )
    assert value in rows_[at]


def mixed(rows_: list[str], at: int) -> None:
    text_in_amount(rows_, at, "pending")  # fastexcel refuses the column


def null_like(rows_: list[str], at: int) -> None:
    text_in_amount(rows_, at, "n/a")  # fastexcel reads it as null: fewer cells given than written


def stray(rows_: list[str], at: int) -> None:
    rows_[at] = rows_[at].replace("</row>", f'<c r="L{row_number(rows_[at])}"><v>1</v></c></row>')


def comment(rows_: list[str], at: int) -> None:
    rows_.insert(at, '<!-- checked </row><row r="3"><c r="A3"><v>1</v></c></row> -->')


def instruction(rows_: list[str], at: int) -> None:
    rows_.insert(at, "<?mso-note keep?>")


def cdata(rows_: list[str], at: int) -> None:
    rows_[at] = rows_[at].replace("<t>", "<t><![CDATA[a </row> b]]>", 1)


def error(rows_: list[str], at: int) -> None:
    rows_[at] = re.sub(r'<c r="B(\d+)"><v>[^<]*</v></c>', r'<c r="B\1" t="e"><v>#N/A</v></c>', rows_[at])


def uncalculated(rows_: list[str], at: int) -> None:
    """A formula saved without its cached value: a cell closed (</c>) that holds nothing."""
    rows_[at] = re.sub(r'<c r="B(\d+)"><v>[^<]*</v></c>', r'<c r="B\1"><f>A\1*2</f></c>', rows_[at])


@pytest.mark.parametrize(
    "change",
    [mixed, null_like, stray, comment, instruction, cdata, error, uncalculated],
    ids=[
        "mixed-in-a-window",
        "n/a-among-numbers",
        "cell-past-the-header",
        "comment",
        "processing-instruction",
        "cdata",
        "error-cell",
        "formula-without-value",
    ],
)
def test_a_sheet_a_window_could_read_otherwise_is_declined_and_read_whole(tmp_path, last_window, change):
    w = Writer()
    rows_ = base_rows(w)
    at = place(rows_, last_window + 101)
    change(rows_, at)
    assert rows_[at] != base_rows(Writer())[at]
    path = book(tmp_path, rows_, w)
    assert windowed(path) is None
    frame = first_frame(same_as_streamed(tmp_path, 2_000))
    assert len(frame) == 5_000 - 5 - 3 - 8


# -- text fastexcel takes for a number: "NaN", "n/a" ---------------------------------------------------
# fastexcel (0.21, dtype_coercion strict) reads a text "nan"/"NaN" among numbers as the float NaN,
# and "n/a", "N/A", "#N/A", "NA", "null", "NULL", "None" among numbers, dates or booleans as null,
# where it refuses any other text. The cell count check catches the nulls, but not a NaN (a value),
# and it is not made on the first window when header_row is given under other rows.


def test_a_nan_text_among_numbers_in_a_later_window_is_text_as_openpyxl_reads_it(tmp_path, last_window):
    w = Writer()
    rows_ = base_rows(w)
    text_in_amount(rows_, place(rows_, last_window + 101), "NaN")
    book(tmp_path, rows_, w)
    frame = first_frame(same_as_streamed(tmp_path, 2_000))
    assert frame.loc[last_window + 101, "amount"] == "NaN"


def test_a_na_text_among_numbers_under_a_given_header_row_is_text_as_openpyxl_reads_it(tmp_path):
    w = Writer()
    rows_ = [w.row(1, ["Permits issued, 2024"]), *permit_rows(w, 5_000, top=3, pad=260)]
    text_in_amount(rows_, place(rows_, 1_001), "n/a")  # in the first window
    book(tmp_path, rows_, w)
    frame = first_frame(same_as_streamed(tmp_path, 2_000, header_row=3))
    assert frame.loc[1_001, "amount"] == "n/a"


# -- rows out of order ---------------------------------------------------------------------------------


def moved_to_the_end(rows_: list[str], last_window: int) -> None:
    rows_.append(rows_.pop(place(rows_, 501)))


def first_of_a_window_moved_up(rows_: list[str], last_window: int) -> None:
    """The last window's first row written as row 3989 (left out in order), the same length of XML."""
    at = place(rows_, last_window)
    assert len(str(last_window)) == 4 and 3_989 not in map(row_number, rows_)
    rows_[at] = renumber(rows_[at], 3_989)


def swapped_in_a_window(rows_: list[str], last_window: int) -> None:
    at = place(rows_, last_window + 101)
    rows_[at], rows_[at + 1] = rows_[at + 1], rows_[at]


@pytest.mark.parametrize(
    "change, declined",
    [(moved_to_the_end, True), (first_of_a_window_moved_up, True), (swapped_in_a_window, None)],
    ids=["moved-to-the-end", "first-of-a-window-moved-up", "swapped-in-a-window"],
)
def test_rows_out_of_order_give_the_rows_of_the_sheet_written_in_order(tmp_path, last_window, change, declined):
    """The oracle is the openpyxl engine reading the same rows written in order: given rows out of
    order, it numbers them in the order written (excel_stream.StreamSheet) and stops at the row
    written last."""
    w = Writer()
    rows_ = base_rows(w)
    change(rows_, last_window)
    path = book(tmp_path / "shuffled", rows_, w)
    book(tmp_path / "sorted", in_order(rows_), w)
    if declined:
        assert windowed(path) is None
    got = read_chunks(tmp_path / "shuffled", 2_000, engine="auto")
    same_chunks(got, read_chunks(tmp_path / "sorted", 2_000, engine="openpyxl"))
    assert not spooled(tmp_path / "shuffled")


# -- the header row: given under a title, found under empty rows; the 1904 date system -----------------


@pytest.fixture(scope="module")
def titled_book(tmp_path_factory) -> Path:
    w = Writer()
    rows_ = [w.row(1, ["Permits issued, 2024"]), *permit_rows(w, 5_000, top=3, pad=260)]
    return book(tmp_path_factory.mktemp("titled"), rows_, w)


def test_a_header_row_under_a_title_is_read_a_window_at_a_time(titled_book):
    assert windowed(titled_book, header_row=3) is not None
    frame = first_frame(same_as_streamed(titled_book.parent, 3_000, header_row=3))
    assert list(frame.columns) == HEADER and frame.index[0] == 4 and frame.index[-1] == 5_003
    assert frame.loc[4, "id"] == 1 and frame.loc[5_003, "id"] == 5_000


def test_without_a_header_row_the_title_is_the_header_as_openpyxl_reads_it(titled_book):
    assert windowed(titled_book) is None  # fastexcel names the columns under no title otherwise
    frame = first_frame(same_as_streamed(titled_book.parent))
    assert list(frame.columns[:2]) == ["Permits issued, 2024", "B"] and frame.index[0] == 3


def test_a_header_row_in_a_later_window_is_declined_and_read_whole(titled_book, last_window):
    header_row = last_window + 100  # below the title the rows are as in base_rows, two rows down
    assert windowed(titled_book, header_row=header_row) is None
    frame = first_frame(same_as_streamed(titled_book.parent, 2_000, header_row=header_row))
    assert frame.index[0] == header_row + 1


def test_dates_of_a_1904_workbook_and_a_header_under_empty_rows(tmp_path):
    w = Writer(date1904=True)
    path = book(tmp_path, permit_rows(w, 6_000, top=3, pad=260), w)
    assert windowed(path) is not None
    frame = first_frame(same_as_streamed(tmp_path))
    assert frame.index[0] == 4
    assert frame.loc[4, "day"] == dt.date(1990, 1, 2)
    assert frame.loc[5_000, "stamp"] == pd.Timestamp(dt.datetime(2020, 1, 1, 8) + dt.timedelta(seconds=4_997 * 3_671))


# -- windows with no value: formatted rows between the data and after it -------------------------------


def test_windows_of_formatted_empty_rows_between_and_after_the_data(tmp_path):
    w = Writer()
    data = base_rows(w)
    before = [xml for xml in data if row_number(xml) <= 2_500]
    after = [renumber(xml, row_number(xml) + 100_000) for xml in data if row_number(xml) > 2_500]
    formatting = [f'<row r="{r}" ht="20" customHeight="1"/>' for r in range(2_501, 72_501)]  # no cell at all
    formatted = [w.row(r, [EMPTY] * 3) for r in range(80_001, 95_001)]  # formatted cells, no value
    trailing = [w.row(r, [EMPTY]) for r in range(110_001, 125_001)]
    path = book(tmp_path, [*before, *formatting, *formatted, *after, *trailing], w)
    assert len(windows(path)) >= 4
    assert windowed(path) is not None
    frame = first_frame(same_as_streamed(tmp_path, 2_000))
    assert len(frame) == 5_000 - 5 - 3 - 8
    assert frame.index[frame.index > 2_500][0] > 100_000


# -- element prefixes ----------------------------------------------------------------------------------


def test_a_sheet_written_with_element_prefixes_gives_the_rows_of_openpyxl(tmp_path):
    w = Writer(prefix="x:")
    path = book(tmp_path, base_rows(w), w)
    with zipfile.ZipFile(path) as z:
        assert b"<x:row " in z.read("xl/worksheets/sheet1.xml")
    windowed(path)  # a Sheet or None: either way the rows below
    frame = first_frame(same_as_streamed(tmp_path, 2_000))
    assert len(frame) == 5_000 - 5 - 3 - 8 and frame.loc[2, "name"] == "name 1"


# -- the spool: typed blocks over SPOOL_MEMORY go to a file, which is always removed -------------------


@pytest.fixture(scope="module")
def long_text_book(tmp_path_factory) -> Path:
    """About 40 MB of long text cells: more typed blocks than the spool holds in memory."""
    w = Writer()
    rows_ = [w.row(1, ["id", "memo", "body", "n"])]
    for i in range(1, 2_401):
        rows_.append(w.row(i + 1, [i, f"memo {i} " + "m" * 8_000, f"body {i} " + "b" * (8_000 + i), i / 2]))
    path = book(tmp_path_factory.mktemp("long"), rows_, w)
    assert xml_size(path) > SPOOL_MEMORY + excel_windows.WINDOW_BYTES
    return path


def test_validate_reads_the_columns_and_close_removes_the_spool_file(long_text_book):
    folder = long_text_book.parent
    source = ExcelSource({"path": "book.xlsx"}, make_ctx(folder, 500))
    assert source.columns() == ["id", "memo", "body", "n"]
    assert [p.suffix for p in spooled(folder)] == [".arrows"]  # the blocks went to a file
    source.close()
    assert not spooled(folder)


def test_a_run_stopped_after_one_chunk_removes_the_spool_file(long_text_book):
    folder = long_text_book.parent
    source = ExcelSource({"path": "book.xlsx"}, make_ctx(folder, 500))
    chunks = source.chunks()
    assert len(next(chunks)) == 500
    assert [p.suffix for p in spooled(folder)] == [".arrows"]
    source.close()  # what the executor does when it stops reading
    chunks.close()
    assert not spooled(folder)


def test_blocks_read_back_from_the_spool_file_are_the_rows_of_openpyxl(long_text_book):
    folder = long_text_book.parent
    assert windowed(long_text_book, chunk_rows=500) is not None
    source = ExcelSource({"path": "book.xlsx"}, make_ctx(folder, 500))
    chunks = source.chunks()
    got = [next(chunks)]
    assert [p.suffix for p in spooled(folder)] == [".arrows"]  # every window read, its blocks in the file
    got += list(chunks)
    assert not spooled(folder)
    same_chunks(got, read_chunks(folder, 500, engine="openpyxl"))
    assert [len(c) for c in got] == [500] * 4 + [400]  # rows 2 to 501, 502 to 1001, ...
    assert got[-1].loc[2_401, "body"] == "body 2400 " + "b" * 10_400


def test_a_sheet_declined_after_its_blocks_went_to_the_file_leaves_no_file(tmp_path):
    """A text in the number column of the last window: declined once the file holds the blocks."""
    w = Writer()
    rows_ = [w.row(1, ["id", "memo", "n"])]
    for i in range(1, 4_801):
        rows_.append(w.row(i + 1, [i, f"memo {i} " + "m" * 8_000, "pending" if i == 4_790 else i / 2]))
    path = book(tmp_path, rows_, w)
    assert windowed(path, chunk_rows=500) is None
    source = ExcelSource({"path": "book.xlsx"}, make_ctx(tmp_path, 500))
    assert source.columns() == ["id", "memo", "n"]
    assert not spooled(tmp_path)
    source.close()
    frame = first_frame(same_as_streamed(tmp_path, 500))
    assert frame.loc[4_791, "n"] == "pending" and frame.loc[2, "n"] == "0.5"


# -- sheets stacked: a windowed sheet between small ones -----------------------------------------------


@pytest.mark.parametrize("notes_mixed", [False, True], ids=["all-fast", "a-small-sheet-read-cell-by-cell"])
def test_sheets_stacked_with_windowed_ones_give_the_rows_of_openpyxl(tmp_path, notes_mixed):
    """Small, Data (windowed), Again (windowed, its columns in another order) and Notes: a sheet
    read cell by cell (Notes, mixed) makes the source read them all so, its spools removed."""
    w = Writer()
    small = w.sheet([w.row(1, ["id", "extra"]), w.row(2, [1, "a"]), w.row(3, [2, "b"])])
    data = w.sheet(base_rows(w))
    again = w.sheet([w.row(1, ["memo", "id"]), *(w.row(r, [f"again {r}" + "." * 400, r]) for r in range(2, 6_002))])
    notes = w.sheet([w.row(1, ["id", "memo"]), w.row(2, [9_001, "late"]), w.row(3, [9_002, 3 if notes_mixed else "x"])])
    path = write_book(tmp_path / "book.xlsx", {"Small": small, "Data": data, "Again": again, "Notes": notes}, w)
    assert windowed(path, "Data") is not None and windowed(path, "Again") is not None
    frame = first_frame(same_as_streamed(tmp_path, 2_000, sheets="*"))
    assert list(frame.columns) == ["sheet", "id", "extra", *HEADER[1:], "memo"]
    assert frame["sheet"].value_counts().to_dict() == {
        "Data": 5_000 - 5 - 3 - 8,
        "Again": 6_000,
        "Small": 2,
        "Notes": 2,
    }
    assert frame[frame["sheet"] == "Again"]["id"].tolist() == list(range(2, 6_002))
    small_ones = frame[frame["sheet"].isin(["Small", "Notes"])]
    assert rows(small_ones[["sheet", "id", "extra", "memo"]]) == [
        ["Small", 1, "a", None],
        ["Small", 2, "b", None],
        ["Notes", 9_001, None, "late"],
        ["Notes", 9_002, None, "3" if notes_mixed else "x"],
    ]


def test_the_openpyxl_engine_stops_at_a_row_written_out_of_order(tmp_path):
    """A stream cannot go back to a row number it has passed: the run stops and names the engine
    that can read the sheet, where it once gave rows at the wrong numbers."""
    w = Writer()
    rows_ = permit_rows(w, 40)
    rows_[10], rows_[11] = rows_[11], rows_[10]  # rows 12 and 11 (the header is row 1)
    book(tmp_path, rows_, w)
    with pytest.raises(
        RunFailed, match=r"^book\.xlsx: sheet 'Data' writes its row 11 after row 12: .*Use engine: calamine"
    ):
        read_chunks(tmp_path, engine="openpyxl")
    frame = first_frame(read_chunks(tmp_path, engine="calamine"))
    assert frame.loc[11, "id"] == 10 and frame.loc[12, "id"] == 11


def test_route_execute_delivers_a_sheet_read_a_window_at_a_time(inline_book, write_route, tmp_path):
    """As a publisher runs it, `route execute` in a process of its own: every row reaches the table
    at its type, the window workbook and the spool are gone from the state folder once the run has
    ended, and nothing but the run's own lines is printed (fastexcel notes every empty column)."""
    shutil.copy(inline_book, tmp_path / "permits.xlsx")
    path = write_route("""
        name: permits
        source:
          excel: {path: permits.xlsx}
        targets:
          - name: db
            deliver: {sql: {url: "sqlite:///out.db", table: permits, mode: replace}}
    """)
    result = execute(path, "--json")
    assert result.returncode == 0, result.stderr
    assert "Could not determine dtype" not in result.stderr + result.stdout
    assert json.loads(result.stdout)["rows_read"] == 9_000 - 9 - 6 - 14
    with closing(sqlite3.connect(tmp_path / "out.db")) as conn:
        assert conn.execute("SELECT count(*), min(id), max(id), sum(ok) FROM permits").fetchone() == (
            8_971,
            1,
            9_000,
            4_486,
        )
        assert conn.execute("SELECT zip, qty, day FROM permits WHERE id = 4600").fetchone() == (
            "06100",
            0,
            "2002-08-06",
        )
    assert not [p.name for p in (tmp_path / ".route").rglob("excel-*")]


# -- a sheet whose whole grid calamine cannot hold, but whose windows it can ---------------------------

WIDE = [f"c{i}" for i in range(1, 31)]  # 30 columns: a million rows of them is 30,000,000 cells


def sparse_book(folder: Path, every: int) -> Path:
    """The header, then a row every `every` rows down to row 1,000,000: a grid of 30,000,000 cells
    (more than calamine's 25,000,000) in 2 to 4 MB of XML."""
    w = Writer()
    rows_ = [w.row(1, WIDE)]
    rows_ += [w.row(r, [r * 100 + c for c in range(30)]) for r in range(2, 1_000_001, every)]
    return book(folder, rows_, w)


def test_a_sheet_too_big_for_calamine_whole_is_read_a_window_at_a_time(tmp_path, caplog):
    """A million rows of 30 columns: before, auto streamed it with openpyxl and warned of a stray far
    cell, and engine calamine refused it. Each window's grid is small, so calamine reads it."""
    path = sparse_book(tmp_path, 250)
    extent = scan_sheet(path, sheet_members(path)["Data"])
    assert extent.cells > 25_000_000 and len(windows(path)) >= 2
    spool = BlockSpool(tmp_path / "spool")
    member = sheet_members(path)["Data"]
    assert excel_windows.read_sheet(path, "Data", member, None, extent, 50_000, spool, guard=True) is not None
    spool.remove()
    chunks = same_as_streamed(tmp_path, 100_000)
    assert "openpyxl" not in caplog.text
    frame = pd.concat(chunks)
    assert len(frame) == 4_000 and list(frame.columns) == WIDE
    assert frame.loc[999_752, "c30"] == 999_752 * 100 + 29
    same_chunks(read_chunks(tmp_path, 100_000, engine="calamine"), chunks)


def test_a_window_too_big_for_calamine_still_streams_with_the_warning(tmp_path, caplog):
    """Rows so far apart that the first window alone spans a million rows of 30 columns: declined
    before calamine sees it; auto warns and streams, engine calamine refuses as before."""
    sparse_book(tmp_path, 500)
    chunks = same_as_streamed(tmp_path, 100_000)
    assert len(pd.concat(chunks)) == 2_000
    assert "so it is read with openpyxl" in caplog.text
    with pytest.raises(RunFailed, match=r"too many for the calamine engine .* Use engine: auto or openpyxl"):
        read_chunks(tmp_path, engine="calamine")


def test_a_run_killed_while_it_reads_leaves_no_temporary_file_after_the_next(tmp_path):
    """kill -9 while the window workbook is on disk: the run's journal held it, so the next run of
    the route removes it (and any spool), then delivers every row."""
    w = Writer()
    book(tmp_path, permit_rows(w, 60_000, pad=260), w)
    route = tmp_path / "route.yaml"
    route.write_text(
        "name: permits\nsource:\n  excel: {path: book.xlsx}\ntargets:\n"
        "  - name: db\n    deliver: {sql: {url: 'sqlite:///out.db', table: permits, mode: replace}}\n"
    )
    scratch = tmp_path / ".route"

    def temporary() -> list[Path]:
        return sorted(scratch.rglob("excel-*"))

    proc = start(route)
    kill_when(proc, held_for(lambda: any(p.name.startswith("excel-windows-") for p in temporary()), 0.2))
    assert proc.returncode == -9 and temporary()  # killed while its files were there
    assert not (tmp_path / "out.db").exists() or ("permits",) not in _tables(tmp_path / "out.db")  # nothing published
    again = execute(route)
    assert again.returncode == 0, again.stderr
    assert not temporary()
    with closing(sqlite3.connect(tmp_path / "out.db")) as conn:
        with_values = sum(1 for i in range(1, 60_001) if i % 997 and i % 1_499 and i % 613)  # see permit_rows
        assert conn.execute("SELECT count(*), max(id) FROM permits").fetchone() == (with_values, 60_000)


def _tables(db: Path) -> list:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
