"""Serving the portal: a threaded HTTP/1.1 server (keep-alive, TCP_NODELAY), optionally TLS.

http.server is enough here: every request is one SQLite transaction, so the server's own cost is
small beside the work, and it brings no dependency. Two details matter for speed: responses go out
with Nagle off (otherwise each one waits ~40 ms for a delayed ACK), and connections stay open. Each
connection gets a thread; TLS handshakes happen in that thread, never in the accepting one.

Hostile or broken clients (issue 11) meet three limits here. Every connection has a read timeout, so
a silent or slow client cannot hold its thread. Credentials are checked from the headers before the
body is read: an unauthenticated write is answered 401/403 without a byte of its body buffered or
decompressed. The body itself is read by bodies.py within the maximum body size. A request answered
without its body being read is closed "lingering" (shut the write side, discard what is still
arriving for a moment), so the client reads the answer instead of a connection reset.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from pipeline.portal import behaviour, bodies
from pipeline.portal.errors import PortalError
from pipeline.portal.http import JSON, WRITE_METHODS, Request, Response, error_response

log = logging.getLogger("pipeline.portal")

DEFAULT_READ_TIMEOUT = 30.0  # seconds a connection may stay silent (between requests or inside one)
_LINGER_SECONDS = 2.0  # at most this long discarding an unread body after answering
_LINGER_READ = 0.5  # ... and at most this long waiting for each piece of it
PREFERRED_CONCURRENCY = "1"  # requests in flight clients are asked for (see Handler._send)


class _Dropped(Exception):
    """Close the connection without an answer (a fault)."""


class _Silent(Exception):
    """The body stopped arriving for the read timeout."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "route-local-portal/1"
    timeout = DEFAULT_READ_TIMEOUT

    def setup(self):
        self.timeout = self.server.read_timeout  # StreamRequestHandler sets it on the socket
        super().setup()

    def log_message(self, fmt, *args):  # the query string may hold an app token: log the path only
        pass

    def handle_expect_100(self):
        # `Expect: 100-continue` is answered when the body is about to be read (_read_body), so a
        # client whose request is refused from its headers never sends the body at all.
        return True

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (request line too long, too many headers, ...) in Socrata's
        error body rather than an HTML page."""
        err = PortalError(code, "req.malformed", message or self.responses.get(code, ("Bad request",))[0])
        self.close_connection = True
        try:
            self.send_response(code, message)
            body = orjson.dumps(err.body())
            self.send_header("Content-Type", JSON)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        portal = self.server.portal
        started = time.perf_counter()
        request = Request.parse(self.command, self.path, self.headers, b"", portal)
        dsmapi = request.path.startswith("/api/publishing/")
        self._body_unread = True
        drop_after = False
        try:
            try:
                length = bodies.framing(self.headers, self.server.max_body)
                self._body_unread = length != 0
                if self.command == "OPTIONS":
                    response = Response(
                        204,
                        b"",
                        "text/plain",
                        {
                            "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
                            "Access-Control-Allow-Headers": "*",
                        },
                    )
                else:
                    request.user = portal.auth.identify(self.headers)
                    if self.command in WRITE_METHODS and request.user is None and not portal.auth.open:
                        raise behaviour.not_logged_in()  # every write needs a user: refuse unread
                    request.body = self._read_body(length)
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
                                raise PortalError(
                                    rule.status,
                                    "internal_error" if rule.status >= 500 else "fault",
                                    f"Fault injected by the local portal (HTTP {rule.status})",
                                )
                    handler, groups = portal.router.find(self.command, request.path)
                    response = handler(request, **groups)
            except PortalError as err:
                response = error_response(err, dsmapi)
            except (_Dropped, bodies.ClientGone, _Silent):
                raise
            except Exception:  # a bug: answer 500 with a body clients can read, keep serving
                log.error("local portal: %s %s failed:\n%s", self.command, request.path, traceback.format_exc())
                response = error_response(
                    PortalError(500, "internal_error", "The local portal failed on this request; see its log"), dsmapi
                )
            if drop_after:
                raise _Dropped()
            self._send(response, request)
            if self._body_unread:
                self._linger()
        except _Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except _Silent:  # silent mid-body: say so if it still listens, and hang up
            self.close_connection = True
            self._send(
                error_response(
                    PortalError(408, "req.timeout", f"The request body stopped arriving for {self.timeout:g} s"), dsmapi
                ),
                request,
                quiet=True,
            )
        except (bodies.ClientGone, OSError):
            self.close_connection = True  # the client went away mid-body: nothing is written
        log.debug("%s %s %.1f ms", self.command, request.path, (time.perf_counter() - started) * 1000)

    def _read_body(self, length: int | None) -> bytes:
        if length == 0:
            return b""
        try:
            if self.headers.get("Expect", "").lower() == "100-continue" and self.request_version != "HTTP/1.0":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = bodies.read(self.rfile, self.headers, length, self.server.max_body)
        except TimeoutError:
            raise _Silent() from None
        except OSError:
            raise bodies.ClientGone() from None
        self._body_unread = False
        return body

    def _linger(self) -> None:
        """Close after answering a request whose body was not read: shut our side, then discard
        what the client is still sending for a moment. Closing with unread data would reset the
        connection, and a reset can destroy the answer before the client reads it."""
        self.close_connection = True
        conn = self.connection
        try:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(_LINGER_READ)
            deadline = time.monotonic() + _LINGER_SECONDS
            budget = self.server.max_body
            while budget > 0 and time.monotonic() < deadline:
                data = conn.recv(bodies.PIECE)
                if not data:
                    break
                budget -= len(data)
        except (OSError, ValueError):
            pass

    def _send(self, response: Response, request: Request, quiet: bool = False) -> None:
        if quiet:
            try:
                return self._send(response, request)
            except OSError:
                return None
        if self._body_unread:
            self.close_connection = True
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("X-Socrata-RequestId", self.headers.get("X-Socrata-RequestId") or uuid.uuid4().hex)
        # Writes are handled one at a time on one Python thread: requests sent side by side only take
        # turns, and cost more (measured: 182k upserted rows/s one at a time, 168k two at a time).
        # Route's socrata delivery takes this as its default concurrency.
        self.send_header("X-Preferred-Concurrency", PREFERRED_CONCURRENCY)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, portal, ssl_context, max_body: int, read_timeout: float):
        self.portal = portal
        self.ssl_context = ssl_context
        self.max_body = max_body
        self.read_timeout = read_timeout
        self.connections: set = set()
        self._conn_lock = threading.Lock()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        conn = request
        request.settimeout(self.read_timeout)  # a client silent in the TLS handshake is let go too
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

    def handle_error(self, request, client_address):  # a client hanging up is not news
        log.debug("local portal: connection error from %s", client_address, exc_info=True)


class PortalServer:
    """A running portal. `url` is where it answers; `stop()` (or leaving `with`) ends it.

    `max_body` bounds a request body in bytes, on the wire and once decompressed (413 beyond it);
    `read_timeout` is how many seconds a connection may stay silent before it is closed.
    """

    def __init__(
        self,
        portal,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        cert: str | None = None,
        key: str | None = None,
        *,
        max_body: int = bodies.DEFAULT_MAX_BODY,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
    ):
        if max_body < 1 or read_timeout <= 0:
            raise ValueError("max_body and read_timeout must be positive")
        self.portal = portal
        self.cert_path = None
        self._tmp = None
        context = None
        if tls or cert:
            from pipeline.portal.tls import server_context

            context, self.cert_path, self._tmp = server_context(host, cert, key)
        self._server = _Server((host, port), portal, context, max_body, read_timeout)
        self.host = host
        self.port = self._server.server_address[1]
        scheme = "https" if context else "http"
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{self.port}"
        self.domain = f"{shown}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"local-portal-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PortalServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PortalServer({self.url})"
