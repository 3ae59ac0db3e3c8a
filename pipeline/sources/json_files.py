"""Reading JSON and JSON Lines files for the json source, in bounded memory where possible.

JSON Lines is read chunk_rows lines at a time (orjson per line). A JSON document is streamed with
ijson (its C backend, about as fast as orjson) when `records` is absent or a plain path such as
`data.items`; any other expression (projections, filters) needs the whole document, which is then
parsed with orjson (memory about ten times the file's size). When ijson stops on something orjson
reads (an integer beyond 64 bits) or on invalid JSON, orjson parses the file whole: it either
reads it, going on from the record where the stream stopped, or names the line and column.

Without a `columns` option, the file is read twice: a first pass collects every record's fields,
so that the columns are known before the first chunk and never change.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING

import orjson

from pipeline.basics.errors import RunFailed
from pipeline.sources.json_records import Framer, flat, missing, select

try:
    import ijson

    JSON_ERRORS: tuple = (ijson.JSONError, ValueError)
except ImportError:  # pragma: no cover - a declared dependency; without it JSON files load whole
    ijson = None
    JSON_ERRORS = ()

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.sources.json import JsonSource
    from pipeline.sources.remote import Found

BOM = b"\xef\xbb\xbf"


def open_file(src: JsonSource, path: Found):
    """The file's bytes after any byte order mark, buffered (a remote file streams in blocks)."""
    raw = path.open()
    f = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, 1 << 20)
    if f.peek(3)[:3] == BOM:
        f.read(3)
    return f


def batches(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while part := list(islice(it, size)):
        yield part


# -- JSON Lines ------------------------------------------------------------------------------------


def read_jsonl(src: JsonSource, path: Found) -> Iterator[pd.DataFrame]:
    framer = src.framer()
    if src.columns_option is None:
        limit, seen = src.ctx.run.options.limit, 0
        framer.names = {}
        for _, records in lines(src, path):
            framer.learn(records)
            seen += len(records)
            if limit is not None and seen >= limit:
                break
    produced = False
    for index, records in lines(src, path):
        if records:
            produced = True
            yield framer.frame(records, index)
    if not produced:
        yield framer.empty()


def lines(src: JsonSource, path: Found) -> Iterator[tuple[pd.Index, list]]:
    """(line numbers, records) of up to chunk_rows lines at a time; blank lines are skipped."""
    import pandas as pd

    loads, size, number = orjson.loads, src.chunk_size, 0
    with open_file(src, path) as f:
        while batch := list(islice(f, size)):
            first, number = number + 1, number + len(batch)
            try:
                yield pd.RangeIndex(first, number + 1), [loads(line) for line in batch]
            except orjson.JSONDecodeError:  # a blank line, or one that is not JSON: line by line
                numbers, records = [], []
                for n, line in enumerate(batch, first):
                    if line.strip():
                        records.append(parse_json(line, f"{src.label}, line {n}", line_number=n))
                        numbers.append(n)
                yield pd.Index(numbers, dtype="int64"), records


# -- one JSON document -----------------------------------------------------------------------------


def plain_path(expression) -> list[str] | None:
    """The keys of `records` when it is a plain path (`a.b.c`, or absent: []); None otherwise."""
    if expression is None:
        return []
    node = expression.parsed
    nodes = node["children"] if node["type"] == "subexpression" else [node]
    keys = [n.get("value") for n in nodes if n["type"] == "field"]
    if len(keys) != len(nodes) or any(not isinstance(k, str) or not k or "." in k for k in keys):
        return None  # ijson joins keys with dots: a key holding one cannot be streamed
    return keys


def read_json(src: JsonSource, path: Found) -> Iterator[pd.DataFrame]:
    import pandas as pd

    keys = plain_path(src.records) if ijson is not None else None
    if keys is None or not _is_list(src, path, ".".join(keys)):
        yield from _read_whole(src, path, src.framer(), learn=src.columns_option is None)
        return
    prefix = ".".join(keys + ["item"])
    framer, done, learned = src.framer(), 0, src.columns_option is not None
    try:
        if not learned:
            with open_file(src, path) as f:
                limit = src.ctx.run.options.limit
                framer.learn(islice(ijson.items(f, prefix, use_float=True), limit))
            learned = True
        with open_file(src, path) as f:
            for part in batches(ijson.items(f, prefix, use_float=True), src.chunk_size):
                yield framer.frame(part, pd.RangeIndex(done + 1, done + 1 + len(part)))
                done += len(part)
    except JSON_ERRORS:
        src.ctx.log.debug("%s: the streaming parser stopped after %d records; parsing the file whole", src.label, done)
        yield from _read_whole(src, path, framer if learned else src.framer(), learn=not learned, skip=done)
        return
    if done == 0:
        yield framer.empty()


def _is_list(src: JsonSource, path: Found, prefix: str) -> bool:
    """Whether the value at `prefix` is an array (the first parse event there says so)."""
    try:
        with open_file(src, path) as f:
            for at, event, _ in ijson.parse(f):
                if at == prefix:
                    return event == "start_array"
    except JSON_ERRORS:
        pass
    return False  # not a list, not there, or not JSON: the whole-document path says which


def _read_whole(src: JsonSource, path: Found, framer: Framer, *, learn: bool, skip: int = 0) -> Iterator[pd.DataFrame]:
    import pandas as pd

    with path.open() as f:
        data = f.read()
    document = parse_json(data.removeprefix(BOM), src.label, whole_file=True)
    del data
    records = select(document, src.records, src.records_text, src.label)
    if records is None:
        raise missing(document, src.records_text, src.label)
    del document  # what is not the records can go now
    if src.flatten:
        for i, record in enumerate(records):
            if record.__class__ is dict:
                records[i] = flat(record)
    if learn:
        limit = src.ctx.run.options.limit
        framer.learn(records if limit is None else islice(records, limit), flattened=True)
    size = src.chunk_size
    for start in range(skip, len(records), size):
        part = records[start : start + size]
        records[start : start + size] = [None] * len(part)  # free each record once it is in a chunk
        yield framer.frame(part, pd.RangeIndex(start + 1, start + 1 + len(part)), flattened=True)
    if not records:
        yield framer.empty()


def parse_json(data: bytes, where: str, *, whole_file: bool = False, line_number: int | None = None, answer=None):
    """The parsed document, or RunFailed naming the line and column of the first error."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line, column, message = exc.lineno, exc.colno, exc.msg
        if "UTF-8" in message:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as bad:
                before = data[: bad.start]
                line, column = before.count(b"\n") + 1, bad.start - (before.rfind(b"\n") + 1) + 1
                message = f"byte 0x{data[bad.start]:02x} is not UTF-8 (JSON is UTF-8)"
        if answer is not None:
            line = line_number or line
            kind = answer.headers.get("Content-Type") or "no Content-Type"
            start = data[:60].decode("utf-8", "replace").replace("\n", " ")
            raise RunFailed(
                f"{where}: the answer is not JSON (HTTP {answer.status_code}, {kind}): "
                f"line {line}, column {column}: {message}; it starts with {start!r}"
            ) from None
        if line_number is not None:
            raise RunFailed(f"json source: {where} is not valid JSON: column {column}: {message}") from None
        hint = (
            "; if the file holds one JSON document per line, set format: jsonl"
            if whole_file and message == "unexpected content after document"
            else ""
        )
        raise RunFailed(
            f"json source: {where} is not valid JSON: line {line}, column {column}: {message}{hint}"
        ) from None
