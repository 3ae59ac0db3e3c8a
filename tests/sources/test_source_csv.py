"""The csv source on real files written here: exact rows, line numbers, rejects and messages.

Most tests run on both readers (pyarrow, and Python's csv module used for comments), which must
agree on every file.
"""

from __future__ import annotations

import csv
import logging
import random
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from sourcekit import logged, make_ctx, rejects, rows

from pipeline.basics.context import StepContext
from pipeline.basics.dtypes import TEXT
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.basics.plugins import spec_of
from pipeline.sources import csv_readers, csv_stream
from pipeline.sources.csv import CsvSource

ENGINES = ["pyarrow", "python"]


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


def read(
    tmp_path: Path, content: bytes | str, name: str = "data.csv", chunk_rows: int = 50_000, **options
) -> tuple[list[pd.DataFrame], StepContext]:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    ctx = make_ctx(tmp_path, chunk_rows, step="csv")
    chunks = list(CsvSource({"path": name, **options}, ctx).chunks())
    ctx.run.rejects.close()
    return chunks, ctx


# -- values are text, exactly as written ---------------------------------------------------------


def test_values_are_text_never_guessed(tmp_path, engine):
    chunks, _ = read(tmp_path, "zip,amount,flag,note\n06103,1e5,NA,  padded \n00501,0012.50,TRUE,\n", engine=engine)
    assert rows(chunks) == [
        (2, {"zip": "06103", "amount": "1e5", "flag": "NA", "note": "  padded "}),
        (3, {"zip": "00501", "amount": "0012.50", "flag": "TRUE", "note": None}),
    ]
    assert all(dtype == TEXT for dtype in chunks[0].dtypes)
    assert chunks[0].attrs["source"] == "data.csv"
    assert chunks[0].index.dtype == "int64"


def test_quoted_fields_hold_delimiters_quotes_and_newlines(tmp_path, engine):
    data = 'id,text,n\n1,"a, b",x\n2,"say ""hi""",y\n3,"two\nlines",z\n4,"three\r\nlines\nhere",w\n5,"",v\n'
    chunks, _ = read(tmp_path, data, engine=engine)
    assert rows(chunks) == [
        (2, {"id": "1", "text": "a, b", "n": "x"}),
        (3, {"id": "2", "text": 'say "hi"', "n": "y"}),
        (4, {"id": "3", "text": "two\nlines", "n": "z"}),
        (6, {"id": "4", "text": "three\r\nlines\nhere", "n": "w"}),
        (9, {"id": "5", "text": None, "n": "v"}),
    ]


def test_line_breaks_at_the_edges_of_values(tmp_path, engine):
    # "x\r" then "\ny": a CR ending one value and an LF starting the next are two line breaks.
    chunks, _ = read(tmp_path, 'a,b\n"x\r","\ny"\n3,4\n"\r\n",5\n6,7\n', engine=engine)
    assert rows(chunks) == [
        (2, {"a": "x\r", "b": "\ny"}),
        (5, {"a": "3", "b": "4"}),
        (6, {"a": "\r\n", "b": "5"}),
        (8, {"a": "6", "b": "7"}),
    ]


@pytest.mark.parametrize("pad", range(4))
def test_crlf_inside_a_value_across_read_boundaries(tmp_path, engine, pad, monkeypatch):
    # pyarrow drops the \n of a quoted \r\n split between two reads (apache/arrow#51368).
    monkeypatch.setattr(csv_readers, "PARSE_BLOCK", 64)
    monkeypatch.setattr(csv_stream, "BLOCK", 37)
    data = "a,b\r\n" + ("x" * pad + ',"cr\r\nlf"\r\n') * 40
    chunks, _ = read(tmp_path, data, engine=engine)
    assert rows(chunks) == [(2 + 2 * i, {"a": "x" * pad or None, "b": "cr\r\nlf"}) for i in range(40)]


