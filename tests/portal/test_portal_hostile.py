"""Hostile and broken HTTP input (issue 11): the portal answers 400/401/403/408/413 promptly, in
Socrata's error body, and neither its memory nor its threads can be taken.

Everything goes over real sockets to a real server on 127.0.0.1: a portal in its own process (so its
memory can be read from /proc) for the gzip bombs, an in-process one for the rest. Raw sockets where
a well-behaved portal library would refuse to send the request.
"""

from __future__ import annotations

import gzip
import socket
import time
import zlib

import pytest
import requests
from portalkit import SECRET, USER, ServedPortal

LIMIT = 8 * 1024 * 1024
TIMEOUT = 1.5


def bomb(inflated: int) -> bytes:
    """A gzip body of `inflated` zero bytes: 16 MiB members repeated (cheap to make, ~1000:1)."""
    member = gzip.compress(b"\0" * min(inflated, 16 << 20), compresslevel=6)
    return member * max(1, inflated // (16 << 20))


def error_body(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == body["errorCode"] == code and body["error"] is True and body["message"]
    return body


def vm(pid: int, key: str) -> int:
    """VmRSS or VmHWM of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(key)


# ---- a portal in its own process: memory under gzip bombs ------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A portal process with an 8 MiB body limit, and a dataset in it: (portal, 4x4)."""
    data = tmp_path_factory.mktemp("hostile") / "p.sqlite"
    with ServedPortal(data, process=True, args=("--max-body", "8MB", "--read-timeout", str(TIMEOUT))) as portal:
        ff = portal.create(columns=[{"fieldName": "a", "name": "a", "dataTypeName": "text"}], row_identifier=None)
        assert portal.post(f"/resource/{ff}.json", [{"a": "warm"}]).status_code == 200
        yield portal, ff


def test_gzip_bomb_without_credentials_is_refused_unread(served):
    portal, ff = served
    url = portal.url
    body = bomb(256 << 20)
    before = vm(portal.pid, "VmHWM")
    started = time.monotonic()
    r = requests.post(f"{url}/resource/{ff}.json", data=body, headers={"Content-Encoding": "gzip"})
    error_body(r, 403, "authentication_required")
    assert time.monotonic() - started < 5
    assert vm(portal.pid, "VmHWM") - before < 4 << 20  # nothing was inflated, nothing buffered


def test_gzip_bomb_with_credentials_stops_at_the_limit(served):
    portal, ff = served
    url = portal.url
    body = bomb(256 << 20)  # 256 MiB inflated from about 250 KB
    before = vm(portal.pid, "VmHWM")
    r = requests.post(f"{url}/resource/{ff}.json", data=body, headers={"Content-Encoding": "gzip"}, auth=(USER, SECRET))
    err = error_body(r, 413, "req.body.too-large")
    assert "8 MiB" in err["message"] and "--max-body" in err["message"] and err["data"] == {"limit": LIMIT}
    grown = vm(portal.pid, "VmHWM") - before
    print(f"portal peak RSS grew by {grown / 2**20:.1f} MiB under a 256 MiB gzip bomb (limit 8 MiB)")
    assert grown < LIMIT + (8 << 20)
    with requests.Session() as s:  # and it still serves
        s.auth = (USER, SECRET)
        r = s.post(
            f"{url}/resource/{ff}.json", data=gzip.compress(b'[{"a": "zipped"}]'), headers={"Content-Encoding": "gzip"}
        )
        assert r.status_code == 200, r.text
        assert {"a": "zipped"} in s.get(f"{url}/resource/{ff}.json").json()


def test_body_over_the_limit_on_the_wire_is_refused_from_its_length(served):
    portal, ff = served
    url = portal.url
    r = requests.post(f"{url}/resource/{ff}.json", data=b"[" + b" " * LIMIT + b"]", auth=(USER, SECRET))
    error_body(r, 413, "req.body.too-large")


def test_chunked_body_over_the_limit_is_refused(served):
    portal, ff = served
    url = portal.url
    pieces = (b" " * (1 << 20) for _ in range(12))  # a generator: requests sends it chunked
    r = requests.post(f"{url}/resource/{ff}.json", data=pieces, auth=(USER, SECRET))
    error_body(r, 413, "req.body.too-large")


# ---- raw sockets against an in-process portal ------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A portal served from this process with the same limits, and a dataset: (portal, 4x4)."""
    with ServedPortal(tmp_path_factory.mktemp("raw") / "p.sqlite", max_body=LIMIT, read_timeout=TIMEOUT) as portal:
        ff = portal.create(columns=[{"fieldName": "a", "name": "a", "dataTypeName": "text"}], row_identifier=None)
        yield portal, ff


def exchange(server, head: str, body: bytes = b"", wait: float = 10) -> tuple[int, dict, bytes, bool]:
    """Send a raw request; returns (status, headers, body, closed: the server hung up after it)."""
    with socket.create_connection((server.host, server.port), timeout=wait) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            piece = s.recv(65536)
            assert piece, f"closed without an answer: {data!r}"
            data += piece
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        while len(rest) < int(headers.get("content-length", 0)):
            rest += s.recv(65536)
        try:
            closed = s.recv(1) == b""
        except TimeoutError:
            closed = False
        return int(lines[0].split()[1]), headers, rest, closed


def auth_header() -> str:
    import base64

    return "Authorization: Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()


@pytest.mark.parametrize(
    "length, status",
    [("-1", 400), ("abc", 400), ("1e3", 400), ("10, 20", 400), ("99999999999999999999999", 400), (str(LIMIT + 1), 413)],
)
def test_bad_content_length_is_answered_at_once_and_closed(live, length, status):
    server, ff = live
    started = time.monotonic()
    code, headers, body, closed = exchange(
        server, f"POST /resource/{ff}.json HTTP/1.1\nHost: x\n{auth_header()}\nContent-Length: {length}\n"
    )
    assert code == status and time.monotonic() - started < 1.5 and closed
    assert headers["connection"] == "close"
    assert body.startswith(b'{"code":"req.')


def test_two_framings_at_once_are_refused(live):
    server, ff = live
    code, _h, body, closed = exchange(
        server, f"POST /resource/{ff}.json HTTP/1.1\nHost: x\nContent-Length: 2\nTransfer-Encoding: chunked\n", b"[]"
    )
    assert code == 400 and b"req.header.content-length" in body and closed


def test_wrong_credentials_are_answered_before_the_body_arrives(live):
    server, ff = live
    started = time.monotonic()
    code, _h, body, closed = exchange(
        server,
        f"POST /resource/{ff}.json HTTP/1.1\nHost: x\nAuthorization: Basic d3Jvbmc6d3Jvbmc=\nContent-Length: 5000000\n",
    )
    assert code == 401 and b"invalid_credentials" in body and closed
    assert time.monotonic() - started < TIMEOUT  # the 5 MB it announced were never waited for


def test_expect_continue_without_credentials_gets_403_not_100(live):
    server, ff = live
    code, _h, body, closed = exchange(
        server, f"POST /resource/{ff}.json HTTP/1.1\nHost: x\nContent-Length: 100000\nExpect: 100-continue\n"
    )
    assert code == 403 and b"authentication_required" in body and closed


def test_expect_continue_with_credentials_gets_100_then_the_answer(live):
    server, ff = live
    body = b'[{"a": "continued"}]'
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(
            f"POST /resource/{ff}.json HTTP/1.1\r\nHost: x\r\n{auth_header()}\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        assert s.recv(1000).startswith(b"HTTP/1.1 200 ")


def test_a_silent_client_is_let_go(live):
    server, _ff = live
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        assert s.recv(100) == b""  # closed by the portal, no request needed
    assert TIMEOUT - 0.2 < time.monotonic() - started < TIMEOUT + 3


def test_a_body_that_stops_arriving_gets_408(live):
    server, ff = live
    started = time.monotonic()
    code, _h, body, closed = exchange(
        server, f"POST /resource/{ff}.json HTTP/1.1\nHost: x\n{auth_header()}\nContent-Length: 100\n", b'[{"a": '
    )
    assert code == 408 and b"req.timeout" in body and closed
    assert time.monotonic() - started < TIMEOUT + 3


@pytest.mark.parametrize("chunks", [b"zz\r\n", b"5\r\n[]", b"1" * 2000 + b"\r\n", b"2\r\n[]XX0\r\n\r\n"])
def test_malformed_chunked_body_is_400(live, chunks):
    server, ff = live
    code, _h, body, closed = exchange(
        server,
        f"POST /resource/{ff}.json HTTP/1.1\nHost: x\n{auth_header()}\nTransfer-Encoding: chunked\n",
        chunks,
        wait=TIMEOUT + 5,
    )
    assert code in (400, 408) and closed
    if code == 400:
        assert b"req.body.bad-chunk" in body


# mtime=0: the same bytes (and test ids) in every xdist worker, whatever second each collects in
@pytest.mark.parametrize(
    "payload", [b"not gzip at all", gzip.compress(b"[]", mtime=0)[:-4], gzip.compress(b"[]", mtime=0) + b"junk"]
)
def test_broken_gzip_is_400(live, payload):
    server, ff = live
    code, _h, body, _closed = exchange(
        server,
        f"POST /resource/{ff}.json HTTP/1.1\nHost: x\n{auth_header()}\n"
        f"Content-Encoding: gzip\nContent-Length: {len(payload)}\n",
        payload,
    )
    assert code == 400 and b"req.body.bad-gzip" in body


def test_good_bodies_still_work_chunked_and_gzipped(live):
    server, ff = live
    with requests.Session() as s:
        s.auth = (USER, SECRET)
        url = f"{server.url}/resource/{ff}.json"
        zipped = zlib.compressobj(wbits=31)
        payload = zipped.compress(b'[{"a": "member one"}]') + zipped.flush() + gzip.compress(b"")
        assert s.post(url, data=payload, headers={"Content-Encoding": "gzip"}).status_code == 200
        assert s.post(url, data=iter([b'[{"a": ', b'"chunked"}]'])).status_code == 200
        assert s.post(url, data=b"", headers={"Content-Encoding": "gzip"}).status_code == 200
        rows = s.get(url).json()
    assert {"a": "member one"} in rows and {"a": "chunked"} in rows


def test_http_servers_own_refusals_carry_socratas_error_body(live):
    server, _ff = live
    code, headers, body, closed = exchange(server, "GET /" + "a" * 70000 + " HTTP/1.1\nHost: x\n")
    assert code == 414 and headers["content-type"].startswith("application/json") and closed
    assert b'"code":"req.malformed"' in body


# ---- SoQL over HTTP: every wrong query is a 400 with Socrata's body -------------------------------------


@pytest.fixture(scope="module")
def rows_portal(tmp_path_factory):
    """The URL of ten rows on an open portal (no users), read anonymously."""
    path = tmp_path_factory.mktemp("soql") / "p.sqlite"
    with ServedPortal(path, users={}, max_body=LIMIT, read_timeout=TIMEOUT) as portal:
        ff = portal.create(
            columns=[
                {"fieldName": "a", "name": "a", "dataTypeName": "text"},
                {"fieldName": "n", "name": "n", "dataTypeName": "number"},
            ],
            row_identifier=None,
            name="n",
        )
        assert portal.post(f"/resource/{ff}.json", [{"a": str(i), "n": i} for i in range(10)]).status_code == 200
        yield portal.url + f"/resource/{ff}.json"


def test_huge_limit_reads_every_row_and_huge_offset_reads_none(rows_portal):
    r = requests.get(rows_portal, params={"$limit": "9" * 40})
    assert r.status_code == 200 and len(r.json()) == 10
    r = requests.get(rows_portal, params={"$offset": "9" * 40})
    assert r.status_code == 200 and r.json() == []
    for bad in ("-1", "ten", "1.5", "1e3", "0x10"):
        error_body(requests.get(rows_portal, params={"$limit": bad}), 400, "query.compiler.malformed")


@pytest.mark.parametrize(
    "where, why",
    [
        ("n = " + "9" * 400, "number literal longer than 100"),
        ("n < 1e999", "too large for a double"),
        ("(" * 3000 + "n = 1" + ")" * 3000, "nested more than 40 levels"),
        ("not " * 3000 + "n = 1", "nested more than 40 levels"),
        ("n = " + "-" * 3000 + "1", "nested more than 40 levels"),
        ("upper(" * 3000 + "a" + ")" * 3000, "nested more than 40 levels"),
        ("n = " + " + ".join(["1"] * 3000), "more than 100 levels deep"),
        ("a = 'x' ||" + " || ".join(["a"] * 500), "more than 100 levels deep"),
    ],
)
def test_hostile_where_is_400_with_the_reason(rows_portal, where, why):
    body = error_body(requests.get(rows_portal, params={"$where": where}), 400, "query.compiler.malformed")
    assert why in body["message"] and len(body["message"]) < 600
    assert body["data"]["query"] == where and body["data"]["clause"] == "$where"


def test_a_long_flat_or_chain_works(rows_portal):
    where = " or ".join(f"n = {i}" for i in range(3000))
    r = requests.get(rows_portal, params={"$where": where, "$order": "n"})
    assert r.status_code == 200, r.text
    assert [row["n"] for row in r.json()] == [str(i) for i in range(10)]
    where = " and ".join(["n >= 0"] * 3000) + " and n < 3"
    r = requests.get(rows_portal, params={"$where": where})
    assert r.status_code == 200 and len(r.json()) == 3


def test_hostile_select_order_group_and_query_are_400(rows_portal):
    deep = "(" * 500 + "n" + ")" * 500
    for params in (
        {"$select": deep},
        {"$order": deep},
        {"$group": deep},
        {"$having": deep},
        {"$query": f"SELECT n WHERE {deep}"},
        {"$query": "SELECT n LIMIT " + "9" * 400},
    ):
        r = requests.get(rows_portal, params=params)
        if "LIMIT" in params.get("$query", ""):
            assert r.status_code == 200 and len(r.json()) == 10
        else:
            error_body(r, 400, "query.compiler.malformed")


# ---- odd shapes elsewhere: 400 or 404, never 500 -------------------------------------------------------


def test_odd_shapes_in_bodies_paths_and_parameters_are_4xx(portal):
    ff = portal.create()
    cases = [
        (portal.post, "/api/publishing/v1/revision", {"action": 5}, 400, "req.body.not-an-object"),
        (portal.post, "/api/publishing/v1/revision", {"metadata": "x"}, 400, "req.body.not-an-object"),
        (portal.post, f"/api/publishing/v1/revision/{ff}", {"action": [1]}, 400, "req.body.not-an-object"),
        (portal.post, "/api/publishing/v1/source", {"source_type": "upload"}, 400, "req.body.not-an-object"),
        (portal.post, "/api/publishing/v1/source", {"parse_options": 1}, 400, "req.body.not-an-object"),
        (
            portal.post,
            "/api/publishing/v1/source/99999999999999999999/chunk/99999999999999999999/0",
            b"x",
            404,
            "not_found",
        ),
        (portal.get, "/api/catalog/v1?offset=-5", None, 400, "req.param.not-a-number"),
        (portal.get, "/api/catalog/v1?limit=abc", None, 400, "req.param.not-a-number"),
    ]
    for method, path, body, status, code in cases:
        r = method(path, body) if body is not None else method(path)
        assert r.status_code == status and r.json()["code"] == code, (path, body, r.text)
    r = portal.get("/api/catalog/v1?offset=99999999999999999999999")
    assert r.status_code == 200 and r.json()["results"] == []


def test_arithmetic_beyond_a_double_reads_as_infinity(portal):
    ff = portal.create(columns=[{"fieldName": "n", "name": "n", "dataTypeName": "number"}], row_identifier=None)
    assert portal.post(f"/resource/{ff}.json", [{"n": "12345678901234567890"}, {"n": "-1e300"}]).status_code == 200
    r = portal.get(f"/resource/{ff}.json", params={"$select": " * ".join(["n"] * 17) + " as big"})
    assert r.status_code == 200 and r.json() == [{"big": "Infinity"}, {"big": "-Infinity"}]
