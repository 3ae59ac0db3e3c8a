"""Hostile and broken workbooks: a stray cell in XFD1048576, a 110 MB comment, a 3 MB cell.

Each ends in seconds with a clean result or a message naming the file, the sheet and the cell,
with every engine, through the real `route` command, also under `route schedule` beside another
route. The workbooks are built here, with openpyxl and zipfile.
"""

from __future__ import annotations

import csv
import io
import os
import textwrap
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipeline.sources.excel_extent import Extent, scan_stream
from pipeline.sources.excel_xml import TokenTooLong, clean_pieces, raw_chunks

TESTS = Path(__file__).resolve().parents[1]
SHEET = "xl/worksheets/sheet1.xml"
FAR_WARNING = (
    "warning: far.xlsx: sheet 'Data' has a cell as far as XFD1048576 (dimension A1:XFD1048576): "
    "its cells span 1,048,576 rows x 16,384 columns, too many for the calamine engine (at most "
    "25,000,000 cells), so it is read with openpyxl, which holds only the cells that have values. "
    "If XFD1048576 is a stray, set range to leave it out."
)
FAR_ERROR = (
    "far.xlsx: sheet 'Data' has a cell as far as XFD1048576 (dimension A1:XFD1048576): its cells span "
    "1,048,576 rows x 16,384 columns, too many for the calamine engine (at most 25,000,000 cells; "
    "more would abort the run). Use engine: auto or openpyxl, which hold only the cells that have values"
)


# -- workbooks and routes -------------------------------------------------------------------------


def far_cell_book(path: Path) -> Path:
    """Two data rows, and one value in the last cell of the sheet."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(["id", "name"])
    ws.append([1, "a"])
    ws.append([2, "b"])
    ws["XFD1048576"] = "x"
    wb.save(path)
    return path


def rewrite(path: Path, member: str, change) -> Path:
    """Rewrite one part of a workbook with change(bytes) -> bytes."""
    with zipfile.ZipFile(path) as z:
        parts = [(info, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            z.writestr(info.filename, change(data) if info.filename == member else data)
    return path


def small_book(path: Path, shared: bool = False) -> Path:
    """id, name / 1, a; with shared=True the text goes to a shared strings table."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(["id", "name"])
    ws.append([1, "a"])
    wb.save(path)
    if shared:  # openpyxl writes inline strings; move them to xl/sharedStrings.xml
        rewrite(
            path,
            SHEET,
            lambda d: d.replace(b'<c r="A1" t="inlineStr"><is><t>id</t></is></c>', b'<c r="A1" t="s"><v>0</v></c>'),
        )
    return path


def write_route(folder: Path, name: str, source: str, schedule: bool = False) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: {name}
        {'schedule: "* * * * *"' if schedule else ""}
        source: {source}
        targets:
          - name: out
            deliver: {{csv: {{path: out-{name}.csv}}}}
        """)
    )
    return path


def delivered(folder: Path, name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO((folder / f"out-{name}.csv").read_text())))


def execute(route_cli, route: Path):
    started = time.monotonic()
    result = route_cli("execute", str(route))
    return result, time.monotonic() - started


# -- a value in XFD1048576 --------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["auto", "openpyxl"])
def test_a_far_cell_is_read_as_the_one_value_it_is(tmp_path, route_cli, engine):
    far_cell_book(tmp_path / "far.xlsx")
    route = write_route(tmp_path, "far", f"{{excel: {{path: far.xlsx, engine: {engine}}}}}")
    result, seconds = execute(route_cli, route)
    assert result.exit_code == 0, result.output
    assert delivered(tmp_path, "far") == [["id", "name", "XFD"], ["1", "a", ""], ["2", "b", ""], ["", "", "x"]]
    assert (FAR_WARNING in result.stderr.splitlines()) == (engine == "auto")
    assert seconds < 30


def test_a_far_cell_is_refused_by_calamine_with_the_cell_and_the_engine_to_use(tmp_path, route_cli):
    far_cell_book(tmp_path / "far.xlsx")
    route = write_route(tmp_path, "far", "{excel: {path: far.xlsx, engine: calamine}}")
    result, _ = execute(route_cli, route)
    assert result.exit_code == 1
    assert f"error: {route}:3: source 'excel': {FAR_ERROR}" in result.stderr.splitlines()
    assert not (tmp_path / "out-far.csv").exists()


def test_a_range_leaves_the_far_cell_out(tmp_path, route_cli):
    far_cell_book(tmp_path / "far.xlsx")
    route = write_route(tmp_path, "far", "{excel: {path: far.xlsx, range: 'A1:B3'}}")
    result, _ = execute(route_cli, route)
    assert result.exit_code == 0, result.output
    assert delivered(tmp_path, "far") == [["id", "name"], ["1", "a"], ["2", "b"]]


def test_a_sheet_too_wide_and_long_to_stream_names_its_corner_and_the_option(tmp_path, route_cli):
    """Cells in every column of the first row and one in the last row: 17 billion cells to read."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    for col in range(1, 16385):
        ws.cell(1, col, col)
    ws["A1048576"] = 1
    wb.save(tmp_path / "wide.xlsx")
    route = write_route(tmp_path, "wide", "{excel: {path: wide.xlsx}}")
    result, seconds = execute(route_cli, route)
    assert result.exit_code == 1
    assert (
        f"error: {route}:3: source 'excel': wide.xlsx: sheet 'Data' spans 1,048,575 rows x 16,384 columns "
        f"up to cell XFD1048576, 17,179,852,800 cells to read (at most 200,000,000); set range to the cells "
        f"that hold the data (e.g. range: A1:H5000)"
    ) in result.stderr.splitlines()
    assert seconds < 60


