"""The csv source's block reader (csv_blocks) against the careful reader (Python's csv module).

The block reader cuts the file into blocks at line breaks and parses them on several threads; it
must give the rows, line numbers, rejects and errors the careful reader gives on the same file,
wherever the blocks are cut. Each file is read with blocks of a few bytes (so every line break is
a cut, inside quoted fields too) up to blocks larger than the file, through the real source.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sourcekit import make_ctx, rejects, rows

from pipeline.basics.errors import RunFailed
from pipeline.sources import csv_blocks, csv_readers, csv_stream
from pipeline.sources.csv import CsvSource

BLOCKS = [1, 7, 32, 256, 1 << 20]


def read(tmp_path: Path, content: bytes, engine: str, chunk_rows: int = 7, **options):
    """(rows with their lines, rejects, the error message or None) of `content` read by `engine`."""
    folder = tmp_path / engine
    folder.mkdir(exist_ok=True)
    (folder / "data.csv").write_bytes(content)
    ctx = make_ctx(folder, chunk_rows, step="csv")
    got, error = [], None
    try:
        for chunk in CsvSource({"path": "data.csv", "engine": engine, **options}, ctx).chunks():
            got.append(chunk)
    except RunFailed as exc:
        error = str(exc)
    finally:
        ctx.run.rejects.close()
    return rows(got), rejects(folder), error


def agree(tmp_path: Path, content: bytes, block: int, monkeypatch, **options):
    """Read `content` with both readers, blocks of `block` bytes; assert they agree; return it."""
    monkeypatch.setattr(csv_readers, "PARSE_BLOCK", block)
    monkeypatch.setattr(csv_stream, "BLOCK", max(block, 8))  # the reads a block is made of
    fast = read(tmp_path, content, "auto", **options)
    careful = read(tmp_path, content, "python", **options)
    if fast[2] or careful[2]:  # the run stops: what came before the error is not compared
        assert fast[2] == careful[2]
    else:
        assert fast == careful
    return fast


@pytest.mark.parametrize("block", BLOCKS)
def test_quoted_line_breaks_across_block_cuts(tmp_path, block, monkeypatch):
    content = (
        b"id,text,n\n"
        + b"".join(b'%d,"line one\nline two\r\nline three",x\n' % i for i in range(1, 30))
        + b'30,"a, b ""quoted""\n",y\n31,last,z\n'
    )
    got, bad, error = agree(tmp_path, content, block, monkeypatch)
    assert error is None and bad == []
    assert [line for line, _ in got] == [2 + 3 * i for i in range(30)] + [91]
    assert got[-2][1] == {"id": "30", "text": 'a, b "quoted"\n', "n": "y"}


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("ending", [b"\r\n", b"\r", b"\n"])
def test_line_endings(tmp_path, block, ending, monkeypatch):
    lines = [b"a,b", b"1,2", b'"x' + ending + b'y",3', b"4,5", b"", b"6,7"]
    content = ending.join(lines) + ending
    got, bad, error = agree(tmp_path, content, block, monkeypatch)
    assert error is None and bad == []
    assert got == [
        (2, {"a": "1", "b": "2"}),
        (3, {"a": "x" + ending.decode() + "y", "b": "3"}),
        (5, {"a": "4", "b": "5"}),
        (7, {"a": "6", "b": "7"}),
    ]


@pytest.mark.parametrize("block", BLOCKS)
def test_bad_rows_on_block_cuts(tmp_path, block, monkeypatch):
    # every other record is ragged, some with quoted line breaks: wherever a block ends, a bad
    # record is next to it
    body, good, bad_lines, line = [], [], [], 2
    for i in range(1, 40):
        record = (b'%d,"two\nlines",extra\n' % i if i % 3 == 0 else b"%d\n" % i) if i % 2 else b"%d,ok\n" % i
        (bad_lines if i % 2 else good).append(line)
        body.append(record)
        line += record.count(b"\n")
    got, bad, error = agree(tmp_path, b"id,v\n" + b"".join(body), block, monkeypatch)
    assert error is None
    assert [line for line, _ in got] == good
    assert [int(line) for line, _, _ in bad] == bad_lines
    assert ("4", "line 4 has 3 fields, the header has 2", '3,"two\nlines",extra') in bad


@pytest.mark.parametrize("block", BLOCKS)
def test_byte_order_mark_and_a_data_record_starting_with_u_feff(tmp_path, block, monkeypatch):
    # the file's byte order mark is skipped; a U+FEFF starting a record is data, on any block cut
    content = b"\xef\xbb\xbfid,v\r\n1,a\r\n\xef\xbb\xbf2,b\r\n3,c"
    got, bad, error = agree(tmp_path, content, block, monkeypatch)
    assert error is None and bad == []
    assert got == [(2, {"id": "1", "v": "a"}), (3, {"id": "\ufeff2", "v": "b"}), (4, {"id": "3", "v": "c"})]


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("last", [b"9,z", b'9,"z\nz"', b"9,z\r"])
def test_a_last_line_without_a_line_break(tmp_path, block, last, monkeypatch):
    got, bad, error = agree(tmp_path, b"id,v\n1,a\n\n" + last, block, monkeypatch)
    assert error is None and bad == []
    assert [(line, r["id"]) for line, r in got] == [(2, "1"), (4, "9")]


@pytest.mark.parametrize("block", BLOCKS)
def test_comment_lines_above_the_header_and_comment_characters_in_values(tmp_path, block, monkeypatch):
    # comments only above the header: the block reader reads the file; a # inside a value is data
    content = b'# exported 2026-12-03\n#\nid,v\n1,"# not a comment"\n2,"x\nstill x #"\n3,#tag\n'
    got, bad, error = agree(tmp_path, content, block, monkeypatch, comment="#")
    assert error is None and bad == []
    assert got == [
        (4, {"id": "1", "v": "# not a comment"}),
        (5, {"id": "2", "v": "x\nstill x #"}),
        (7, {"id": "3", "v": "#tag"}),
    ]


@pytest.mark.parametrize("block", [1, 64, 4096])
def test_a_record_much_longer_than_the_block(tmp_path, block, monkeypatch):
    huge = b'"' + b"many words, and\r\nline breaks " * 3000 + b'"'
    content = b"id,v\n1,a\n2," + huge + b"\n3,b\n4," + b"y" * 100_000 + b"\n5,c\n"
    got, bad, error = agree(tmp_path, content, block, monkeypatch)
    assert error is None and bad == []
    assert [(line, r["id"]) for line, r in got] == [(2, "1"), (3, "2"), (3004, "3"), (3005, "4"), (3006, "5")]
    assert got[1][1]["v"].encode() == huge[1:-1]


@pytest.mark.parametrize("block", BLOCKS)
def test_a_quote_never_closed_names_its_line(tmp_path, block, monkeypatch):
    content = b"id,v\n1,a\n2,b\n" + b'3,"never closed\n' + b"4,d\n" * 20
    got, bad, error = agree(tmp_path, content, block, monkeypatch)
    assert error == (
        "data.csv: the record starting on line 4 opens a quoted field that is never closed, so the "
        "rest of the file would be read into it; look for a stray quote character there (or set "
        "quote: false if the file does not quote its fields)"
    )


@pytest.mark.parametrize("block", BLOCKS)
def test_an_escaped_line_break_at_a_cut(tmp_path, block, monkeypatch):
    content = b'id;v\n1;a\\\nb\n2;c\\;d\n3;"e\\"f"\n4;g\n'
    got, bad, error = agree(tmp_path, content, block, monkeypatch, delimiter=";", escape="\\")
    assert error is None and bad == []
    assert [(line, r["id"], r["v"]) for line, r in got] == [
        (2, "1", "a\nb"),
        (4, "2", "c;d"),
        (5, "3", 'e"f'),
        (6, "4", "g"),
    ]


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_other_encodings_cut_into_blocks(tmp_path, block, encoding, monkeypatch):
    text = "id,town\n" + "".join(f'{i},"Café {i}\nMüller"\n' for i in range(1, 12))
    got, bad, error = agree(tmp_path, text.encode(encoding), block, monkeypatch, encoding=encoding)
    assert error is None and bad == []
    assert [(line, r["town"]) for line, r in got] == [(2 + 2 * (i - 1), f"Café {i}\nMüller") for i in range(1, 12)]


@pytest.mark.parametrize("block", BLOCKS)
def test_one_column_files_and_blank_lines(tmp_path, block, monkeypatch):
    got, bad, error = agree(tmp_path, b'name\n\nann\n\r\n"b\nob"\n\n', block, monkeypatch)
    assert error is None and bad == []
    assert got == [(3, {"name": "ann"}), (5, {"name": "b\nob"})]


@pytest.mark.parametrize("seed", range(6))
def test_random_files_agree_whatever_the_block(tmp_path, seed, monkeypatch):
    rnd = random.Random(seed)
    pieces = ["a", "b c", ",", '"', '""', '"x,y"', "\n", "\r\n", "\r", "é", "", "1"]
    records = []
    for _ in range(120):
        fields = [
            "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 3))) for _ in range(rnd.choice([3, 3, 3, 2, 4]))
        ]
        quoted = [f'"{f.replace(chr(34), chr(34) * 2)}"' if rnd.random() < 0.5 else f for f in fields]
        records.append(",".join(quoted) + rnd.choice(["\n", "\r\n"]))
    content = ("c1,c2,c3\n" + "".join(records)).encode()
    agree(tmp_path, content, rnd.choice([1, 5, 16, 64, 300]), monkeypatch)


def test_blocks_parse_on_several_threads_and_keep_their_order(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_blocks, "WORKERS", 3)
    content = b"id,v\n" + b"".join(
        b'%d,"v\n%d"\n' % (i, i) if i % 7 == 0 else b"%d,v%d\n" % (i, i) for i in range(1, 5001)
    )
    got, bad, error = agree(tmp_path, content, 512, monkeypatch, chunk_rows=1000)
    assert error is None and bad == []
    assert [int(r["id"]) for _, r in got] == list(range(1, 5001))