def test_bom_crlf_and_no_final_newline(tmp_path, engine):
    chunks, _ = read(tmp_path, b'\xef\xbb\xbfcode,town\r\n06103,Hartford\r\n"06510","New\r\nHaven"', engine=engine)
    assert list(chunks[0].columns) == ["code", "town"]
    assert rows(chunks) == [(2, {"code": "06103", "town": "Hartford"}), (3, {"code": "06510", "town": "New\r\nHaven"})]


def test_blank_lines_and_empty_rows_are_no_rows(tmp_path, engine):
    chunks, _ = read(tmp_path, "a,b\n\n1,2\n,\n\r\n  \n3,4\n", engine=engine)
    assert rows(chunks) == [(3, {"a": "1", "b": "2"}), (7, {"a": "3", "b": "4"})]
    assert rejects(tmp_path) == []


def test_null_values(tmp_path, engine):
    chunks, _ = read(tmp_path, 'a,b\nNA,N/A\n"NA",x\nna,\n', null_values=["NA", "N/A"], engine=engine)
    assert rows(chunks) == [(3, {"a": None, "b": "x"}), (4, {"a": "na", "b": None})]


# -- ragged rows are rejected with their line, and reading goes on ----------------------------------


def test_ragged_rows_rejected_with_line_numbers(tmp_path, engine):
    data = (
        "id,name,town,zip\n"
        "1,Ann,Hartford,06103\n"
        '2,"Bob\nJr",Avon\n'  # lines 3-4: 3 fields
        '3,Cy,"New\nHaven",06510\n'  # lines 5-6
        "4,Di,Derby,06418,extra\n"  # line 7: 5 fields
        "5,Ed,Essex,06426\n"
    )  # line 8
    chunks, ctx = read(tmp_path, data, engine=engine)
    assert [line for line, _ in rows(chunks)] == [2, 5, 8]
    assert rejects(tmp_path) == [
        ("3", "line 3 has 3 fields, the header has 4", '2,"Bob\nJr",Avon'),
        ("7", "line 7 has 5 fields, the header has 4", "4,Di,Derby,06418,extra"),
    ]
    assert ctx.rejected == 2


def test_rejected_rows_keep_their_fields(tmp_path, engine):
    read(tmp_path, "a,b\n1,2,3\n", engine=engine)
    with open(tmp_path / "rejects.csv", newline="", encoding="utf-8") as f:
        (rec,) = list(csv.DictReader(f))
    assert (rec["stage"], rec["step"], rec["source"], rec["line"]) == ("source", "csv", "data.csv", "2")
    assert rec["row"] == '{"a":"1","b":"2","column_3":"3"}'


def test_unclosed_quote_stops_the_run(tmp_path, engine):
    data = 'a,b,c\n1,2,3\n4,"five,6\n7,8,9\n'
    with pytest.raises(RunFailed) as err:
        read(tmp_path, data, engine=engine)
    assert str(err.value) == (
        "data.csv: the record starting on line 3 opens a quoted field that is never closed, so the "
        "rest of the file would be read into it; look for a stray quote character there (or set "
        "quote: false if the file does not quote its fields)"
    )


@pytest.mark.parametrize(
    "data, line",
    [
        ('a,b\n1,"2\n3,4\n', 2),  # in the last column: 2 fields
        ('a,b,c\n1,"x\ny",3\n1,2\n4,"five,6\n7,8,9', 5),  # after a break and a bad row
    ],
)
def test_unclosed_quote_names_the_record_line(tmp_path, engine, data, line):
    with pytest.raises(RunFailed, match=f"record starting on line {line} opens a quoted field"):
        read(tmp_path, data, engine=engine)


# -- chunks ----------------------------------------------------------------------------------------


def test_chunks_have_at_most_chunk_rows(tmp_path, engine):
    data = "n\n" + "".join(f"{i}\n" for i in range(7))
    chunks, _ = read(tmp_path, data, chunk_rows=3, engine=engine)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [list(c.index) for c in chunks] == [[2, 3, 4], [5, 6, 7], [8]]