# -- huge tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["auto", "calamine", "openpyxl"])
def test_a_110_mb_comment_is_read_in_seconds(tmp_path, route_cli, engine):
    """auto picks openpyxl for over 100 MB of sheet XML: the comment is dropped as it streams."""
    book = rewrite(
        small_book(tmp_path / "comment.xlsx"),
        SHEET,
        lambda d: d.replace(b"<sheetData>", b"<!-- " + b"A" * 110_000_000 + b" --><sheetData>"),
    )
    assert book.stat().st_size < 200_000
    route = write_route(tmp_path, "comment", f"{{excel: {{path: comment.xlsx, engine: {engine}}}}}")
    result, seconds = execute(route_cli, route)
    assert result.exit_code == 0, result.output
    assert delivered(tmp_path, "comment") == [["id", "name"], ["1", "a"]]
    assert seconds < 30


def test_a_3_mb_cell_is_refused_by_openpyxl_naming_the_cell_and_read_by_calamine(tmp_path, route_cli):
    rewrite(
        small_book(tmp_path / "long.xlsx"), SHEET, lambda d: d.replace(b"<t>a</t>", b"<t>" + b"a" * 3_000_000 + b"</t>")
    )
    route = write_route(tmp_path, "long", "{excel: {path: long.xlsx, engine: openpyxl}}")
    result, seconds = execute(route_cli, route)
    assert result.exit_code == 1
    assert any(
        line.startswith(
            f"error: {route}:3: source 'excel': long.xlsx: sheet 'Data' holds a text or tag longer than 1 MB at byte "
        )
        and line.endswith(
            " of its XML, after cell B2; no spreadsheet program writes one; use engine: "
            "calamine, which reads it in linear time"
        )
        for line in result.stderr.splitlines()
    ), result.stderr
    assert seconds < 30
    route = write_route(tmp_path, "long", "{excel: {path: long.xlsx}}")
    result, _ = execute(route_cli, route)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out-long.csv").read_text() == f'"id","name"\n1,"{"a" * 3_000_000}"\n'


def test_a_huge_comment_in_the_shared_strings_is_refused_by_openpyxl(tmp_path, route_cli):
    book = small_book(tmp_path / "shared.xlsx", shared=True)
    strings = '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>id</t></si></sst>'
    with zipfile.ZipFile(book, "a") as z:
        z.writestr("xl/sharedStrings.xml", strings.replace("<si>", "<!-- " + "A" * 20_000_000 + " --><si>"))
    rewrite(
        book,
        "[Content_Types].xml",
        lambda d: d.replace(
            b"</Types>",
            (
                b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
                b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
            ),
        ),
    )
    rewrite(
        book,
        "xl/_rels/workbook.xml.rels",
        lambda d: d.replace(
            b"</Relationships>",
            (
                b'<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
                b'sharedStrings" Target="sharedStrings.xml"/></Relationships>'
            ),
        ),
    )
    route = write_route(tmp_path, "shared", "{excel: {path: shared.xlsx, engine: openpyxl}}")
    result, seconds = execute(route_cli, route)
    assert result.exit_code == 1
    assert (
        f"error: {route}:3: source 'excel': shared.xlsx: its shared strings (xl/sharedStrings.xml) hold a "
        f"comment longer than 1 MB at byte 71 of its XML: the openpyxl engine would take hours to parse it; "
        f"no spreadsheet program writes one; use engine: calamine, which reads it in linear time"
    ) in result.stderr.splitlines()
    assert seconds < 30
    result, _ = execute(route_cli, write_route(tmp_path, "shared", "{excel: {path: shared.xlsx}}"))
    assert result.exit_code == 0, result.output
    assert delivered(tmp_path, "shared") == [["id", "name"], ["1", "a"]]


