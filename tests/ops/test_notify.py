"""Notifications: email reaches a real SMTP server (STARTTLS, login), webhooks reach a real HTTP
server as JSON, Slack and Teams payloads; a dead server never fails the run."""

from __future__ import annotations

import json
import ssl
import textwrap

import pytest
from notify_servers import HttpServer, SmtpServer, free_port

DATA = "id,amount\n1,10\n2,abc\n3,7\n4,x\n5,1\n"


def route_text(notify: str, on_error: str = "", source: str = "data.csv") -> str:
    return textwrap.dedent(f"""\
        name: payments
        source:
          csv: {{path: {source}}}
        source_transforms:
          - cast: {{amount: number}}
        targets:
          - name: out
            deliver:
              csv: {{path: out.csv}}
        {on_error}
        """) + textwrap.dedent(notify)


@pytest.fixture
def smtp_tls(tmp_path):
    from pipeline.portal.tls import self_signed

    cert, key = self_signed("127.0.0.1", tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = SmtpServer(tls=context, users={"alerts": "smtp-pa55"})
    server.cert = cert
    yield server
    server.close()


@pytest.fixture
def hooks():
    server = HttpServer()
    yield server
    server.close()


def test_failure_email_over_starttls_says_what_failed_and_where_to_look(tmp_path, route_cli, smtp_tls):
    route = tmp_path / "payments.yaml"
    route.write_text(
        route_text(
            f"""\
        notify:
          email:
            to: [data-team@example.gov, ops@example.gov]
            from: route@example.gov
            host: 127.0.0.1
            port: {smtp_tls.port}
            starttls: true
            ca_file: {smtp_tls.cert}
            username: alerts
            password: ${{SMTP_PASSWORD}}
        """,
            on_error="on_error: {max_rejects: 1}",
        )
    )
    (tmp_path / "data.csv").write_text(DATA)
    result = route_cli("execute", str(route), env={"SMTP_PASSWORD": "smtp-pa55"})
    assert result.exit_code == 1
    mail = smtp_tls.wait_for(1)[0]
    assert mail["tls"] and mail["user"] == "alerts"
    assert mail["from"] == "route@example.gov"
    assert mail["to"] == ["data-team@example.gov", "ops@example.gov"]
    msg = mail["message"]
    run_id = json.loads(route_cli("history", str(route), "--json").stdout)[0]["run_id"]
    assert msg["Subject"] == f"[route] route payments FAILED (run {run_id})"
    body = msg.get_content()
    assert "error: 2 rows were rejected, more than on_error.max_rejects allows (1)" in body
    assert "rows      5 read, 2 rejected, 0 delivered (0 created, 0 updated, 0 deleted)" in body
    state = tmp_path / ".route"
    assert f"log      {state}/logs/payments-{run_id}.log" in body
    assert f"report   {state}/logs/payments-{run_id}.json" in body
    assert f"rejects  {state}/rejects/payments-{run_id}.csv" in body
    assert f"history  route history payments --state {state}" in body
    log = (state / "logs" / f"payments-{run_id}.log").read_text()
    assert "sent the failure notification (email to data-team@example.gov, ops@example.gov via 127.0.0.1)" in log
    assert "smtp-pa55" not in log


def test_a_dead_smtp_server_does_not_fail_the_run(tmp_path, route_cli):
    port = free_port()
    route = tmp_path / "payments.yaml"
    route.write_text(
        route_text(f"""\
        notify:
          - email: {{to: ops@example.gov, host: 127.0.0.1, port: {port}}}
            on: [success, failure]
        """)
    )
    (tmp_path / "data.csv").write_text(DATA)
    result = route_cli("execute", "--json", str(route))
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    log = (tmp_path / ".route" / "logs" / f"payments-{run_id}.log").read_text()
    assert (
        f"WARNING could not send the success notification (email to ops@example.gov via 127.0.0.1): "
        f"cannot reach the SMTP server 127.0.0.1:{port}: [Errno 111] Connection refused"
    ) in log
    report = json.loads((tmp_path / ".route" / "logs" / f"payments-{run_id}.json").read_text())
    assert report["status"] == "success"
    assert report["notifications"] == [
        {
            "event": "success",
            "target": "email to ops@example.gov via 127.0.0.1",
            "ok": False,
            "error": f"cannot reach the SMTP server 127.0.0.1:{port}: [Errno 111] Connection refused",
        }
    ]


def test_password_is_never_sent_in_clear_to_a_remote_server(tmp_path):
    from pipeline.ops.notify.email import NotifyError, send_email
    from pipeline.ops.notify.events import Event

    with pytest.raises(NotifyError) as err:
        send_email(
            {"to": "a@example.gov", "host": "smtp.example.gov", "port": 25, "username": "u", "password": "p"},
            Event("failure", "r", "route r FAILED"),
        )
    assert str(err.value) == (
        "refusing to send the SMTP password to smtp.example.gov:25 unencrypted: set starttls: "
        "true (port 587) or ssl: true (port 465)"
    )


def test_webhooks_get_json_slack_and_teams_payloads(tmp_path, route_cli, hooks):
    route = tmp_path / "payments.yaml"
    route.write_text(
        route_text(
            f"""\
        notify:
          - webhook:
              url: {hooks.url}/generic
              headers: {{Authorization: "Bearer ${{HOOK_TOKEN}}"}}
          - webhook: {{url: "{hooks.url}/slack", format: slack}}
          - webhook: {{url: "{hooks.url}/teams", format: teams}}
        """,
            source="missing.csv",
        )
    )
    result = route_cli("execute", str(route), env={"HOOK_TOKEN": "t0ken-123"})
    assert result.exit_code == 1
    got = {r["path"]: r for r in hooks.wait_for(3)}
    generic = got["/generic"]
    assert generic["headers"]["Authorization"] == "Bearer t0ken-123"
    event = generic["json"]
    assert (event["event"], event["kind"], event["route"], event["status"]) == (
        "failure",
        "failure",
        "payments",
        "failed",
    )
    assert "missing.csv" in event["error"]
    assert event["counts"] == {"read": 0, "rejected": 0, "delivered": 0, "created": 0, "updated": 0, "deleted": 0}
    assert event["where"]["log"].endswith(f"/logs/payments-{event['run_id']}.log")
    assert event["text"].startswith(f"route payments FAILED (run {event['run_id']})\n\nerror: ")
    slack = got["/slack"]["json"]
    assert slack["text"] == f"[route] route payments FAILED (run {event['run_id']})"
    assert slack["blocks"][0]["text"]["text"] == f"*route payments FAILED (run {event['run_id']})*"
    assert "missing.csv" in slack["blocks"][1]["text"]["text"]
    teams = got["/teams"]["json"]
    assert teams["type"] == "message"
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert card["content"]["body"][0]["text"] == f"route payments FAILED (run {event['run_id']})"
    assert {"title": "log", "value": event["where"]["log"]} in card["content"]["body"][2]["facts"]
    log = (tmp_path / ".route" / "logs" / f"payments-{event['run_id']}.log").read_text()
    assert "t0ken-123" not in log


def test_rejects_threshold_recovery_and_stale_once(tmp_path, route_cli, hooks):
    (tmp_path / "defaults.yaml").write_text("stale: {failures: 2}\n")
    route = tmp_path / "payments.yaml"
    route.write_text(
        route_text(f"""\
        notify:
          - webhook: {{url: "{hooks.url}/count"}}
            rejects_over: 1
          - webhook: {{url: "{hooks.url}/share"}}
            on: [rejects]
            rejects_over: "50%"
        """)
    )
    data = tmp_path / "data.csv"
    data.write_text(DATA)  # 2 of 5 rows rejected: over 1, not over 50%
    assert route_cli("execute", str(route)).exit_code == 0
    assert [(r["path"], r["json"]["kind"]) for r in hooks.wait_for(1)] == [("/count", "rejects")]
    assert hooks.items[0]["json"]["headline"].startswith("route payments rejected 2 rows (run ")
    data.unlink()
    for _ in range(3):
        assert route_cli("execute", str(route)).exit_code == 1
    data.write_text("id,amount\n1,10\n")  # fewer rows than the file holds: past the replace guard
    assert route_cli("execute", "--force", str(route)).exit_code == 0
    kinds = [r["json"]["kind"] for r in hooks.wait_for(6)]
    # failures, the second makes the route stale (said once), then the recovery
    assert kinds == ["rejects", "failure", "failure", "stale", "failure", "recovery"]
    assert hooks.items[3]["json"]["headline"].startswith("route payments is stale: 2 failed runs in a row")


def test_a_webhook_answering_500_is_tried_again(tmp_path, route_cli):
    server = HttpServer(statuses=[500])
    try:
        route = tmp_path / "payments.yaml"
        route.write_text(
            route_text(f"""\
            notify:
              - webhook: {{url: "{server.url}/hook"}}
                on: [success]
            """)
        )
        (tmp_path / "data.csv").write_text(DATA)
        assert route_cli("execute", str(route)).exit_code == 0
        assert [r["status"] for r in server.wait_for(2)] == [500, 200]
    finally:
        server.close()
