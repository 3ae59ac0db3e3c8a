"""Serving the portal: a threaded HTTP/1.1 server (keep-alive, TCP_NODELAY), optionally TLS.

http.server is enough here: every request is one SQLite transaction, so the server's own cost is
small beside the work, and it brings no dependency. Two details matter for speed: responses go out
with Nagle off (otherwise each one waits ~40 ms for a delayed ACK), and connections stay open. Each
connection gets a thread; TLS handshakes happen in that thread, never in the accepting one.
"""

from __future__ import annotations

import gzip
import logging
import socket
import ssl
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import behaviour
from .errors import PortalError
from .http import WRITE_METHODS, Request, Response, error_response

log = logging.getLogger("pipeline.portal")


class _Dropped(Exception):
    """Close the connection without an answer (a fault)."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "route-local-portal/1"
    timeout = 300

    def log_message(self, fmt, *args):   # the query string may hold an app token: log the path only
        pass

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        portal = self.server.portal
        started = time.perf_counter()
        try:
            body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True     # the client went away mid-body: nothing is written
            return
        request = Request.parse(self.command, self.path, self.headers, body, portal)
        dsmapi = request.path.startswith("/api/publishing/")
        drop_after = False
        try:
            try:
                if self.command == "OPTIONS":
                    response = Response(204, b"", "text/plain", {"Access-Control-Allow-Methods":
                                                                  "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                                                                  "Access-Control-Allow-Headers": "*"})
                else:
                    request.user = portal.auth.identify(self.headers)
                    if self.command in WRITE_METHODS:
                        wait, rule = portal.faults.on_write(self.command, request.path)
                        if wait:
                            time.sleep(wait)
                        if rule is not None:
                            if rule.kind == "drop" and not rule.after_commit:
                                raise _Dropped()
                            if rule.kind == "drop":
                                drop_after = True
                            elif rule.status == 429:
                                raise behaviour.throttled(rule.retry_after or 1)
                            else:
                                raise PortalError(rule.status, "internal_error" if rule.status >= 500 else "fault",
                                                  f"Fault injected by the local portal (HTTP {rule.status})")
                    handler, groups = portal.router.find(self.command, request.path)
                    response = handler(request, **groups)
            except PortalError as err:
                response = error_response(err, dsmapi)
            except _Dropped:
                raise
            except Exception:   # a bug: answer 500 with a body clients can read, keep serving
                log.error("local portal: %s %s failed:\n%s", self.command, request.path, traceback.format_exc())
                response = error_response(PortalError(500, "internal_error", "The local portal failed on this "
                                                      "request; see its log"), dsmapi)
            if drop_after:
                raise _Dropped()
            self._send(response, request)
        except _Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        log.debug("%s %s %.1f ms", self.command, request.path, (time.perf_counter() - started) * 1000)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ValueError("connection closed in a chunked body")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = self.rfile.read(size)
                if len(data) < size:
                    raise ValueError("connection closed in a chunk")
                parts.append(data)
                self.rfile.readline(1024)
            body = b"".join(parts)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                raise ValueError("connection closed before the whole body arrived")
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        return body

    def _send(self, response: Response, request: Request) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("X-Socrata-RequestId", self.headers.get("X-Socrata-RequestId") or uuid.uuid4().hex)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, portal, ssl_context):
        self.portal = portal
        self.ssl_context = ssl_context
        self.connections: set = set()
        self._conn_lock = threading.Lock()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        conn = request
        if self.ssl_context is not None:
            try:
                conn = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        with self._conn_lock:
            self.connections.add(conn)
        try:
            Handler(conn, client_address, self)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        finally:
            with self._conn_lock:
                self.connections.discard(conn)
            if conn is not request:
                try:
                    conn.close()
                except OSError:
                    pass

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):   # a client hanging up is not news
        log.debug("local portal: connection error from %s", client_address, exc_info=True)


class PortalServer:
    """A running portal. `url` is where it answers; `stop()` (or leaving `with`) ends it."""

    def __init__(self, portal, host: str = "127.0.0.1", port: int = 0, tls: bool = False,
                 cert: str | None = None, key: str | None = None):
        self.portal = portal
        self.cert_path = None
        self._tmp = None
        context = None
        if tls or cert:
            from .tls import server_context
            context, self.cert_path, self._tmp = server_context(host, cert, key)
        self._server = _Server((host, port), portal, context)
        self.host = host
        self.port = self._server.server_address[1]
        scheme = "https" if context else "http"
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{self.port}"
        self.domain = f"{shown}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name=f"local-portal-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "PortalServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PortalServer({self.url})"
