#!/usr/bin/env python3
"""A minimal SODA endpoint for benchmarks: parses each upsert body and answers like Socrata.

It isolates the client's cost: the server does the least a portal must (parse the JSON strictly,
count the rows) and nothing else. It also serves the dataset's metadata, since route reads the
columns before sending.

    POST /resource/<4x4>.json   JSON array of row objects -> {"Rows Created": n, ..., "Errors": 0}
                                (400 with a Socrata error body if the JSON is not strict)
    GET  /api/views/<4x4>.json  a view with the columns given by --columns
    GET  /stats                 {"rows":, "requests":, "bytes":, "parse_s":}
    POST /reset                 zero the counters

    python bench/sink.py --columns id:number,town:text --row-id id [--port 0]

Prints `PORT <n>` once listening; stops on SIGTERM/SIGINT or after --max-seconds.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

ROWS = re.compile(r"^/resource/([a-z0-9]{4}-[a-z0-9]{4})(\.json)?(\?.*)?$")
VIEW = re.compile(r"^/api/views/([a-z0-9]{4}-[a-z0-9]{4})(\.json)?(\?.*)?$")


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.rows = self.requests = self.bytes = 0
        self.parse_s = 0.0

    def add(self, rows: int, size: int, seconds: float):
        with self.lock:
            self.rows += rows
            self.requests += 1
            self.bytes += size
            self.parse_s += seconds


def view(dataset_id: str, columns: list[tuple[str, str]], row_id: str | None) -> dict:
    cols = [
        {"id": 100 + i, "fieldName": f, "name": f, "dataTypeName": t, "position": i + 1}
        for i, (f, t) in enumerate(columns)
    ]
    out = {
        "id": dataset_id,
        "name": f"bench {dataset_id}",
        "viewType": "tabular",
        "displayType": "table",
        "publicationStage": "published",
        "columns": cols,
        "metadata": {},
    }
    for c in cols:
        if c["fieldName"] == row_id:
            out["rowIdentifierColumnId"] = c["id"]
    return out


def make_handler(counters: Counters, columns, row_id):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # without it every answer waits ~40 ms for a delayed ACK

        def log_message(self, *args):
            pass

        def _answer(self, status: int, body):
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self):
            m = VIEW.match(self.path)
            if m:
                return self._answer(200, view(m.group(1), columns, row_id))
            if self.path == "/stats":
                with counters.lock:
                    return self._answer(
                        200,
                        {
                            "rows": counters.rows,
                            "requests": counters.requests,
                            "bytes": counters.bytes,
                            "parse_s": counters.parse_s,
                        },
                    )
            self._answer(404, {"code": "not-found", "error": True, "message": "not found"})

        def do_POST(self):
            body = self._body()
            if self.path == "/reset":
                with counters.lock:
                    counters.reset()
                return self._answer(200, {})
            if not ROWS.match(self.path):
                return self._answer(404, {"code": "not-found", "error": True, "message": "not found"})
            start = time.perf_counter()
            try:
                rows = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                return self._answer(400, {"code": "req.body.malformed-json", "error": True, "message": str(exc)})
            if not isinstance(rows, list):
                return self._answer(400, {"code": "req.body.not-an-array", "error": True, "message": "not an array"})
            counters.add(len(rows), len(body), time.perf_counter() - start)
            self._answer(
                200,
                {
                    "Rows Created": len(rows),
                    "Rows Updated": 0,
                    "Rows Deleted": 0,
                    "Errors": 0,
                    "By RowIdentifier": 0,
                    "By SID": 0,
                },
            )

    return Handler


def serve(port: int = 0, columns=(), row_id=None):
    """Start the sink in a background thread (for in-process use); returns (server, counters)."""
    counters = Counters()
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(counters, list(columns), row_id))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, counters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--columns", default="", help="field:type,... served as the dataset's columns")
    parser.add_argument("--row-id", default=None)
    parser.add_argument("--max-seconds", type=float, default=900)
    args = parser.parse_args()
    columns = [tuple(part.split(":", 1)) for part in args.columns.split(",") if part]
    server, _ = serve(args.port, columns, args.row_id)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        time.sleep(args.max_seconds)
    except KeyboardInterrupt:
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sys.exit(main())