@pytest.mark.parametrize(
    "content,header",
    [("id,name\r\n\ufeff1,Ann\r\n", True), ("\ufeff\ufeff1,Ann\n", False)],
    ids=["after-header", "second-bom"],
)
def test_a_byte_order_mark_in_the_data_is_data(tmp_path, engine, content, header):
    """Only a byte order mark at the start of the file is one; pyarrow would also skip one at the
    start of the data it is given (the first record), the source keeps it there as data."""
    options = {} if header else {"header": False, "names": ["id", "name"]}
    chunks, _ = read(tmp_path, content, engine=engine, **options)
    assert rows(chunks) == [(2 if header else 1, {"id": "\ufeff1", "name": "Ann"})]


@pytest.mark.parametrize("content", [b"\x00\x00", b"\x00\x00\x00\xdc"], ids=["no-bom", "no-bom-bad-pair"])
def test_utf16_without_a_byte_order_mark_is_a_clean_error(tmp_path, engine, content):
    with pytest.raises(RunFailed) as caught:
        read(tmp_path, content, engine=engine, encoding="utf-16")
    assert str(caught.value).startswith("data.csv: ")


@pytest.mark.parametrize("content", ["", "\n\n", "\r\n  \n"])
def test_empty_file_is_an_error_naming_it(tmp_path, engine, content):
    with pytest.raises(RunFailed) as caught:
        read(tmp_path, content, engine=engine)
    assert str(caught.value) == (
        "data.csv is empty: it has no header line (and no rows); a csv source file starts with its header"
    )


def test_empty_file_without_header_yields_nothing(tmp_path, engine):
    chunks, ctx = read(tmp_path, "", engine=engine, header=False)
    assert chunks == []
    assert logged(ctx, logging.WARNING) == ["data.csv is empty: no rows"]


def test_header_only_file_yields_one_empty_chunk(tmp_path, engine):
    chunks, _ = read(tmp_path, "a,b", engine=engine)
    assert len(chunks) == 1 and list(chunks[0].columns) == ["a", "b"] and len(chunks[0]) == 0
    assert all(dtype == TEXT for dtype in chunks[0].dtypes)


def test_columns_reads_only_the_header(tmp_path):
    # An invalid byte 2 MB in would stop a reader that went that far.
    (tmp_path / "data.csv").write_bytes(b"a,,a\n" + b"1,2,3\n" * 400_000 + b"\xff,broken,later\n")
    src = CsvSource({"path": "data.csv", "file_column": "file"}, make_ctx(tmp_path))
    assert src.columns() == ["a", "column_2", "a_2", "file"]


# -- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", ["\t", "tab", "\\t", "TAB"])
def test_tab_delimiter_spellings(tmp_path, delimiter):
    chunks, _ = read(tmp_path, "a\tb\n1,5\t2\n", delimiter=delimiter)
    assert rows(chunks) == [(2, {"a": "1,5", "b": "2"})]


@pytest.mark.parametrize("name", ["data.tsv", "data.TAB"])
def test_tab_is_the_default_for_tsv_files(tmp_path, name):
    chunks, _ = read(tmp_path, "a\tb\n1,5\t2\n", name=name)
    assert rows(chunks) == [(2, {"a": "1,5", "b": "2"})]


def test_non_ascii_delimiter(tmp_path):
    chunks, _ = read(tmp_path, "a§b\n1,5§«x»\n", delimiter="§")
    assert rows(chunks) == [(2, {"a": "1,5", "b": "«x»"})]


def test_semicolons_and_latin1(tmp_path, engine):
    data = 'ville;montant\nSaint-Étienne;1,5\n"Besançon; Doubs";2\n'.encode("latin-1")
    chunks, _ = read(tmp_path, data, delimiter=";", encoding="latin-1", engine=engine)
    assert rows(chunks) == [
        (2, {"ville": "Saint-Étienne", "montant": "1,5"}),
        (3, {"ville": "Besançon; Doubs", "montant": "2"}),
    ]


