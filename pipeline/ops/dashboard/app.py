"""The dashboard's HTTP server: the stdlib's threaded server, as the local portal uses.

Rules it keeps: bound to this machine, it answers only requests addressed to 127.0.0.1,
localhost or [::1] (a DNS rebinding page cannot reach it); nothing changes on a GET (run now and dry run are a POST carrying the page's CSRF
token, reached through a confirmation page); a POST from another origin is refused; with users
(`--user NAME:PASSWORD`) every request needs HTTP Basic credentials; pages come with a strict
Content-Security-Policy (scripts and styles from /static only) and may not be framed.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline.ops.dashboard import pages, runpages
from pipeline.ops.dashboard.launch import Launcher
from pipeline.ops.dashboard.state import DashboardState, rejects_csv, run_json

STATIC = Path(__file__).with_name("static")
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
MAX_FORM = 16 * 1024
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Answer(Exception):
    def __init__(self, status: int, text: str, headers: dict | None = None):
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers or {}


class Dashboard:
    """What the handler needs: the state, the launcher, the users and the CSRF token."""

    def __init__(self, state: DashboardState, users: dict[str, str] | None = None):
        from pipeline.basics.plugins import Registry

        self.state = state
        self.launcher = Launcher(state.variables, state.state, state.profile)
        self.users = dict(users or {})
        self.csrf = secrets.token_urlsafe(32)
        self.registry = Registry.discover()

    def allowed(self, header: str | None) -> bool:
        if not self.users:
            return True
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            name, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        expected = self.users.get(name)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "route-dashboard/1"
    timeout = 30

    def log_message(self, fmt, *args):
        pass

    @property
    def app(self) -> Dashboard:
        return self.server.app

    def do_GET(self):
        self._serve("GET")

    def do_HEAD(self):
        self._serve("HEAD")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    do_DELETE = do_PATCH = do_PUT

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            if self.server.loopback and not _local_host(self.headers.get("Host", "")):
                # bound to this machine: a page of another site reaching it by DNS rebinding names
                # its own host here, never 127.0.0.1 or localhost
                raise Answer(403, "This dashboard answers only to 127.0.0.1, localhost and [::1].")
            if not self.app.allowed(self.headers.get("Authorization")):
                raise Answer(
                    401, "Sign in to see the dashboard.", {"WWW-Authenticate": 'Basic realm="route dashboard"'}
                )
            status, ctype, body, extra = self._route(method, path, query)
        except Answer as a:
            status, ctype, body, extra = a.status, "text/plain; charset=utf-8", (a.text + "\n").encode(), a.headers
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**HEADERS, **extra}.items():
            self.send_header(k, v)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    # ---- routing
    def _route(self, method: str, path: str, q: dict):
        app, state = self.app, self.app.state
        if path.startswith("/static/"):
            return self._static(method, path[len("/static/") :])
        if method == "POST":
            if path.startswith("/routes/") and path.endswith("/run"):
                return self._run(path[len("/routes/") : -len("/run")])
            raise Answer(405, "Only the run buttons POST.", {"Allow": "GET, HEAD"})
        if method not in ("GET", "HEAD"):
            raise Answer(405, f"{method} is not allowed here.", {"Allow": "GET, HEAD"})
        if path == "/":
            return html(pages.route_list(state, q.get("q", ""), q.get("state", "")))
        if path == "/api/routes.json":
            return js([dict(s.to_dict(), url=pages.route_href(s.route)) for _, s in state.statuses()])
        if path == "/api/running.json":
            runs = state.running()
            return js({"runs": runs, "html": pages.running_table(runs)})
        if path.startswith("/api/runs/") and path.endswith(".json"):
            return js(self._run_json(path[len("/api/runs/") : -len(".json")]))
        if path.startswith("/api/routes/") and path.endswith("/runs.json"):
            entry = self._entry(path[len("/api/routes/") : -len("/runs.json")])
            return js([run_json(entry, r) for r in state.runs(entry)])
        if path.startswith("/routes/"):
            rest = path[len("/routes/") :]
            if rest.endswith("/confirm"):
                entry = self._entry(rest[: -len("/confirm")])
                action = q.get("action", "run")
                if action not in ("run", "dry-run"):
                    raise Answer(400, "action is run or dry-run")
                return html(pages.confirm_page(entry, action, app.csrf))
            if rest.endswith("/run"):
                raise Answer(405, "Starting a run needs the confirmation page's POST.", {"Allow": "POST"})
            return html(pages.route_page(state, self._entry(rest), app.registry))
        if path.startswith("/runs/"):
            rest = path[len("/runs/") :]
            if rest.endswith("/rejects.csv"):
                entry, run = self._run_of(rest[: -len("/rejects.csv")])
                text = rejects_csv(state.files(entry, run).rejects, q.get("q", ""), q.get("reason", ""))
                name = f"{entry.name}-{run['run_id']}-rejects.csv"
                return (
                    200,
                    "text/csv; charset=utf-8",
                    text.encode(),
                    {"Content-Disposition": f'attachment; filename="{name}"'},
                )
            pending = app.launcher.pending(rest)
            found = state.find_run(rest)
            if found is None and pending:
                return html(runpages.starting_page(pending, rest, app.launcher.outcome(rest)))
            entry, run = self._run_of(rest, found)
            offset = int(q["offset"]) if q.get("offset", "").isdigit() else 0
            return html(runpages.run_page(state, entry, run, q.get("q", ""), q.get("reason", ""), offset))
        raise Answer(404, f"Nothing at {path}.")

    def _entry(self, name: str):
        entry = self.app.state.entry(name)
        if entry is None:
            raise Answer(404, f"No route named {name!r} here.")
        return entry

    def _run_of(self, run_id: str, found=None):
        found = found or self.app.state.find_run(run_id)
        if found is None:
            raise Answer(404, f"No run {run_id!r} here.")
        return found

    def _run_json(self, run_id: str) -> dict:
        state = self.app.state
        found = state.find_run(run_id)
        if found is None:
            route = self.app.launcher.pending(run_id)
            if route:
                ended = self.app.launcher.outcome(run_id)
                if ended is not None and state.find_run(run_id) is None:  # it never reached the history
                    return {"run_id": run_id, "route": route, **ended}
                return {"run_id": run_id, "route": route, "status": "starting"}
            raise Answer(404, f"No run {run_id!r} here.")
        entry, run = found
        return run_json(entry, run, state.progress(entry, run) if run["status"] == "running" else None)

    def _static(self, method: str, name: str):
        path = STATIC / name
        if "/" in name or name.startswith(".") or path.suffix not in TYPES or not path.is_file():
            raise Answer(404, "No such file.")
        return 200, TYPES[path.suffix], path.read_bytes(), {"Cache-Control": "max-age=3600"}

    def _run(self, name: str):
        origin = self.headers.get("Origin")
        host = self.headers.get("Host", "")
        if origin and urlsplit(origin).netloc != host:
            raise Answer(403, "A run can only be started from the dashboard's own pages.")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM:
            raise Answer(413, "Form too large.")
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
        if not hmac.compare_digest(form.get("csrf", "").encode(), self.app.csrf.encode()):
            raise Answer(403, "Missing or wrong CSRF token: start the run from the confirmation page.")
        entry = self._entry(name)
        if entry.problem:
            raise Answer(409, f"The route cannot run: {entry.problem.splitlines()[0]}")
        if form.get("action") == "dry-run":
            self.app.launcher.dry_run(entry)
            return 303, "text/plain", b"", {"Location": pages.route_href(entry.name)}
        if form.get("action", "run") != "run":
            raise Answer(400, "action is run or dry-run")
        run_id = self.app.launcher.run_now(entry)
        return 303, "text/plain", b"", {"Location": pages.run_href(run_id)}


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _local_host(header: str) -> bool:
    """Does a Host header name this machine's loopback address (with any port)?"""
    name = header.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    else:
        name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    return name in LOOPBACK


def html(text: str):
    return 200, "text/html; charset=utf-8", text.encode(), {}


def js(obj):
    return 200, "application/json", json.dumps(obj, default=str).encode(), {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class DashboardServer:
    """A running dashboard on host:port (port 0: a free one); `url`, `stop()`, `with`."""

    def __init__(self, app: Dashboard, host: str = "127.0.0.1", port: int = 0):
        self._server = (_Server6 if ":" in host else _Server)((host, port), Handler)
        self._server.app = app
        self._server.loopback = host in LOOPBACK
        self.port = self._server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="route-dashboard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
