"""Very long fields in the csv source, and empty files: read, or refused with the file and line.

pyarrow parses a record only whole inside one parse block; the source grows the block (reading
the file again up to the long record) until max_field_mib. These tests use real files of tens of
MiB, through the source and through `route execute`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sourcekit import make_ctx, rejects, rows

from pipeline.basics.errors import RunFailed
from pipeline.sources.csv import CsvSource

MIB = 1 << 20
ENGINES = ["pyarrow", "python"]


def read(tmp_path: Path, content: bytes, chunk_rows: int = 50_000, **options):
    (tmp_path / "data.csv").write_bytes(content)
    ctx = make_ctx(tmp_path, chunk_rows, step="csv")
    try:
        return list(CsvSource({"path": "data.csv", **options}, ctx).chunks())
    finally:
        ctx.run.rejects.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_20_mib_field_is_read(tmp_path, engine):
    big = b"x" * (20 * MIB)
    chunks = read(tmp_path, b"id,text\n1,short\n2," + big + b"\n3,after\n", engine=engine)
    got = rows(chunks)
    assert [(line, r["id"]) for line, r in got] == [(2, "1"), (3, "2"), (4, "3")]
    assert len(got[1][1]["text"]) == 20 * MIB and got[2][1]["text"] == "after"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_quoted_20_mib_field_of_many_lines_keeps_the_line_numbers(tmp_path, engine):
    body = b"a line of text, with a comma\r\n" * (20 * MIB // 30)
    content = b'id,text\n1,short\n2,"' + body + b'"\n3,after\n4,"two\nlines"\n5,end\n'
    got = rows(read(tmp_path, content, engine=engine))
    inside = body.count(b"\r\n")
    assert [(line, r["id"]) for line, r in got] == [
        (2, "1"),
        (3, "2"),
        (4 + inside, "3"),
        (5 + inside, "4"),
        (7 + inside, "5"),
    ]
    assert got[1][1]["text"].encode() == body


def test_rows_and_rejects_before_a_long_record_are_read_once(tmp_path):
    """The file is read again with a larger block: what came before the long record must not
    come twice, nor go missing (6 MiB of short rows span blocks of 4 MiB; a ragged row just before
    the long record is still waiting to be placed when the block proves too small)."""
    before = b"".join(b"%d,row %d\n" % (i, i) if i % 1000 else b"%d,ragged,row\n" % i for i in range(1, 400_001))
    content = b"id,text\n" + before + b"0," + b"y" * (20 * MIB) + b"\n" + b"-1,last\n"
    got = rows(read(tmp_path, content, chunk_rows=100_000))
    ids = [r["id"] for _, r in got]
    assert len(ids) == 400_000 - 400 + 2 and len(set(ids)) == len(ids)
    assert [line for line, _ in got[-2:]] == [400_002, 400_003]
    assert got[-1][1] == {"id": "-1", "text": "last"}
    bad = rejects(tmp_path)
    assert [line for line, _, _ in bad] == [str(i + 1) for i in range(1000, 400_001, 1000)]
    assert bad[-1] == ("400001", "line 400001 has 3 fields, the header has 2", "400000,ragged,row")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_record_past_max_field_mib_names_its_line_and_the_option(tmp_path, engine):
    # pyarrow reads a record whole inside one block plus the end of the one before: a record may
    # be up to twice the limit, and one longer is always refused
    content = b'id,text\n1,short\n2,"two\nlines"\n3,' + b"z" * (5 * MIB) + b"\n4,after\n"
    with pytest.raises(RunFailed) as caught:
        read(tmp_path, content, engine=engine, max_field_mib=2)
    assert str(caught.value) == (
        "data.csv: line 5: the record starting here is longer than 2 MiB, the limit for a field; if a "
        "field really is that long, raise max_field_mib (a csv source option); otherwise look for a "
        "quote opened on that line and never closed"
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_a_quote_never_closed_in_a_big_file_is_found_in_bounded_memory(tmp_path, engine):
    content = b'id,text\n1,ok\n2,"never closed\n' + b"3,more\n" * (5 * MIB // 7)
    with pytest.raises(RunFailed) as caught:
        read(tmp_path, content, engine=engine, max_field_mib=1)
    assert str(caught.value).startswith("data.csv: line 3: the record starting here is longer than 1 MiB")


def write_route(tmp_path: Path, source: str) -> Path:
    route = tmp_path / "route.yaml"
    route.write_text(
        f"name: big\nsource:\n  csv: {source}\ntargets:\n"
        f"  - name: out\n    deliver:\n      jsonl: {{path: out.jsonl}}\n"
    )
    return route


def test_route_execute_reads_a_20_mib_field(tmp_path, route_cli):
    (tmp_path / "data.csv").write_bytes(b"id,text\n1," + b"q" * (20 * MIB) + b"\n2,b\n")
    result = route_cli("execute", str(write_route(tmp_path, "{path: data.csv}")))
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [len(r["text"]) for r in out] == [20 * MIB, 1]


def test_route_execute_refuses_a_field_past_the_limit(tmp_path, route_cli):
    (tmp_path / "data.csv").write_bytes(b"id,text\n1,a\n2," + b"q" * (3 * MIB) + b"\n")
    route = write_route(tmp_path, "{path: data.csv, max_field_mib: 1}")
    result = route_cli("execute", str(route))
    assert result.exit_code == 1
    assert (
        f"error: {route}:3: source 'csv': data.csv: line 3: the record starting here is longer than "
        f"1 MiB, the limit for a field; if a field really is that long, raise max_field_mib"
    ) in result.stderr
    assert "Traceback" not in result.output and "ArrowInvalid" not in result.output


def test_route_validate_checks_max_field_mib(tmp_path, route_cli):
    route = write_route(tmp_path, "{path: data.csv, max_field_mib: 4096}")
    result = route_cli("validate", str(route))
    assert result.exit_code == 2
    assert result.stderr == f"{route}:3:40: source.csv.max_field_mib: 4096 is greater than the maximum of 1024\n"


def test_route_execute_stops_on_an_empty_file(tmp_path, route_cli):
    (tmp_path / "data.csv").write_bytes(b"")
    route = write_route(tmp_path, "{path: data.csv}")
    result = route_cli("execute", str(route))
    assert result.exit_code == 1
    assert (
        f"{route}:3: source 'csv': data.csv is empty: it has no header line (and no rows); a csv "
        f"source file starts with its header"
    ) in result.stderr


def test_an_empty_file_among_a_glob_is_named(tmp_path, route_cli):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_bytes(b"id\n1\n")
    (tmp_path / "in" / "b.csv").write_bytes(b"")
    (tmp_path / "in" / "c.csv").write_bytes(b"id\n3\n")
    route = write_route(tmp_path, "{path: in/*.csv}")
    result = route_cli("execute", str(route))
    assert result.exit_code == 1
    assert "source 'csv': in/b.csv is empty: it has no header line" in result.stderr