def test_cp1252(tmp_path, engine):
    chunks, _ = read(tmp_path, "item,price\n“Quoted” café,€5\n".encode("cp1252"), encoding="cp1252", engine=engine)
    assert rows(chunks) == [(2, {"item": "“Quoted” café", "price": "€5"})]


def test_utf16_with_bom(tmp_path, engine):
    chunks, _ = read(tmp_path, 'a,b\r\nÅ,"x\r\ny"\r\n'.encode("utf-16"), encoding="utf-16", engine=engine)
    assert list(chunks[0].columns) == ["a", "b"]
    assert rows(chunks) == [(2, {"a": "Å", "b": "x\r\ny"})]


def test_quote_and_escape_characters(tmp_path, engine):
    data = "a|b\n'x|y'|'it''s'\nback\\|slash|\"plain\"\n"
    chunks, _ = read(tmp_path, data, delimiter="|", quote="'", escape="\\", engine=engine)
    assert rows(chunks) == [(2, {"a": "x|y", "b": "it's"}), (3, {"a": "back|slash", "b": '"plain"'})]


def test_backslash_escaped_quotes(tmp_path, engine):
    chunks, _ = read(tmp_path, 'a,b\n"say \\"hi\\"","x\\\\y"\n', escape="\\", engine=engine)
    assert rows(chunks) == [(2, {"a": 'say "hi"', "b": "x\\y"})]


def test_quote_false_reads_quotes_as_text(tmp_path, engine):
    chunks, _ = read(tmp_path, 'a,b\n"x,y"\n', quote=False, engine=engine)
    assert rows(chunks) == [(2, {"a": '"x', "b": 'y"'})]


def test_header_row(tmp_path, engine):
    data = "Report of 2024\nsource: town clerk\na,b\n1,2\n"
    chunks, _ = read(tmp_path, data, header_row=3, engine=engine)
    assert rows(chunks) == [(4, {"a": "1", "b": "2"})]


def test_skip_rows_then_header(tmp_path, engine):
    data = "junk,junk,junk\nmore junk\n\na,b\n1,2\n"
    chunks, _ = read(tmp_path, data, skip_rows=2, engine=engine)
    assert rows(chunks) == [(5, {"a": "1", "b": "2"})]


def test_no_header_with_names(tmp_path, engine):
    chunks, _ = read(tmp_path, "skip me\n1,2\n3,4,5\n", header=False, names=["x", "y"], skip_rows=1, engine=engine)
    assert rows(chunks) == [(2, {"x": "1", "y": "2"})]
    assert rejects(tmp_path) == [("3", "line 3 has 3 fields, names lists 2", "3,4,5")]


def test_no_header_without_names(tmp_path, engine):
    chunks, _ = read(tmp_path, "\n1,2\n3,4\n", header=False, engine=engine)
    assert rows(chunks) == [(2, {"column_1": "1", "column_2": "2"}), (3, {"column_1": "3", "column_2": "4"})]


def test_empty_and_repeated_header_names(tmp_path, engine):
    chunks, ctx = read(tmp_path, "id,,name,name, \n1,2,3,4,5\n", engine=engine)
    assert list(chunks[0].columns) == ["id", "column_2", "name", "name_2", "column_5"]
    assert logged(ctx, logging.WARNING) == [
        "data.csv: column 2 has no name; it is called column_2",
        "data.csv: column 4 repeats the name 'name'; it is called name_2",
        "data.csv: column 5 has no name; it is called column_5",
    ]


def test_comment_lines(tmp_path):
    data = (
        '# exported 2024-01-01\na,b\n1,2\n# a comment, with "quotes\n3,"x\n# not a comment inside quotes"\n#4,5\n6,7\n'
    )
    chunks, ctx = read(tmp_path, data, comment="#")
    assert rows(chunks) == [
        (3, {"a": "1", "b": "2"}),
        (5, {"a": "3", "b": "x\n# not a comment inside quotes"}),
        (8, {"a": "6", "b": "7"}),
    ]
    assert logged(ctx, logging.DEBUG) == ["data.csv: reading with Python's csv module"]


