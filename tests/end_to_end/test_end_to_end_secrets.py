"""Acceptance: a secret given as ${VAR} never shows: not in the terminal, the --json report, the
rejects file, the run log, history.sqlite or `route history`, even when the message that fails the
run (or refuses the route) would quote it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PGPASS = "Pg-s3cret-41x"
TOKEN = "AppTok-77-zz"
PASSWORD = "Sock-pw-99-q"
SECRETS = (PGPASS, TOKEN, PASSWORD)

# a ragged row, so that the run also writes a rejects file
DATA = b"id,town\n1,Hartford\n2,New Haven,extra\n3,Stamford\n"


def assert_nowhere(texts: list[str], state: Path, secrets=SECRETS) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text
        for f in state.rglob("*"):
            if f.is_file():
                assert secret.encode() not in f.read_bytes(), f


def everything(route_cli, path: Path, *args: str, env: dict) -> tuple[list[str], object, object]:
    """Run the route twice (table, then --json) and list every text a user sees."""
    table = route_cli("execute", *args, str(path), env=env)
    report = route_cli("execute", "--json", *args, str(path), env=env)
    history = route_cli("history", str(path), env=env)
    history_json = route_cli("history", str(path), "--json", env=env)
    texts = [r.output for r in (table, report, history, history_json)]
    return texts, table, report


def test_a_database_password_in_a_refused_connection(route_cli, write_route, tmp_path):
    path = write_route(
        """
        name: to-db
        source:
          csv: {path: data.csv}
        targets:
          - name: db
            deliver:
              sql:
                url: postgresql://postgres:${PGPASS}@127.0.0.1:1/test
                table: towns
                mode: replace
    """,
        **{"data.csv": DATA},
    )
    texts, table, report = everything(route_cli, path, env={"PGPASS": PGPASS})
    assert table.exit_code == 1 and report.exit_code == 1
    assert "cannot connect to postgresql+psycopg://postgres:***@127.0.0.1:1/test" in table.output
    assert json.loads(report.stdout)["status"] == "failed"
    assert (tmp_path / ".route" / "history.sqlite").exists()
    assert list((tmp_path / ".route" / "rejects").glob("to-db-*.csv"))
    assert_nowhere(texts, tmp_path / ".route")


def test_a_database_password_given_with_set(route_cli, write_route, tmp_path):
    path = write_route("""
        name: from-db
        source:
          sql:
            url: postgresql://postgres:${DB_PW}@127.0.0.1:1/test
            table: towns
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """)
    texts, table, _ = everything(route_cli, path, "--set", f"DB_PW={PGPASS}", env={})
    assert table.exit_code == 1
    assert "postgres:***@127.0.0.1:1" in table.output
    assert_nowhere(texts, tmp_path / ".route")


def test_a_password_with_url_characters_does_not_leak_in_pieces(route_cli, write_route, tmp_path):
    secret = "p@ss/w:rd-Zq9"
    path = write_route("""
        name: special
        source:
          sql:
            url: postgresql://postgres:${PGPASS}@127.0.0.1:1/test
            table: towns
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """)
    texts, table, _ = everything(route_cli, path, env={"PGPASS": secret})
    assert table.exit_code in (1, 2)
    assert_nowhere(texts, tmp_path / ".route", secrets=(secret, "ss/w", "rd-Zq9"))


def test_a_validation_message_does_not_quote_a_secret(route_cli, write_route, tmp_path):
    # the schema check would say "expected a whole number, got '<value>'"
    path = write_route(
        """
        name: quoted
        chunk_rows: ${API_TOKEN}
        source:
          csv: {path: data.csv}
        targets:
          - name: out
            deliver: {jsonl: {path: out.jsonl}}
    """,
        **{"data.csv": DATA},
    )
    for command in ("validate", "execute"):
        result = route_cli(command, str(path), env={"API_TOKEN": TOKEN})
        assert result.exit_code == 2
        assert result.stderr.strip() == f"{path}:2:13: chunk_rows: expected a whole number, got '***'"


class _Echo(BaseHTTPRequestHandler):
    """A portal that refuses every request and quotes the caller's credentials in its error."""

    def _refuse(self):
        said = f"token {self.headers.get('X-App-Token')} is not valid for {PASSWORD}"
        body = json.dumps({"code": "permission_denied", "error": True, "message": said}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _refuse

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_portal():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_portal_credentials_quoted_back_by_the_server(route_cli, write_route, tmp_path, echo_portal):
    path = write_route(
        f"""
        name: to-portal
        source:
          csv: {{path: data.csv}}
        targets:
          - name: portal
            deliver:
              socrata:
                domain: {echo_portal}
                dataset: abcd-1234
                mode: replace
                auth: {{username: me, password: "${{SOCRATA_PASSWORD}}", app_token: "${{SOCRATA_APP_TOKEN}}"}}
    """,
        **{"data.csv": DATA},
    )
    texts, table, report = everything(route_cli, path, env={"SOCRATA_PASSWORD": PASSWORD, "SOCRATA_APP_TOKEN": TOKEN})
    assert table.exit_code == 1
    assert "token *** is not valid for ***" in table.output
    assert "token *** is not valid for ***" in json.loads(report.stdout)["error"]
    assert_nowhere(texts, tmp_path / ".route")


def test_a_password_in_the_portal_address_is_refused_without_showing_it(route_cli, write_route):
    path = write_route(
        """
        name: userinfo
        source:
          csv: {path: data.csv}
        targets:
          - name: portal
            deliver:
              socrata: {domain: "https://publisher:Hunter2-secret@data.example.gov", dataset: abcd-1234, mode: upsert}
    """,
        **{"data.csv": "id\n1\n"},
    )
    result = route_cli("validate", str(path))
    assert result.exit_code == 2
    assert "give the user and password under auth:, not in the portal address" in result.output
    assert "route.yaml:7:25: targets[0].deliver.socrata.domain:" in result.output
    assert "Hunter2-secret" not in result.output
