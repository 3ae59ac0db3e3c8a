"""How many upserts a socrata delivery keeps in flight: as given, else as the portal asks (the local
portal asks for one: it handles writes one at a time, and requests side by side only cost it more),
else four. A small real server counts the requests it holds at once."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from socratakit import CASES, cases

DATASET = "abcd-1234"


class CountingPortal:
    """Answers a view of CASES and every upsert (after a pause, so requests overlap when the client
    sends them side by side), remembering the most it held at once; `preferred` is the
    X-Preferred-Concurrency it sends, or None."""

    def __init__(self, preferred: str | None):
        self.preferred = preferred
        self.in_flight = self.most = 0
        self.lock = threading.Lock()
        portal = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, body: dict) -> None:
                data = orjson.dumps(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if portal.preferred is not None:
                    self.send_header("X-Preferred-Concurrency", portal.preferred)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                columns = [dict(c, id=100 + i, position=i + 1) for i, c in enumerate(CASES)]
                self._answer(
                    {
                        "id": DATASET,
                        "name": "Cases",
                        "viewType": "tabular",
                        "displayType": "table",
                        "publicationStage": "published",
                        "columns": columns,
                        "rowIdentifierColumnId": 100,
                        "metadata": {},
                    }
                )

            def do_POST(self):
                rows = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with portal.lock:
                    portal.in_flight += 1
                    portal.most = max(portal.most, portal.in_flight)
                time.sleep(0.1)
                with portal.lock:
                    portal.in_flight -= 1
                self._answer({"Rows Created": len(rows), "Rows Updated": 0, "Rows Deleted": 0, "Errors": 0})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("preferred", "given", "most"),
    [
        (None, None, 4),  # Socrata says nothing: four at a time
        ("1", None, 1),  # the local portal asks for one
        ("1", 3, 3),  # a concurrency the route gives wins
        ("banana", None, 4),  # what the portal says is not a number: ignored
    ],
)
def test_requests_in_flight(deliver, preferred, given, most):
    portal = CountingPortal(preferred)
    try:
        options = {"domain": portal.url, "dataset": DATASET, "mode": "upsert", "batch_rows": 2}
        if given is not None:
            options["concurrency"] = given
        run = deliver(options, cases(30))
        assert run.result.delivered == 30
        assert portal.most == most
    finally:
        portal.close()


def test_the_local_portal_asks_for_one_request_at_a_time(portal):
    response = portal.get("/api/views.json")
    assert response.headers["X-Preferred-Concurrency"] == "1"