def test_comments_above_the_header_only_keep_the_fast_reader(tmp_path):
    chunks, ctx = read(tmp_path, "# exported\n#by: clerk\n\na;b\n1;#2\n", comment="#", delimiter=";")
    assert rows(chunks) == [(5, {"a": "1", "b": "#2"})]
    assert logged(ctx, logging.DEBUG) == ["data.csv: reading with pyarrow"]


def test_one_column_header_hints_at_the_delimiter(tmp_path):
    chunks, ctx = read(tmp_path, "a;b;c\n1;2;3\n")
    assert list(chunks[0].columns) == ["a;b;c"]
    assert logged(ctx, logging.WARNING) == [
        "data.csv: the header is one column, 'a;b;c'; if the file is separated by ';', set delimiter: ';'"
    ]


def test_blank_header_row(tmp_path, engine):
    with pytest.raises(RunFailed) as err:
        read(tmp_path, "title\n\na,b\n", header_row=2, engine=engine)
    assert (
        str(err.value) == "data.csv: line 2 is blank, so it cannot be the header; set header_row to the header's line"
    )


def test_file_column_and_glob_in_sorted_order(tmp_path, engine):
    for name, body in [("b.csv", "id,v\n3,c\n"), ("a.csv", "id,v\n1,a\n2,b\n"), ("c.csv", "v,id\nd,4\n")]:
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_text(body)
    ctx = make_ctx(tmp_path)
    chunks = list(CsvSource({"path": "in/*.csv", "file_column": "file", "engine": engine}, ctx).chunks())
    assert [c.attrs["source"] for c in chunks] == ["in/a.csv", "in/b.csv", "in/c.csv"]
    assert rows(chunks) == [
        (2, {"id": "1", "v": "a", "file": "in/a.csv"}),
        (3, {"id": "2", "v": "b", "file": "in/a.csv"}),
        (2, {"id": "3", "v": "c", "file": "in/b.csv"}),
        (2, {"id": "4", "v": "d", "file": "in/c.csv"}),
    ]


def test_glob_files_with_other_columns_fail(tmp_path):
    (tmp_path / "a.csv").write_text("id,v\n1,a\n")
    (tmp_path / "b.csv").write_text("id,w\n2,b\n")
    with pytest.raises(RunFailed) as err:
        list(CsvSource({"path": "*.csv"}, make_ctx(tmp_path)).chunks())
    assert str(err.value) == (
        "b.csv: its columns differ from a.csv's (missing v; extra w); every file "
        "that *.csv matches must have the same columns"
    )


# -- errors a user can cause -----------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(RunFailed) as err:
        list(CsvSource({"path": "data/nope.csv"}, make_ctx(tmp_path)).chunks())
    assert str(err.value) == f"csv source: file not found: data/nope.csv (looked in {tmp_path / 'data'})"


def test_glob_without_match(tmp_path):
    with pytest.raises(RunFailed) as err:
        list(CsvSource({"path": "in/*.csv"}, make_ctx(tmp_path)).chunks())
    assert str(err.value) == f"csv source: no file matches in/*.csv (looked in {tmp_path / 'in'})"


def test_invalid_utf8_names_line_and_byte(tmp_path, engine):
    data = b"a,b\n1,2\n3,caf\xe9\n"
    with pytest.raises(RunFailed) as err:
        read(tmp_path, data, engine=engine)
    assert str(err.value) == (
        "data.csv: line 3, byte offset 13 (0xe9) is not valid utf-8; if the file was saved by Excel "
        "or another Windows program, set encoding: cp1252 (or latin-1)"
    )


def test_invalid_utf8_deep_in_a_large_file(tmp_path):
    data = b"a,b\n" + b"x,y\n" * 400_000 + b"\xc3(,z\n"
    with pytest.raises(RunFailed, match=r"line 400002, byte offset 1600004 \(0xc3\) is not valid utf-8"):
        read(tmp_path, data)


