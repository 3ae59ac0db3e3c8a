"""The json source on real files and a real HTTP server on 127.0.0.1: exact rows, lines, messages.

The server is a small http.server started per test; each test gives it the answers to send and
reads back the requests it received.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest
from conftest import read_jsonl
from sourcekit import make_ctx, rejects, rows

from pipeline.basics.context import StepContext
from pipeline.basics.dtypes import TEXT
from pipeline.basics.errors import OptionError, RunFailed
from pipeline.sources.json import JsonSource

SOURCE = "json"
TOKEN = "s3cr3t-Tok3n-value"


# -- helpers -------------------------------------------------------------------------------------


def warnings(ctx: StepContext) -> list[str]:
    return [r.getMessage() for r in ctx.run.log.handlers[0].records if r.levelno == logging.WARNING]


def read(
    tmp_path: Path, files: dict[str, str | bytes] | None = None, chunk_rows: int = 50_000, **options
) -> tuple[list[pd.DataFrame], StepContext]:
    for name, content in (files or {}).items():
        (tmp_path / name).write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    ctx = make_ctx(tmp_path, chunk_rows, step="json")
    chunks = list(JsonSource(options, ctx).chunks())
    ctx.run.rejects.close()
    return chunks, ctx


class Api:
    """A JSON API on 127.0.0.1: `answers[path]` is a function (query, headers) -> (status, body,
    headers) or a list of such answers given in turn; every request is kept in `requests`."""

    def __init__(self):
        self.answers: dict = {}
        self.requests: list[tuple[str, dict, dict]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                api.requests.append((parts.path, query, dict(self.headers)))
                answer = api.answers.get(parts.path)
                if isinstance(answer, list):
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                status, body, headers = (
                    answer(query, self.headers)
                    if callable(answer)
                    else answer
                    if answer
                    else (404, {"message": "no such path"}, {})
                )
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, address: None  # a client that gave up waiting
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [p + ("?" + "&".join(f"{k}={v}" for k, v in q.items()) if q else "") for p, q, _ in self.requests]

    def close(self):
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def api():
    server = Api()
    yield server
    server.close()


def ok(body, **headers):
    return (200, body, headers)


def route_text(options: dict, **extra) -> str:
    """A route reading the json source with `options` (as a YAML flow mapping) into out.jsonl."""
    return f"""
        name: js
        source:
          {SOURCE}: {json.dumps({**options, **extra})}
        targets:
          - name: out
            deliver:
              jsonl: {{path: out.jsonl}}
    """


# -- files: values are text, columns are fixed -----------------------------------------------------

DOC = """{"meta": {"count": 4}, "data": {"items": [
  {"id": 1, "zip": "06103", "amount": 1.5, "whole": 1.0, "ok": true, "tags": ["a", "b"],
   "address": {"city": "Hartford", "geo": {"lat": 41.76}}},
  {"id": 2, "zip": null, "amount": 2, "ok": false, "note": "Ünïcode ✓"},
  7,
  {"id": 3, "amount": 1e20, "address": {}}
]}}"""


def test_json_values_are_text_as_json_writes_them(tmp_path):
    chunks, _ = read(tmp_path, {"data.json": DOC}, path="data.json", records="data.items")
    assert all(dtype == TEXT for c in chunks for dtype in c.dtypes)
    assert chunks[0].attrs["source"] == "data.json"
    assert rows(chunks) == [
        (
            1,
            {
                "id": "1",
                "zip": "06103",
                "amount": "1.5",
                "whole": "1.0",
                "ok": "true",
                "tags": '["a","b"]',
                "address": '{"city":"Hartford","geo":{"lat":41.76}}',
                "note": None,
            },
        ),
        (
            2,
            {
                "id": "2",
                "zip": None,
                "amount": "2",
                "whole": None,
                "ok": "false",
                "tags": None,
                "address": None,
                "note": "Ünïcode ✓",
            },
        ),
        (
            4,
            {
                "id": "3",
                "zip": None,
                "amount": "1e+20",
                "whole": None,
                "ok": None,
                "tags": None,
                "address": "{}",
                "note": None,
            },
        ),
    ]
    assert rejects(tmp_path) == [("3", "the record is a number, not an object (a record must be a JSON object)", "7")]


def test_flatten_gives_dotted_columns_and_keeps_lists_as_json(tmp_path):
    chunks, _ = read(tmp_path, {"data.json": DOC}, path="data.json", records="data.items", flatten=True, chunk_rows=1)
    assert [len(c) for c in chunks] == [1, 1, 0, 1]
    assert rows(chunks)[0] == (
        1,
        {
            "id": "1",
            "zip": "06103",
            "amount": "1.5",
            "whole": "1.0",
            "ok": "true",
            "tags": '["a","b"]',
            "address.city": "Hartford",
            "address.geo.lat": "41.76",
            "note": None,
        },
    )
    assert {tuple(c.columns) for c in chunks} == {
        ("id", "zip", "amount", "whole", "ok", "tags", "address.city", "address.geo.lat", "note")
    }


def test_a_top_level_array_and_a_projection(tmp_path):
    data = '[{"a": {"b": 1, "c": "x"}}, {"a": {"b": 2}}]'
    chunks, _ = read(tmp_path, {"data.json": data}, path="data.json")
    assert rows(chunks) == [(1, {"a": '{"b":1,"c":"x"}'}), (2, {"a": '{"b":2}'})]
    chunks, _ = read(tmp_path, path="data.json", records="[*].a")
    assert rows(chunks) == [(1, {"b": "1", "c": "x"}), (2, {"b": "2", "c": None})]


def test_columns_option_chooses_and_orders(tmp_path):
    chunks, _ = read(
        tmp_path, {"data.json": DOC}, path="data.json", records="data.items", columns=["note", "id", "missing"]
    )
    assert rows(chunks) == [
        (1, {"note": None, "id": "1", "missing": None}),
        (2, {"note": "Ünïcode ✓", "id": "2", "missing": None}),
        (4, {"note": None, "id": "3", "missing": None}),
    ]


def test_empty_list_gives_one_empty_chunk(tmp_path):
    chunks, _ = read(
        tmp_path, {"data.json": '{"items": []}'}, path="data.json", records="items", columns=["id", "name"]
    )
    assert len(chunks) == 1 and len(chunks[0]) == 0
    assert list(chunks[0].columns) == ["id", "name"] and list(chunks[0].dtypes) == [TEXT, TEXT]


def test_jsonl_index_is_the_line_and_columns_come_from_the_whole_file(tmp_path):
    data = b'\xef\xbb\xbf{"a": 1, "b": "x"}\n\n{"a": 2.5}\r\n"not a record"\n   \n{"a": null, "c": [1, {"d": 2}]}'
    chunks, _ = read(tmp_path, {"data.jsonl": data}, path="data.jsonl", chunk_rows=2)
    # a field first seen in the last chunk is a column of every chunk
    assert [list(c.columns) for c in chunks] == [["a", "b", "c"]] * 3
    assert rows(chunks) == [
        (1, {"a": "1", "b": "x", "c": None}),
        (3, {"a": "2.5", "b": None, "c": None}),
        (6, {"a": None, "b": None, "c": '[1,{"d":2}]'}),
    ]
    assert rejects(tmp_path) == [
        ("4", "the record is a string, not an object (a record must be a JSON object)", '"not a record"')
    ]


# -- files: errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "files, options, message",
    [
        ({}, {"path": "nope.json"}, "json source: file not found: nope.json (looked in {tmp})"),
        (
            {"d.json": '[{"a": 1},\n {"a": tru}]'},
            {"path": "d.json"},
            "json source: d.json is not valid JSON: line 2, column 8: invalid literal, expected 'true'",
        ),
        (
            {"d.json": '{"a": 1}\n{"a": 2}\n'},
            {"path": "d.json"},
            "json source: d.json is not valid JSON: line 2, column 1: unexpected content after document; if the "
            "file holds one JSON document per line, set format: jsonl",
        ),
        (
            {"d.json": b'[{"a": "caf\xe9"}]'},
            {"path": "d.json"},
            "json source: d.json is not valid JSON: line 1, column 12: byte 0xe9 is not UTF-8 (JSON is UTF-8)",
        ),
        (
            {"d.jsonl": '{"a": 1}\n{"a": 2,}\n'},
            {"path": "d.jsonl"},
            "json source: d.jsonl, line 2 is not valid JSON: column 8: trailing comma is not allowed",
        ),
        (
            {"d.json": '{"meta": {}, "rows": [], "other": []}'},
            {"path": "d.json"},
            "d.json is an object (keys: meta, rows, other), not a list of records; to read the list under 'rows', "
            "add records: rows",
        ),
        (
            {"d.json": '{"meta": {"n": 1}}'},
            {"path": "d.json", "records": "meta"},
            "records 'meta' selects an object (keys: n) in d.json, not a list; to read it as one record write "
            'records: "[meta]"',
        ),
        (
            {"d.json": '{"meta": {"n": 1}}'},
            {"path": "d.json", "records": "meta.n"},
            "records 'meta.n' selects a number in d.json, not a list of records",
        ),
        (
            {"d.json": '{"meta": {"n": 1}}'},
            {"path": "d.json", "records": "data"},
            "records 'data' finds nothing in d.json (its keys: meta); check the expression",
        ),
    ],
    ids=[
        "missing",
        "invalid",
        "jsonl-as-json",
        "not-utf8",
        "bad-line",
        "object",
        "selects-object",
        "selects-number",
        "finds-nothing",
    ],
)
def test_file_errors(tmp_path, files, options, message):
    with pytest.raises(RunFailed) as err:
        read(tmp_path, files, **options)
    assert str(err.value) == message.format(tmp=tmp_path)


@pytest.mark.parametrize(
    "options, path, message",
    [
        ({"path": "d.json", "url": "https://x.org"}, (), "give a path (a JSON or JSON Lines file) or a url, not both"),
        ({}, (), "give a path (a JSON or JSON Lines file) or a url"),
        (
            {"path": "d.json", "records": "data..items"},
            ("records",),
            "invalid JMESPath expression 'data..items': Expecting: ['quoted_identifier', 'unquoted_identifier', "
            "'lbracket', 'lbrace'], got: dot at position 5",
        ),
        (
            {"path": "d.json", "records": "data[`1"},
            ("records",),
            "invalid JMESPath expression 'data[`1': Unclosed ` delimiter at position 5",
        ),
        (
            {"path": "d.jsonl", "records": "a"},
            ("records",),
            "each line of a JSON Lines file is one record; records selects the list in a JSON document "
            "(use format: json, or leave records out)",
        ),
        ({"path": "d.json", "headers": {"A": "b"}}, ("headers",), "headers goes with url; a file is read as it is"),
        ({"url": "ftp://x.org/a"}, ("url",), "url must be an http:// or https:// address, not ftp://x.org/a"),
        (
            {"url": "http://x.org/a", "headers": {"Authorization": "t"}},
            ("url",),
            "headers would travel in clear text over http://; use https://",
        ),
        (
            {"url": "https://x.org", "paging": {"by": "offset"}},
            ("paging",),
            "by: offset needs param: the query parameter that holds the offset",
        ),
        (
            {"url": "https://x.org", "paging": {"by": "offset", "param": "o", "size": 5}},
            ("paging", "size_param"),
            "give size_param (the parameter's name) and size (its value) together",
        ),
        (
            {"url": "https://x.org", "paging": {"by": "link", "param": "o"}},
            ("paging", "param"),
            "param goes with by: offset or by: page; by: link follows the next link",
        ),
        (
            {"url": "https://x.org", "paging": {"by": "page", "param": "p", "next": "a"}},
            ("paging", "next"),
            "next goes with by: link",
        ),
        (
            {"url": "https://x.org", "params": {"o": 1}, "paging": {"by": "offset", "param": "o"}},
            ("paging", "param"),
            "paging sets 'o' on each request; remove it from params",
        ),
    ],
)
def test_option_errors(tmp_path, options, path, message):
    with pytest.raises(OptionError) as err:
        JsonSource(options, make_ctx(tmp_path))
    assert (str(err.value), err.value.path) == (message, path)


def test_route_execute_reads_a_file_with_rejects_and_casts(route_cli, write_route, tmp_path):
    path = write_route(
        f"""
        name: js
        chunk_rows: 2
        source:
          {SOURCE}:
            path: data.jsonl
        source_transforms:
          - cast: {{amount: number, ok: boolean}}
        targets:
          - name: out
            deliver:
              jsonl: {{path: out.jsonl}}
    """,
        **{
            "data.jsonl": '{"id": "a", "amount": 1.5, "ok": true}\n\n[1]\n{"id": "b", "amount": "x"}\n'
            '{"id": "c", "amount": 3, "ok": false, "extra": {"k": 1}}\n'
        },
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out.jsonl") == [
        {"id": "a", "amount": 1.5, "ok": True, "extra": None},
        {"id": "c", "amount": 3.0, "ok": False, "extra": '{"k":1}'},
    ]
    found = next((tmp_path / ".route/rejects").glob("js-*.csv"))
    with open(found, newline="", encoding="utf-8") as f:
        got = [(r["step"], r["line"], r["value"]) for r in csv.DictReader(f)]
    assert got == [(SOURCE, "3", "[1]"), ("cast", "4", "x")]


def test_invalid_jmespath_is_reported_at_its_line_before_anything_runs(route_cli, write_route):
    path = write_route(
        f"""
        name: js
        source:
          {SOURCE}:
            path: data.json
            records: data.items[?
        targets:
          - name: out
            deliver: {{jsonl: {{path: out.jsonl}}}}
    """,
        **{"data.json": "[]"},
    )
    result = route_cli("execute", str(path))
    assert result.exit_code == 2
    assert (
        f"{path}:5:26: source.{SOURCE}.records: invalid JMESPath expression 'data.items[?': the "
        "expression is incomplete at position 12" in result.output
    )


def test_missing_file_fails_the_run(route_cli, write_route, tmp_path):
    path = write_route(route_text({"path": "nowhere.json"}))
    result = route_cli("execute", str(path))
    assert result.exit_code == 1
    assert (
        f"{path}:3: source '{SOURCE}': json source: file not found: nowhere.json (looked in {tmp_path})"
        in result.output
    )
    assert "Traceback" not in result.output


# -- HTTP ------------------------------------------------------------------------------------------


def run_http(route_cli, write_route, api, options: dict, *args: str, transforms: str = ""):
    path = write_route(
        route_text({"url": api.url + "/items", **options}).replace("        targets:", transforms + "        targets:")
        if transforms
        else route_text({"url": api.url + "/items", **options})
    )
    return route_cli("execute", *args, str(path), env={"API_TOKEN": TOKEN})


def test_paging_by_link_in_the_body_with_headers_and_params(route_cli, write_route, api, tmp_path):
    api.answers["/items"] = lambda q, h: {
        None: ok({"data": [{"id": 1, "n": "10"}, {"id": 2, "n": "20"}], "links": {"next": "/items?cursor=b"}}),
        "b": ok({"data": [{"id": 3, "n": "x"}], "links": {"next": f"{api.url}/items?cursor=c"}}),
        "c": ok({"data": [{"id": 4, "n": "40"}], "links": {"next": None}}),
    }[q.get("cursor")]
    result = run_http(
        route_cli,
        write_route,
        api,
        {
            "records": "data",
            "paging": {"by": "link", "next": "links.next"},
            "headers": {"Authorization": "Bearer ${API_TOKEN}"},
            "params": {"county": "Hartford"},
        },
        transforms="        source_transforms:\n          - cast: {n: integer}\n",
    )
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": "1", "n": 10}, {"id": "2", "n": 20}, {"id": "4", "n": 40}]
    assert api.paths() == ["/items?county=Hartford", "/items?cursor=b", "/items?cursor=c"]
    assert {h["Authorization"] for _, _, h in api.requests} == {f"Bearer {TOKEN}"}
    found = next((tmp_path / ".route/rejects").glob("js-*.csv"))
    with open(found, newline="", encoding="utf-8") as f:
        got = [(r["line"], r["value"], r["source"]) for r in csv.DictReader(f)]
    assert got == [("3", "x", f"{api.url}/items")]  # the index runs over the pages
    assert TOKEN not in result.output


def test_paging_by_the_link_header(route_cli, write_route, api, tmp_path):
    api.answers["/items"] = lambda q, h: {
        None: ok([{"id": 1}], Link=f'<{api.url}/items?page=2>; rel="next", <{api.url}/items?page=9>; rel="last"'),
        "2": ok([{"id": 2}], Link=f'<{api.url}/items?page=1>; rel="first"'),
    }[q.get("page")]
    result = run_http(route_cli, write_route, api, {"paging": {"by": "link"}})
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": "1"}, {"id": "2"}]
    assert api.paths() == ["/items", "/items?page=2"]


ROWS = [{"id": i, "town": t} for i, t in enumerate(["Avon", "Bethel", "Canton", "Darien", "Enfield"], 1)]


def by_offset(q, h):
    start, size = int(q.get("$offset", 0)), int(q.get("$limit", 1000))
    return ok({"items": ROWS[start : start + size]})


def test_paging_by_offset_stops_at_an_empty_page(route_cli, write_route, api, tmp_path):
    api.answers["/items"] = by_offset
    result = run_http(
        route_cli,
        write_route,
        api,
        {
            "records": "items",
            "params": {"$order": "id"},
            "paging": {"by": "offset", "param": "$offset", "size_param": "$limit", "size": 2},
        },
    )
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": str(r["id"]), "town": r["town"]} for r in ROWS]
    assert api.paths() == [
        "/items?$order=id&$offset=0&$limit=2",
        "/items?$order=id&$offset=2&$limit=2",
        "/items?$order=id&$offset=4&$limit=2",
        "/items?$order=id&$offset=5&$limit=2",
    ]


def test_offset_counts_the_records_received_not_the_size_asked(tmp_path, api):
    # a server that caps pages at 2 records although 3 were asked: nothing is skipped
    api.answers["/items"] = lambda q, h: ok({"items": ROWS[int(q["offset"]) : int(q["offset"]) + 2]})
    chunks, _ = read(
        tmp_path,
        url=api.url + "/items",
        records="items",
        paging={"by": "offset", "param": "offset", "size_param": "limit", "size": 3},
    )
    assert [r["id"] for _, r in rows(chunks)] == ["1", "2", "3", "4", "5"]
    assert [i for i, _ in rows(chunks)] == [1, 2, 3, 4, 5]


def test_paging_by_page_number(tmp_path, api):
    api.answers["/items"] = lambda q, h: ok(ROWS[(int(q["p"]) - 1) * 2 : int(q["p"]) * 2])
    chunks, _ = read(tmp_path, chunk_rows=1, url=api.url + "/items", paging={"by": "page", "param": "p"})
    assert [r["town"] for _, r in rows(chunks)] == [r["town"] for r in ROWS]
    assert api.paths() == [f"/items?p={n}" for n in (1, 2, 3, 4)]
    assert [len(c) for c in chunks] == [1, 1, 1, 1, 1]


def test_429_is_retried_after_retry_after(route_cli, write_route, api, tmp_path):
    api.answers["/items"] = [(429, {"message": "slow down"}, {"Retry-After": "0"}), ok([{"id": 1}])]
    result = run_http(route_cli, write_route, api, {})
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "out.jsonl") == [{"id": "1"}]
    assert len(api.requests) == 2


def test_5xx_retries_with_back_off_then_gives_up(tmp_path, api):
    api.answers["/items"] = [(503, b"<html>down for maintenance</html>", {"Content-Type": "text/html"})]
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=api.url + "/items", retries=2, backoff=0.01)
    assert str(err.value) == (
        f"page 1 ({api.url}/items): gave up after 3 attempts; last: HTTP 503 (<html>down for maintenance</html>)"
    )
    assert len(api.requests) == 3


def test_5xx_then_success_logs_the_retry(tmp_path, api):
    api.answers["/items"] = [(500, {"error": "oops"}, {}), ok([{"id": 1}])]
    chunks, ctx = read(tmp_path, url=api.url + "/items", backoff=0)
    assert rows(chunks) == [(1, {"id": "1"})]
    assert warnings(ctx) == [f"page 1 ({api.url}/items): HTTP 500 (oops); retrying in 0.0 s (attempt 2 of 6)"]


def test_a_refusal_stops_the_run_with_the_servers_message_and_no_secret(route_cli, write_route, api):
    api.answers["/items"] = lambda q, h: (401, {"error": {"message": f"token {h['X-Api-Key']} expired"}}, {})
    result = run_http(route_cli, write_route, api, {"headers": {"X-Api-Key": "${API_TOKEN}"}})
    assert result.exit_code == 1
    assert (
        f"page 1 ({api.url}/items) was refused: HTTP 401 Unauthorized: token *** expired (check the "
        "credentials in headers)"
    ) in result.output
    assert TOKEN not in result.output
    assert "Traceback" not in result.output


def test_a_header_value_not_named_secret_is_still_masked(tmp_path, api):
    api.answers["/items"] = lambda q, h: (403, {"message": f"{h['X-Custom']} may not read this"}, {})
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=api.url + "/items", headers={"X-Custom": "custom-credential", "Accept": "application/json"})
    assert str(err.value) == (
        f"page 1 ({api.url}/items) was refused: HTTP 403 Forbidden: *** may not read "
        "this (the credentials in headers may not read this)"
    )


def test_a_new_field_on_a_later_page_stops_the_run(tmp_path, api):
    later = [{"a": 3, "c": None}]  # a new field that is null: nothing is lost, the run goes on
    api.answers["/items"] = lambda q, h: ok(
        [{"a": 1}, {"a": 2}] if q["offset"] == "0" else later if q["offset"] == "2" else []
    )
    chunks, _ = read(tmp_path, url=api.url + "/items", paging={"by": "offset", "param": "offset"})
    assert [r for _, r in rows(chunks)] == [{"a": "1"}, {"a": "2"}, {"a": "3"}]
    later[0]["b"] = "new"
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=api.url + "/items", paging={"by": "offset", "param": "offset"})
    assert str(err.value) == (
        f"record 3 (page 2 ({api.url}/items, offset=2)) has a field 'b' that the records before it did not have; "
        "the columns are fixed by the first page so that they stay the same in every chunk. List the fields "
        "to read: columns: [a, b]"
    )
    chunks, _ = read(tmp_path, url=api.url + "/items", paging={"by": "offset", "param": "offset"}, columns=["a", "b"])
    assert [r for _, r in rows(chunks)] == [{"a": "1", "b": None}, {"a": "2", "b": None}, {"a": "3", "b": "new"}]


def test_max_pages_stops_with_a_warning(tmp_path, api):
    api.answers["/items"] = lambda q, h: ok(
        {"rows": [{"n": q.get("n", "0")}], "next": f"/items?n={int(q.get('n', 0)) + 1}"}
    )
    chunks, ctx = read(
        tmp_path, url=api.url + "/items", records="rows", max_pages=3, paging={"by": "link", "next": "next"}
    )
    assert [r["n"] for _, r in rows(chunks)] == ["0", "1", "2"]
    assert warnings(ctx) == ["json source: stopped after max_pages (3) pages; the server has more"]


@pytest.mark.parametrize(
    "answer, options, message",
    [
        (
            lambda q, h: ok([{"a": 1}]),
            {"paging": {"by": "offset", "param": "offset"}},
            "page 2 ({url}/items, offset=1) is the same as page 1: the server seems to ignore 'offset'; check paging.param",
        ),
        (
            lambda q, h: ok({"rows": [{"a": 1}], "next": "/items?again=1"}),
            {"records": "rows", "paging": {"by": "link", "next": "next"}},
            "the next link of page 2 ({url}/items?again=1) leads back to page 2; the pages would never end",
        ),
        (
            lambda q, h: (200, b"<html>\n<body>Sign in</body>", {"Content-Type": "text/html"}),
            {},
            "page 1 ({url}/items): the answer is not JSON (HTTP 200, text/html): line 1, column 1: unexpected "
            "character, expected a JSON value; it starts with '<html> <body>Sign in</body>'",
        ),
        (
            lambda q, h: ok({"result": {"count": 0}}),
            {"records": "result.rows"},
            "records 'result.rows' finds nothing in page 1 ({url}/items) (its keys: result); check the expression",
        ),
        (
            lambda q, h: (404, {"message": "no such dataset"}, {}),
            {},
            "page 1 ({url}/items) was refused: HTTP 404 Not Found: no such dataset (check the url)",
        ),
    ],
    ids=["offset-ignored", "link-loop", "not-json", "records-missing", "not-found"],
)
def test_http_errors(tmp_path, api, answer, options, message):
    api.answers["/items"] = answer
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=api.url + "/items", **options)
    assert str(err.value) == message.format(url=api.url)


def test_a_later_page_without_the_list_ends_the_pages(tmp_path, api):
    api.answers["/items"] = lambda q, h: ok({"rows": [{"a": 1}], "next": "/items?p=2"} if not q else {"done": True})
    chunks, _ = read(tmp_path, url=api.url + "/items", records="rows", paging={"by": "link", "next": "next"})
    assert rows(chunks) == [(1, {"a": "1"})]


def test_a_json_lines_answer(tmp_path, api):
    api.answers["/items"] = lambda q, h: (
        200,
        b'{"a": 1}\n\n{"a": 2, "b": {"c": true}}\n',
        {"Content-Type": "application/x-ndjson"},
    )
    chunks, _ = read(tmp_path, url=api.url + "/items", flatten=True)
    assert rows(chunks) == [(1, {"a": "1", "b.c": None}), (2, {"a": "2", "b.c": "true"})]


def test_no_headers_are_sent_to_another_host(tmp_path, api):
    other = api.url.replace("127.0.0.1", "localhost")
    api.answers["/items"] = lambda q, h: (302, b"", {"Location": f"{other}/moved"})
    api.answers["/moved"] = lambda q, h: ok([{"a": 1}])
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=api.url + "/items", headers={"Authorization": "Bearer abcdef"})
    assert str(err.value) == (
        f"page 1 ({api.url}/items) redirects to another host ({other[7:]}); the source "
        "sends its headers only to the url's host: use the final address as url"
    )
    assert [p for p, _, _ in api.requests] == ["/items"]
    chunks, _ = read(tmp_path, url=api.url + "/items")  # without headers the redirect is followed
    assert rows(chunks) == [(1, {"a": "1"})]


def test_limit_stops_asking_for_pages(route_cli, write_route, api, tmp_path):
    api.answers["/items"] = by_offset
    result = run_http(
        route_cli,
        write_route,
        api,
        {"records": "items", "paging": {"by": "offset", "param": "$offset", "size_param": "$limit", "size": 2}},
        "--limit",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["1", "2"]
    assert len(api.requests) <= 2


# -- streaming a JSON document ---------------------------------------------------------------------


def test_a_plain_path_is_streamed_chunk_by_chunk(tmp_path):
    # with columns given there is no first pass: chunks come before the parser reaches the bad end
    data = '{"items": [{"a": 1}, {"a": 2}, {"a": 3}], "rest": [1, 2,, 3]}'
    (tmp_path / "d.json").write_text(data)
    chunks = JsonSource(
        {"path": "d.json", "records": "items", "columns": ["a"]}, make_ctx(tmp_path, chunk_rows=1)
    ).chunks()
    assert [rows([next(chunks)]) for _ in range(3)] == [[(1, {"a": "1"})], [(2, {"a": "2"})], [(3, {"a": "3"})]]
    with pytest.raises(RunFailed) as err:
        next(chunks)
    assert (
        str(err.value) == "json source: d.json is not valid JSON: line 1, column 57: unexpected character, "
        "expected a JSON value"
    )


@pytest.mark.parametrize("columns", [None, ["id", "n"]])
def test_an_integer_beyond_64_bits_is_read_by_orjson_after_the_stream(tmp_path, columns):
    data = '{"rows": [{"id": "a", "n": 1}, {"id": "b", "n": 123456789012345678901234567890}, {"id": "c"}]}'
    options = {"columns": columns} if columns else {}
    chunks, _ = read(tmp_path, {"d.json": data}, chunk_rows=1, path="d.json", records="rows", **options)
    assert rows(chunks) == [
        (1, {"id": "a", "n": "1"}),
        (2, {"id": "b", "n": "1.2345678901234568e+29"}),
        (3, {"id": "c", "n": None}),
    ]


def test_a_key_named_item_is_not_mistaken_for_a_list(tmp_path):
    with pytest.raises(RunFailed) as err:
        read(tmp_path, {"d.json": '{"a": {"item": {"x": 1}}}'}, path="d.json", records="a")
    assert str(err.value) == (
        "records 'a' selects an object (keys: item) in d.json, not a list; to read it "
        'as one record write records: "[a]"'
    )


def test_quoted_keys_and_expressions(tmp_path):
    data = '{"the data": {"x.y": [{"a": 1}]}, "list": [{"a": 2, "keep": true}, {"a": 3}]}'
    chunks, _ = read(tmp_path, {"d.json": data}, path="d.json", records='"the data"."x.y"')
    assert rows(chunks) == [(1, {"a": "1"})]
    chunks, _ = read(tmp_path, path="d.json", records="list[?keep]")
    assert rows(chunks) == [(1, {"a": "2", "keep": "true"})]


def test_a_timeout_and_a_refused_connection(tmp_path, api):
    import time

    def slow(q, h):
        time.sleep(0.3)
        return ok([{"a": 1}])

    api.answers["/items"] = slow
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=api.url + "/items", timeout=0.1, retries=0)
    assert str(err.value) == f"page 1 ({api.url}/items): gave up after 1 attempts; last: no answer within 0.1 s"
    port = api.server.server_address[1]
    api.close()
    with pytest.raises(RunFailed) as err:
        read(tmp_path, url=f"http://127.0.0.1:{port}/items", retries=1, backoff=0)
    assert str(err.value) == (
        f"page 1 (http://127.0.0.1:{port}/items): gave up after 2 attempts; last: could "
        f"not connect to 127.0.0.1:{port}, or the connection dropped"
    )


def test_a_first_page_larger_than_a_chunk_fixes_the_columns_as_a_whole(tmp_path, api):
    api.answers["/items"] = lambda q, h: ok([{"a": 1}, {"a": 2}, {"a": 3, "b": {"c": 4}}])
    chunks, _ = read(tmp_path, chunk_rows=2, url=api.url + "/items", flatten=True)
    assert [list(c.columns) for c in chunks] == [["a", "b.c"], ["a", "b.c"]]
    assert rows(chunks) == [(1, {"a": "1", "b.c": None}), (2, {"a": "2", "b.c": None}), (3, {"a": "3", "b.c": "4"})]
