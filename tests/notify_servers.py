"""Tiny real servers for the notification tests: SMTP (with STARTTLS and AUTH PLAIN) and HTTP.

The stdlib `smtpd` is gone in Python 3.12, so this speaks just enough SMTP for smtplib."""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import ssl
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Collector:
    def __init__(self):
        self.items: list = []
        self.cond = threading.Condition()

    def add(self, item) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> list:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {n} messages, got {len(self.items)}")
                self.cond.wait(left)
            return list(self.items)


class SmtpServer(_Collector):
    """Accepts mail on 127.0.0.1; `tls` (a server SSLContext) enables STARTTLS; `users` enables AUTH."""

    def __init__(self, tls: ssl.SSLContext | None = None, users: dict[str, str] | None = None):
        super().__init__()
        self.tls, self.users = tls, users or {}
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                outer._session(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _session(self, sock: socket.socket) -> None:
        reader = sock.makefile("rb")

        def send(line: str) -> None:
            sock.sendall(line.encode() + b"\r\n")

        send("220 test SMTP ready")
        mail = {"from": None, "to": [], "user": None, "tls": False}
        while True:
            raw = reader.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                caps = ["250-test"]
                if self.tls and not mail["tls"]:
                    caps.append("250-STARTTLS")
                if self.users:
                    caps.append("250-AUTH PLAIN")
                send("\r\n".join(caps[:-1] + ["250 " + caps[-1][4:]]) if len(caps) > 1 else "250 test")
            elif verb == "STARTTLS":
                send("220 go ahead")
                sock = self.tls.wrap_socket(sock, server_side=True)
                reader = sock.makefile("rb")
                mail["tls"] = True
            elif verb == "AUTH":
                _, _, blob = line.split(" ", 2)
                _, user, password = base64.b64decode(blob).decode().split("\0")
                if self.users.get(user) == password:
                    mail["user"] = user
                    send("235 ok")
                else:
                    send("535 bad credentials")
            elif verb == "MAIL":
                mail["from"] = line.split(":", 1)[1].strip().split()[0].strip("<>")
                send("250 ok")
            elif verb == "RCPT":
                mail["to"].append(line.split(":", 1)[1].strip().strip("<>"))
                send("250 ok")
            elif verb == "DATA":
                send("354 end with .")
                data = b""
                while True:
                    chunk = reader.readline()
                    if chunk in (b".\r\n", b""):
                        break
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.add({**mail, "message": message_from_bytes(data, policy=policy.default)})
                mail = {**mail, "from": None, "to": []}
                send("250 queued")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("250 ok")


class HttpServer(_Collector):
    """Records every POST (path, headers, JSON body); answers with `statuses` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None):
        super().__init__()
        self.statuses = list(statuses or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = outer.statuses.pop(0) if outer.statuses else 200
                outer.add(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(body or b"null"),
                        "status": status,
                    }
                )
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"try later")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A port nothing listens on (for a dead server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