def test_utf16_file_read_as_utf8(tmp_path):
    with pytest.raises(RunFailed) as err:
        read(tmp_path, "a,b\n1,2\n".encode("utf-16"))
    assert str(err.value) == (
        "data.csv: line 1, byte offset 0 (0xff) is not valid utf-8; the file starts "
        "with a UTF-16 byte order mark: set encoding: utf-16"
    )


def test_invalid_cp1252_suggests_latin1(tmp_path):
    with pytest.raises(RunFailed) as err:
        read(tmp_path, b"a\n\x81\n", encoding="cp1252")
    assert str(err.value) == (
        "data.csv: line 2, byte offset 2 (0x81) is not valid cp1252; set encoding: latin-1 (it accepts every byte)"
    )


@pytest.mark.parametrize(
    "options, path, message",
    [
        (
            {"encoding": "klingon"},
            ("encoding",),
            "unknown encoding 'klingon'; use a Python codec name such as utf-8, cp1252, latin-1 or utf-16",
        ),
        ({"encoding": "rot13"}, ("encoding",), "'rot13' is not a text encoding"),
        (
            {"delimiter": ";;"},
            ("delimiter",),
            "delimiter must be one character (or tab, comma, semicolon, pipe, space), not ';;'",
        ),
        ({"delimiter": '"'}, ("quote",), "quote and delimiter are both '\"'; they must differ"),
        (
            {"names": ["a"]},
            ("names",),
            "names is for a file without a header: add header: false (to rename the header's columns, "
            "use the rename rule)",
        ),
        (
            {"header": False, "header_row": 2},
            ("header_row",),
            "header_row needs a header; with header: false use skip_rows",
        ),
        (
            {"header_row": 2, "skip_rows": 1},
            ("skip_rows",),
            "give header_row (the header's line) or skip_rows (lines before the header), not both",
        ),
        ({"comment": "#", "engine": "pyarrow"}, ("engine",), "comment needs engine: python (or auto)"),
        (
            {"delimiter": "§", "engine": "pyarrow"},
            ("engine",),
            "engine: pyarrow reads only ASCII delimiter, quote and escape characters; use engine: auto",
        ),
    ],
)
def test_option_errors(tmp_path, options, path, message):
    with pytest.raises(OptionError) as err:
        CsvSource({"path": "x.csv", **options}, make_ctx(tmp_path))
    assert (str(err.value), err.value.path) == (message, path)


def test_options_schema():
    schema = spec_of(CsvSource).options_schema
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(
        validator.iter_errors(
            {
                "path": "a.csv",
                "delimiter": "tab",
                "quote": False,
                "escape": "\\",
                "header": False,
                "names": ["a"],
                "skip_rows": 1,
                "comment": "#",
                "null_values": ["NA"],
                "file_column": "f",
                "encoding": "cp1252",
            }
        )
    )
    assert [e.message for e in validator.iter_errors({"path": "a.csv", "chunk_rows": 5})] == [
        "Additional properties are not allowed ('chunk_rows' was unexpected)"
    ]


# -- both readers agree with the truth on generated messy files ------------------------------------


