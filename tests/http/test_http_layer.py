"""The shared HTTP layer (pipeline/http) against a real server on 127.0.0.1: retries, Retry-After,
refusals with the server's message, unknown outcomes, cancellation, redirects and masking."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline import http as layer
from pipeline.socrata.errors import OutcomeUnknown as SocrataOutcomeUnknown
from pipeline.socrata.errors import SocrataError
from pipeline.socrata.http import SocrataSession

SECRET = "s3cret-pa55word"
DROP = "drop"  # close the connection after reading the request, without an answer


class Server:
    """Answers each path from a script: a list of (status, body, headers), DROP, or ("sleep", s, answer);
    the last entry repeats. Records every request (path, headers, client port)."""

    def __init__(self):
        self.script: dict[str, list] = {}
        self.requests: list[tuple[str, dict, int]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                path = self.path.split("?")[0]
                outer.requests.append((self.path, dict(self.headers), self.client_address[1]))
                queue = outer.script.get(path) or [(404, {"message": "no such path"}, {})]
                answer = queue.pop(0) if len(queue) > 1 else queue[0]
                if isinstance(answer, tuple) and answer[0] == "sleep":
                    time.sleep(answer[1])
                    answer = answer[2]
                if answer == DROP:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, body, headers = answer
                if callable(body):
                    body = body(dict(self.headers))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away first

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def log():
    logger = logging.getLogger("test.http_layer")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    logger.records = records
    yield logger
    logger.removeHandler(handler)


def session(**more) -> layer.Session:
    policy = layer.RetryPolicy(more.pop("retries", 2), more.pop("backoff", 0.0), more.pop("max_wait", 300.0))
    return layer.Session(policy=policy, timeout=more.pop("timeout", 5.0), **more)


def test_a_5xx_is_retried_and_the_retry_is_logged(server, log):
    server.script["/x"] = [(500, {"message": "oops"}, {}), (200, {"ok": True}, {})]
    http = session(log=log)
    assert http.request("GET", server.url + "/x", what="GET /x").json() == {"ok": True}
    assert server.paths() == ["/x", "/x"]
    assert log.records == ["GET /x: HTTP 500 (oops); retrying in 0.0 s (attempt 2 of 3)"]


def test_giving_up_names_the_attempts_and_the_last_failure(server):
    server.script["/x"] = [(503, b"<html>down for maintenance</html>", {})]
    with pytest.raises(layer.GaveUp) as err:
        session().request("GET", server.url + "/x", what="GET /x")
    assert str(err.value) == "GET /x: gave up after 3 attempts; last: HTTP 503 (<html>down for maintenance</html>)"
    assert (err.value.attempts, err.value.status, err.value.outcome) == (3, 503, layer.NOT_APPLIED)
    assert len(server.requests) == 3


def test_retry_after_is_honoured_instead_of_the_back_off(server, log):
    server.script["/x"] = [(429, {"message": "slow down"}, {"Retry-After": "1"}), (200, {}, {})]
    start = time.perf_counter()
    session(backoff=30, log=log).request("GET", server.url + "/x", what="GET /x")
    assert 1.0 <= time.perf_counter() - start < 5
    assert re.fullmatch(r"GET /x: HTTP 429 \(slow down\); retrying in 1\.[01] s \(attempt 2 of 3\)", log.records[0])


def test_a_long_retry_after_is_cut_to_the_longest_wait(server):
    server.script["/x"] = [(503, {}, {"Retry-After": "3600"}), (200, {}, {})]
    start = time.perf_counter()
    session(max_wait=0.2).request("GET", server.url + "/x", what="GET /x")
    assert time.perf_counter() - start < 2


def test_retry_after_forms():
    assert layer.retry_after_seconds("2") == 2.0 and layer.retry_after_seconds("0.25") == 0.25
    assert layer.retry_after_seconds(None) is None and layer.retry_after_seconds("soon") is None
    assert 0 <= layer.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") < 1  # a date in the past: now


def test_back_off_doubles_with_jitter_and_is_capped():
    policy = layer.RetryPolicy(retries=5, backoff=1.0, max_wait=5.0)
    for attempt, middle in ((1, 1.0), (2, 2.0), (3, 4.0)):
        assert all(0.5 * middle <= policy.delay(attempt) <= min(5.0, 1.5 * middle) for _ in range(50))
    assert policy.delay(10) == 5.0


def test_a_refusal_is_final_and_carries_the_servers_message(server):
    server.script["/x"] = [(404, {"error": {"message": "no dataset abcd-1234"}}, {})]
    with pytest.raises(layer.Refused) as err:
        session().request("GET", server.url + "/x", what="GET /x")
    assert str(err.value) == "GET /x was refused: HTTP 404 Not Found: no dataset abcd-1234"
    assert (err.value.status, err.value.phrase, err.value.server_message) == (404, "Not Found", "no dataset abcd-1234")
    assert err.value.body == {"error": {"message": "no dataset abcd-1234"}}
    assert len(server.requests) == 1


def test_secrets_never_appear_in_messages_or_log_lines(server, log):
    def echo(headers):
        return {"message": f"token {headers.get('X-Api-Key')} and {headers.get('Authorization')} rejected"}

    server.script["/x"] = [(500, echo, {}), (401, echo, {})]
    http = session(log=log, auth=("user", SECRET), headers={"X-Api-Key": "k-777-token"}, secrets=["k-777-token"])
    with pytest.raises(layer.Refused) as err:
        http.request("GET", server.url + "/x", what="GET /x")
    assert server.requests[0][1]["X-Api-Key"] == "k-777-token"  # it was sent
    assert str(err.value) == "GET /x was refused: HTTP 401 Unauthorized: token *** and Basic *** rejected"
    assert "k-777-token" not in log.records[0] and "token ***" in log.records[0]
    # Basic auth travels base64-encoded: the session masks the password itself wherever a server echoes it
    server.script["/y"] = [(403, {"message": f"password {SECRET} is wrong"}, {})]
    with pytest.raises(layer.Refused) as err:
        http.request("GET", server.url + "/y", what="GET /y")
    assert str(err.value) == "GET /y was refused: HTTP 403 Forbidden: password *** is wrong"


def test_the_callers_mask_applies_too(server):
    server.script["/x"] = [(503, {"message": "run-secret-9 is down"}, {})]
    with pytest.raises(layer.GaveUp) as err:
        session(retries=0, mask=lambda text: text.replace("run-secret-9", "***")).request(
            "GET", server.url + "/x", what="GET /x"
        )
    assert str(err.value) == "GET /x: gave up after 1 attempts; last: HTTP 503 (*** is down)"


def test_cancellation_stops_the_wait_promptly(server):
    server.script["/x"] = [(503, {"message": "busy"}, {})]
    cancelled = threading.Event()
    threading.Timer(0.3, cancelled.set).start()
    start = time.perf_counter()
    with pytest.raises(layer.Cancelled) as err:
        session(backoff=60, retries=5, cancelled=cancelled).request("GET", server.url + "/x", what="GET /x")
    assert time.perf_counter() - start < 3
    assert str(err.value) == "GET /x: cancelled while waiting to retry (HTTP 503 (busy))"
    assert len(server.requests) == 1


def test_a_request_that_must_not_be_repeated_is_not_resent_after_a_500(server):
    server.script["/append"] = [(500, {"message": "oops"}, {}), (200, {}, {})]
    with pytest.raises(layer.OutcomeUnknown) as err:
        session(peer="the portal").request(
            "POST", server.url + "/append", what="append of rows 2-6", json=[{"a": 1}], repeatable=False
        )
    assert str(err.value) == "append of rows 2-6: HTTP 500 (oops); the portal may or may not have applied it"
    assert err.value.outcome == layer.UNKNOWN
    assert len(server.requests) == 1


def test_a_dropped_connection_after_sending_is_an_unknown_outcome(server):
    server.script["/append"] = [DROP, (200, {}, {})]
    with pytest.raises(layer.OutcomeUnknown, match=f"the connection to {server.host} was dropped before the answer"):
        session().request("POST", server.url + "/append", what="append", json=[{"a": 1}], repeatable=False)
    assert len(server.requests) == 1
    # the same drop is retried when repeating is harmless
    server.script["/upsert"] = [DROP, (200, {"ok": 1}, {})]
    assert session().request("POST", server.url + "/upsert", what="upsert", json=[{"a": 1}]).json() == {"ok": 1}


def test_what_was_certainly_not_applied_is_retried_even_when_not_repeatable(server):
    server.script["/append"] = [(429, {}, {"Retry-After": "0"}), (503, {}, {}), (200, {"ok": 1}, {})]
    response = session().request("POST", server.url + "/append", what="append", json=[{"a": 1}], repeatable=False)
    assert response.json() == {"ok": 1} and len(server.requests) == 3


def test_no_server_at_all_is_retried_and_certainly_not_applied():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(layer.GaveUp) as err:
        session(retries=1).request("POST", f"http://127.0.0.1:{port}/x", what="append", repeatable=False)
    assert str(err.value) == f"append: gave up after 2 attempts; last: could not connect to 127.0.0.1:{port}"
    assert err.value.outcome == layer.NOT_APPLIED and err.value.status is None


def test_a_slow_answer_times_out_and_is_tried_again(server):
    server.script["/x"] = [("sleep", 0.6, (200, {"late": 1}, {})), (200, {"ok": 1}, {})]
    assert session(timeout=0.2).request("GET", server.url + "/x", what="GET /x").json() == {"ok": 1}
    server.script["/y"] = [("sleep", 0.6, (200, {}, {}))]
    with pytest.raises(layer.GaveUp) as err:
        session(timeout=0.2, retries=0).request("GET", server.url + "/y", what="GET /y")
    assert str(err.value) == f"GET /y: gave up after 1 attempts; last: no answer from {server.host} within 0.2 s"


def test_one_session_keeps_its_connection_alive(server):
    server.script["/x"] = [(200, {}, {})]
    http = session()
    for _ in range(3):
        http.request("GET", server.url + "/x", what="GET /x")
    assert len({port for _, _, port in server.requests}) == 1
    http.close()


def test_credentials_are_not_sent_to_another_host_on_a_redirect(server):
    other = server.url.replace("127.0.0.1", "localhost")
    server.script["/x"] = [(302, b"", {"Location": f"{other}/moved"})]
    server.script["/here"] = [(302, b"", {"Location": "/moved"})]
    server.script["/moved"] = [(200, {"ok": 1}, {})]
    http = session(headers={"X-Api-Key": "k-1"}, same_host_redirects=True)
    with pytest.raises(layer.RedirectRefused) as err:
        http.request("GET", server.url + "/x", what="GET /x")
    assert err.value.host == other[len("http://") :]
    assert server.paths() == ["/x"]
    assert http.request("GET", server.url + "/here", what="GET /here").json() == {"ok": 1}  # same host: followed
    assert session().request("GET", server.url + "/x", what="GET /x").json() == {"ok": 1}  # no credentials


def test_the_socrata_session_turns_refusals_into_advice_and_masks_its_secrets(server):
    server.script["/api/views/abcd-1234.json"] = [
        (403, lambda h: {"code": "permission_denied", "message": f"no, {SECRET}"}, {})
    ]
    http = SocrataSession(server.url, auth={"username": "u", "password": SECRET}, retries=0)
    with pytest.raises(SocrataError) as err:
        http.get_json("/api/views/abcd-1234.json", what="reading dataset abcd-1234", dataset="abcd-1234")
    assert str(err.value).startswith(
        "reading dataset abcd-1234: the account in auth has no permission to change "
        f"dataset abcd-1234 on {server.url} (HTTP 403)"
    )
    assert str(err.value).endswith("The portal said: no, ***")
    assert (err.value.status, err.value.code, err.value.server_message) == (403, "permission_denied", "no, ***")
    assert re.fullmatch(r"[0-9a-f]{32}", server.requests[0][1]["X-Socrata-RequestId"])
    server.script["/resource/abcd-1234.json"] = [DROP]
    with pytest.raises(SocrataOutcomeUnknown, match="the portal may or may not have applied it"):
        http.send_json("POST", "/resource/abcd-1234.json", [{"a": 1}], what="append", repeatable=False)


def test_every_http_caller_goes_through_the_layer():
    # One layer, no hand-written loops: outside pipeline/http no module opens a session or sends a
    # request with requests itself (the local portal is a server and sends none).
    from pathlib import Path

    import pipeline

    root = Path(pipeline.__file__).parent
    direct = re.compile(r"\brequests\.(get|post|put|patch|delete|head|request|Session)\(")
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.parent.name != "http" or p.parent.parent != root
        if direct.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
