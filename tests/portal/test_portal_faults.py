"""Failures on purpose (500/503, 429 + Retry-After, delays, dropped connections) and killed requests."""

from __future__ import annotations

import base64
import socket
import time

import pytest
import requests
from portalkit import SECRET, USER, ServedPortal

from pipeline.portal import Faults
from pipeline.portal.faults import FaultError


def test_nth_write_fails_with_500_and_writes_nothing(portal):
    ff = portal.create()
    portal.faults.fail(2)
    assert portal.post(f"/resource/{ff}.json", [{"case_id": "A"}]).status_code == 200
    r = portal.post(f"/resource/{ff}.json", [{"case_id": "B"}])
    assert r.status_code == 500 and r.json()["error"] is True
    assert portal.post(f"/resource/{ff}.json", [{"case_id": "C"}]).status_code == 200
    assert [x["case_id"] for x in portal.rows(ff)] == ["A", "C"]
    assert portal.faults.fired == [("500@2", "POST", f"/resource/{ff}.json")]


def test_503_several_times_and_only_on_a_path(portal):
    ff = portal.create()
    portal.faults.fail(1, status=503, times=2, path="/resource/")
    assert portal.put(f"/api/views/{ff}.json", {"name": "renamed"}).status_code == 200  # not counted
    codes = [portal.post(f"/resource/{ff}.json", [{"case_id": str(i)}]).status_code for i in range(3)]
    assert codes == [503, 503, 200]


def test_throttle_answers_429_with_retry_after(portal):
    ff = portal.create()
    portal.faults.throttle(1, retry_after=2)
    r = portal.post(f"/resource/{ff}.json", [{"case_id": "A"}])
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert r.json()["errorCode"] == "too-many-requests"
    assert portal.rows(ff) == []


def test_delay(portal):
    ff = portal.create()
    portal.faults.delay(1, seconds=0.3)
    start = time.perf_counter()
    assert portal.post(f"/resource/{ff}.json", [{"case_id": "A"}]).status_code == 200
    assert time.perf_counter() - start >= 0.3


def test_drop_before_commit_writes_nothing(portal):
    ff = portal.create()
    portal.faults.drop(1)
    with pytest.raises(requests.exceptions.ConnectionError, match=r"(?i)aborted|closed|reset|disconnected"):
        portal.post(f"/resource/{ff}.json", [{"case_id": "A"}])
    assert portal.rows(ff) == []
    assert portal.post(f"/resource/{ff}.json", [{"case_id": "A"}]).status_code == 200


def test_drop_after_commit_keeps_the_write(portal):
    ff = portal.create()
    portal.faults.drop(1, after_commit=True)
    with pytest.raises(requests.exceptions.ConnectionError, match=r"(?i)aborted|closed|reset|disconnected"):
        portal.post(f"/resource/{ff}.json", [{"case_id": "A"}])
    assert portal.rows(ff) == [{"case_id": "A"}]


def test_fault_spec_text():
    faults = Faults("500@3,503@5x2,429@2=1.5,delay@1=0.25,drop@4,drop-after@6/resource,500@1x*")
    kinds = [(r.kind, r.nth, r.times, r.status, r.retry_after, r.seconds, r.after_commit, r.path) for r in faults.rules]
    assert kinds == [
        ("status", 3, 1, 500, None, 0.0, False, None),
        ("status", 5, 2, 503, None, 0.0, False, None),
        ("status", 2, 1, 429, 1.5, 0.0, False, None),
        ("delay", 1, 1, 500, None, 0.25, False, None),
        ("drop", 4, 1, 500, None, 0.0, False, None),
        ("drop", 6, 1, 500, None, 0.0, True, "/resource"),
        ("status", 1, None, 500, None, 0.0, False, None),
    ]
    for bad, why in (
        ("500", "is not KIND@N"),
        ("boom@1", "is not KIND@N"),
        ("500@0", "nth counts from 1"),
        ("200@1", "the status must be 4xx or 5xx"),
    ):
        with pytest.raises(FaultError, match=why):
            Faults(bad)


def test_spec_given_to_the_portal(tmp_path):
    with ServedPortal(tmp_path / "p.sqlite", faults="503@2") as portal:
        ff = portal.create(columns=[{"fieldName": "a"}], row_identifier=None)
        codes = [portal.post(f"/resource/{ff}.json", '[{"a": "1"}]').status_code for _ in range(3)]
    assert codes == [200, 503, 200]


def test_a_request_killed_mid_body_changes_nothing(portal):
    ff = portal.create()
    portal.post(f"/resource/{ff}.json", [{"case_id": "A", "status": "old"}])
    body = b'[{"case_id": "A", "status": "new"}, {"case_id": "B"}]'
    with socket.create_connection((portal.host, portal.port)) as sock:
        sock.sendall(
            b"POST /resource/" + ff.encode() + b".json HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Basic "
            + base64.b64encode(f"{USER}:{SECRET}".encode())
            + b"\r\nContent-Length: "
            + str(len(body) + 500).encode()
            + b"\r\n\r\n"
            + body
        )
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        assert sock.recv(100) == b""  # no answer: the request never completed
    assert portal.rows(ff) == [{"case_id": "A", "status": "old"}]
    assert portal.post(f"/resource/{ff}.json", [{"case_id": "B"}]).status_code == 200