def _messy(seed: int, delimiter: str = ",", escape: str | None = None):
    """A messy file and what it holds: (line, values) of good rows and the lines of bad rows."""
    rnd = random.Random(seed)
    values = [
        "",
        "06103",
        "a,b",
        "c;d",
        'q"uote',
        "multi\nline",
        "cr\r\nlf",
        "lone\rcr",
        "  sp ",
        "1e5",
        "x" * 300,
        "back\\slash",
        "#hash",
    ]

    def field(v):
        if escape and "\\" in v:
            v = v.replace("\\", "\\\\")
        if any(c in v for c in delimiter + '"\r\n') or rnd.random() < 0.1:
            inner = v.replace('"', escape + '"' if escape else '""')
            return '"' + inner + '"'
        return v

    out, good, bad, line = [delimiter.join("abc") + "\n"], [], [], 2
    for _ in range(3000):
        k = rnd.random()
        end = "\r\n" if rnd.random() < 0.3 else "\n"
        n = 0 if k < 0.05 else 3 if k > 0.15 else rnd.choice([1, 2, 4, 5])
        vals = [rnd.choice(values) for _ in range(n)]
        text = delimiter.join(field(v) for v in vals)
        if n == 3 and any(vals):
            good.append((line, [v or None for v in vals]))
        elif n not in (0, 3) and not (n == 1 and not vals[0].strip()):
            bad.append(line)
        out.append(text + end)
        line += 1 + text.count("\n") + text.count("\r") - text.count("\r\n")
    return "".join(out).encode(), good, bad


@pytest.mark.parametrize("seed, delimiter, escape", [(1, ",", None), (2, ",", None), (3, ";", "\\")])
def test_readers_agree_with_the_truth(tmp_path, engine, seed, delimiter, escape, monkeypatch):
    monkeypatch.setattr(csv_readers, "PARSE_BLOCK", 4096)  # records cross pyarrow's blocks
    data, good, bad = _messy(seed, delimiter, escape)
    options = {"delimiter": delimiter, "escape": escape} if escape else {}
    chunks, _ = read(tmp_path, data, chunk_rows=997, engine=engine, **options)
    assert [(line, list(rec.values())) for line, rec in rows(chunks)] == good
    assert [int(line) for line, _, _ in rejects(tmp_path)] == bad


# -- through the route command ---------------------------------------------------------------------


def test_bad_option_is_reported_when_the_route_is_validated(write_route, route_cli):
    route = write_route("""
        name: enc
        source:
          csv:
            path: data.csv
            encoding: klingon
        targets:
          - name: out
            deliver:
              jsonl: {path: out.jsonl}
        """)
    result = route_cli("validate", str(route))
    assert result.exit_code == 2
    assert (
        f"{route}:5:15: source.csv.encoding: unknown encoding 'klingon'; use a Python codec name "
        "such as utf-8, cp1252, latin-1 or utf-16"
    ) in result.output


def test_route_execute_reads_a_messy_file(write_route, route_cli, tmp_path):
    data = b'\xef\xbb\xbfzip;town;note\r\n06103;Hartford;"a;b"\r\n06510;"New\r\nHaven"\r\n00501;Holtsville;x;y\r\n'
    route = write_route(
        """
        name: messy
        source:
          csv: {path: data.csv, delimiter: semicolon}
        targets:
          - name: out
            deliver:
              jsonl: {path: out.jsonl}
        """,
        **{"data.csv": data},
    )
    result = route_cli("execute", str(route))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.jsonl").read_text().splitlines() == ['{"zip":"06103","town":"Hartford","note":"a;b"}']
    (rejected,) = list((tmp_path / ".route" / "rejects").glob("messy-*.csv"))
    with open(rejected, newline="", encoding="utf-8") as f:
        got = [(r["line"], r["reason"]) for r in csv.DictReader(f)]
    assert got == [("3", "line 3 has 2 fields, the header has 3"), ("5", "line 5 has 4 fields, the header has 3")]


def test_the_source_says_how_many_bytes_of_its_files_it_has_read(route_cli, write_route):
    """What the progress bar's percent and time left come from: the run report has the figures."""
    import json

    first = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(3_000))
    second = "id,name\n" + "".join(f"{i},m{i}\n" for i in range(2_000))
    path = write_route(
        """
        name: bytes
        chunk_rows: 500
        source: {csv: {path: "parts/*.csv"}}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
        """,
        **{"parts__a.csv": first, "parts__b.csv": second},
    )
    result = route_cli("execute", "--json", str(path))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    total = len(first.encode()) + len(second.encode())
    assert (report["source_done"], report["source_total"], report["source_unit"]) == (total, total, "bytes")