# -- under the scheduler ----------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_the_far_cell_route_and_a_route_beside_it_under_the_scheduler(tmp_path, route_cli, isolation):
    far_cell_book(tmp_path / "far.xlsx")
    write_route(tmp_path, "far", "{excel: {path: far.xlsx}}", schedule=True)
    write_route(tmp_path, "refused", "{excel: {path: far.xlsx, engine: calamine}}", schedule=True)
    (tmp_path / "data.csv").write_text("id,v\n1,a\n2,b\n")
    write_route(tmp_path, "beside", "{csv: {path: data.csv}}", schedule=True)
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    result = route_cli("schedule", "--once", "--workers", "3", "--isolation", isolation, str(tmp_path), env=env)
    assert result.exit_code == 1, result.stderr  # one route failed, and said why
    assert (tmp_path / "out-far.csv").exists(), result.stderr
    assert delivered(tmp_path, "far")[-1] == ["", "", "x"]
    assert delivered(tmp_path, "beside") == [["id", "v"], ["1", "a"], ["2", "b"]]
    assert not (tmp_path / "out-refused.csv").exists()
    lines = result.stderr.splitlines()
    assert any("refused: run " in line and " FAILED: " in line and FAR_ERROR in line for line in lines), "\n".join(
        lines
    )
    assert any("far: run " in line and " success: 3 rows read, 0 rejected, 3 delivered" in line for line in lines), (
        "\n".join(lines)
    )
    own = "far: runs in a process of its own despite --isolation thread: its excel source is read by calamine"
    assert any(own in line for line in lines) == (isolation == "thread"), "\n".join(lines)


# -- the pieces ---------------------------------------------------------------------------------


def test_clean_pieces_drops_comments_wherever_the_pieces_break():
    doc = b'<?xml version="1.0"?><a><!-- x <b> --><b>t<![CDATA[<x>]]></b><!----><c/><!-- <!-- --></a>'
    want = b'<?xml version="1.0"?><a><b>t<![CDATA[<x>]]></b><c/></a>'
    for size in range(1, len(doc) + 1):
        pieces = [doc[i : i + size] for i in range(0, len(doc), size)]
        assert b"".join(clean_pieces(pieces)) == want, size
    assert b"".join(clean_pieces([doc], drop_comments=False)) == doc


def test_clean_pieces_refuses_long_tokens_and_doctypes():
    with pytest.raises(TokenTooLong, match="a text or tag longer than 1 MB at byte 0"):
        list(clean_pieces([b"<a>", b"x" * 2_000_000, b"</a>"]))
    with pytest.raises(TokenTooLong, match="a processing instruction longer than 1 MB"):
        list(clean_pieces([b"<a><?pi " + b"x<" * 600_000 + b"?></a>"]))
    with pytest.raises(TokenTooLong, match="a document type declaration at byte 0"):
        list(clean_pieces([b"<!DOCTYPE a [<!ENTITY e 'x'>]><a/>"]))
    seen = []
    doc = io.BytesIO(b"<a>" + b"x" * 2_000_000 + b"</a>")
    assert b"".join(clean_pieces(raw_chunks(doc), on_long=seen.append)).endswith(b"</a>")
    assert [t.kind for t in seen] == ["text or tag"]


def scan(body: str) -> Extent:
    doc = (f'<worksheet xmlns="main"><dimension ref="A1:C3"/><sheetData>{body}</sheetData></worksheet>').encode()
    return scan_stream(io.BytesIO(doc), Extent())


def test_the_scan_finds_the_grid_calamine_would_build():
    e = scan(
        '<row r="2"><c r="B2"><v>1</v></c><c r="C2" s="1"/><c r="D2" s="1"></c></row>'
        '<row r="9"><c r="AB9" t="s"><v>0</v></c></row><!-- <c r="XFD1"><v>1</v></c> -->'
    )
    assert (e.first, e.last, e.declared, e.irregular, e.cells) == ((1, 1), (8, 27), "A1:C3", False, 8 * 27)
    assert e.reach == {"row": "AB9", "column": "AB9"}
    assert scan('<row r="1"><x:c r=\'C7\' t="n"><x:v>1</x:v></x:c></row>').last == (6, 2)  # prefixed, quoted
    assert scan('<row r="1"><c r="A1"><v>1</v></c><c t="n"><v>2</v></c></row>').irregular  # no reference
    assert scan('<row r="1"><c t="n" r="ZZ9"><v>2</v></c></row>').irregular  # r is not first
    assert scan('<row r="1"><c r="A1048577"><v>2</v></c></row>').irregular  # no such cell
